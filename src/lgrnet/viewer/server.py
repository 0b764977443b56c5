"""The review page's HTTP server (standard library only: ``http.server.ThreadingHTTPServer``).

Every request goes through one route table (:data:`ROUTES`, method + path pattern -> handler; see
:mod:`lgrnet.viewer.routing`), and every refusal is one error type,
:class:`~lgrnet.viewer.routing.HttpError` (status and a one-line message, sent as JSON
``{"error": ...}``). Names in a URL are looked up, never joined to a path::

    GET  /                                   the page (static/index.html)
    GET  /static/<file>                      the page's scripts and styles
    GET  /api/info                           results, upload status, who the reviewer is
    GET  /api/results/<rid>                  predictions.json of a result, plus viewer fields
    GET  /api/results/<rid>/frames/<i>.jpg   frame i of the result's source, as JPEG
    GET  /api/results/<rid>/outlines/<i>.json  mask i's outline: {"contours": [[[x, y], ...], ...]}
    GET  /api/results/<rid>/masks.zip        all masks, zipped
    GET  /api/results/<rid>/predictions.csv  the per-frame table
    GET  /api/results/<rid>/overlay.mp4      the overlay video
    POST /api/upload                         body: the video's bytes; header X-Filename
    GET  /api/jobs/<jid>                     an upload's progress
    .../api/results/<rid>/corrections...     a reviewer's masks and frame states (GET, PUT, POST):
                                             :data:`lgrnet.viewer.corrections.ROUTES`
    GET  /api/results/<rid>/sizes/<i>.json   mask i's lesion size in mm (the corrected mask's for
                                             an edited frame): :data:`lgrnet.viewer.sizes.ROUTES`

Bound to 127.0.0.1 by default; then requests whose Host header is not a loopback name are refused
(DNS rebinding). A POST or PUT must come from the page's own origin. With an access token
(:mod:`lgrnet.viewer.auth`; always when listening beyond loopback) every request must carry it.
"""
from __future__ import annotations

import os
import shutil
import sys
import tempfile
import threading
import zipfile
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Dict, Iterable, List, Optional, Tuple
from urllib.parse import unquote, urlsplit

import numpy as np

from ..version import __version__
from ..errors import InputError
from ..io import FrameSource
from ..io.video_file import VIDEO_EXTENSIONS  # uploads: the names `lgrnet predict` takes
from ..results.folder import Result, find_results, load_result, safe_filename
from . import served_files
from .corrections import ROUTES as CORRECTION_ROUTES
from .frames import JpegCache, encode_jpeg, open_frames
from .listen import LOOPBACK_HOSTS, host_name, http_server
from .routing import HttpError, Reply, Request, Route, Router, parse_path
from .sizes import ROUTES as SIZE_ROUTES
from .uploads import Job, JobManager, JobRunner, UploadRejected, check_video_file

STATIC_DIR = Path(__file__).resolve().parent / "static"
STATIC_TYPES = {".html": "text/html; charset=utf-8", ".js": "text/javascript; charset=utf-8",
                ".css": "text/css; charset=utf-8", ".svg": "image/svg+xml", ".png": "image/png",
                ".ico": "image/x-icon"}
CSP = ("default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; "
       "connect-src 'self'; media-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'")
_STATIC_NAME_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-")


def result_file(root: Path, name: str) -> Optional[Path]:
    """:func:`lgrnet.viewer.served_files.result_file`, refusals as HTTP 403."""
    try:
        return served_files.result_file(root, name)
    except served_files.NotServed as exc:
        raise HttpError(403, str(exc)) from None


def open_result_file(path: Path):
    """:func:`lgrnet.viewer.served_files.open_result_file`, refusals as HTTP 403."""
    try:
        return served_files.open_result_file(path)
    except served_files.NotServed as exc:
        raise HttpError(403, str(exc)) from None


def _is_result_file(root: Path, name: str) -> bool:
    try:
        return result_file(root, name) is not None
    except HttpError:
        return False


