"""Watch a PACS (DICOMweb) for new cine loops: segment each new cine once, store its DICOM SEG (and,
for a calibrated cine, the measurement report) back into its study, and keep going.

Each cine gets the usual result folder OUT/<SOP Instance UID>/ (as `lgrnet predict`), and
OUT/.lgrnet-watch.json records the feed's position and every instance found, pending, stored or
failed: a watch killed at any moment and started again with the same command neither repeats nor
skips an instance. New instances come from Orthanc's changes log when the server is Orthanc,
else from QIDO-RS searches of the studies dated from --since on (docs/pacs.md). Credentials come
from LGRNET_DICOMWEB_TOKEN, or LGRNET_DICOMWEB_USER and LGRNET_DICOMWEB_PASSWORD, or a netrc entry.

examples:
  lgrnet watch dicomweb:http://localhost:8042/dicom-web --weights w.safetensors --out watched/
  lgrnet watch dicomweb:https://pacs.example.org/dicomweb --feed qido --since 20261201 --weights w.safetensors \\
      --out watched/ --ca-bundle hospital-ca.pem
  lgrnet watch dicomweb:http://localhost:8042/dicom-web --all --once --weights w.safetensors --out watched/
"""
from __future__ import annotations

from ..pacs.options import add_connection_arguments
from .arguments import add_device_argument, add_precision_argument, add_weights_arguments
from .predict import add_tta_argument, add_window_arguments


def add_arguments(p) -> None:
    p.add_argument("source", metavar="dicomweb:URL", help="the PACS's DICOMweb root, e.g. dicomweb:http://host:8042/dicom-web")
    add_weights_arguments(p)
    p.add_argument("--out", required=True, metavar="DIR", help="folder for the results and the watch's state file")
    add_device_argument(p)
    p.add_argument("--size", type=int, default=None, help="model input size (default: the size the weights record)")
    add_window_arguments(p)
    add_precision_argument(p)
    add_tta_argument(p)
    p.add_argument("--feed", choices=("auto", "orthanc", "qido"), default="auto",
                   help="how new instances are found: Orthanc's changes log, or QIDO-RS by study date (default: "
                        "Orthanc's where the server is Orthanc); a started watch keeps the feed its state file records")
    p.add_argument("--all", action="store_true",
                   help="on the first start, also the cines already in the archive (default: only those that arrive "
                        "after it; with --feed qido: those of studies dated from --since)")
    p.add_argument("--since", metavar="YYYYMMDD", default=None,
                   help="--feed qido, first start: studies dated on or after this day (default: today)")
    p.add_argument("--interval", type=float, default=10.0, metavar="SECONDS", help="time between polls (default: 10)")
    p.add_argument("--once", action="store_true",
                   help="one poll: segment and store what is new, then exit (for cron; exit status 2 if any failed)")
    p.add_argument("--retry-failed", action="store_true", help="try the instances that failed before once more")
    p.add_argument("--no-overlay", action="store_true", help="do not write overlay.mp4")
    p.add_argument("--dicom-seg-fractional", action="store_true",
                   help="store the probability (FRACTIONAL SEG) instead of the mask (BINARY)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    add_connection_arguments(p)


def run(args) -> int:
    from ..pacs.watch import run_watch

    return run_watch(args)
