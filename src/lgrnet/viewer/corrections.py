"""The review page's corrections API: a reviewer's masks and per-frame states, saved in the result folder.

Files (the layout and schema are :mod:`lgrnet.results.corrections`'s): ``corrections/masks/<frame>.png``
and ``corrections/status.json``, beside the model's ``masks/``, which are never written.

Routes (``rid`` a result id, ``i`` a frame index counted from 0; entries of the server's route
table, :data:`ROUTES`)::

    GET  /api/results/<rid>/corrections              {"version": 1, "frames": {...}, "writable": bool}
    GET  /api/results/<rid>/corrections/<i>.png      the frame's current mask (the reviewer's, else the
                                                     model's, else empty), headers X-Mask-Version,
                                                     X-Mask-Source (corrected | model | empty), X-Mask-State
    PUT  /api/results/<rid>/corrections/<i>.png      body: a PNG mask; header X-Expected-Version: N
    POST /api/results/<rid>/corrections/<i>/status   body: {"state": "checked" | "edited" | "boxed" |
                                                            "unchecked", "version": N}
    GET  /api/results/<rid>/corrections/<i>/boxes    the frame's state (as in status.json) with
                                                     "boxes": [[x, y, w, h], ...] (null: the frame has
                                                     none) and "frame_size": [H, W]
    PUT  /api/results/<rid>/corrections/<i>/boxes    body: {"boxes": [[x, y, w, h], ...], "version": N}
                                                     (application/json; frame pixels, COCO's convention;
                                                     [] = the frame shows no lesion): state "boxed"

Each write records who made it (the request's reviewer: the name bound to the access token, else
the name the page sends in ``X-Reviewer``) and when. The writing (version check, lock, files) is the
result folder's one corrections writer, :func:`lgrnet.results.corrections.save_mask` /
:func:`~lgrnet.results.corrections.save_boxes` / :func:`~lgrnet.results.corrections.set_state`;
this module is its HTTP face: a stale write (another tab, session or reviewer changed the frame
since this one read it, :class:`~lgrnet.results.corrections.StaleWrite`) is answered with 409 naming
who changed it, a state that contradicts the files or an invalid box
(:class:`~lgrnet.results.corrections.BadCorrection`) with 400 and one line.
"""
from __future__ import annotations

import io
import json
import os
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Dict, Iterator, List, Optional, Tuple

import numpy as np
from PIL import Image

from ..data.boxes import box_file_text
from ..errors import InputError
from ..results import corrections
from ..results.corrections import (BadCorrection, FrameStatus, StaleWrite, corrected_boxes_path, corrected_mask_path,
                                   read_status, status_json)
from ..results.folder import Result, frame_key
from .routing import HttpError, Reply, Request, Route
from .served_files import NotServed, read_result_file

MAX_STATUS_BYTES = 4096
MAX_BOXES_BYTES = 256 << 10  # thousands of boxes
MAX_MASK_BYTES = 64 << 20  # whatever the frame size
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


# -- the store: the result folder's one locked writer, its errors as HTTP statuses --------------

def _read_inside(root: Path, path: Path) -> Optional[bytes]:
    """The bytes of ``path`` if it is a regular file inside ``root`` (no symlink, as the rest of the
    page serves); None if it does not exist; 403 otherwise."""
    try:
        return read_result_file(root, path)
    except NotServed as exc:
        raise HttpError(403, str(exc)) from None


def frame_size(r: Result, index: int) -> Optional[Tuple[int, int]]:
    """(width, height) of frame ``index`` of result ``r``: its model mask's, else predictions.json's;
    None if unknown."""
    p = r.mask_path(index)
    if p.is_file() and not p.is_symlink():
        try:
            with Image.open(p) as im:
                return im.size
        except (OSError, ValueError):
            pass
    w, h = r.meta.get("width"), r.meta.get("height")
    if isinstance(w, int) and isinstance(h, int) and w > 0 and h > 0:
        return (w, h)
    return None


