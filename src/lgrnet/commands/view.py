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
import signal
import sys
import threading
import webbrowser
from pathlib import Path

from ..errors import UserError
from .arguments import add_device_argument, add_precision_argument, add_weights_arguments, check_output_folder
from .serving import PageAccess, add_serving_arguments


def add_arguments(p) -> None:
    p.add_argument("result_dir", metavar="RESULT_DIR",
                   help="a result folder (holding predictions.json), or a folder of them; the masks corrected and the "
                        "frames marked checked on the page are saved in each result's corrections/ (lgrnet dataset "
                        "from-results makes training data of them)")
    add_serving_arguments(p, default_port=8765)
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


def _stop_on_sigterm():
    """Make SIGTERM stop the server like Ctrl+C (so the temporary upload folder is removed)."""
    if threading.current_thread() is not threading.main_thread():
        return None

    def handler(signum, frame):
        raise KeyboardInterrupt

    return signal.signal(signal.SIGTERM, handler)


def run(args) -> int:
    from ..results.folder import find_results
    from ..viewer.server import ViewerApp, make_server

    if args.max_upload_mb <= 0 or args.cache_mb <= 0:
        raise UserError("--max-upload-mb and --cache-mb must be positive")
    access = PageAccess(args, "lgrnet view", cookie="lgrnet_view")  # before anything slow: a bad token file is one line
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

    access.warn_cleartext()
    if args.upload_dir is not None:
        args.upload_dir.mkdir(parents=True, exist_ok=True)
    app = ViewerApp(results, runner=runner, upload_disabled_reason=reason, work_dir=args.upload_dir,
                    max_upload_bytes=int(args.max_upload_mb * 2**20), cache_bytes=int(args.cache_mb * 2**20),
                    allowed_hosts=access.allowed_hosts, verbose=args.verbose)
    try:
        access.start()
        try:
            server = make_server(app, args.host, args.port, ssl_context=access.ssl_context)
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                raise UserError(f"port {args.port} is in use; pass another --port (0 picks a free one)") from None
            raise UserError(f"cannot listen on {args.host}:{args.port} ({exc.strerror or exc})") from None
        app.auth = access.auth(server.server_address[1])  # every request needs a token; the cookie is this port's
        for name, problem in broken:
            print(f"lgrnet view: warning: not serving {name}: {problem}", file=sys.stderr)
        for r in results:
            for w in r.warnings:
                print(f"lgrnet view: warning: {r.root}: {w}", file=sys.stderr)
        skipped = f" ({len(broken)} broken, listed above)" if broken else ""
        access.print_fingerprint()
        _, opened, note = access.address(server.server_address)
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
        access.close()
    return 0
