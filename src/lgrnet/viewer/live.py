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
:class:`LiveState` (thread-safe). The same rules as the review page (:mod:`lgrnet.viewer.listen`,
:mod:`lgrnet.viewer.auth`, :mod:`lgrnet.viewer.tls`): bound to 127.0.0.1 by default, and then
requests whose Host header is not a loopback name are refused (DNS rebinding); an access check
(``server.auth``: an object with ``check(method, target, headers)`` returning a decision whose
``reply`` is None or the answer to send instead, as :class:`lgrnet.viewer.auth.Auth`; always set by
``lgrnet live`` beyond loopback) is asked before every request, the Host check aside; HTTPS with an
``ssl_context``. Nothing is written: no route takes a body (a POST or PUT is 501).
"""
from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Dict, Optional, Tuple
from urllib.parse import urlsplit, urlunsplit

from ..results.writers import draw_overlay
from .frames import encode_jpeg
from .listen import LOOPBACK_HOSTS, host_name, http_server, is_loopback, page_url

STATIC_DIR = Path(__file__).resolve().parent / "static"
STATIC_FILES = {"live.html": "text/html; charset=utf-8", "live.js": "text/javascript; charset=utf-8",
                "live.css": "text/css; charset=utf-8", "style.css": "text/css; charset=utf-8"}
#: data: for the page's empty icon (href="data:,"), which the browser would otherwise fetch as /favicon.ico
CSP = ("default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; connect-src 'self'; "
       "frame-ancestors 'none'; base-uri 'none'; form-action 'none'")
STATES = ("starting", "running", "ended", "failed", "stopped")


def without_credentials(source: str) -> str:
    """``source`` as the page shows it: a URL's user name and password (``rtsp://user:pass@host/``)
    replaced by ``***``, since everyone who may open the page sees it."""
    parts = urlsplit(source)
    if "://" not in source or "@" not in parts.netloc:
        return source
    return urlunsplit(parts._replace(netloc="***@" + parts.netloc.rsplit("@", 1)[1]))


class LiveState:
    """What the page shows, updated by the live run (any thread) and read by the server's threads.

    ``publish(lp, stats)``: a processed frame (:class:`~lgrnet.inference.realtime.LivePrediction`)
    and the run's :meth:`~lgrnet.inference.realtime.LatencyStats.summary`; ``finish(state,
    message)``: "ended" (the source ended), "failed" (it could not be read: ``message`` says why)
    or "stopped" (Ctrl-C)."""

    def __init__(self, source: str, settings: Optional[Dict[str, Any]] = None):
        self._lock = threading.Lock()
        self._source = (source, without_credentials(source))  # a failure message names the source: shown without them
        self._status: Dict[str, Any] = {"state": "starting", "message": "", "source": without_credentials(source),
                                        "frame": None, "settings": settings if settings is not None else {},
                                        "processed": 0, "dropped": 0}  # settings: the run's dict, it may add to it
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
            self._status.update(state=state, message=message.replace(*self._source))

    def status(self) -> Dict[str, Any]:
        with self._lock:
            out = dict(self._status)
        settings = dict(out["settings"])
        if isinstance(settings.get("source"), str):
            settings["source"] = without_credentials(settings["source"])
        out["settings"] = settings
        return out

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
    header that is not a loopback name). The access check is the server's ``auth`` (None: none)."""

    state: LiveState
    loopback_only = True
    server_version = "lgrnet-live"

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - quiet: the terminal shows the run
        pass

    def _send(self, status: int, body: bytes, ctype: str, headers: Optional[Dict[str, str]] = None) -> None:
        self.send_response(status)
        fields = {"Content-Type": ctype, "Content-Length": str(len(body)), "Cache-Control": "no-store",
                  "X-Content-Type-Options": "nosniff", "Content-Security-Policy": CSP, "Referrer-Policy": "no-referrer"}
        fields.update(headers or {})  # an access check's answer: its own Location, Set-Cookie, Cache-Control
        for k, v in fields.items():
            self.send_header(k, v)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _error(self, status: int, message: str) -> None:
        self._send(status, json.dumps({"error": message}).encode(), "application/json")

    def do_GET(self) -> None:  # noqa: N802 - http.server's name
        if self.loopback_only and host_name(self.headers.get("Host")) not in LOOPBACK_HOSTS:
            return self._error(403, "this page answers only to a loopback host name (127.0.0.1, localhost)")
        auth = getattr(self.server, "auth", None)
        if auth is not None:
            decision = auth.check(self.command, self.path, self.headers)
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
                     handler: type = LiveHandler, ssl_context=None) -> ThreadingHTTPServer:
    """A server for ``state``'s page on ``host:port`` (port 0: a free one; see ``server_address``),
    not yet serving (:func:`start_live_server`). ``auth``: the access check of every request, also
    settable as ``server.auth`` before serving (``lgrnet live`` makes it once the port is known: the
    cookie's name holds it); ``ssl_context``: HTTPS; ``handler``: a subclass of
    :class:`LiveHandler` to serve with (to add routes or wrap the answers)."""
    cls = type("BoundLiveHandler", (handler,), {"state": state, "loopback_only": is_loopback(host)})
    server = http_server(cls, host, port, ssl_context)
    server.auth = auth
    return server


def start_live_server(server: ThreadingHTTPServer) -> str:
    """Serve ``server`` (:func:`make_live_server`) in a daemon thread -> the page's URL. Stop it with
    ``server.shutdown()``."""
    threading.Thread(target=server.serve_forever, name="lgrnet-live-server", daemon=True).start()
    h, p = server.server_address[:2]
    return page_url(h, p, tls=server.ssl_context is not None)


def serve_live(state: LiveState, host: str = "127.0.0.1", port: int = 0, auth: Any = None,
               ssl_context=None) -> Tuple[ThreadingHTTPServer, str]:
    """:func:`make_live_server` serving in a daemon thread -> (server, the page's URL). Stop it with
    ``server.shutdown()``."""
    server = make_live_server(state, host, port, auth=auth, ssl_context=ssl_context)
    return server, start_live_server(server)
