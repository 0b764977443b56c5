"""Review result folders of `lgrnet predict` / `lgrnet demo` in the browser.

Serves a local page: the video with the mask outline (toggle), a frame slider and play/pause,
the per-frame confidence curve (click to jump), the low-confidence frames, and downloads of the
masks (zip) and the CSV. Reviewers correct masks on the page (brush, eraser, fill, polygon) and
mark frames checked; corrections are saved in the result folder (corrections/), each with the
reviewer's name and time. RESULT_DIR is one result folder, or a folder whose subfolders hold
several (they are listed on the page). With --weights, the page also takes a video upload and
runs the model on it.

The server listens on 127.0.0.1 only, unless --host says otherwise. Beyond loopback every request
needs an access token: a random one made at start and printed once as a URL, or your own from
$LGRNET_VIEW_TOKEN or --token-file (lines "TOKEN" or "NAME TOKEN": one per reviewer). Add --tls
(a self-signed certificate for the session; its fingerprint is printed) or --certfile/--keyfile,
so that the token and the videos do not cross the network in clear.

examples:
  lgrnet view runs/case01
  lgrnet view runs/ --port 8800 --weights lgrnet_tiny.safetensors --preset tiny
  lgrnet view runs/ --weights model.safetensors --size 224 --upload-dir uploads/
  lgrnet view runs/ --host 0.0.0.0 --tls                      # a team on the hospital network
  lgrnet view runs/ --host 0.0.0.0 --token-file reviewers.txt --certfile cert.pem --keyfile key.pem
"""
from __future__ import annotations

import errno
import ipaddress
import signal
import socket
import sys
import threading
import webbrowser
from pathlib import Path

from ..errors import UserError
from .arguments import add_device_argument, add_precision_argument, add_weights_arguments, check_output_folder


def add_arguments(p) -> None:
    p.add_argument("result_dir", metavar="RESULT_DIR",
                   help="a result folder (holding predictions.json), or a folder of them; the masks corrected and the "
                        "frames marked checked on the page are saved in each result's corrections/ (lgrnet dataset "
                        "from-results makes training data of them)")
    p.add_argument("--port", type=int, default=8765, help="port to listen on (default 8765; 0: any free port)")
    p.add_argument("--host", default="127.0.0.1",
                   help="address to listen on (default 127.0.0.1: this machine only). Anything else serves "
                        "the network and needs an access token on every request (see --token-file)")
    p.add_argument("--token-file", type=Path, default=None,
                   help="access tokens: a file of lines TOKEN or NAME TOKEN (the name is recorded with that reviewer's "
                        "corrections); default: $LGRNET_VIEW_TOKEN, else a random token printed at start")
    p.add_argument("--require-token", action="store_true",
                   help="require the access token on loopback too (always required on other addresses; on loopback "
                        "--token-file requires it as well)")
    p.add_argument("--tls", action="store_true",
                   help="serve HTTPS with a self-signed certificate made for this session (its SHA-256 fingerprint "
                        "is printed, to compare with the browser's)")
    p.add_argument("--certfile", type=Path, default=None, help="serve HTTPS with this certificate (PEM)")
    p.add_argument("--keyfile", type=Path, default=None, help="the certificate's private key (PEM), if not in --certfile")
    add_weights_arguments(p, required=False, what="the model for the page's video uploads (without it uploads are off)")
    add_device_argument(p, default="cpu", what="the uploads' predictions")
    p.add_argument("--size", type=int, default=None,
                   help="model input size for uploads, a multiple of 32 (default: the size the weights record, "
                        "else 352, as published)")
    add_precision_argument(p)
    p.add_argument("--max-upload-mb", type=float, default=500.0, help="largest accepted upload in MiB (default 500)")
    p.add_argument("--cache-mb", type=float, default=256.0, help="memory for decoded frames (JPEG) in MiB (default 256)")
    p.add_argument("--upload-dir", type=Path, default=None,
                   help="keep uploaded videos and their results here (default: a temporary folder removed on exit)")
    p.add_argument("--open", action="store_true", help="open the page in the default browser")
    p.add_argument("--verbose", action="store_true", help="log every request")


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _shown_host(host: str) -> str:
    """The name to print in the page's address: this machine's name for a wildcard address."""
    if host in ("0.0.0.0", "::", ""):
        host = socket.getfqdn() or socket.gethostname()
    return f"[{host}]" if ":" in host else host


def _stop_on_sigterm():
    """Make SIGTERM stop the server like Ctrl+C (so the temporary upload folder is removed)."""
    if threading.current_thread() is not threading.main_thread():
        return None

    def handler(signum, frame):
        raise KeyboardInterrupt

    return signal.signal(signal.SIGTERM, handler)