def decode_mask_png(data: bytes, size: Tuple[int, int]) -> np.ndarray:
    """A PNG upload -> bool mask (H, W). Refused (415/400) unless it is a PNG of exactly ``size``
    (width, height) whose pixels are all 0 or 255 (grey, or RGB with equal channels; alpha, if
    any, 255), or a 1-bit PNG. The size is checked from the header before decoding."""
    if not data.startswith(PNG_SIGNATURE):
        raise HttpError(415, "the mask must be a PNG file")
    try:
        with Image.open(io.BytesIO(data), formats=["PNG"]) as im:
            if im.size != tuple(size):
                raise HttpError(400, f"the mask is {im.size[0]}x{im.size[1]} pixels; the frame is {size[0]}x{size[1]}")
            if im.mode not in ("1", "L", "LA", "RGB", "RGBA"):
                raise HttpError(400, f"the mask's PNG mode {im.mode} is not a grey or RGB(A) image")
            im.load()
            arr = np.asarray(im)
    except HttpError:
        raise
    except Exception as exc:  # Pillow raises many kinds for broken files
        raise HttpError(400, f"the mask is not a readable PNG ({type(exc).__name__}: {exc})") from None
    if arr.dtype == bool:
        return arr.copy()
    if arr.ndim == 3:
        colour, alpha = arr[..., : 1 if arr.shape[2] == 2 else 3], arr[..., 3 if arr.shape[2] == 4 else 1:]
        if arr.shape[2] in (2, 4) and (alpha != 255).any():
            raise HttpError(400, f"the mask has {int((alpha != 255).sum())} pixels that are not fully opaque")
        if (colour != colour[..., :1]).any():
            raise HttpError(400, "the mask has coloured pixels: every pixel must be black (0) or white (255)")
        arr = colour[..., 0]
    bad = (arr != 0) & (arr != 255)
    if bad.any():
        raise HttpError(400, f"the mask has {int(bad.sum())} pixels that are neither 0 nor 255 (a binary mask is needed)")
    return arr == 255


def encode_mask_png(mask: np.ndarray) -> bytes:
    """bool (H, W) -> PNG bytes, uint8 0/255 grey (as the model's masks/ are written)."""
    buf = io.BytesIO()
    Image.fromarray(mask.astype(np.uint8) * 255).save(buf, format="PNG")
    return buf.getvalue()


_UNREADABLE = "; corrections are read-only until this file is fixed or moved away"


def _statuses(root: Path) -> Dict[str, FrameStatus]:
    try:
        return read_status(root)
    except InputError as exc:  # never overwrite a file we cannot read: refuse until it is fixed
        raise HttpError(500, f"{exc}{_UNREADABLE}") from None


def _label(index: int) -> str:
    return f"frame {index}"  # counted from 0, as the page, the URL and the files (masks/000014.png) count


def _frame_json(index: int, st: Optional[FrameStatus]) -> Dict[str, Any]:
    return {"frame": frame_key(index), "index": index, "state": st.state if st else "unchecked",
            "version": st.version if st else 0, "time": st.time if st else None,
            "reviewer": (st.reviewer or None) if st else None}


@contextmanager
def _as_refusals() -> Iterator[None]:
    """The writer's errors as the statuses the page expects: stale 409, contradictory 400,
    unreadable status.json 500."""
    try:
        yield
    except StaleWrite as exc:
        cur = exc.current
        who = f" by {cur.reviewer}" if cur is not None and cur.reviewer else ""
        when = f" at {cur.time}" if cur is not None and cur.time else ""
        raise HttpError(409, f"{_label(exc.index)} was changed elsewhere{who}{when} (another tab, session or reviewer) "
                             f"since this page read it: version {exc.stored} now, {exc.expected} expected; reload the "
                             "frame to see the saved mask", current=_frame_json(exc.index, cur)) from None
    except BadCorrection as exc:
        raise HttpError(400, str(exc)) from None
    except InputError as exc:
        raise HttpError(500, f"{exc}{_UNREADABLE}") from None


def save_mask(root: Path, index: int, mask: np.ndarray, expected: int, reviewer: str = "") -> Dict[str, Any]:
    """:func:`lgrnet.results.corrections.save_mask`, answered as the frame's JSON."""
    with _as_refusals():
        return _frame_json(index, corrections.save_mask(root, index, mask, expected, reviewer=reviewer))


