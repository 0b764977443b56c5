"""Command-line options for a DICOMweb source (``lgrnet predict dicomweb:URL`` and ``lgrnet watch``).
Defined here, without importing dicomweb-client, so building the parser stays cheap."""
from __future__ import annotations

from .connection import DEFAULT_TIMEOUT, ENV_PASSWORD, ENV_TOKEN, ENV_USER


def add_connection_arguments(p) -> None:
    """--ca-bundle and --pacs-timeout (credentials: environment or netrc only)."""
    g = p.add_argument_group(
        "DICOMweb (INPUT dicomweb:URL)",
        f"credentials come from {ENV_TOKEN} (a bearer token) or {ENV_USER} / {ENV_PASSWORD} or a netrc entry "
        "for the host, never from the command line; TLS certificates are always checked (docs/pacs.md)")
    g.add_argument("--ca-bundle", metavar="PEM", default=None,
                   help="CA certificate(s) to check the server's TLS certificate with (default: the system's)")
    g.add_argument("--pacs-timeout", type=float, default=DEFAULT_TIMEOUT, metavar="SECONDS",
                   help=f"how long to wait for each answer of the server (default: {DEFAULT_TIMEOUT:g})")
    return g


def add_dicomweb_arguments(p) -> None:
    """``lgrnet predict``'s options for a DICOMweb input: which study or series, and storing back."""
    g = add_connection_arguments(p)
    g.add_argument("--study", metavar="UID", default=None,
                   help="with a dicomweb:URL input: the Study Instance UID whose cine instances to segment")
    g.add_argument("--series", metavar="UID", default=None, help="only the cine instances of this series of --study")
    g.add_argument("--store", action="store_true",
                   help="store each result's DICOM SEG (and measurement report) back into the study (STOW-RS)")