class _Source:
    """A result's frame source, opened on first use; ``lock`` serialises decoding."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.reader: Optional[FrameSource] = None
        self.status = "unopened"  # ok | overlay | missing
        self.message = ""


def mask_outline(mask: np.ndarray) -> List[List[List[int]]]:
    """Outline of a binary mask (H, W) as polygons of pixel coordinates [[x, y], ...]: outer
    borders and hole borders, pixel centres of the mask's boundary pixels (OpenCV's border following)."""
    import cv2

    contours, _ = cv2.findContours((mask > 0).astype(np.uint8), cv2.RETR_CCOMP, cv2.CHAIN_APPROX_SIMPLE)
    return [c[:, 0, :].tolist() for c in contours]


class ViewerApp:
    """The server's state: result folders, frame cache, upload jobs, access control.

    ``runner``: the upload job runner (see :mod:`lgrnet.viewer.uploads`); None disables uploads,
    with ``upload_disabled_reason`` shown on the page. ``work_dir`` holds uploads and their results
    (a temporary folder, removed by :meth:`close`, when not given). ``auth``: an
    :class:`lgrnet.viewer.auth.Auth` that every request must pass (None: no token, today's loopback page).
    """

    def __init__(self, results: Iterable[Result], *, runner: Optional[JobRunner] = None,
                 upload_disabled_reason: str = "uploads need a model: start with `lgrnet view RESULT_DIR --weights W.safetensors`",
                 work_dir: Optional[Path] = None, max_upload_bytes: int = 500 << 20, cache_bytes: int = 256 << 20,
                 allowed_hosts: Optional[Iterable[str]] = LOOPBACK_HOSTS, verbose: bool = False,
                 auth: Any = None) -> None:
        self.results: Dict[str, Result] = {}
        for r in results:
            self.results[r.id] = r
        self._next_id = len(self.results)
        self._sources: Dict[str, _Source] = {}
        self._lock = threading.Lock()
        self.cache = JpegCache(cache_bytes)
        self.max_upload_bytes = int(max_upload_bytes)
        self.allowed_hosts = None if allowed_hosts is None else frozenset(h.lower() for h in allowed_hosts)
        self.verbose = verbose
        self.auth = auth
        self._own_work_dir = work_dir is None
        self.work_dir = Path(tempfile.mkdtemp(prefix="lgrnet-view-")) if work_dir is None else Path(work_dir)
        self.upload_disabled_reason = "" if runner else upload_disabled_reason
        self.jobs: Optional[JobManager] = None
        if runner is not None:
            (self.work_dir / "uploads").mkdir(parents=True, exist_ok=True)
            self.jobs = JobManager(runner, self.work_dir, self._register_upload)

    # -- results ---------------------------------------------------------------------------
    def result(self, rid: str) -> Result:
        r = self.results.get(rid)
        if r is None:
            raise HttpError(404, f"no result {rid!r}")
        return r

    def _register_upload(self, job: Job, out_dir: Path) -> str:
        with self._lock:
            rid = str(self._next_id)
            self._next_id += 1
        result = load_result(out_dir, rid=rid, name=f"upload: {job.filename}")
        with self._lock:
            self.results[rid] = result
        return rid

    def info(self, reviewer: str = "") -> Dict[str, Any]:
        named = bool(reviewer) and self.auth is not None
        return {"version": __version__, "results": [r.summary() for r in self.results.values()],
                "upload": {"enabled": self.jobs is not None, "reason": self.upload_disabled_reason,
                           "max_bytes": self.max_upload_bytes, "extensions": list(VIDEO_EXTENSIONS)},
                "auth": {"required": self.auth is not None, "reviewer": reviewer if named else None}}

    def _source(self, r: Result) -> _Source:
        with self._lock:
            src = self._sources.setdefault(r.id, _Source())
        if src.status == "unopened":
            with src.lock:
                if src.status == "unopened":
                    self._open_source(r, src)
        return src

    @staticmethod
    def _open_source(r: Result, src: _Source) -> None:
        path = r.source_path()
        problem = "predictions.json records no input" if path is None else ""
        if path is not None:
            try:
                src.reader, src.status = open_frames(path), "ok"
                return
            except (InputError, OSError) as exc:
                problem = str(exc)
        overlay = r.root / "overlay.mp4"
        if _is_result_file(r.root, "overlay.mp4"):
            try:
                src.reader, src.status = open_frames(overlay), "overlay"
                src.message = f"{problem}; showing overlay.mp4 (its outline is drawn in)"
                return
            except (InputError, OSError) as exc:
                problem = f"{problem}; overlay.mp4: {exc}"
        src.status, src.message = "missing", f"{problem}; no frames to show"

    def meta(self, rid: str) -> Dict[str, Any]:
        r = self.result(rid)
        src = self._source(r)
        out = dict(r.meta)
        out.update({"id": r.id, "display_name": r.name, "fps_used": r.fps, "warnings": list(r.warnings),
                    "source_status": src.status, "source_message": src.message,
                    "has_overlay": _is_result_file(r.root, "overlay.mp4"),
                    "has_masks": (r.root / "masks").is_dir()})
        return out

    def frame_jpeg(self, rid: str, index: int) -> bytes:
        r = self.result(rid)
        key = (rid, index)
        data = self.cache.get(key)
        if data is not None:
            return data
        src = self._source(r)
        if src.reader is None:
            raise HttpError(404, src.message)
        known = src.reader.num_frames  # None for videos whose header has no frame count: read() says
        if not 0 <= index < (r.num_frames if known is None else min(r.num_frames, known)):
            raise HttpError(404, f"frame {index} out of range")
        with src.lock:
            try:
                frame = src.reader.read(index)
            except (InputError, OSError, IndexError) as exc:
                raise HttpError(404, str(exc)) from None
        data = encode_jpeg(np.asarray(frame, dtype=np.uint8))
        self.cache.put(key, data)
        return data

    def outline(self, rid: str, index: int) -> Dict[str, Any]:
        from ..io.images import read_mask

        r = self.result(rid)
        if not 0 <= index < r.num_frames:
            raise HttpError(404, f"frame {index} out of range")
        path = r.mask_path(index)
        if result_file(r.root, path.relative_to(r.root).as_posix()) is None:
            return {"index": index, "contours": [], "missing": True}
        try:
            mask = read_mask(path, threshold=127)  # our masks are 0/255
        except InputError as exc:
            raise HttpError(500, f"masks/{path.name}: {str(exc).replace(f'{path}: ', '', 1)}") from None
        return {"index": index, "width": int(mask.shape[1]), "height": int(mask.shape[0]),
                "contours": mask_outline(mask)}

    def masks_zip(self, rid: str):
        """A temporary file (rewound) holding masks/*.png of the result."""
        r = self.result(rid)
        masks = r.root / "masks"
        if not masks.is_dir():
            raise HttpError(404, "this result has no masks/ folder")
        tmp = tempfile.SpooledTemporaryFile(max_size=64 << 20, dir=self.work_dir)
        with zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_STORED) as zf:
            for i in range(r.num_frames):
                p = r.mask_path(i)
                if _is_result_file(r.root, p.relative_to(r.root).as_posix()):  # no symlink targets
                    with open_result_file(p) as src, zf.open(f"masks/{p.name}", "w") as dst:
                        shutil.copyfileobj(src, dst, 1 << 20)
        tmp.seek(0)
        return tmp

    # -- uploads ---------------------------------------------------------------------------
    def accept_upload(self, filename: str, body, length: int) -> Job:
        if self.jobs is None:
            raise HttpError(503, self.upload_disabled_reason)
        ext = os.path.splitext(filename)[1].lower()
        if ext not in VIDEO_EXTENSIONS:
            raise HttpError(415, f"{filename}: not a video file name (expected one of {' '.join(VIDEO_EXTENSIONS)})")
        if length > self.max_upload_bytes:
            raise HttpError(413, f"{filename}: {length / 2**20:.1f} MiB is over the upload limit of "
                                 f"{self.max_upload_bytes / 2**20:.0f} MiB")
        fd, tmp_name = tempfile.mkstemp(suffix=ext, prefix="upload-", dir=self.work_dir / "uploads")
        tmp = Path(tmp_name)
        try:
            with os.fdopen(fd, "wb") as f:
                left = length
                while left > 0:
                    chunk = body.read(min(left, 1 << 20))
                    if not chunk:
                        raise HttpError(400, f"{filename}: upload ended early ({length - left} of {length} bytes)")
                    f.write(chunk)
                    left -= len(chunk)
            os.chmod(tmp, 0o600)
            try:
                check_video_file(tmp, display_name=filename)
                return self.jobs.submit(tmp, filename)
            except UploadRejected as exc:
                raise HttpError(415 if "waiting" not in str(exc) else 429, str(exc)) from None
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise

    def close(self) -> None:
        if self.jobs is not None:
            self.jobs.close()
        for src in self._sources.values():
            if src.reader is not None:
                try:
                    src.reader.close()
                except Exception:
                    pass
        if self._own_work_dir:
            shutil.rmtree(self.work_dir, ignore_errors=True)


# -- the routes ------------------------------------------------------------------------------

def _static_reply(name: str) -> Reply:
    stem, ext = os.path.splitext(name)
    if not stem or len(stem) > 64 or not set(stem) <= _STATIC_NAME_CHARS or ext not in STATIC_TYPES:
        raise HttpError(404, "not found")
    path = (STATIC_DIR / name).resolve()
    if path.parent != STATIC_DIR or not path.is_file():
        raise HttpError(404, "not found")
    return Reply(200, path.read_bytes(), STATIC_TYPES[ext], {"Cache-Control": "no-cache"})


def _page(req: Request) -> Reply:
    return _static_reply("index.html")


def _static(req: Request) -> Reply:
    return _static_reply(req.params["name"])


def _info(req: Request) -> Reply:
    return Reply.json(req.app.info(req.reviewer))


def _job(req: Request) -> Reply:
    jid = req.params["jid"]
    job = req.app.jobs.get(jid) if req.app.jobs is not None else None
    if job is None:
        raise HttpError(404, f"no job {jid!r}")
    return Reply.json(job.to_dict())


def _meta(req: Request) -> Reply:
    return Reply.json(req.app.meta(req.params["rid"]))


_CACHED = {"Cache-Control": "private, max-age=3600"}


def _frame(req: Request) -> Reply:
    return Reply(200, req.app.frame_jpeg(req.params["rid"], req.params["index"]), "image/jpeg", dict(_CACHED))


def _outline(req: Request) -> Reply:
    return Reply.json(req.app.outline(req.params["rid"], req.params["index"]), headers=dict(_CACHED))


def _masks_zip(req: Request) -> Reply:
    r = req.app.result(req.params["rid"])
    return Reply.attachment(req.app.masks_zip(r.id), "application/zip", f"{safe_filename(r.name)}_masks.zip")


def _csv(req: Request) -> Reply:
    r = req.app.result(req.params["rid"])
    csv_path = result_file(r.root, "predictions.csv")  # None: rebuilt from predictions.json
    if csv_path is not None:
        with open_result_file(csv_path) as f:
            body = f.read()
    else:
        body = r.csv_bytes()
    return Reply.attachment(body, "text/csv; charset=utf-8", f"{safe_filename(r.name)}_predictions.csv")


def _overlay(req: Request) -> Reply:
    r = req.app.result(req.params["rid"])
    p = result_file(r.root, "overlay.mp4")
    if p is None:
        raise HttpError(404, "this result has no overlay.mp4")
    return Reply.attachment(open_result_file(p), "video/mp4", f"{safe_filename(r.name)}_overlay.mp4")


def _upload(req: Request) -> Reply:
    length_header = req.headers.get("Content-Length")
    if length_header is None or not length_header.isdigit():
        raise HttpError(411, "the upload needs a Content-Length")
    filename = os.path.basename(unquote(req.headers.get("X-Filename") or "upload.mp4").replace("\\", "/"))
    filename = safe_filename(filename, default="upload.mp4")
    job = req.app.accept_upload(filename, req.body, int(length_header))
    return Reply.json(job.to_dict(), status=202)


#: The route table: every request the page answers.
ROUTES: List[Route] = [
    Route("GET", "/", _page),
    Route("GET", "/index.html", _page),
    Route("GET", "/static/<name>", _static),
    Route("GET", "/api/info", _info),
    Route("GET", "/api/jobs/<jid>", _job),
    Route("POST", "/api/upload", _upload),
    Route("GET", "/api/results/<rid>", _meta),
    Route("GET", "/api/results/<rid>/frames/<index:int>.jpg", _frame),
    Route("GET", "/api/results/<rid>/outlines/<index:int>.json", _outline),
    Route("GET", "/api/results/<rid>/masks.zip", _masks_zip),
    Route("GET", "/api/results/<rid>/predictions.csv", _csv),
    Route("GET", "/api/results/<rid>/overlay.mp4", _overlay),
    *CORRECTION_ROUTES,
    *SIZE_ROUTES,
]
ROUTER = Router(ROUTES)


class ViewerHandler(BaseHTTPRequestHandler):
    server_version = f"lgrnet-view/{__version__}"
    app: ViewerApp  # set on the subclass made by make_server

    # -- plumbing --------------------------------------------------------------------------
    def _redact(self, text: str) -> str:
        auth = self.app.auth
        return auth.redact(text) if auth is not None else text

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - base class signature
        if self.app.verbose:
            sys.stderr.write(self._redact(f"{self.address_string()} - - [{self.log_date_time_string()}] "
                                          f"{format % args}") + "\n")

    def log_error(self, format: str, *args: Any) -> None:  # noqa: A002
        sys.stderr.write(self._redact(f"lgrnet view: {format % args}")[:300] + "\n")

    def log_request(self, code: Any = "-", size: Any = "-") -> None:
        status = code.value if hasattr(code, "value") else code
        if self.app.verbose or (isinstance(status, int) and status >= 400):
            path = urlsplit(self.path).path[:200]  # never the query: it may hold the access token
            sys.stderr.write(self._redact(f"lgrnet view: {self.command} {path} -> {int(status)}") + "\n")

    def _send(self, reply: Reply) -> None:
        body = reply.body
        try:
            if isinstance(body, (bytes, bytearray)):
                length = len(body)
            else:
                body.seek(0, os.SEEK_END)
                length = body.tell()
                body.seek(0)
            self.send_response(reply.status)
            self.send_header("Content-Type", reply.ctype)
            self.send_header("Content-Length", str(length))
            self.send_header("X-Content-Type-Options", "nosniff")
            self.send_header("Referrer-Policy", "no-referrer")
            self.send_header("Content-Security-Policy", CSP)
            self.send_header("Cross-Origin-Resource-Policy", "same-origin")
            for k, v in reply.headers.items():
                self.send_header(k, v)
            self.end_headers()
            if self.command != "HEAD":
                if isinstance(body, (bytes, bytearray)):
                    self.wfile.write(body)
                else:
                    shutil.copyfileobj(body, self.wfile, 1 << 20)
        finally:
            if not isinstance(body, (bytes, bytearray)):
                body.close()

    def _check_host(self) -> None:
        allowed = self.app.allowed_hosts
        if allowed is None:
            return
        if host_name(self.headers.get("Host")) not in allowed:
            raise HttpError(403, "this server only answers requests to localhost")

    def _check_origin(self) -> None:
        origin = self.headers.get("Origin")
        if origin is None:
            return
        if urlsplit(origin).netloc.lower() != (self.headers.get("Host") or "").strip().lower():
            raise HttpError(403, "cross-origin request refused")

    def _answer(self) -> Reply:
        """The reply to this request: host, access, origin checks, then the route table."""
        self._check_host()
        reviewer = ""
        if self.app.auth is not None:
            decision = self.app.auth.check(self.command, self.path, self.headers)
            if decision.reply is not None:  # refused, or the token moves into a cookie (redirect)
                return Reply(decision.reply.status, decision.reply.body, decision.reply.ctype,
                             dict(decision.reply.headers), close=self.command not in ("GET", "HEAD"))
            reviewer = decision.reviewer
        path = parse_path(self.path)
        if self.command in ("PUT", "POST"):
            self._check_origin()
        handler, params = ROUTER.match(self.command, path)
        name = unquote(self.headers.get("X-Reviewer") or "") if not reviewer else reviewer
        return handler(Request(self.app, "GET" if self.command == "HEAD" else self.command, params, self.headers,
                               self.rfile, reviewer=clean_reviewer(name)))

    def _handle(self) -> None:
        try:
            try:
                reply = self._answer()
            except HttpError as exc:
                reply = exc.reply()
            except PermissionError as exc:  # a result folder we may not write to
                reply = Reply.json({"error": f"cannot write {exc.filename or 'the file'}: {exc.strerror}"}, 403)
            if self.command in ("PUT", "POST") and (reply.status >= 400 or reply.close):
                self.close_connection = True  # the request body may be partly unread
            self._send(reply)
        except (BrokenPipeError, ConnectionResetError):
            pass
        except Exception as exc:  # a bug: keep serving, tell the page and the terminal
            import traceback

            traceback.print_exc(file=sys.stderr)
            self.close_connection = True
            try:
                self._send(Reply.json({"error": f"internal error: {type(exc).__name__}: {exc}"}, 500))
            except OSError:
                pass

    do_GET = do_HEAD = do_POST = do_PUT = _handle  # noqa: N815 - http.server naming


def clean_reviewer(name: str) -> str:
    """A reviewer's name as the page sends it: printable, one line, at most 64 characters ("" if none)."""
    name = " ".join("".join(c for c in name if c.isprintable()).split())
    return name[:64]


def make_server(app: ViewerApp, host: str = "127.0.0.1", port: int = 0, ssl_context=None) -> ThreadingHTTPServer:
    """A threaded HTTP server for ``app`` (port 0: any free port; see ``server.server_address``).
    ``ssl_context``: serve HTTPS (the TLS handshake runs in each connection's thread)."""
    return http_server(type("BoundViewerHandler", (ViewerHandler,), {"app": app}), host, port, ssl_context)


def serve_in_thread(app: ViewerApp, host: str = "127.0.0.1", port: int = 0,
                    ssl_context=None) -> Tuple[ThreadingHTTPServer, threading.Thread]:
    """Start a server in a daemon thread (tests, notebooks). Stop with ``server.shutdown()``."""
    server = make_server(app, host, port, ssl_context=ssl_context)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True)
    thread.start()
    return server, thread


__all__ = ["ROUTES", "ViewerApp", "make_server", "serve_in_thread", "mask_outline", "find_results", "load_result",
           "HttpError", "clean_reviewer"]
