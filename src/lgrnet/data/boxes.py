"""Box annotations of training frames: the one owner of the box file format.

A split may hold, beside ``Frame/`` and ``GT/``, one box file per annotated frame::

    <split>/Frame/<video>/<frame>.jpg
    <split>/GT/<video>/<frame>.png          (optional: a mask)
    <split>/Box/<video>/<frame stem>.json   (optional: boxes)

(per-video layout: ``<dir>/<video>/Box/<frame stem>.json``; image sets: ``<split>/Box/<stem>.json``).
A box file is JSON::

    {"boxes": [[x, y, w, h], ...], "frame_size": [H, W]}

in pixels of the frame, COCO's convention: ``x, y`` the top-left corner (the image's top-left
corner is 0, 0; pixel ``(r, c)`` covers ``[c, c+1) x [r, r+1)``), ``w, h`` the width and height,
floats allowed. Every box lies inside the frame (``0 <= x``, ``x + w <= W``, same for y, to
:data:`EDGE_TOLERANCE`) and has a positive size. An empty list means the frame was annotated and
shows no lesion; a frame without a box file (and without a mask) is not annotated (context only).
``frame_size`` guards against boxes written for a resized copy of the frame.

Values are read as float32 (N, 4) arrays; :func:`write_box_file` writes the shortest decimal that
reads back as the same float32, so write -> read is exact.
"""
from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import Iterable, List, Optional, Sequence, Tuple, Union

import numpy as np

from ..errors import InputError
from ..files import write_text_atomic

PathLike = Union[str, os.PathLike]

#: The folder beside ``Frame/`` and ``GT/`` that holds the box files.
BOX_DIR_NAME = "Box"
BOX_SUFFIX = ".json"
#: How far (pixels) a box may reach past the frame's edge and still count as inside: float32 values
#: such as x = 22.9, w = 1.1 add up to a hair over 24.
EDGE_TOLERANCE = 1e-3


class BoxError(InputError):
    """A box file or box cannot be used; the message names the file and the problem."""


def box_file_path(split_dir: PathLike, video: str, frame_stem: str) -> Path:
    """``<split_dir>/Box/<video>/<frame_stem>.json`` (frame-folder layout)."""
    return Path(split_dir) / BOX_DIR_NAME / video / (frame_stem + BOX_SUFFIX)


def _frame_size(frame_size: Sequence[int], where: str) -> Tuple[int, int]:
    try:
        h, w = (int(v) for v in frame_size)
        ok = all(float(v) == int(v) for v in frame_size)
    except (TypeError, ValueError):
        ok = False
    if not ok or h <= 0 or w <= 0:
        raise BoxError(f"{where}: frame_size must be [H, W], two positive integers, not {list(frame_size)!r}"
                       if isinstance(frame_size, (list, tuple)) else
                       f"{where}: frame_size must be [H, W], two positive integers, not {frame_size!r}")
    return h, w


def validate_boxes(boxes: object, frame_size: Sequence[int], where: str, single: bool = False) -> np.ndarray:
    """``boxes`` (a list of ``[x, y, w, h]`` or an (N, 4) array) checked against a frame of
    ``frame_size`` (H, W); returns float32 (N, 4). Raises :class:`BoxError` naming ``where`` and the
    first problem: not four finite numbers, a non-positive width or height, a box outside the frame.
    ``single``: ``where`` names one box (a COCO annotation): the message says "box", not "box i"."""
    h_img, w_img = _frame_size(frame_size, where)
    if isinstance(boxes, np.ndarray):
        if boxes.size and (boxes.ndim != 2 or boxes.shape[1] != 4):
            raise BoxError(f"{where}: boxes must be (N, 4) [x, y, w, h], got an array of shape {boxes.shape}")
        rows: List[object] = boxes.tolist() if boxes.size else []
    elif isinstance(boxes, (list, tuple)):
        rows = list(boxes)
    else:
        raise BoxError(f"{where}: 'boxes' must be a list of [x, y, w, h], not {type(boxes).__name__}")
    out = np.zeros((len(rows), 4), np.float64)
    for i, row in enumerate(rows):
        box = "box" if single else f"box {i}"
        if (not isinstance(row, (list, tuple, np.ndarray)) or len(row) != 4
                or not all(isinstance(v, (int, float, np.integer, np.floating)) and not isinstance(v, bool) for v in row)):
            raise BoxError(f"{where}: {box} is {row!r}, not [x, y, w, h] (four numbers)")
        x, y, w, h = (float(v) for v in row)
        if not all(math.isfinite(v) for v in (x, y, w, h)):
            raise BoxError(f"{where}: {box} {[x, y, w, h]} has a value that is not finite")
        if w <= 0 or h <= 0:
            raise BoxError(f"{where}: {box} {_fmt(row)} has a non-positive size (w={_num(w)}, h={_num(h)})")
        if x < -EDGE_TOLERANCE or y < -EDGE_TOLERANCE or x + w > w_img + EDGE_TOLERANCE or y + h > h_img + EDGE_TOLERANCE:
            raise BoxError(f"{where}: {box} {_fmt(row)} lies outside the {w_img}x{h_img} frame "
                           f"(x {_num(x)}..{_num(x + w)}, y {_num(y)}..{_num(y + h)})")
        out[i] = (x, y, w, h)
    return out.astype(np.float32)


