"""Storing a result folder's DICOM objects (segmentation.dcm, and measurements.dcm when there is
one) into the source's study with one STOW-RS request, and the record of what was stored
(``dicomweb.json`` in the result folder, written atomically once the server confirmed every object).

Nothing is half-stored on our side: the objects are checked before anything is sent (each belongs
to the source's study and references the source instance), they go in one request, and the record
is written only when the server's answer lists every one of them and no failure. Storing again is
harmless: the objects keep their SOP Instance UIDs, so a PACS keeps one copy (Orthanc answers
"already stored"); a store interrupted by a kill is therefore simply done again.
"""
from __future__ import annotations

import datetime
import json
from pathlib import Path
from typing import Any, Dict, List, Optional

from ..errors import UserError
from ..files import write_text_atomic
from .connection import Pacs, PacsError
from .instances import CineInstance

RECORD = "dicomweb.json"
STORED_FILES = ("segmentation.dcm", "measurements.dcm")  # in this order: the SR references the SEG


def _references(ds, sop: str) -> bool:
    """Whether a SEG or SR names ``sop`` among the instances it references."""
    for series in ds.get("ReferencedSeriesSequence", []):  # SEG
        if any(i.get("ReferencedSOPInstanceUID") == sop for i in series.get("ReferencedInstanceSequence", [])):
            return True
    for study in ds.get("CurrentRequestedProcedureEvidenceSequence", []):  # SR evidence
        for series in study.get("ReferencedSeriesSequence", []):
            if any(i.get("ReferencedSOPInstanceUID") == sop for i in series.get("ReferencedSOPSequence", [])):
                return True
    return False


def objects_to_store(folder: Path, cine: CineInstance) -> List[Any]:
    """The result folder's DICOM objects, checked to belong to ``cine``'s study and reference it."""
    import pydicom

    paths = [folder / f for f in STORED_FILES if (folder / f).is_file()]
    if not paths or paths[0].name != STORED_FILES[0]:
        raise UserError(f"{folder}: no segmentation.dcm to store")
    out = []
    for p in paths:
        ds = pydicom.dcmread(p)
        if ds.get("StudyInstanceUID") != cine.study or not _references(ds, cine.sop):
            raise UserError(f"{p}: does not belong to study {cine.study} / instance {cine.sop}; not stored")
        out.append(ds)
    return out


def store_result(pacs: Pacs, folder: Path, cine: CineInstance) -> Dict[str, Any]:
    """STOW-RS the folder's SEG (and SR) into ``cine``'s study, then write ``folder/dicomweb.json``.
    Returns the record. Raises :class:`PacsError` when the server fails or does not confirm."""
    folder = Path(folder)
    datasets = objects_to_store(folder, cine)
    answer = pacs.call(f"storing the SEG of {cine.describe()} (STOW-RS)", pacs.client.store_instances,
                       datasets, study_instance_uid=cine.study)
    failed = list(answer.get("FailedSOPSequence", [])) if hasattr(answer, "get") else None
    stored = {i.get("ReferencedSOPInstanceUID") for i in answer.get("ReferencedSOPSequence", [])} \
        if hasattr(answer, "get") else set()
    wanted = [ds.SOPInstanceUID for ds in datasets]
    if failed is None or failed or not set(wanted) <= stored:
        reasons = ", ".join(str(i.get("FailureReason")) for i in failed or [])
        raise PacsError(f"{pacs.url}: the server did not confirm storing {len(wanted)} object(s) for "
                        f"{cine.describe()} (STOW-RS answer: {len(failed or [])} failed{': ' + reasons if reasons else ''},"
                        f" {len(stored & set(wanted))} of {len(wanted)} stored)")
    record = {"url": pacs.url, "source": cine.to_json(),
              "stored": [{"file": p, "sop_class_uid": str(ds.SOPClassUID), "sop_instance_uid": str(ds.SOPInstanceUID),
                          "series_instance_uid": str(ds.SeriesInstanceUID)}
                         for p, ds in zip(STORED_FILES, datasets)],
              "time": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")}
    write_text_atomic(folder / RECORD, json.dumps(record, indent=2) + "\n")
    return record


def stored_record(folder: Path) -> Optional[Dict[str, Any]]:
    """The folder's record of a completed store, or None."""
    try:
        return json.loads((Path(folder) / RECORD).read_text())
    except (OSError, ValueError):
        return None
