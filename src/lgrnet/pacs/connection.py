"""One DICOMweb endpoint (``dicomweb:URL``) as a :class:`Pacs`: a dicomweb-client client on a
requests session with the credentials, TLS and timeout set, and every call's failure turned into
one line naming the server and what was being done (:class:`PacsError`).

Credentials never come from the command line (nor from the URL: ``user:password@`` is refused):

- ``LGRNET_DICOMWEB_TOKEN``: sent as ``Authorization: Bearer <token>``;
- else ``LGRNET_DICOMWEB_USER`` and ``LGRNET_DICOMWEB_PASSWORD``: HTTP Basic;
- else requests' own lookup: the ``~/.netrc`` entry for the host (or the file ``$NETRC`` names).

They are set on the session, never in a message: dicomweb-client logs each request's URL and its
per-request headers only. TLS certificates are checked (requests' CA bundle, or ``--ca-bundle``,
or ``$REQUESTS_CA_BUNDLE``); there is no switch to turn the check off.
"""
from __future__ import annotations

import logging
import os
from typing import Any, Callable, Optional
from urllib.parse import urlsplit

from ..errors import UserError

SCHEME = "dicomweb:"
ENV_TOKEN = "LGRNET_DICOMWEB_TOKEN"
ENV_USER = "LGRNET_DICOMWEB_USER"
ENV_PASSWORD = "LGRNET_DICOMWEB_PASSWORD"
DEFAULT_TIMEOUT = 30.0
ATTEMPTS = 3  # tries of one request


class PacsError(UserError):
    """A DICOMweb call failed; the message is one line. ``server``: the server as a whole failed
    (unreachable, timed out, refused the credentials, a server error), not just this request."""

    def __init__(self, message: str, server: bool = False):
        super().__init__(message)
        self.server = server


class PacsUnavailable(BaseException):
    """Stops a batch over many instances when the server as a whole is gone (carries the
    :class:`PacsError`'s line). A BaseException on purpose: :func:`lgrnet.runs.batch.run_share`
    reports an input's Exception and goes on with the next input, which against a dead server would
    print the same failure once per instance; this ends the run at once, and the command turns it
    back into its one line (exit status 2)."""


def is_dicomweb(source: object) -> bool:
    return isinstance(source, str) and source.startswith(SCHEME)


def parse_url(source: str) -> str:
    """``dicomweb:http(s)://host[:port]/path`` -> the DICOMweb root URL (no trailing slash)."""
    url = source[len(SCHEME):] if is_dicomweb(source) else source
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise UserError(f"{source}: not a DICOMweb URL; expected dicomweb:http://host:port/dicom-web "
                        "(or https://...)")
    if parts.username or parts.password:
        raise UserError(f"{SCHEME}{parts.scheme}://{parts.hostname}...: credentials do not go in the URL; set "
                        f"{ENV_USER} and {ENV_PASSWORD} (or {ENV_TOKEN}), or a netrc entry")
    if parts.query or parts.fragment:
        raise UserError(f"{source}: the DICOMweb root URL takes no query or fragment")
    return url.rstrip("/")


def make_session(ca_bundle: Optional[str] = None):
    """A requests session with the credentials from the environment (see the module) and TLS checks."""
    import requests

    session = requests.Session()
    token = os.environ.get(ENV_TOKEN)
    user, password = os.environ.get(ENV_USER), os.environ.get(ENV_PASSWORD)
    if token:
        session.headers["Authorization"] = f"Bearer {token}"
    elif user or password:
        if not (user and password is not None):
            raise UserError(f"set both {ENV_USER} and {ENV_PASSWORD} (or neither)")
        session.auth = (user, password)
    if ca_bundle is not None:
        if not os.path.isfile(ca_bundle):
            raise UserError(f"{ca_bundle}: no such CA bundle file (--ca-bundle)")
        session.verify = ca_bundle
    return session


class Pacs:
    """A DICOMweb server: ``url`` (its root), ``client`` (a dicomweb_client.DICOMwebClient),
    ``session`` (for the server's own REST API, e.g. Orthanc's changes feed)."""

    def __init__(self, url: str, ca_bundle: Optional[str] = None, timeout: float = DEFAULT_TIMEOUT):
        from dicomweb_client import DICOMwebClient

        self.url = parse_url(url)
        self.timeout = float(timeout)
        self.session = make_session(ca_bundle)
        self.client = DICOMwebClient(self.url, session=self.session, timeout=self.timeout)
        # a busy server (429/503/504) or a dropped connection gets ATTEMPTS tries, 0.5 s and 1 s apart; the
        # retry library would log each failed try with a traceback: the last one's line is the message
        self.client.set_http_retry_params(retry=True, max_attempts=ATTEMPTS, wait_exponential_multiplier=250,
                                          retriable_error_codes=(429, 503, 504))
        logging.getLogger("retrying").setLevel(logging.CRITICAL)

    def call(self, what: str, fn: Callable[..., Any], *args, **kwargs) -> Any:
        """``fn(*args, **kwargs)``; any failure -> :class:`PacsError` "URL: <problem> while <what>"."""
        try:
            return fn(*args, **kwargs)
        except PacsError:
            raise
        except Exception as exc:
            raise describe_failure(exc, self.url, what, self.timeout) from None

    def get_json(self, url: str, what: str, **params) -> Any:
        """GET ``url`` (the server's own REST API) and decode its JSON."""

        def get():
            r = self.session.get(url, params=params or None, timeout=self.timeout)
            r.raise_for_status()
            return r.json()

        return self.call(what, get)


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0][:300] if text else type(exc).__name__


def describe_failure(exc: BaseException, url: str, what: str, timeout: float) -> PacsError:
    """One line for a failed DICOMweb call (no credentials: requests' messages hold URLs only)."""
    import requests

    if isinstance(exc, requests.exceptions.SSLError):
        return PacsError(f"{url}: the TLS certificate check failed while {what} ({_first_line(exc)}); give the "
                         "server's CA certificate with --ca-bundle", server=True)
    if isinstance(exc, requests.exceptions.Timeout):
        return PacsError(f"{url}: no answer within {timeout:g} s ({ATTEMPTS} tries) while {what} (--pacs-timeout)",
                         server=True)
    if isinstance(exc, requests.exceptions.ConnectionError):
        reason = "connection refused or reset" if "refused" in str(exc).lower() or "reset" in str(exc).lower() \
            else "cannot connect"
        return PacsError(f"{url}: {reason} while {what}; is the server running and the URL right?", server=True)
    if isinstance(exc, requests.exceptions.HTTPError):
        code = getattr(exc.response, "status_code", None)
        if code in (401, 403):
            return PacsError(f"{url}: the server refused the credentials (HTTP {code}) while {what}; set "
                             f"{ENV_USER}/{ENV_PASSWORD} or {ENV_TOKEN}, or a netrc entry for the host", server=True)
        if code == 404:
            return PacsError(f"{url}: not found (HTTP 404) while {what}; is the URL the DICOMweb root "
                             "(e.g. http://host:8042/dicom-web)?")
        return PacsError(f"{url}: HTTP {code} while {what}", server=code is None or code >= 500)
    if isinstance(exc, requests.exceptions.RequestException):
        return PacsError(f"{url}: {type(exc).__name__} while {what} ({_first_line(exc)})", server=True)
    return PacsError(f"{url}: unexpected answer while {what} ({type(exc).__name__}: {_first_line(exc)})")