def _num(v: float) -> str:
    return str(int(v)) if float(v).is_integer() else f"{float(v):g}"


def _fmt(row: Iterable[object]) -> str:
    return "[" + ", ".join(_num(float(v)) for v in row) + "]"  # type: ignore[arg-type]


def read_box_file(path: PathLike, frame_size: Optional[Sequence[int]] = None) -> np.ndarray:
    """The boxes of one box file as float32 (N, 4) ``[x, y, w, h]`` (N may be 0: annotated, no
    lesion). ``frame_size`` (H, W), when given, must equal the file's ``frame_size``. Raises
    :class:`BoxError` (one line naming the file and the problem) for unreadable or malformed files,
    a frame size mismatch, or an invalid box (see :func:`validate_boxes`)."""
    return read_box_annotation(path, frame_size)[0]


def read_box_annotation(path: PathLike, frame_size: Optional[Sequence[int]] = None) -> Tuple[np.ndarray, Tuple[int, int]]:
    """(:func:`read_box_file`'s boxes, the file's frame size (H, W))."""
    path = Path(path)
    try:
        data = json.loads(path.read_bytes())
    except FileNotFoundError:
        raise BoxError(f"{path}: no such box file") from None
    except OSError as exc:
        raise BoxError(f"{path}: cannot read the box file ({exc.strerror or exc})") from None
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise BoxError(f"{path}: malformed box file: not valid JSON ({exc})") from None
    if not isinstance(data, dict) or "boxes" not in data or "frame_size" not in data:
        raise BoxError(f"{path}: malformed box file: expected {{\"boxes\": [[x, y, w, h], ...], \"frame_size\": [H, W]}}")
    stored = data["frame_size"]
    if not isinstance(stored, list) or len(stored) != 2:
        raise BoxError(f"{path}: frame_size must be [H, W], two positive integers, not {stored!r}")
    stored_hw = _frame_size(stored, str(path))
    if frame_size is not None:
        want = _frame_size(frame_size, str(path))
        if want != stored_hw:
            raise BoxError(f"{path}: the boxes are for a {stored_hw[1]}x{stored_hw[0]} frame, but the frame is "
                           f"{want[1]}x{want[0]}")
    return validate_boxes(data["boxes"], stored_hw, str(path)), stored_hw


def json_number(v: np.float32) -> Union[int, float]:
    """The shortest JSON number that reads back (through float32) as ``v``."""
    if float(v).is_integer():
        return int(v)
    return float(np.format_float_positional(np.float32(v), unique=True, trim="-"))


def box_file_text(boxes: object, frame_size: Sequence[int], where: str = "boxes") -> str:
    """The JSON text of a box file (validated as :func:`validate_boxes`)."""
    arr = validate_boxes(boxes, frame_size, where)
    h, w = _frame_size(frame_size, where)
    rows = [[json_number(v) for v in row] for row in arr]
    return json.dumps({"boxes": rows, "frame_size": [h, w]}) + "\n"


def write_box_file(path: PathLike, boxes: object, frame_size: Sequence[int]) -> str:
    """Validate ``boxes`` ((N, 4) ``[x, y, w, h]``, N may be 0) for a frame of ``frame_size`` (H, W)
    and write them to ``path`` atomically; nothing is written when a box is invalid. Returns the
    absolute path."""
    return write_text_atomic(path, box_file_text(boxes, frame_size, str(path)))


