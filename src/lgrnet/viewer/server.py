"""The review page's HTTP server (standard library only: ``http.server.ThreadingHTTPServer``).

Routes (every name in a URL is looked up, never joined to a path; anything else is 400/404)::

    GET  /                                   the page (static/index.html)
    GET  /static/<file>                      the page's scripts and styles
    GET  /api/info                           results, upload status
    GET  /api/results/<rid>                  predictions.json of a result, plus viewer fields
    GET  /api/results/<rid>/frames/<i>.jpg   frame i of the result's source, as JPEG
    GET  /api/results/<rid>/outlines/<i>.json  mask i's outline: {"contours": [[[x, y], ...], ...]}
    GET  /api/results/<rid>/masks.zip        all masks, zipped
    GET  /api/results/<rid>/predictions.csv  the per-frame table
    GET  /api/results/<rid>/overlay.mp4      the overlay video
    POST /api/upload                         body: the video's bytes; header X-Filename
    GET  /api/jobs/<jid>                     an upload's progress
    .../api/results/<rid>/corrections...     a reviewer's masks and frame states (GET, PUT, POST):
                                             :mod:`lgrnet.viewer.corrections`, through :data:`ROUTES`

Bound to 127.0.0.1 by default; then requests whose Host header is not a loopback name are refused
(DNS rebinding), and a POST or PUT must come from the page's own origin.
"""
from __future__ import annotations

import json
import os
import re
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
from ..io.source import FrameSource
from ..io.video_file import VIDEO_EXTENSIONS  # uploads: the names `lgrnet predict` takes
from . import served_files
from .corrections import ROUTES as CORRECTION_ROUTES
from .frames import JpegCache, encode_jpeg, open_frames
from ..results.folder import Result, find_results, load_result, safe_filename
from .uploads import Job, JobManager, JobRunner, UploadRejected, check_video_file

STATIC_DIR = Path(__file__).resolve().parent / "static"
STATIC_TYPES = {".html": "text/html; charset=utf-8", ".js": "text/javascript; charset=utf-8",
                ".css": "text/css; charset=utf-8", ".svg": "image/svg+xml", ".png": "image/png",
                ".ico": "image/x-icon"}
LOOPBACK_HOSTS = frozenset({"127.0.0.1", "localhost", "::1"})
CSP = ("default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; "
       "connect-src 'self'; media-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'")
_INDEX_RE = re.compile(r"^(\d{1,9})\.(jpg|json)$")
_NAME_RE = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
#: Route table hook: routes of other modules, tried before the built-in ones. Each is
#: ``route(app, method, segments, headers, body) -> Reply | None`` (None: not its path).
ROUTES = list(CORRECTION_ROUTES)


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


