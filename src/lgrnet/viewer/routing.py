"""The review page's HTTP vocabulary: one error type, one reply type and one route table.

A route is a method and a path pattern; the server matches the request's decoded path segments
against the table (:class:`Router`) and calls the route's handler with a :class:`Request`.
Patterns are written like URLs: ``/api/results/<rid>/frames/<index:int>.jpg``; ``<name>`` matches
one path segment (never a ``/``), ``<name:int>`` a frame number (1 to 9 digits, passed as an
``int``). Names in a URL are looked up by the handlers, never joined to a file path.
"""
from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any, BinaryIO, Callable, Dict, List, Mapping, Optional, Sequence, Tuple
from urllib.parse import quote, unquote, urlsplit


class HttpError(Exception):
    """A request answered with an error: ``status``, a one-line ``message`` (the page shows it), and
    optional ``extra`` fields that go into the JSON answer beside ``"error"``."""

    def __init__(self, status: int, message: str, **extra: Any) -> None:
        super().__init__(message)
        self.status, self.message, self.extra = int(status), message, extra

    def reply(self) -> "Reply":
        return Reply.json({"error": self.message, **self.extra}, self.status)


def _no_store() -> Dict[str, str]:
    return {"Cache-Control": "no-store"}


@dataclass
class Reply:
    """What a handler answers. ``body`` is bytes, or a readable binary file sent in chunks (closed
    after sending); ``close``: close the connection afterwards (a request body may be partly unread)."""

    status: int
    body: Any
    ctype: str = "application/json"
    headers: Dict[str, str] = field(default_factory=_no_store)
    close: bool = False

    @classmethod
    def json(cls, obj: Any, status: int = 200, headers: Optional[Dict[str, str]] = None) -> "Reply":
        return cls(status, json.dumps(obj, allow_nan=False).encode("utf-8"), headers={**_no_store(), **(headers or {})})

    @classmethod
    def attachment(cls, body: Any, ctype: str, filename: str) -> "Reply":
        return cls(200, body, ctype, {"Content-Disposition": content_disposition(filename), "Cache-Control": "no-store"})


def content_disposition(filename: str) -> str:
    """``attachment`` with ``filename`` as every browser reads it (RFC 6266): ``filename*`` in UTF-8,
    percent-encoded (the header itself is ASCII), and an ASCII ``filename`` for old clients, where each
    other character is '_'. ``filename`` must already be safe (results.folder.safe_filename)."""
    fallback = "".join(c if " " <= c < "\x7f" and c not in '"\\' else "_" for c in filename)
    if fallback == filename:
        return f'attachment; filename="{filename}"'
    return f"attachment; filename=\"{fallback}\"; filename*=UTF-8''{quote(filename, safe='')}"


@dataclass
class Request:
    """One request as the handlers see it. ``params``: the pattern's values; ``reviewer``: who sends
    it (the name bound to the access token, else the name the page sends; "" when unknown)."""

    app: Any
    method: str
    params: Dict[str, Any]
    headers: Mapping[str, str]
    body: BinaryIO
    reviewer: str = ""

    def read_body(self, limit: int, what: str) -> bytes:
        """The request body, at most ``limit`` bytes (411 without a Content-Length, 413 over it)."""
        length = self.headers.get("Content-Length")
        if length is None or not length.isdigit():
            raise HttpError(411, f"{what} needs a Content-Length")
        n = int(length)
        if n > limit:
            raise HttpError(413, f"{what} is {n} bytes; at most {limit} are accepted here")
        data = self.body.read(n) if n else b""
        if len(data) != n:
            raise HttpError(400, f"{what} ended early ({len(data)} of {n} bytes)")
        return data


Handler = Callable[[Request], Reply]
_PARAM_RE = re.compile(r"<([a-z_]+)(?::(int))?>")


@dataclass(frozen=True)
class Route:
    """``method`` (GET routes answer HEAD too) + ``pattern`` -> ``handler``."""

    method: str
    pattern: str
    handler: Handler

    def compile(self) -> Tuple[re.Pattern, Tuple[Tuple[str, bool], ...]]:
        names: List[Tuple[str, bool]] = []
        out, pos = [], 0
        for m in _PARAM_RE.finditer(self.pattern):
            out.append(re.escape(self.pattern[pos:m.start()]))
            out.append(r"(\d{1,9})" if m.group(2) else r"([^/]+)")
            names.append((m.group(1), m.group(2) == "int"))
            pos = m.end()
        out.append(re.escape(self.pattern[pos:]))
        return re.compile("".join(out) + r"\Z"), tuple(names)


class Router:
    """The route table. :meth:`match` -> (handler, params); 404 for a path no route has, 405 for a
    path some route has with another method."""

    def __init__(self, routes: Sequence[Route]) -> None:
        self.routes = list(routes)
        self._compiled = [(r, *r.compile()) for r in self.routes]

    def match(self, method: str, path: str) -> Tuple[Handler, Dict[str, Any]]:
        method = "GET" if method == "HEAD" else method
        other_method = False
        for route, regex, names in self._compiled:
            m = regex.match(path)
            if m is None:
                continue
            if route.method != method:
                other_method = True
                continue
            return route.handler, {name: int(v) if is_int else v for (name, is_int), v in zip(names, m.groups())}
        if other_method:
            raise HttpError(405, f"{method} not allowed here")
        raise HttpError(404, "not found")


def parse_path(raw: str) -> str:
    """The request target -> its decoded path, ``/a/b`` (a trailing slash dropped). Refuses (400) dot
    segments, encoded slashes, backslashes and NULs, so that one decoded segment is one name."""
    path = urlsplit(raw).path
    if not path.startswith("/"):
        raise HttpError(400, "bad path")
    out = []
    for seg in path.split("/")[1:]:
        try:
            dec = unquote(seg, errors="strict") if "%" in seg else seg
        except UnicodeDecodeError:
            raise HttpError(400, "bad path") from None
        if dec in (".", "..") or any(c in dec for c in ("/", "\\", "\x00")):
            raise HttpError(400, "bad path")
        out.append(dec)
    if len(out) > 1 and out[-1] == "":
        out.pop()  # trailing slash
    return "/" + "/".join(out)


__all__ = ["Handler", "HttpError", "Reply", "Request", "Route", "Router", "parse_path"]