def box_to_mask(boxes: np.ndarray, size: Sequence[int]) -> np.ndarray:
    """bool (H, W) mask, True inside any of the (N, 4) ``[x, y, w, h]`` boxes (the union, filled).

    A pixel is inside when its centre ``(c + 0.5, r + 0.5)`` is in ``[x, x + w) x [y, y + h)``, so an
    integer box covers exactly columns ``x .. x + w - 1``; a box narrower than a pixel still covers
    the pixel holding its centre (every box marks at least one pixel)."""
    h_img, w_img = int(size[0]), int(size[1])
    mask = np.zeros((h_img, w_img), bool)
    for x, y, w, h in np.asarray(boxes, np.float64).reshape(-1, 4):
        c0, c1 = _span(x, w, w_img)
        r0, r1 = _span(y, h, h_img)
        mask[r0:r1, c0:c1] = True
    return mask


def box_to_ellipse_mask(boxes: np.ndarray, size: Sequence[int]) -> np.ndarray:
    """bool (H, W) mask, True inside the ellipse inscribed in any of the (N, 4) ``[x, y, w, h]`` boxes:
    centre ``(x + w/2, y + h/2)``, semi-axes ``w/2`` and ``h/2``, a pixel inside when its centre is
    (``<= 1``). The ellipse touches the box's four sides, so its projections onto the x and y axes are
    the box's (to the pixel); a box too thin for any pixel centre still marks the pixel holding its
    centre, as :func:`box_to_mask` does. The "filled ellipse" of Khoreva et al., "Simple Does It"
    (CVPR 2017): the box's least-committal lesion shape."""
    h_img, w_img = int(size[0]), int(size[1])
    mask = np.zeros((h_img, w_img), bool)
    for x, y, w, h in np.asarray(boxes, np.float64).reshape(-1, 4):
        c0, c1 = _span(x, w, w_img)
        r0, r1 = _span(y, h, h_img)
        cols = (np.arange(c0, c1) + 0.5 - (x + w / 2)) / max(w / 2, 1e-9)
        rows = (np.arange(r0, r1) + 0.5 - (y + h / 2)) / max(h / 2, 1e-9)
        inside = rows[:, None] ** 2 + cols[None, :] ** 2 <= 1.0
        # the centre row and column always: a box a pixel or two thick keeps its full extent
        inside[np.abs(rows).argmin(), :] = True
        inside[:, np.abs(cols).argmin()] = True
        mask[r0:r1, c0:c1] |= inside
    return mask


def _span(start: float, length: float, limit: int) -> Tuple[int, int]:
    lo, hi = math.ceil(start - 0.5), math.ceil(start + length - 0.5)
    if hi <= lo:  # thinner than a pixel: the pixel holding its centre
        lo = min(max(int(math.floor(start + length / 2)), 0), limit - 1)
        hi = lo + 1
    return max(lo, 0), min(hi, limit)


def mask_to_box(mask: np.ndarray, per_component: bool = True) -> np.ndarray:
    """float32 (N, 4) ``[x, y, w, h]`` boxes of a bool (H, W) mask (N = 0 for an empty mask).

    ``per_component=True`` (the default, used to derive training boxes from masks): the tight box
    of each 8-connected component, ordered by first pixel in raster order. The union of these boxes
    has exactly the mask's projections onto the x and y axes (each component's projection is an
    interval), so the box-supervised loss sees what the mask's boxes say and nothing more.
    ``per_component=False``: one box around the whole mask."""
    mask = np.asarray(mask, bool)
    if mask.ndim != 2:
        raise ValueError(f"mask_to_box: expected a (H, W) mask, got shape {mask.shape}")
    if not mask.any():
        return np.zeros((0, 4), np.float32)
    if not per_component:
        rows, cols = np.flatnonzero(mask.any(axis=1)), np.flatnonzero(mask.any(axis=0))
        return np.array([[cols[0], rows[0], cols[-1] - cols[0] + 1, rows[-1] - rows[0] + 1]], np.float32)
    from scipy import ndimage

    labels, n = ndimage.label(mask, structure=np.ones((3, 3), int))
    slices = ndimage.find_objects(labels)
    firsts = ndimage.minimum(np.arange(mask.size).reshape(mask.shape), labels, index=np.arange(1, n + 1))
    order = np.argsort(np.asarray(firsts), kind="stable")
    out = np.zeros((n, 4), np.float32)
    for k, i in enumerate(order):
        rs, cs = slices[i]
        out[k] = (cs.start, rs.start, cs.stop - cs.start, rs.stop - rs.start)
    return out
