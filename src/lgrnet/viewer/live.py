"""The live page of ``lgrnet live``: the newest processed frame with the lesion outline, its score,
latency, frames per second and dropped frames, and the run's state (running, ended, failed).

Standard library only (``http.server.ThreadingHTTPServer``), GET only::

    GET /                      the page (static/live.html)
    GET /static/<file>         live.js, live.css and the review page's style.css
    GET /api/live/status       {"state", "message", "source", "frame", "source_index", "score", "latency_ms",
                                "processed", "dropped", "latency_p50_ms", "latency_p99_ms", "fps", ...}
    GET /api/live/frame.jpg    the newest processed frame with its outline and score (JPEG)

The page polls the status and loads the frame whenever a new one is ready, so JPEGs are encoded
only as fast as the browser takes them, never in the model's thread. The run publishes into a
:class:`LiveState` (thread-safe). Bound to 127.0.0.1 by default; requests whose Host header is not
a loopback name are then refused (DNS rebinding). Access control: a handler's ``auth`` (an object
with ``check(method, target, headers)`` returning a decision whose ``reply`` is None or the refusal,
as :class:`lgrnet.viewer.auth.Auth`) is asked before every request; :func:`make_live_server`
takes it.
"""
from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Dict, Optional, Tuple
from urllib.parse import urlsplit

from ..results.writers import draw_overlay
from .frames import encode_jpeg

STATIC_DIR = Path(__file__).resolve().parent / "static"
STATIC_FILES = {"live.html": "text/html; charset=utf-8", "live.js": "text/javascript; charset=utf-8",
                "live.css": "text/css; charset=utf-8", "style.css": "text/css; charset=utf-8"}
LOOPBACK_HOSTS = frozenset({"127.0.0.1", "localhost", "::1"})
CSP = ("default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' blob:; connect-src 'self'; "
       "frame-ancestors 'none'; base-uri 'none'; form-action 'none'")
STATES = ("starting", "running", "ended", "failed", "stopped")


class LiveState:
    """What the page shows, updated by the live run (any thread) and read by the server's threads.

    ``publish(lp, stats)``: a processed frame (:class:`~lgrnet.inference.realtime.LivePrediction`)
    and the run's :meth:`~lgrnet.inference.realtime.LatencyStats.summary`; ``finish(state,
    message)``: "ended" (the source ended), "failed" (it could not be read: ``message`` says why)
    or "stopped" (Ctrl-C)."""

    def __init__(self, source: str, settings: Optional[Dict[str, Any]] = None):
        self._lock = threading.Lock()
        self._status: Dict[str, Any] = {"state": "starting", "message": "", "source": source, "frame": None,
                                        "settings": settings or {}, "processed": 0, "dropped": 0}
        self._latest = None  # the newest FramePrediction
        self._jpeg: Tuple[Optional[int], bytes] = (None, b"")

    def publish(self, lp, stats: Dict[str, Any]) -> None:
        fp = lp.prediction
        with self._lock:
            self._latest = fp
            self._status.update(stats)
            self._status.update(state="running", frame=fp.index, source_index=lp.source_index,
                                score=round(float(fp.score), 4), area=fp.area,
                                latency_ms=round(lp.latency * 1000, 1), updated=time.time())

    def finish(self, state: str, message: str = "") -> None:
        if state not in STATES:
            raise ValueError(state)
        with self._lock:
            self._status.update(state=state, message=message)

    def status(self) -> Dict[str, Any]:
        with self._lock:
            return dict(self._status)

    def frame_jpeg(self) -> Optional[bytes]:
        """The newest frame with its outline, as JPEG (encoded once per frame); None before the first."""
        with self._lock:
            fp, (index, data) = self._latest, self._jpeg
        if fp is None:
            return None
        if index != fp.index:
            data = encode_jpeg(draw_overlay(fp.frame, fp.mask, fp.score, label=f"#{fp.name}"))
            with self._lock:
                self._jpeg = (fp.index, data)
        return data


class LiveHandler(BaseHTTPRequestHandler):
    """The live page's requests (see the module documentation). Set on a subclass (made by
    :func:`make_live_server`): ``state`` (:class:`LiveState`), ``loopback_only`` (refuse a Host
    header that is not a loopback name), ``auth`` (None, or an access check; see the module
    documentation)."""

    state: LiveState
    loopback_only = True
    auth: Any = None
    server_version = "lgrnet-live"

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - quiet: the terminal shows the run
        pass

    def _send(self, status: int, body: bytes, ctype: str, headers: Optional[Dict[str, str]] = None) -> None:
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        self.send_header("X-Content-Type-Options", "nosniff")
        self.send_header("Content-Security-Policy", CSP)
        self.send_header("Referrer-Policy", "no-referrer")
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _error(self, status: int, message: str) -> None:
        self._send(status, json.dumps({"error": message}).encode(), "application/json")

    def _host_ok(self) -> bool:
        host = (self.headers.get("Host") or "").strip()
        name = host.rsplit(":", 1)[0] if not host.startswith("[") else host[1:].split("]", 1)[0]
        return name.lower() in LOOPBACK_HOSTS

    def do_GET(self) -> None:  # noqa: N802 - http.server's name
        if self.loopback_only and not self._host_ok():
            return self._error(403, "this page answers only to a loopback host name (127.0.0.1, localhost)")
        if self.auth is not None:
            decision = self.auth.check(self.command, self.path, self.headers)
            reply = getattr(decision, "reply", None)
            if reply is not None:
                return self._send(reply.status, reply.body, reply.ctype, dict(reply.headers))
        path = urlsplit(self.path).path
        if path in ("/", "/live", "/index.html"):
            return self._static("live.html")
        if path.startswith("/static/"):
            return self._static(path[len("/static/"):])
        if path == "/api/live/status":
            return self._send(200, json.dumps(self.state.status(), allow_nan=False).encode(), "application/json")
        if path == "/api/live/frame.jpg":
            data = self.state.frame_jpeg()
            if data is None:
                return self._error(404, "no frame processed yet")
            return self._send(200, data, "image/jpeg")
        return self._error(404, "not found")

    do_HEAD = do_GET

    def _static(self, name: str) -> None:
        ctype = STATIC_FILES.get(name)
        if ctype is None:
            return self._error(404, "not found")
        self._send(200, (STATIC_DIR / name).read_bytes(), ctype)


def make_live_server(state: LiveState, host: str = "127.0.0.1", port: int = 0, auth: Any = None,
                     handler: type = LiveHandler) -> ThreadingHTTPServer:
    """A server for ``state``'s page on ``host:port`` (port 0: a free one; see ``server_address``).
    ``auth``: an access check for every request (see the module documentation); ``handler``: a
    subclass of :class:`LiveHandler` to serve with (to add routes or wrap the answers)."""
    cls = type("BoundLiveHandler", (handler,), {"state": state, "auth": auth,
                                                "loopback_only": host in LOOPBACK_HOSTS})
    server = ThreadingHTTPServer((host, port), cls)
    server.daemon_threads = True
    return server


def serve_live(state: LiveState, host: str = "127.0.0.1", port: int = 0, auth: Any = None) -> Tuple[ThreadingHTTPServer, str]:
    """Start :func:`make_live_server` in a daemon thread -> (server, the page's URL). Stop it with
    ``server.shutdown()``."""
    server = make_live_server(state, host, port, auth=auth)
    threading.Thread(target=server.serve_forever, name="lgrnet-live-server", daemon=True).start()
    h, p = server.server_address[:2]
    shown = f"[{h}]" if ":" in h else h
    return server, f"http://{shown}:{p}/"