def save_boxes(root: Path, index: int, boxes: Any, frame_size: Tuple[int, int], expected: int,
               reviewer: str = "") -> Dict[str, Any]:
    """:func:`lgrnet.results.corrections.save_boxes` (``frame_size`` (H, W)), answered as the frame's
    JSON with its boxes."""
    with _as_refusals():
        st = corrections.save_boxes(root, index, boxes, frame_size, expected, reviewer=reviewer)
    written = json.loads(box_file_text(boxes, frame_size))  # what the file holds (it was valid)
    return {**_frame_json(index, st), "boxes": written["boxes"], "frame_size": written["frame_size"]}


def _boxes_json(root: Path, index: int, size: Tuple[int, int]) -> Optional[List[List[float]]]:
    """The frame's saved boxes, numbers as the file writes them (None: it has none); 500 naming
    the file when it is not a valid box file for a frame of ``size`` (H, W)."""
    data = _read_inside(root, corrected_boxes_path(root, index))
    if data is None:
        return None
    try:
        corrections.read_boxes(root, index, size)  # checked (one line naming the file)
        return [list(b) for b in json.loads(data)["boxes"]]
    except InputError as exc:
        raise HttpError(500, str(exc)) from None


def set_state(root: Path, index: int, state: Any, expected: int, reviewer: str = "") -> Dict[str, Any]:
    """:func:`lgrnet.results.corrections.set_state`, answered as the frame's JSON."""
    with _as_refusals():
        return _frame_json(index, corrections.set_state(root, index, state, expected, reviewer=reviewer))


# -- HTTP routes ------------------------------------------------------------------------------

def _expected_version(req: Request) -> int:
    v = (req.headers.get("X-Expected-Version") or "").strip()
    if not v.isdigit() or len(v) > 12:
        raise HttpError(428, "a mask upload needs the header X-Expected-Version: N (the version it replaces; 0 "
                             "for a frame not yet reviewed)")
    return int(v)


def frame_of(req: Request) -> Tuple[Result, int]:
    """The request's result and frame index (404 for a frame out of range)."""
    r = req.app.result(req.params["rid"])
    index = req.params["index"]
    if not 0 <= index < r.num_frames:
        raise HttpError(404, f"frame {index} out of range (the result has frames 0 to {r.num_frames - 1})")
    return r, index


def _reviewer(req: Request) -> str:
    """Who writes: required when the page is served with access tokens (every write then says who)."""
    if not req.reviewer and getattr(req.app, "auth", None) is not None:
        raise HttpError(400, "say who you are before correcting: type your name in the page's reviewer box")
    return req.reviewer


@contextmanager
def _writing(r: Result) -> Iterator[None]:
    try:
        yield
    except PermissionError as exc:
        raise HttpError(403, f"cannot save corrections in {r.root}: {exc.strerror}") from None


def _get_status(req: Request) -> Reply:
    r = req.app.result(req.params["rid"])
    return Reply.json({**status_json(_statuses(r.root)), "writable": os.access(r.root, os.W_OK)})


def current_mask(r: Result, index: int) -> Tuple[Optional[FrameStatus], str, Optional[bytes]]:
    """Frame ``index``'s mask as the page shows it: (its review status or None, the source
    "corrected" | "model" | "empty", the PNG bytes or None for "empty"). The status is read before
    the mask: a write in between pairs an old version with the new mask, which makes the client's
    next write a (false) conflict rather than a silent overwrite."""
    st = _statuses(r.root).get(frame_key(index))
    for source, path in (("corrected", corrected_mask_path(r.root, index)), ("model", r.mask_path(index))):
        data = _read_inside(r.root, path)
        if data is not None:
            return st, source, data
    return st, "empty", None


def _get_mask(req: Request) -> Reply:
    r, index = frame_of(req)
    st, source, data = current_mask(r, index)
    extra = {"Cache-Control": "no-store", "X-Mask-Version": str(st.version if st else 0),
             "X-Mask-State": st.state if st else "unchecked"}
    if data is not None:
        return Reply(200, data, "image/png", {**extra, "X-Mask-Source": source})
    size = frame_size(r, index)
    if size is None:
        raise HttpError(404, f"{_label(index)} has no mask and its size is unknown")
    return Reply(200, encode_mask_png(np.zeros(size[::-1], bool)), "image/png", {**extra, "X-Mask-Source": "empty"})


