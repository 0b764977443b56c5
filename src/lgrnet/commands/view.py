"""Review result folders of `lgrnet predict` / `lgrnet demo` in the browser.

Serves a local page: the video with the mask outline (toggle), a frame slider and play/pause,
the per-frame confidence curve (click to jump), the low-confidence frames, and downloads of the
masks (zip) and the CSV. RESULT_DIR is one result folder, or a folder whose subfolders hold
several (they are listed on the page). With --weights, the page also takes a video upload and
runs the model on it.

The server listens on 127.0.0.1 only, unless --host says otherwise. It has no authentication.

examples:
  lgrnet view runs/case01
  lgrnet view runs/ --port 8800 --weights lgrnet_tiny.safetensors --preset tiny
  lgrnet view runs/ --weights model.safetensors --size 224 --upload-dir uploads/
"""
from __future__ import annotations

import errno
import ipaddress
import signal
import sys
import threading
import webbrowser
from pathlib import Path

from ..errors import UserError
from .arguments import add_device_argument, add_precision_argument, add_weights_arguments, check_output_folder


def add_arguments(p) -> None:
    p.add_argument("result_dir", metavar="RESULT_DIR", help="a result folder (holding predictions.json), or a folder of them")
    p.add_argument("--port", type=int, default=8765, help="port to listen on (default 8765; 0: any free port)")
    p.add_argument("--host", default="127.0.0.1",
                   help="address to listen on (default 127.0.0.1: this machine only). Anything else exposes "
                        "the results and uploads to the network without a password")
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


def _stop_on_sigterm():
    """Make SIGTERM stop the server like Ctrl+C (so the temporary upload folder is removed)."""
    if threading.current_thread() is not threading.main_thread():
        return None

    def handler(signum, frame):
        raise KeyboardInterrupt

    return signal.signal(signal.SIGTERM, handler)


def run(args) -> int:
    from ..results.folder import find_results
    from ..viewer.server import LOOPBACK_HOSTS, ViewerApp, make_server

    if not 0 <= args.port <= 65535:
        raise UserError(f"--port {args.port}: must be 0..65535")
    if args.max_upload_mb <= 0 or args.cache_mb <= 0:
        raise UserError("--max-upload-mb and --cache-mb must be positive")
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

    loopback = _is_loopback(args.host)
    if not loopback:
        print(f"lgrnet view: warning: listening on {args.host}: anyone who can reach this machine can see these "
              "results and upload videos (there is no password)", file=sys.stderr)
    if args.upload_dir is not None:
        args.upload_dir.mkdir(parents=True, exist_ok=True)
    app = ViewerApp(results, runner=runner, upload_disabled_reason=reason, work_dir=args.upload_dir,
                    max_upload_bytes=int(args.max_upload_mb * 2**20), cache_bytes=int(args.cache_mb * 2**20),
                    allowed_hosts=LOOPBACK_HOSTS if loopback else None, verbose=args.verbose)
    try:
        try:
            server = make_server(app, args.host, args.port)
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                raise UserError(f"port {args.port} is in use; pass another --port (0 picks a free one)") from None
            raise UserError(f"cannot listen on {args.host}:{args.port} ({exc.strerror or exc})") from None
        host, port = server.server_address[:2]
        shown = f"[{host}]" if ":" in host else host
        url = f"http://{shown}:{port}/"
        for name, problem in broken:
            print(f"lgrnet view: warning: not serving {name}: {problem}", file=sys.stderr)
        for r in results:
            for w in r.warnings:
                print(f"lgrnet view: warning: {r.root}: {w}", file=sys.stderr)
        skipped = f" ({len(broken)} broken, listed above)" if broken else ""
        print(f"lgrnet view: {len(results)} result(s){skipped} from {args.result_dir} at {url}  (Ctrl+C to stop)", flush=True)
        if args.open:
            webbrowser.open(url)
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
    return 0
