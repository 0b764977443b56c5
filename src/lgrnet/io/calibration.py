"""A source's pixel size in millimetres, read from its DICOM header; None when it carries none.

Two places hold it (checked in this order):

- the Sequence of Ultrasound Regions (0018,6011), which ultrasound scanners write: each 2-D
  tissue region (RegionSpatialFormat 1) gives PhysicalDeltaX / PhysicalDeltaY, the size of one
  pixel in PhysicalUnitsX/YDirection, where units code 3 is cm. A calibration is taken when every
  2-D region is in cm and all of them agree (one region, or several with one scale); several
  regions with different scales (a dual view at two depths) or other units give no calibration,
  since which region the lesion is in would be a guess;
- Pixel Spacing (0028,0030), row spacing then column spacing in mm, at the top level or in the
  Shared Functional Groups' Pixel Measures (enhanced multi-frame objects).

Videos and frame folders carry no calibration. A source without one gets ``None`` and the reason
(:func:`source_calibration`); the result folder then says so instead of guessing a scale.
"""
from __future__ import annotations

import math
import os
from dataclasses import dataclass
from typing import Any, Dict, Optional, Tuple

CM = 3  # PhysicalUnitsX/YDirection code for centimetres (PS3.3 C.8.5.5.1.15)
TISSUE_2D = 1  # RegionSpatialFormat: 2D (tissue or flow)


@dataclass(frozen=True)
class Calibration:
    """The size of one pixel: ``mm_x`` across (columns), ``mm_y`` down (rows); ``source``: the
    attribute it came from ("ultrasound regions" or "pixel spacing")."""

    mm_x: float
    mm_y: float
    source: str

    def to_json(self) -> Dict[str, Any]:
        return {"mm_per_pixel_x": round(self.mm_x, 9), "mm_per_pixel_y": round(self.mm_y, 9), "source": self.source}

    @classmethod
    def from_json(cls, obj: Any) -> Optional["Calibration"]:
        """The calibration :meth:`to_json` wrote (predictions.json's ``calibration``); None when ``obj``
        is not one (null, or a pixel size that is not a positive number)."""
        if not isinstance(obj, dict):
            return None
        mm_x, mm_y = _positive(obj.get("mm_per_pixel_x")), _positive(obj.get("mm_per_pixel_y"))
        if mm_x is None or mm_y is None:
            return None
        return cls(mm_x, mm_y, str(obj.get("source") or ""))


def _positive(value) -> Optional[float]:
    try:
        v = float(value)
    except (TypeError, ValueError):
        return None
    return v if math.isfinite(v) and v > 0 else None


def _from_regions(ds) -> Tuple[Optional[Calibration], Optional[str]]:
    regions = [r for r in ds.get("SequenceOfUltrasoundRegions", []) if r.get("RegionSpatialFormat") == TISSUE_2D]
    if not regions:
        return None, None
    scales = set()
    for r in regions:
        units = (r.get("PhysicalUnitsXDirection"), r.get("PhysicalUnitsYDirection"))
        dx, dy = _positive(r.get("PhysicalDeltaX")), _positive(r.get("PhysicalDeltaY"))
        if units != (CM, CM) or dx is None or dy is None:
            return None, (f"an ultrasound region is not calibrated in cm (units {units[0]}/{units[1]}, "
                          f"deltas {r.get('PhysicalDeltaX')}/{r.get('PhysicalDeltaY')})")
        scales.add((round(dx * 10.0, 12), round(dy * 10.0, 12)))
    if len(scales) > 1:
        return None, f"{len(regions)} ultrasound regions with different scales: which one holds the lesion is not known"
    mm_x, mm_y = scales.pop()
    return Calibration(mm_x, mm_y, "ultrasound regions"), None


def _from_pixel_spacing(ds) -> Optional[Calibration]:
    spacing = ds.get("PixelSpacing")
    if spacing is None:
        shared = ds.get("SharedFunctionalGroupsSequence")
        measures = shared[0].get("PixelMeasuresSequence") if shared else None
        spacing = measures[0].get("PixelSpacing") if measures else None
    if spacing is None or len(spacing) != 2:
        return None
    row, col = _positive(spacing[0]), _positive(spacing[1])
    if row is None or col is None:
        return None
    return Calibration(col, row, "pixel spacing")


def dataset_calibration(ds) -> Tuple[Optional[Calibration], Optional[str]]:
    """(calibration, None) from a pydicom dataset, or (None, why there is none)."""
    cal, why = _from_regions(ds)
    if cal is not None:
        return cal, None
    cal = _from_pixel_spacing(ds)
    if cal is not None:
        return cal, None
    return None, why or "the DICOM header has no Sequence of Ultrasound Regions in cm and no Pixel Spacing"


def file_calibration(path) -> Tuple[Optional[Calibration], Optional[str]]:
    """:func:`dataset_calibration` of a DICOM file's header (the pixel data is not read)."""
    import pydicom

    try:
        ds = pydicom.dcmread(os.fspath(path), stop_before_pixels=True)
    except Exception as exc:  # the reader opened it already; a header that fails here has no usable calibration
        return None, f"cannot read the DICOM header for a calibration ({exc})"
    return dataset_calibration(ds)


def source_calibration(source) -> Tuple[Optional[Calibration], Optional[str]]:
    """(calibration, None) for a frame source (a DICOM file's), or (None, the reason)."""
    if getattr(source, "kind", None) != "dicom":
        return None, f"a {getattr(source, 'kind', 'non-DICOM')} source carries no pixel calibration"
    return file_calibration(source.path)
