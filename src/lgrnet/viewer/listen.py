"""Where a page listens, shared by the review page (:mod:`lgrnet.viewer.server`) and the live page
(:mod:`lgrnet.viewer.live`): which addresses are loopback, the Host check that goes with loopback
(a page bound to loopback answers only to a loopback host name, so that a web page cannot reach it
through DNS rebinding), the threaded server (IPv4 or IPv6, HTTPS with the handshake in each
connection's thread: :func:`lgrnet.viewer.tls.finish_request_with`) and the address to print.
"""
from __future__ import annotations

import ipaddress
import socket
from http.server import ThreadingHTTPServer
from typing import Any, Dict, Optional

from .tls import finish_request_with

LOOPBACK_HOSTS = frozenset({"127.0.0.1", "localhost", "::1"})
WILDCARD_HOSTS = ("0.0.0.0", "::", "")


def is_loopback(host: str) -> bool:
    """Whether listening on ``host`` serves this machine only (``localhost``, 127.0.0.0/8, ::1)."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def host_name(header: Optional[str]) -> str:
    """The name of a Host header, lower case, without the port: ``[::1]:80`` -> ``::1``."""
    host = (header or "").strip().lower()
    if host.startswith("["):
        return host[1:].split("]")[0]
    return host.rsplit(":", 1)[0] if ":" in host else host


def shown_host(host: str) -> str:
    """The name to print in a page's address: this machine's name for a wildcard address, IPv6 in brackets."""
    if host in WILDCARD_HOSTS:
        host = socket.getfqdn() or socket.gethostname()
    return f"[{host}]" if ":" in host else host


def page_url(host: str, port: int, tls: bool) -> str:
    """``http(s)://HOST:PORT/`` for a server bound to ``host`` (see :func:`shown_host`)."""
    return f"{'https' if tls else 'http'}://{shown_host(host)}:{port}/"


def http_server(handler: type, host: str, port: int, ssl_context=None) -> ThreadingHTTPServer:
    """A threaded server of ``handler`` on ``host:port`` (port 0: any free one; see
    ``server_address``), daemon threads; ``ssl_context`` (kept as ``server.ssl_context``): HTTPS (a client that is not TLS, or never
    finishes the handshake within 30 s, is dropped without an answer)."""
    cls = ThreadingHTTPServer
    attrs: Dict[str, Any] = {}
    if ":" in host:
        attrs["address_family"] = socket.AF_INET6
    if ssl_context is not None:
        attrs["finish_request"] = finish_request_with(ssl_context)
    if attrs:
        cls = type("PageHTTPServer", (ThreadingHTTPServer,), attrs)
    server = cls((host, port), handler)
    server.daemon_threads = True
    server.ssl_context = ssl_context
    return server


__all__ = ["LOOPBACK_HOSTS", "host_name", "http_server", "is_loopback", "page_url", "shown_host"]