def _put_mask(req: Request) -> Reply:
    r, index = frame_of(req)
    expected = _expected_version(req)
    reviewer = _reviewer(req)
    size = frame_size(r, index)
    if size is None:
        raise HttpError(409, f"{_label(index)}: its size is unknown (no model mask, no width/height)")
    data = req.read_body(min(MAX_MASK_BYTES, 5 * size[0] * size[1] + (1 << 20)), "the mask")
    with _writing(r):
        return Reply.json(save_mask(r.root, index, decode_mask_png(data, size), expected, reviewer))


def _post_status(req: Request) -> Reply:
    r, index = frame_of(req)
    ctype = (req.headers.get("Content-Type") or "").split(";")[0].strip().lower()
    if ctype != "application/json":  # also keeps plain HTML forms of other sites out
        raise HttpError(415, "the status must be sent as application/json")
    try:
        obj = json.loads(req.read_body(MAX_STATUS_BYTES, "the status"))
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise HttpError(400, "the status is not valid JSON") from None
    version = obj.get("version") if isinstance(obj, dict) else None
    if isinstance(version, bool) or not isinstance(version, int):
        raise HttpError(400, 'the status must be {"state": ..., "version": N}')
    reviewer = _reviewer(req)
    with _writing(r):
        return Reply.json(set_state(r.root, index, obj.get("state"), version, reviewer))


def _known_size(r: Result, index: int) -> Tuple[int, int]:
    """(H, W) of frame ``index``; 409 when unknown."""
    size = frame_size(r, index)
    if size is None:
        raise HttpError(409, f"{_label(index)}: its size is unknown (no model mask, no width/height)")
    return size[1], size[0]


def _get_boxes(req: Request) -> Reply:
    r, index = frame_of(req)
    st = _statuses(r.root).get(frame_key(index))  # the version before the boxes, as for masks
    size = _known_size(r, index)
    return Reply.json({**_frame_json(index, st), "boxes": _boxes_json(r.root, index, size), "frame_size": list(size)})


def _put_boxes(req: Request) -> Reply:
    r, index = frame_of(req)
    obj = _json_body(req, MAX_BOXES_BYTES, "the boxes")
    version = obj.get("version") if isinstance(obj, dict) else None
    if isinstance(version, bool) or not isinstance(version, int) or "boxes" not in obj:
        raise HttpError(400, 'the boxes must be sent as {"boxes": [[x, y, w, h], ...], "version": N}')
    reviewer = _reviewer(req)
    size = _known_size(r, index)
    with _writing(r):
        return Reply.json(save_boxes(r.root, index, obj["boxes"], size, version, reviewer))


def _json_body(req: Request, limit: int, what: str) -> Any:
    ctype = (req.headers.get("Content-Type") or "").split(";")[0].strip().lower()
    if ctype != "application/json":  # also keeps plain HTML forms of other sites out
        raise HttpError(415, f"{what} must be sent as application/json")
    try:
        return json.loads(req.read_body(limit, what))
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise HttpError(400, f"{what}: not valid JSON") from None


#: The corrections' entries of the server's route table (:data:`lgrnet.viewer.server.ROUTES`).
ROUTES: List[Route] = [
    Route("GET", "/api/results/<rid>/corrections", _get_status),
    Route("GET", "/api/results/<rid>/corrections/<index:int>.png", _get_mask),
    Route("PUT", "/api/results/<rid>/corrections/<index:int>.png", _put_mask),
    Route("POST", "/api/results/<rid>/corrections/<index:int>/status", _post_status),
    Route("GET", "/api/results/<rid>/corrections/<index:int>/boxes", _get_boxes),
    Route("PUT", "/api/results/<rid>/corrections/<index:int>/boxes", _put_boxes),
]

__all__ = ["ROUTES", "current_mask", "decode_mask_png", "encode_mask_png", "frame_of", "frame_size", "save_mask",
           "set_state"]