class HttpError(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


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
    """The server's state: result folders, frame cache, upload jobs.

    ``runner``: the upload job runner (see :mod:`lgrnet.viewer.uploads`); None disables uploads,
    with ``upload_disabled_reason`` shown on the page. ``work_dir`` holds uploads and their results
    (a temporary folder, removed by :meth:`close`, when not given).
    """

    def __init__(self, results: Iterable[Result], *, runner: Optional[JobRunner] = None,
                 upload_disabled_reason: str = "uploads need a model: start with `lgrnet view RESULT_DIR --weights W.safetensors`",
                 work_dir: Optional[Path] = None, max_upload_bytes: int = 500 << 20, cache_bytes: int = 256 << 20,
                 allowed_hosts: Optional[Iterable[str]] = LOOPBACK_HOSTS, verbose: bool = False) -> None:
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

    def info(self) -> Dict[str, Any]:
        return {"version": __version__, "results": [r.summary() for r in self.results.values()],
                "upload": {"enabled": self.jobs is not None, "reason": self.upload_disabled_reason,
                           "max_bytes": self.max_upload_bytes, "extensions": list(VIDEO_EXTENSIONS)}}

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


def _parse_path(raw: str) -> List[str]:
    """URL path -> decoded segments. Rejects (400) dot segments, encoded slashes, backslashes, NULs."""
    path = urlsplit(raw).path
    if not path.startswith("/"):
        raise HttpError(400, "bad path")
    parts = path.split("/")[1:]
    out = []
    for seg in parts:
        try:
            dec = unquote(seg, errors="strict") if "%" in seg else seg
        except UnicodeDecodeError:
            raise HttpError(400, "bad path") from None
        if dec in (".", "..") or any(c in dec for c in ("/", "\\", "\x00")):
            raise HttpError(400, "bad path")
        out.append(dec)
    if len(out) > 1 and out[-1] == "":
        out.pop()  # trailing slash
    return out


class ViewerHandler(BaseHTTPRequestHandler):
    server_version = f"lgrnet-view/{__version__}"
    app: ViewerApp  # set on the subclass made by make_server

    # -- plumbing --------------------------------------------------------------------------
    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - base class signature
        if self.app.verbose:
            super().log_message(format, *args)

    def log_request(self, code: Any = "-", size: Any = "-") -> None:
        if self.app.verbose or (isinstance(code, int) and code >= 400) or (hasattr(code, "value") and code.value >= 400):
            sys.stderr.write(f"lgrnet view: {self.command} {self.path[:200]} -> {int(code)}\n")

    def _headers(self, status: int, ctype: str, length: int, extra: Optional[Dict[str, str]] = None) -> None:
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(length))
        self.send_header("X-Content-Type-Options", "nosniff")
        self.send_header("Referrer-Policy", "no-referrer")
        self.send_header("Content-Security-Policy", CSP)
        self.send_header("Cross-Origin-Resource-Policy", "same-origin")
        for k, v in (extra or {}).items():
            self.send_header(k, v)
        self.end_headers()

    def _send(self, status: int, body: bytes, ctype: str, extra: Optional[Dict[str, str]] = None) -> None:
        self._headers(status, ctype, len(body), extra)
        if self.command != "HEAD":
            self.wfile.write(body)

    def _json(self, obj: Any, status: int = 200, extra: Optional[Dict[str, str]] = None) -> None:
        extra = {"Cache-Control": "no-store", **(extra or {})}
        self._send(status, json.dumps(obj, allow_nan=False).encode("utf-8"), "application/json", extra)

    def _send_file(self, f, ctype: str, filename: str) -> None:
        f.seek(0, os.SEEK_END)
        size = f.tell()
        f.seek(0)
        self._headers(200, ctype, size, {"Content-Disposition": f'attachment; filename="{filename}"',
                                         "Cache-Control": "no-store"})
        if self.command != "HEAD":
            shutil.copyfileobj(f, self.wfile, 1 << 20)

    def _check_host(self) -> None:
        allowed = self.app.allowed_hosts
        if allowed is None:
            return
        host = (self.headers.get("Host") or "").strip().lower()
        name = host[1:].split("]")[0] if host.startswith("[") else host.rsplit(":", 1)[0] if ":" in host else host
        if name not in allowed:
            raise HttpError(403, "this server only answers requests to localhost")

    def _check_origin(self) -> None:
        origin = self.headers.get("Origin")
        if origin is None:
            return
        if urlsplit(origin).netloc.lower() != (self.headers.get("Host") or "").strip().lower():
            raise HttpError(403, "cross-origin request refused")

    def _handle(self, fn) -> None:
        try:
            self._check_host()
            fn(_parse_path(self.path))
        except HttpError as exc:
            self._json({"error": exc.message}, status=exc.status)
        except (BrokenPipeError, ConnectionResetError):
            pass
        except Exception as exc:  # a bug: keep serving, tell the page and the terminal
            import traceback

            traceback.print_exc(file=sys.stderr)
            try:
                self._json({"error": f"internal error: {type(exc).__name__}: {exc}"}, status=500)
            except OSError:
                pass

    def do_GET(self) -> None:  # noqa: N802 - http.server naming
        self._handle(self._get)

    def do_HEAD(self) -> None:  # noqa: N802
        self._handle(self._get)

    def do_POST(self) -> None:  # noqa: N802
        self._handle(self._post)

    def do_PUT(self) -> None:  # noqa: N802
        self._handle(self._put)

    def _routed(self, seg: List[str]) -> bool:
        """Answer from :data:`ROUTES`; False when no route there takes this path."""
        method = "GET" if self.command == "HEAD" else self.command
        for route in ROUTES:
            try:
                reply = route(self.app, method, seg, self.headers, self.rfile)
            except BaseException:
                self.close_connection = method != "GET"  # the body may be partly unread
                raise
            if reply is not None:
                self.close_connection = self.close_connection or reply.close
                self._send(reply.status, reply.body, reply.ctype, reply.headers)
                return True
        return False

    def _put(self, seg: List[str]) -> None:
        try:
            self._check_origin()
        except HttpError:
            self.close_connection = True  # the body is unread
            raise
        if not self._routed(seg):
            self.close_connection = True
            raise HttpError(404, "not found")

    # -- routes ----------------------------------------------------------------------------
    def _get(self, seg: List[str]) -> None:
        app = self.app
        if self._routed(seg):
            return
        if seg in ([""], ["index.html"]):
            return self._static("index.html")
        if len(seg) == 2 and seg[0] == "static":
            return self._static(seg[1])
        if seg[:1] != ["api"] or len(seg) < 2:
            raise HttpError(404, "not found")
        if seg[1:] == ["info"]:
            return self._json(app.info())
        if len(seg) == 3 and seg[1] == "jobs":
            job = app.jobs.get(seg[2]) if app.jobs is not None else None
            if job is None:
                raise HttpError(404, f"no job {seg[2]!r}")
            return self._json(job.to_dict())
        if seg[1] != "results" or len(seg) < 3:
            raise HttpError(404, "not found")
        rid = seg[2]
        if len(seg) == 3:
            return self._json(app.meta(rid))
        r = app.result(rid)
        if len(seg) == 5 and seg[3] in ("frames", "outlines"):
            m = _INDEX_RE.match(seg[4])
            if not m or (seg[3] == "frames") != (m.group(2) == "jpg"):
                raise HttpError(404, "not found")
            index = int(m.group(1))
            if seg[3] == "frames":
                return self._send(200, app.frame_jpeg(rid, index), "image/jpeg", {"Cache-Control": "private, max-age=3600"})
            return self._json(app.outline(rid, index), extra={"Cache-Control": "private, max-age=3600"})
        if len(seg) == 4 and seg[3] == "masks.zip":
            with app.masks_zip(rid) as f:
                return self._send_file(f, "application/zip", f"{safe_filename(r.name)}_masks.zip")
        if len(seg) == 4 and seg[3] == "predictions.csv":
            csv_path = result_file(r.root, "predictions.csv")  # None: rebuilt from predictions.json
            if csv_path is not None:
                with open_result_file(csv_path) as f:
                    body = f.read()
            else:
                body = r.csv_bytes()
            return self._send(200, body, "text/csv; charset=utf-8",
                              {"Content-Disposition": f'attachment; filename="{safe_filename(r.name)}_predictions.csv"',
                               "Cache-Control": "no-store"})
        if len(seg) == 4 and seg[3] == "overlay.mp4":
            p = result_file(r.root, "overlay.mp4")
            if p is None:
                raise HttpError(404, "this result has no overlay.mp4")
            with open_result_file(p) as f:
                return self._send_file(f, "video/mp4", f"{safe_filename(r.name)}_overlay.mp4")
        raise HttpError(404, "not found")

    def _static(self, name: str) -> None:
        stem, ext = os.path.splitext(name)
        if not _NAME_RE.match(stem) or ext not in STATIC_TYPES:
            raise HttpError(404, "not found")
        path = (STATIC_DIR / name).resolve()
        if path.parent != STATIC_DIR or not path.is_file():
            raise HttpError(404, "not found")
        self._send(200, path.read_bytes(), STATIC_TYPES[ext], {"Cache-Control": "no-cache"})

    def _post(self, seg: List[str]) -> None:
        self._check_origin()
        if self._routed(seg):
            return
        if seg != ["api", "upload"]:
            raise HttpError(404, "not found")
        length_header = self.headers.get("Content-Length")
        if length_header is None or not length_header.isdigit():
            raise HttpError(411, "the upload needs a Content-Length")
        length = int(length_header)
        filename = os.path.basename(unquote(self.headers.get("X-Filename") or "upload.mp4").replace("\\", "/"))
        filename = safe_filename(filename, default="upload.mp4")
        try:
            job = self.app.accept_upload(filename, self.rfile, length)
        except HttpError:
            self.close_connection = True  # the body may be partly unread
            raise
        self._json(job.to_dict(), status=202)


def make_server(app: ViewerApp, host: str = "127.0.0.1", port: int = 0) -> ThreadingHTTPServer:
    """A threaded HTTP server for ``app`` (port 0: any free port; see ``server.server_address``)."""
    handler = type("BoundViewerHandler", (ViewerHandler,), {"app": app})
    import socket

    cls = ThreadingHTTPServer
    if ":" in host:
        cls = type("ThreadingHTTPServerV6", (ThreadingHTTPServer,), {"address_family": socket.AF_INET6})
    server = cls((host, port), handler)
    server.daemon_threads = True
    return server


def serve_in_thread(app: ViewerApp, host: str = "127.0.0.1", port: int = 0) -> Tuple[ThreadingHTTPServer, threading.Thread]:
    """Start a server in a daemon thread (tests, notebooks). Stop with ``server.shutdown()``."""
    server = make_server(app, host, port)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True)
    thread.start()
    return server, thread


__all__ = ["ViewerApp", "make_server", "serve_in_thread", "mask_outline", "find_results", "load_result", "HttpError"]
