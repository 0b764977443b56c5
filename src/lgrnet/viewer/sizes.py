"""The review page's lesion sizes in millimetres: one frame's mask measured on the server.

Route (an entry of the server's route table, :data:`ROUTES`)::

    GET /api/results/<rid>/sizes/<i>.json
        {"index": i, "source": "corrected" | "model" | "empty", "version": N, "area_px": int,
         "calibration": {"mm_per_pixel_x", "mm_per_pixel_y", "source"},
         "area_mm2", "long_axis_mm", "short_axis_mm"}          (null for an empty mask)
        or, for a result without a calibration: {..., "calibration": null, "calibration_note": why}
        and no mm field

The mask is the one the page shows (:func:`lgrnet.viewer.corrections.current_mask`: the reviewer's
saved mask, else the model's); ``version`` is its review version (0: never reviewed). It is measured
with the result's stored calibration by :meth:`lgrnet.results.sizes.SizeTracker.row`, the function
that wrote the frames' rows of predictions.json, so a model mask's numbers here are predictions.json's
and a corrected mask's are what ``lgrnet predict`` would have written for it. The page shows the
model's numbers from predictions.json and asks this route only for an edited frame; it never
measures a mask itself.
"""
from __future__ import annotations

import io
from typing import Any, Dict, List

import numpy as np
from PIL import Image

from ..results.sizes import SizeTracker
from .corrections import current_mask, frame_of
from .routing import HttpError, Reply, Request, Route


def _decode(data: bytes, what: str) -> np.ndarray:
    """A stored mask PNG -> bool (H, W): grey level > 127 (the masks are written 0/255)."""
    try:
        with Image.open(io.BytesIO(data), formats=["PNG"]) as im:
            im.load()
            return np.asarray(im.convert("L")) > 127
    except Exception as exc:  # Pillow raises many kinds for broken files
        raise HttpError(500, f"{what}: not a readable PNG mask ({type(exc).__name__}: {exc})") from None


def frame_sizes(r, index: int) -> Dict[str, Any]:
    """The JSON of :data:`ROUTES`' sizes route for frame ``index`` of result ``r``."""
    st, source, data = current_mask(r, index)
    tracker = SizeTracker.for_result(r.meta)
    mask = _decode(data, f"frame {index}'s {source} mask") if data is not None else np.zeros((1, 1), bool)
    out: Dict[str, Any] = {"index": index, "source": source, "version": st.version if st else 0,
                           "area_px": int(mask.sum())}
    if tracker.calibration is None:
        return {**out, "calibration": None, "calibration_note": tracker.note}
    return {**out, "calibration": tracker.calibration.to_json(), **tracker.row(mask)}


def _get_sizes(req: Request) -> Reply:
    r, index = frame_of(req)
    return Reply.json(frame_sizes(r, index))


#: The sizes' entry of the server's route table (:data:`lgrnet.viewer.server.ROUTES`).
ROUTES: List[Route] = [Route("GET", "/api/results/<rid>/sizes/<index:int>.json", _get_sizes)]

__all__ = ["ROUTES", "frame_sizes"]
