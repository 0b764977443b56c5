"""Access tokens for the review page (and any page served beside it, such as the live page).

When ``lgrnet view`` or ``lgrnet live`` listens beyond loopback, every request must carry a secret,
as Jupyter does:

- a random token made at start (:func:`generate_token`, 256 bits; printed once, as a URL), or
- tokens the user supplies: the environment variable ``LGRNET_VIEW_TOKEN`` or a token file
  (:func:`load_tokens`), never the command line (other users see it in ``ps``). A token file's
  lines are ``TOKEN`` (the reviewer types a name on the page) or ``NAME ... TOKEN`` (the last
  field is the token, the rest the reviewer's name, recorded with each correction).

A request may carry the token three ways: ``?token=...`` in the URL (a GET: the answer is a
redirect to the same URL without it, setting an ``HttpOnly; SameSite=Strict`` cookie, so the
token leaves the address bar and never goes out in a Referer), the cookie, or an
``Authorization: Bearer ...`` header (scripts). The cookie holds a MAC of the token under a key of
this process, not the token. Tokens are compared as SHA-256 digests (cookies as MACs) with
:func:`hmac.compare_digest` against every known token, whatever matches, so a wrong token costs
the same work as a right one.

Use from any ``http.server`` handler (framework-neutral)::

    auth = Auth(load_tokens(token_file), cookie_name=f"lgrnet_view_{port}", secure=tls)
    decision = auth.check(self.command, self.path, self.headers)
    if decision.reply is not None:      # refused (401), or the token moves into the cookie (303)
        send(decision.reply)            # a routing.Reply: status, body, ctype, headers
    else:
        who = decision.reviewer         # the token's name ("" for an unnamed token)

and pass every log line through :meth:`Auth.redact`.
"""
from __future__ import annotations

import hashlib
import hmac
import html
import os
import re
import secrets
import stat
from dataclasses import dataclass
from http.cookies import CookieError, SimpleCookie
from pathlib import Path
from typing import Dict, List, Mapping, Optional, Tuple
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from ..errors import UserError
from .routing import Reply

TOKEN_ENV = "LGRNET_VIEW_TOKEN"
MIN_TOKEN_CHARS = 12
QUERY_KEY = "token"


def generate_token() -> str:
    """A random token: 32 bytes from the system's CSPRNG, URL-safe base64 (43 characters)."""
    return secrets.token_urlsafe(32)


def _digest(token: str) -> bytes:
    return hashlib.sha256(token.encode("utf-8", "surrogateescape")).digest()


def load_tokens(token_file: Optional[Path] = None, env: Optional[Mapping[str, str]] = None,
                command: str = "lgrnet view") -> Dict[str, str]:
    """Tokens the user supplies, ``{token: reviewer name or ""}``: from ``token_file`` if given, else
    from ``$LGRNET_VIEW_TOKEN``; ``{}`` when neither is set. Bad input is a one-line :class:`UserError`
    naming the file (tokens shorter than 12 characters, two names for one token, an empty file); a
    file other users can read is a warning line starting with ``command``."""
    env = os.environ if env is None else env
    if token_file is not None:
        path = Path(token_file)
        try:
            text = path.read_text(encoding="utf-8")
            mode = path.stat().st_mode
        except (OSError, UnicodeDecodeError) as exc:
            raise UserError(f"{path}: cannot read the token file ({getattr(exc, 'strerror', None) or exc})") from None
        tokens: Dict[str, str] = {}
        for n, line in enumerate(text.splitlines(), 1):
            fields = line.split()
            if not fields or fields[0].startswith("#"):
                continue
            token, name = fields[-1], " ".join(fields[:-1])
            if len(token) < MIN_TOKEN_CHARS:
                raise UserError(f"{path}:{n}: a token needs at least {MIN_TOKEN_CHARS} characters")
            if token in tokens and tokens[token] != name:
                raise UserError(f"{path}:{n}: this token is already given to {tokens[token] or 'an unnamed reviewer'}")
            tokens[token] = name
        if not tokens:
            raise UserError(f"{path}: no token in the file (a line per token: TOKEN, or NAME TOKEN)")
        if mode & (stat.S_IRWXG | stat.S_IRWXO):
            import sys

            print(f"{command}: warning: {path}: other users can read this token file (chmod 600 {path})", file=sys.stderr)
        return tokens
    value = (env.get(TOKEN_ENV) or "").strip()
    if not value:
        return {}
    if len(value) < MIN_TOKEN_CHARS:
        raise UserError(f"${TOKEN_ENV}: a token needs at least {MIN_TOKEN_CHARS} characters")
    return {value: ""}


@dataclass(frozen=True)
class Decision:
    """What :meth:`Auth.check` decided: ``reply`` to send instead of the page (a refusal or the
    redirect that sets the cookie), or None and the ``reviewer`` name bound to the token."""

    reply: Optional[Reply] = None
    reviewer: str = ""