def run(args) -> int:
    from ..results.folder import find_results
    from ..viewer.auth import Auth, generate_token, load_tokens
    from ..viewer.server import LOOPBACK_HOSTS, ViewerApp, make_server
    from ..viewer.tls import self_signed, server_context

    if not 0 <= args.port <= 65535:
        raise UserError(f"--port {args.port}: must be 0..65535")
    if args.max_upload_mb <= 0 or args.cache_mb <= 0:
        raise UserError("--max-upload-mb and --cache-mb must be positive")
    if args.tls and args.certfile is not None:
        raise UserError("--tls makes a certificate; --certfile uses yours: pass one of them")
    if args.keyfile is not None and args.certfile is None:
        raise UserError("--keyfile needs --certfile")
    loopback = _is_loopback(args.host)
    tokens = load_tokens(args.token_file)  # before anything slow: a bad token file is one line
    if loopback and not args.require_token and args.token_file is None:
        tokens = {}  # loopback as before: $LGRNET_VIEW_TOKEN applies beyond it, or with --require-token
    generated = None
    if (not loopback or args.require_token) and not tokens:
        generated = generate_token()
        tokens = {generated: ""}
    ssl_context = server_context(args.certfile, args.keyfile) if args.certfile is not None else None
    if args.upload_dir is not None:
        check_output_folder(args.upload_dir, "the uploads")  # before the model loads
    broken: list = []
    results = find_results(args.result_dir, broken=broken)  # one broken result does not hide the others

    runner, reason = None, "uploads need a model: start with `lgrnet view RESULT_DIR --weights W.safetensors`"
    if args.weights is not None:
        from ..viewer.uploads import make_model_runner

        try:
            runner = make_model_runner(args.weights, preset=args.preset, device=args.device, size=args.size,
                                       precision=args.precision)
        except UserError:
            raise
        except Exception as exc:  # safetensors, config and state-dict errors alike: name the file
            raise UserError(f"{args.weights}: cannot load the model ({type(exc).__name__}: {exc})") from None

    if not loopback and ssl_context is None and not args.tls:
        print(f"lgrnet view: warning: listening on {args.host} without TLS: the access token and the videos cross "
              "the network in clear (add --tls or --certfile/--keyfile)", file=sys.stderr)
    if args.upload_dir is not None:
        args.upload_dir.mkdir(parents=True, exist_ok=True)
    app = ViewerApp(results, runner=runner, upload_disabled_reason=reason, work_dir=args.upload_dir,
                    max_upload_bytes=int(args.max_upload_mb * 2**20), cache_bytes=int(args.cache_mb * 2**20),
                    allowed_hosts=LOOPBACK_HOSTS if loopback else None, verbose=args.verbose)
    certificate = None
    try:
        if args.tls:
            certificate = self_signed(args.host)
            ssl_context = server_context(certificate.certfile, certificate.keyfile)
        try:
            server = make_server(app, args.host, args.port, ssl_context=ssl_context)
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                raise UserError(f"port {args.port} is in use; pass another --port (0 picks a free one)") from None
            raise UserError(f"cannot listen on {args.host}:{args.port} ({exc.strerror or exc})") from None
        host, port = server.server_address[:2]
        url = f"{'https' if ssl_context is not None else 'http'}://{_shown_host(host)}:{port}/"
        if tokens:  # every request needs a token; the cookie is this port's
            app.auth = Auth(tokens, cookie_name=f"lgrnet_view_{port}", secure=ssl_context is not None)
        for name, problem in broken:
            print(f"lgrnet view: warning: not serving {name}: {problem}", file=sys.stderr)
        for r in results:
            for w in r.warnings:
                print(f"lgrnet view: warning: {r.root}: {w}", file=sys.stderr)
        skipped = f" ({len(broken)} broken, listed above)" if broken else ""
        if certificate is not None:
            print(f"lgrnet view: self-signed certificate for this session, SHA-256 fingerprint {certificate.fingerprint} "
                  "(check that the browser shows the same before accepting it)", flush=True)
        # the one place the token is shown: the address to open (never logged, never written to a file)
        opened = f"{url}?token={generated}" if generated else url
        note = "" if generated or not tokens else "; open it with ?token=YOUR-TOKEN once, the page keeps it in a cookie"
        print(f"lgrnet view: {len(results)} result(s){skipped} from {args.result_dir} at {opened}  (Ctrl+C to stop{note})",
              flush=True)
        if args.open:
            webbrowser.open(opened)
        previous = _stop_on_sigterm()
        try:
            server.serve_forever(poll_interval=0.25)
        except KeyboardInterrupt:
            print("lgrnet view: stopped", file=sys.stderr)
        finally:
            server.server_close()
            if previous is not None:
                signal.signal(signal.SIGTERM, previous)
    finally:
        app.close()
        if certificate is not None:
            certificate.close()
    return 0
