"""Lesion sizes in millimetres for a calibrated source: per frame the lesion's area (mm^2), long axis
and short axis (mm), and the largest of each over the video.

A frame's mask (all its lesion pixels) is measured as the union of its pixel squares, scaled by the
source's :class:`~lgrnet.io.calibration.Calibration` (pixels need not be square):

- ``area_mm2``: pixel count x mm_x x mm_y;
- ``long_axis_mm``: the largest distance between two points of the mask (its maximum caliper, or
  Feret, diameter);
- ``short_axis_mm``: the mask's extent perpendicular to that long axis (the caliper width across it).

Only the outline's convex hull matters for both axes, and the hull of a mask is the hull of each
row's two outer pixel squares, so a frame costs O(rows) points, not O(pixels). Frames without a
lesion get null sizes. Without a calibration nothing is measured: predictions.json says
``"calibration": null`` with the reason (``calibration_note``) and no mm field appears.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional

import numpy as np

#: the per-frame fields (predictions.json rows) and predictions.csv columns added for a calibrated source
SIZE_KEYS = ["area_mm2", "long_axis_mm", "short_axis_mm"]


@dataclass(frozen=True)
class LesionSize:
    """One frame's lesion: area in mm^2, long and short axis in mm."""

    area_mm2: float
    long_axis_mm: float
    short_axis_mm: float


def mask_corners(mask: np.ndarray) -> np.ndarray:
    """(N, 2) float64 x, y pixel-edge coordinates whose convex hull is the mask's: the four corners of
    each row's leftmost and rightmost mask pixel. mask: (H, W) bool; empty -> (0, 2)."""
    mask = np.asarray(mask, dtype=bool)
    rows = np.flatnonzero(mask.any(axis=1))
    if rows.size == 0:
        return np.zeros((0, 2))
    sub = mask[rows]
    left = sub.argmax(axis=1)
    right = mask.shape[1] - 1 - sub[:, ::-1].argmax(axis=1)
    xs = np.concatenate([left, left, right + 1, right + 1]).astype(np.float64)
    ys = np.concatenate([rows, rows + 1, rows, rows + 1]).astype(np.float64)
    return np.stack([xs, ys], axis=1)


def measure_mask(mask: np.ndarray, mm_x: float, mm_y: float) -> Optional[LesionSize]:
    """The lesion size of a (H, W) bool mask with pixels of mm_x x mm_y; None when empty."""
    from scipy.spatial import ConvexHull

    mask = np.asarray(mask, dtype=bool)
    count = int(mask.sum())
    if count == 0:
        return None
    pts = mask_corners(mask) * np.array([mm_x, mm_y])
    hull = pts[ConvexHull(pts).vertices]  # pixel squares: never degenerate
    diff = hull[:, None, :] - hull[None, :, :]
    d2 = (diff ** 2).sum(-1)
    i, j = np.unravel_index(int(d2.argmax()), d2.shape)
    long_axis = float(np.sqrt(d2[i, j]))
    direction = (hull[j] - hull[i]) / long_axis
    normal = np.array([-direction[1], direction[0]])
    across = hull @ normal
    return LesionSize(area_mm2=count * mm_x * mm_y, long_axis_mm=long_axis,
                      short_axis_mm=float(across.max() - across.min()))


@dataclass
class SizeTracker:
    """Adds the mm fields to a result folder's rows when the source is calibrated, and keeps the
    largest over the video. ``calibration``: a :class:`~lgrnet.io.calibration.Calibration` or None
    (``note``: why not)."""

    calibration: Any = None
    note: Optional[str] = None
    largest: Dict[str, Any] = field(default_factory=dict)

    @classmethod
    def for_source(cls, source) -> "SizeTracker":
        from ..io.calibration import source_calibration

        cal, note = source_calibration(source)
        return cls(calibration=cal, note=note)

    @classmethod
    def for_result(cls, meta: Dict[str, Any]) -> "SizeTracker":
        """The tracker of a written result, from its predictions.json (``meta``): its stored
        ``calibration``, so that :meth:`row` measures a mask (a reviewer's corrected one) exactly as
        the frames' rows were measured; without one, ``note`` is the recorded reason."""
        from ..io.calibration import Calibration

        cal = Calibration.from_json(meta.get("calibration"))
        note = None if cal is not None else (meta.get("calibration_note")
                                             or "predictions.json records no calibration; no sizes in mm (never guessed)")
        return cls(calibration=cal, note=note)

    @property
    def columns(self) -> List[str]:
        """predictions.csv's extra columns (none without a calibration)."""
        return list(SIZE_KEYS) if self.calibration is not None else []

    def row(self, mask: np.ndarray) -> Dict[str, Any]:
        """The frame's mm fields (null for an empty mask); {} without a calibration."""
        if self.calibration is None:
            return {}
        size = measure_mask(mask, self.calibration.mm_x, self.calibration.mm_y)
        if size is None:
            return dict.fromkeys(SIZE_KEYS)
        return {k: round(getattr(size, k), 4) for k in SIZE_KEYS}

    def csv_values(self, row: Dict[str, Any]) -> list:
        return ["" if row.get(k) is None else row[k] for k in self.columns]

    def add(self, index: int, row: Dict[str, Any]) -> None:
        """Record frame ``index``'s row (frames in any order) for the largest over the video."""
        for k in self.columns:
            v = row.get(k)
            best = self.largest.get(k)
            if v is not None and (best is None or v > best["value"] or (v == best["value"] and index < best["frame"])):
                self.largest[k] = {"value": v, "frame": index}

    def header(self) -> Dict[str, Any]:
        """predictions.json's ``calibration`` (and ``calibration_note`` or ``largest_lesion``)."""
        if self.calibration is None:
            return {"calibration": None, "calibration_note": f"{self.note}; no sizes in mm (never guessed)"}
        return {"calibration": self.calibration.to_json(),
                "largest_lesion": {k: self.largest.get(k) for k in SIZE_KEYS}}