class Auth:
    """The tokens a server accepts (``{token: reviewer name}``), checked on every request."""

    def __init__(self, tokens: Mapping[str, str], *, cookie_name: str = "lgrnet_view", secure: bool = False,
                 command: str = "lgrnet view") -> None:
        if not tokens:
            raise ValueError("Auth needs at least one token")
        self._key = secrets.token_bytes(32)  # cookies of this process only: a restart needs the token again
        self._entries: List[Tuple[bytes, bytes, str]] = [(_digest(t), self._mac(t), name) for t, name in tokens.items()]
        self._secrets = sorted(tokens, key=len, reverse=True)  # for redact() only
        self.cookie_name = cookie_name
        self.secure = secure
        self.command = command  # who printed the address, named in the refusals

    def identify(self, presented: str) -> Optional[str]:
        """The reviewer name of ``presented`` ("" for an unnamed token), or None when it is no token.
        Constant work: one digest and a comparison with every token, whichever (if any) matches."""
        return self._find(_digest(presented), 0)

    def _mac(self, token: str) -> bytes:
        return hmac.new(self._key, _digest(token), hashlib.sha256).digest()

    def _find(self, value: bytes, field: int) -> Optional[str]:
        found: Optional[str] = None
        for entry in self._entries:  # every entry, no early exit
            if hmac.compare_digest(value, entry[field]):
                found = entry[2]
        return found

    def identify_cookie(self, value: str) -> Optional[str]:
        """As :meth:`identify`, for a cookie value (:meth:`cookie` stores a MAC of the token, never the token)."""
        try:
            raw = bytes.fromhex(value) if len(value) == 64 else b""
        except ValueError:
            raw = b""
        return self._find(raw or bytes(32), 1)

    def check(self, method: str, target: str, headers: Mapping[str, str]) -> Decision:
        """Decide on a request (``target``: the raw request path with its query)."""
        parts = urlsplit(target)
        query = parse_qsl(parts.query, keep_blank_values=True)
        in_url = [v for k, v in query if k == QUERY_KEY]
        if in_url:
            name = self.identify(in_url[0])
            if name is None or method not in ("GET", "HEAD"):
                return Decision(self._refuse(parts.path, "the access token in this address is wrong"))
            rest = urlencode([(k, v) for k, v in query if k != QUERY_KEY])
            location = urlunsplit(("", "", "/" + parts.path.lstrip("/"), rest, ""))  # "//host/...": not another site
            return Decision(Reply(303, b"", "text/plain; charset=utf-8",
                                  {"Location": location, "Set-Cookie": self.cookie(in_url[0]), "Cache-Control": "no-store"}))
        auth_header = headers.get("Authorization") or ""
        cookie = self._cookie_value(headers.get("Cookie") or "")
        if auth_header[:7].lower() == "bearer ":
            name = self.identify(auth_header[7:].strip())
        elif cookie is not None:
            name = self.identify_cookie(cookie)
        else:
            return Decision(self._refuse(parts.path, f"this page needs its access token: open the address `{self.command}` "
                                                     "printed (it ends in ?token=...)"))
        if name is None:
            return Decision(self._refuse(parts.path, "the access token is wrong (or the server was restarted with "
                                                     f"another): open the address `{self.command}` printed"))
        return Decision(None, name)

    def cookie(self, token: str) -> str:
        """The Set-Cookie value that stands for ``token`` at this server until it stops: a session cookie
        holding a MAC of the token under a key of this process (never the token itself)."""
        return (f"{self.cookie_name}={self._mac(token).hex()}; Path=/; HttpOnly; SameSite=Strict"
                + ("; Secure" if self.secure else ""))

    def _cookie_value(self, header: str) -> Optional[str]:
        jar = SimpleCookie()
        try:
            jar.load(header)
        except CookieError:
            return None
        morsel = jar.get(self.cookie_name)
        return morsel.value if morsel is not None else None

    def _refuse(self, path: str, message: str) -> Reply:
        if path.startswith("/api/"):
            return Reply.json({"error": message}, 401)
        body = (f"<!doctype html><meta charset=utf-8><title>{html.escape(self.command)}: access token needed</title>"
                f"<p>{html.escape(message)}.</p>").encode("utf-8")
        return Reply(401, body, "text/html; charset=utf-8", {"Cache-Control": "no-store"})

    def redact(self, text: str) -> str:
        """``text`` with every token (and any ``token=...`` query value) replaced by ``[token]``: for log lines."""
        for t in self._secrets:
            text = text.replace(t, "[token]")
        return re.sub(r"(?i)(token=)[^&\s\"']*", r"\1[token]", text)


__all__ = ["Auth", "Decision", "MIN_TOKEN_CHARS", "TOKEN_ENV", "generate_token", "load_tokens"]
