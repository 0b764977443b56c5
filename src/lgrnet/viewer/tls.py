"""HTTPS for the review page and the live page: the user's certificate, or a self-signed one made
for the session, and the TLS handshake in each connection's thread (:func:`finish_request_with`).

A self-signed certificate is made with the ``cryptography`` package when it is installed, else
with the ``openssl`` command; its SHA-256 fingerprint is printed so that a reviewer can compare it
with what the browser shows before accepting it. Its key lives in a private temporary folder
(mode 0700) that :meth:`SessionCertificate.close` removes.
"""
from __future__ import annotations

import datetime
import hashlib
import ipaddress
import shutil
import socket
import ssl
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import List, Optional, Sequence

from ..errors import UserError


def server_context(certfile: Path, keyfile: Optional[Path] = None) -> ssl.SSLContext:
    """A server-side TLS context (TLS 1.2 or newer) for ``certfile`` / ``keyfile`` (PEM); a one-line
    :class:`UserError` naming the file when they cannot be loaded."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    try:
        ctx.load_cert_chain(str(certfile), None if keyfile is None else str(keyfile))
    except FileNotFoundError as exc:
        raise UserError(f"{exc.filename or certfile}: no such file") from None
    except (ssl.SSLError, OSError) as exc:
        raise UserError(f"{certfile}: cannot load the certificate and key ({getattr(exc, 'reason', None) or exc})") from None
    return ctx


def finish_request_with(ctx: ssl.SSLContext):
    """A ``finish_request`` method for a ``socketserver`` server class that serves ``ctx``'s TLS: the
    handshake runs in the connection's thread (a slow client holds no other), within 30 s; a client
    that is not TLS (plain HTTP to the https port) or gives up is dropped without an answer."""
    def finish_request(self, request, client_address):
        request.settimeout(30)
        try:
            tls = ctx.wrap_socket(request, server_side=True)
        except (ssl.SSLError, OSError):
            return
        tls.settimeout(None)
        try:
            self.RequestHandlerClass(tls, client_address, self)
        finally:
            try:
                tls.close()
            except OSError:
                pass

    return finish_request


def fingerprint(certfile: Path) -> str:
    """SHA-256 of the certificate (DER), as browsers show it: ``AB:CD:...``."""
    der = ssl.PEM_cert_to_DER_cert(Path(certfile).read_text())
    return ":".join(f"{b:02X}" for b in hashlib.sha256(der).digest())


def _names(host: str) -> List[str]:
    names = ["localhost", "127.0.0.1", "::1", socket.gethostname(), socket.getfqdn()]
    if host not in ("0.0.0.0", "::", ""):
        names.insert(0, host)
    return list(dict.fromkeys(n for n in names if n))


def _is_ip(name: str) -> bool:
    try:
        ipaddress.ip_address(name)
        return True
    except ValueError:
        return False


@dataclass
class SessionCertificate:
    """A self-signed certificate made for one ``lgrnet view`` or ``lgrnet live`` session."""

    certfile: Path
    keyfile: Path
    fingerprint: str
    made_with: str

    def close(self) -> None:
        shutil.rmtree(self.certfile.parent, ignore_errors=True)


def self_signed(host: str, days: int = 30, names: Optional[Sequence[str]] = None,
                use_cryptography: Optional[bool] = None) -> SessionCertificate:
    """Make a self-signed certificate (ECDSA P-256) for ``host`` and this machine's names.
    ``use_cryptography``: None picks the package when importable, else the ``openssl`` command."""
    names = list(names) if names is not None else _names(host)
    folder = Path(tempfile.mkdtemp(prefix="lgrnet-view-tls-"))  # 0700
    cert, key = folder / "cert.pem", folder / "key.pem"
    if use_cryptography is None:
        try:
            import cryptography  # noqa: F401

            use_cryptography = True
        except ImportError:
            use_cryptography = False
    try:
        if use_cryptography:
            _with_cryptography(cert, key, names, days)
        else:
            _with_openssl(cert, key, names, days)
    except BaseException:
        shutil.rmtree(folder, ignore_errors=True)
        raise
    return SessionCertificate(cert, key, fingerprint(cert), "cryptography" if use_cryptography else "openssl")


def _with_cryptography(cert: Path, key: Path, names: Sequence[str], days: int) -> None:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    private = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "lgrnet view (self-signed)")])
    now = datetime.datetime.now(datetime.timezone.utc)
    alt = [x509.IPAddress(ipaddress.ip_address(n)) if _is_ip(n) else x509.DNSName(n) for n in names]
    certificate = (x509.CertificateBuilder().subject_name(subject).issuer_name(subject)
                   .public_key(private.public_key()).serial_number(x509.random_serial_number())
                   .not_valid_before(now - datetime.timedelta(minutes=5)).not_valid_after(now + datetime.timedelta(days=days))
                   .add_extension(x509.SubjectAlternativeName(alt), critical=False)
                   .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
                   .sign(private, hashes.SHA256()))
    key.touch(mode=0o600)
    key.write_bytes(private.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                          serialization.NoEncryption()))
    cert.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))


def _with_openssl(cert: Path, key: Path, names: Sequence[str], days: int) -> None:
    exe = shutil.which("openssl")
    if exe is None:
        raise UserError("--tls needs a certificate: install the Python package `cryptography` or the `openssl` command, "
                        "or pass --certfile/--keyfile")
    alt = ",".join(f"IP:{n}" if _is_ip(n) else f"DNS:{n}" for n in names)
    cmd = [exe, "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
           "-keyout", str(key), "-out", str(cert), "-days", str(days), "-subj", "/CN=lgrnet view (self-signed)",
           "-addext", f"subjectAltName={alt}", "-addext", "basicConstraints=critical,CA:FALSE"]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
    if done.returncode != 0:
        last = (done.stderr.strip().splitlines() or ["failed"])[-1]
        raise UserError(f"openssl could not make a certificate: {last}")
    key.chmod(0o600)


__all__ = ["SessionCertificate", "fingerprint", "finish_request_with", "self_signed", "server_context"]
