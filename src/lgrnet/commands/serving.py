"""Serving a page to a team, the same way for `lgrnet view` and `lgrnet live`: the options
(``--host``, ``--port``, ``--token-file``, ``--require-token``, ``--tls``, ``--certfile``,
``--keyfile``) and what they decide (:class:`PageAccess`):

- on loopback (the default) no token, as before, unless ``--require-token`` or ``--token-file``;
  requests whose Host header is not a loopback name are refused (DNS rebinding);
- on any other address every request needs a token (:mod:`lgrnet.viewer.auth`): those of
  ``--token-file``, else ``$LGRNET_VIEW_TOKEN``, else a random one made at start and shown once, in
  the printed address (the only place it is shown);
- HTTPS with the user's certificate (checked before anything slow) or a self-signed one made for
  the session (:mod:`lgrnet.viewer.tls`), whose fingerprint is printed; beyond loopback without TLS
  a warning says that the token crosses the network in clear.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any, Dict, Optional, Tuple

from ..errors import UserError


def add_serving_arguments(p: argparse.ArgumentParser, default_port: int, page: str = "the page") -> None:
    """The options of a command that serves a page (``page`` names it in the help)."""
    p.add_argument("--port", type=int, default=default_port,
                   help=f"{page}'s port (default {default_port}; 0: any free port)")
    p.add_argument("--host", default="127.0.0.1",
                   help=f"address {page} listens on (default 127.0.0.1: this machine only). Anything else serves "
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


class PageAccess:
    """Who may open a command's page, and over what: built from the parsed options before anything
    slow (a bad token file or certificate is one line, exit 2), then :meth:`start` (makes the
    session certificate for ``--tls``), :meth:`auth` once the port is known, :meth:`address` to
    print, :meth:`close` at the end (removes the session certificate).

    ``command`` ("lgrnet view", "lgrnet live") starts the lines printed and names the page in
    refusals; ``cookie`` is the cookie's name without the port (a cookie per page and port)."""

    def __init__(self, args: argparse.Namespace, command: str, cookie: str) -> None:
        from ..viewer.auth import generate_token, load_tokens
        from ..viewer.listen import LOOPBACK_HOSTS, is_loopback
        from ..viewer.tls import server_context

        if not 0 <= args.port <= 65535:
            raise UserError(f"--port {args.port}: must be 0..65535")
        if args.tls and args.certfile is not None:
            raise UserError("--tls makes a certificate; --certfile uses yours: pass one of them")
        if args.keyfile is not None and args.certfile is None:
            raise UserError("--keyfile needs --certfile")
        self.command, self.cookie_prefix, self.host = command, cookie, args.host
        self.make_certificate = bool(args.tls)
        self.loopback = is_loopback(args.host)
        #: the Host names a loopback page answers to; None beyond loopback (the token guards it there)
        self.allowed_hosts = LOOPBACK_HOSTS if self.loopback else None
        tokens = load_tokens(args.token_file, command=command)
        if self.loopback and not args.require_token and args.token_file is None:
            tokens = {}  # loopback as before: $LGRNET_VIEW_TOKEN applies beyond it, or with --require-token
        self.generated: Optional[str] = None
        if (not self.loopback or args.require_token) and not tokens:
            self.generated = generate_token()
            tokens = {self.generated: ""}
        self.tokens: Dict[str, str] = tokens
        self.ssl_context = server_context(args.certfile, args.keyfile) if args.certfile is not None else None
        self.certificate: Any = None

    def warn_cleartext(self) -> None:
        """Beyond loopback without TLS: say so (one warning line)."""
        if not self.loopback and self.ssl_context is None and not self.make_certificate:
            print(f"{self.command}: warning: listening on {self.host} without TLS: the access token and the videos "
                  "cross the network in clear (add --tls or --certfile/--keyfile)", file=sys.stderr)

    def start(self) -> None:
        """Make the session's self-signed certificate (``--tls``) and its TLS context."""
        from ..viewer.tls import self_signed, server_context

        if self.make_certificate and self.certificate is None:
            self.certificate = self_signed(self.host)
            self.ssl_context = server_context(self.certificate.certfile, self.certificate.keyfile)

    def auth(self, port: int):
        """The access check every request passes (:class:`lgrnet.viewer.auth.Auth`), or None without tokens."""
        from ..viewer.auth import Auth

        if not self.tokens:
            return None
        return Auth(self.tokens, cookie_name=f"{self.cookie_prefix}_{port}", secure=self.ssl_context is not None,
                    command=self.command)

    def address(self, server_address: Tuple[Any, ...]) -> Tuple[str, str, str]:
        """``(url, to_open, note)`` of a bound server: its address; the address to open (with the
        generated token, the only place it is ever shown); a note for the printed line saying how to
        open it with a token of one's own ("" when none is needed)."""
        from ..viewer.listen import page_url

        url = page_url(server_address[0], server_address[1], self.ssl_context is not None)
        opened = f"{url}?token={self.generated}" if self.generated else url
        note = "" if self.generated or not self.tokens else "; open it with ?token=YOUR-TOKEN once, the page keeps it in a cookie"
        return url, opened, note

    def print_fingerprint(self) -> None:
        if self.certificate is not None:
            print(f"{self.command}: self-signed certificate for this session, SHA-256 fingerprint "
                  f"{self.certificate.fingerprint} (check that the browser shows the same before accepting it)", flush=True)

    def close(self) -> None:
        if self.certificate is not None:
            self.certificate.close()
            self.certificate = None
