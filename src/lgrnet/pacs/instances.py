"""Which instances of a study are cine loops (QIDO-RS), and fetching one (WADO-RS).

A cine is an instance of a multi-frame image class that scanners use for loops and recordings
(:data:`CINE_SOP_CLASSES`: US Multi-frame, the Video Endoscopic / Microscopic / Photographic
images, the multi-frame Secondary Capture images) with more than one frame (an instance whose
QIDO answer leaves NumberOfFrames out counts when its class is one of these). SEG, SR and
single-frame images in the same study are not inputs.
"""
from __future__ import annotations

import os
from dataclasses import asdict, dataclass
from typing import Any, Dict, List, Optional

from ..errors import UserError
from ..files import atomic_write
from .connection import Pacs, PacsError

CINE_SOP_CLASSES = {
    "1.2.840.10008.5.1.4.1.1.3.1": "US Multi-frame Image",
    "1.2.840.10008.5.1.4.1.1.77.1.1.1": "Video Endoscopic Image",
    "1.2.840.10008.5.1.4.1.1.77.1.2.1": "Video Microscopic Image",
    "1.2.840.10008.5.1.4.1.1.77.1.4.1": "Video Photographic Image",
    "1.2.840.10008.5.1.4.1.1.7.2": "Multi-frame Grayscale Byte Secondary Capture Image",
    "1.2.840.10008.5.1.4.1.1.7.4": "Multi-frame True Color Secondary Capture Image",
}
STUDY, SERIES, SOP, SOP_CLASS, FRAMES, INSTANCE_NUMBER = "0020000D", "0020000E", "00080018", "00080016", "00280008", "00200013"
# fetch the instance as stored (no transcoding by the server; the readers decode what scanners write)
AS_STORED = (("application/dicom", "*"),)


@dataclass(frozen=True)
class CineInstance:
    """A cine in the PACS: its study, series and SOP instance UIDs, SOP class, frame count (or None)."""

    study: str
    series: str
    sop: str
    sop_class: str
    frames: Optional[int] = None
    number: Optional[int] = None

    def describe(self) -> str:
        frames = f"{self.frames} frames" if self.frames else "frames unknown"
        return f"instance {self.sop} ({CINE_SOP_CLASSES.get(self.sop_class, self.sop_class)}, {frames})"

    def to_json(self) -> Dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, d: Dict[str, Any]) -> "CineInstance":
        return cls(**{k: d.get(k) for k in ("study", "series", "sop", "sop_class", "frames", "number")})


def _value(item: Dict[str, Any], tag: str) -> Any:
    values = (item.get(tag) or {}).get("Value") or [None]
    return values[0]


def _int(v: Any) -> Optional[int]:
    try:
        return int(v)
    except (TypeError, ValueError):
        return None


def parse_instance(item: Any, url: str) -> Optional[CineInstance]:
    """A QIDO-RS instance (DICOM JSON) -> a :class:`CineInstance` when it is a cine, else None."""
    if not isinstance(item, dict):
        raise PacsError(f"{url}: unexpected answer to a QIDO-RS search (an entry is {type(item).__name__}, "
                        "not a DICOM JSON object)")
    uids = [_value(item, t) for t in (STUDY, SERIES, SOP, SOP_CLASS)]
    if not all(isinstance(u, str) and u for u in uids):
        raise PacsError(f"{url}: unexpected answer to a QIDO-RS search (an instance without its study, series, "
                        "SOP instance or SOP class UID)")
    frames = _int(_value(item, FRAMES))
    if uids[3] not in CINE_SOP_CLASSES or (frames is not None and frames < 2):
        return None
    return CineInstance(*uids, frames=frames, number=_int(_value(item, INSTANCE_NUMBER)))


def search_instances(pacs: Pacs, study: Optional[str] = None, series: Optional[str] = None,
                     filters: Optional[Dict[str, Any]] = None) -> List[Any]:
    """QIDO-RS instance search (every page); raises :class:`PacsError` on failure or a non-list answer."""
    found = pacs.call("searching for instances (QIDO-RS)", pacs.client.search_for_instances,
                      study_instance_uid=study, series_instance_uid=series, search_filters=filters,
                      fields=[FRAMES, SOP_CLASS, INSTANCE_NUMBER], get_remaining=True)
    if not isinstance(found, list):
        raise PacsError(f"{pacs.url}: unexpected answer to a QIDO-RS search ({type(found).__name__}, not a list)")
    return found


def find_cines(pacs: Pacs, study: str, series: Optional[str] = None) -> List[CineInstance]:
    """The cine instances of a study (or of one of its series), in series and instance order.
    Raises :class:`~lgrnet.errors.UserError` when there is none, saying what the study holds."""
    found = search_instances(pacs, study, series)
    cines = [c for c in (parse_instance(i, pacs.url) for i in found) if c is not None]
    where = f"study {study}" + (f" series {series}" if series else "")
    if not found:
        raise UserError(f"{pacs.url}: {where}: no instances there (is the UID right?)")
    if not cines:
        raise UserError(f"{pacs.url}: {where}: no cine instances among its {len(found)} instance(s) (multi-frame "
                        "US, video endoscopic/microscopic/photographic or multi-frame secondary capture)")
    return sorted(cines, key=lambda c: (c.series, c.number if c.number is not None else 0, c.sop))


def lookup_cine(pacs: Pacs, sop: str) -> Optional[CineInstance]:
    """The cine with SOP Instance UID ``sop`` (a QIDO-RS search by UID), or None when that instance
    is not a cine (or is gone)."""
    found = search_instances(pacs, filters={"SOPInstanceUID": sop})
    cines = [c for c in (parse_instance(i, pacs.url) for i in found) if c is not None and c.sop == sop]
    return cines[0] if cines else None


def fetch_cine(pacs: Pacs, cine: CineInstance, path: os.PathLike) -> str:
    """Fetch ``cine`` (WADO-RS, as stored) into ``path`` (atomically) after checking that the server
    returned that very image; returns the path. Raises :class:`PacsError`."""
    ds = pacs.call(f"fetching {cine.describe()} (WADO-RS)", pacs.client.retrieve_instance,
                   cine.study, cine.series, cine.sop, media_types=AS_STORED)
    problem = None
    if not hasattr(ds, "get"):
        problem = f"a {type(ds).__name__}, not a DICOM dataset"
    elif ds.get("SOPInstanceUID") != cine.sop:
        problem = f"SOP Instance UID {ds.get('SOPInstanceUID')}"
    elif ds.get("StudyInstanceUID") != cine.study:
        problem = f"Study Instance UID {ds.get('StudyInstanceUID')}"
    elif "PixelData" not in ds:
        problem = "no pixel data"
    if problem:
        raise PacsError(f"{pacs.url}: unexpected object for {cine.describe()} (WADO-RS returned {problem})")
    return atomic_write(path, lambda tmp: ds.save_as(tmp, enforce_file_format=True))
