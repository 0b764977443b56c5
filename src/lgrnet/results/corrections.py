"""Corrected masks of a result folder: the layout the review page writes and ``lgrnet dataset`` reads.

Beside the model's own ``masks/`` (never modified), a result folder may hold::

    corrections/masks/<frame>.png   uint8 0/255 mask at the frame's original size, the corrected mask
    corrections/boxes/<frame>.json  the frame's boxes, a box file of :mod:`lgrnet.data.boxes`:
                                    {"boxes": [[x, y, w, h], ...], "frame_size": [H, W]}, frame pixels,
                                    COCO's convention; an empty list: the frame shows no lesion
    corrections/status.json         per-frame review state, schema below

``<frame>`` is :func:`lgrnet.results.folder.frame_key` of the frame's index (``000012`` for
frame 12), so ``corrections/masks/000012.png`` replaces ``masks/000012.png``. Readers also accept the
frame's ``name`` from predictions.json (``"504.png"`` or its stem ``"504"``) as a key, so a writer
that names frames that way is read the same.

``status.json`` (version 1)::

    {"version": 1,
     "frames": {"<frame>": {"state": "checked" | "edited" | "boxed",
                            "time": "<ISO-8601 time of the last change, e.g. 2026-12-01T21:50:03Z>",
                            "version": <int, incremented by every write of this frame>,
                            "reviewer": "<who made the last change>"}}}   (optional)

- ``checked``: the model's mask is right as it is (no file in ``corrections/masks/`` needed; if one
  exists it is used);
- ``edited``: the frame's corrected mask is ``corrections/masks/<frame>.png`` (it must exist);
- ``boxed``: the frame is annotated by the boxes of ``corrections/boxes/<frame>.json`` (it must
  exist), not by a mask: ``lgrnet dataset from-results`` writes them as the training layout's
  ``Box/<video>/<frame>.json``;
- frames missing from ``frames`` have not been reviewed.

A frame holds one kind of correction: a mask (``edited``) or boxes (``boxed``), never both; to
change kind, forget the frame first (``unchecked``). Folders written before boxes existed read
as they did (the schema is still version 1; ``boxed`` is one more state).

``version`` lets concurrent editors refuse stale writes: every write names the version it read.
It counts every write of the frame, mask, boxes and state alike.

The one writer is :func:`save_mask` (a reviewer's mask: state ``edited``), :func:`save_boxes` (a
reviewer's boxes: state ``boxed``) and :func:`set_state` (``checked``, ``edited``, ``boxed`` or
``unchecked``); the review page and scripts alike go through them. Each checks the version and
writes while holding the folder's lock (``corrections/.lock``, ``flock`` where the system has it,
plus a lock per folder in this process), so two servers or scripts on one folder are serialised as
well as two threads of one. A stale version raises :class:`StaleWrite`; a state that contradicts
the files (``checked`` with a corrected mask or boxes, ``edited`` without a mask or with boxes,
``boxed`` without boxes or with a mask) or an invalid box (outside the frame, not a positive size)
:class:`BadCorrection`; the review page answers them with 409 and 400. Every file here is written
atomically (:mod:`lgrnet.files`).
"""
from __future__ import annotations

import datetime
import json
import os
import re
import threading
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Dict, Iterator, Mapping, Optional, Sequence, Union

import numpy as np

from ..data.boxes import BoxError, box_file_text, read_box_file
from ..errors import InputError
from ..files import write_bytes_atomic, write_text_atomic
from .folder import frame_key
from .writers import encode_png, mask_to_uint8

try:  # POSIX: a lock that other processes on the same folder see too
    import fcntl
except ImportError:  # pragma: no cover - Windows: the in-process lock only
    fcntl = None

CORRECTIONS_DIR = "corrections"
MASKS_DIR = "masks"
BOXES_DIR = "boxes"
STATUS_FILE = "status.json"
LOCK_FILE = ".lock"
SCHEMA_VERSION = 1
STATES = ("checked", "edited", "boxed")
#: what :func:`set_state` accepts: the stored states, and ``unchecked`` to forget a frame's review
SET_STATES = STATES + ("unchecked",)

PathLike = Union[str, os.PathLike]


@dataclass(frozen=True)
class FrameStatus:
    """The review state of one frame: ``state`` in :data:`STATES`, ``time`` ISO-8601, ``version`` >= 0,
    ``reviewer`` who made the last change ("" when not recorded)."""

    state: str
    time: str
    version: int = 1
    reviewer: str = ""

    def to_json(self) -> Dict[str, object]:
        out: Dict[str, object] = {"state": self.state, "time": self.time, "version": self.version}
        if self.reviewer:
            out["reviewer"] = self.reviewer
        return out


class CorrectionError(Exception):
    """A correction this module refuses to write (nothing was written)."""


class StaleWrite(CorrectionError):
    """The write named version ``expected`` of frame ``index``, but ``stored`` is the frame's version
    now (someone else changed it since it was read); ``current``: its status now (None: unreviewed)."""

    def __init__(self, index: int, expected: int, current: Optional[FrameStatus]) -> None:
        self.index, self.expected, self.current = index, expected, current
        self.stored = current.version if current else 0
        super().__init__(f"frame {frame_key(index)}: version {expected} is stale (stored version {self.stored})")


class BadCorrection(CorrectionError):
    """A state that contradicts the frame's files, or is not one of :data:`SET_STATES`."""


def now_iso() -> str:
    """The current UTC time as ISO-8601 with a ``Z`` (second resolution)."""
    return datetime.datetime.now(datetime.timezone.utc).replace(microsecond=0).isoformat().replace("+00:00", "Z")


def status_path(result: PathLike) -> Path:
    return Path(result) / CORRECTIONS_DIR / STATUS_FILE


def _check_key(key: str) -> str:
    if not re.fullmatch(r"[A-Za-z0-9._-]+", key) or key in (".", ".."):
        raise ValueError(f"{key!r}: not a valid frame key")
    return key


def mask_path(result: PathLike, key: str) -> Path:
    """``<result>/corrections/masks/<key>.png``."""
    return Path(result) / CORRECTIONS_DIR / MASKS_DIR / f"{_check_key(key)}.png"


def corrected_mask_path(result: PathLike, index: int) -> Path:
    """Where the writer puts frame ``index``'s corrected mask: ``<result>/corrections/masks/<index:06d>.png``."""
    return mask_path(result, frame_key(index))


def boxes_path(result: PathLike, key: str) -> Path:
    """``<result>/corrections/boxes/<key>.json``."""
    return Path(result) / CORRECTIONS_DIR / BOXES_DIR / f"{_check_key(key)}.json"


def corrected_boxes_path(result: PathLike, index: int) -> Path:
    """Where the writer puts frame ``index``'s boxes: ``<result>/corrections/boxes/<index:06d>.json``."""
    return boxes_path(result, frame_key(index))


def read_boxes(result: PathLike, index: int, frame_size: Optional[Sequence[int]] = None) -> Optional[np.ndarray]:
    """Frame ``index``'s corrected boxes as float32 (N, 4) ``[x, y, w, h]`` (N may be 0: no lesion),
    None when it has none. ``frame_size`` (H, W), when given, must be the file's. Raises
    :class:`InputError` (:class:`lgrnet.data.boxes.BoxError`) naming the file for a malformed one."""
    path = corrected_boxes_path(result, index)
    if not path.is_file():
        return None
    return read_box_file(path, frame_size)


def read_status(result: PathLike) -> Dict[str, FrameStatus]:
    """The frames of ``<result>/corrections/status.json`` by key (empty when the file does not exist).

    Raises :class:`InputError` naming the file when it is not valid JSON or does not follow the schema.
    """
    path = status_path(result)
    if not path.exists():
        return {}
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InputError(f"{path}: cannot read ({exc})") from None
    if not isinstance(data, dict) or not isinstance(data.get("frames", {}), dict):
        raise InputError(f"{path}: expected {{\"version\": 1, \"frames\": {{...}}}}")
    version = data.get("version", SCHEMA_VERSION)
    if version != SCHEMA_VERSION:
        raise InputError(f"{path}: schema version {version!r} is not supported (this lgrnet reads version {SCHEMA_VERSION})")
    out: Dict[str, FrameStatus] = {}
    for key, entry in data.get("frames", {}).items():
        if not isinstance(entry, dict) or entry.get("state") not in STATES:
            raise InputError(f"{path}: frame {key!r} must have \"state\": \"checked\", \"edited\" or \"boxed\", "
                             f"got {entry!r}")
        v = entry.get("version", 1)
        if not isinstance(v, int) or isinstance(v, bool) or v < 0:
            raise InputError(f"{path}: frame {key!r} has an invalid version {v!r}")
        who = entry.get("reviewer", "")
        if not isinstance(who, str):
            raise InputError(f"{path}: frame {key!r} has an invalid reviewer {who!r}")
        out[str(key)] = FrameStatus(entry["state"], str(entry.get("time", "")), v, who)
    return out


def status_json(frames: Mapping[str, FrameStatus]) -> Dict[str, object]:
    """status.json's object for ``frames`` (frames in key order)."""
    return {"version": SCHEMA_VERSION, "frames": {k: frames[k].to_json() for k in sorted(frames)}}


def write_status(result: PathLike, frames: Mapping[str, FrameStatus]) -> Path:
    """Write ``<result>/corrections/status.json`` atomically. Unlocked and unchecked: a low-level
    step of :func:`save_mask` / :func:`set_state` (and of tests that build a file as given)."""
    path = status_path(result)
    write_text_atomic(path, json.dumps(status_json(frames), indent=1) + "\n")
    return path


_thread_locks: Dict[str, threading.Lock] = {}
_thread_locks_guard = threading.Lock()


@contextmanager
def folder_lock(result: PathLike) -> Iterator[None]:
    """Hold the corrections lock of ``result`` (creates ``corrections/``): this process's lock for
    the folder, then ``flock`` on ``corrections/.lock`` where the system has it."""
    cdir = status_path(result).parent
    cdir.mkdir(parents=True, exist_ok=True)
    key = str(cdir.resolve())
    with _thread_locks_guard:
        lock = _thread_locks.setdefault(key, threading.Lock())
    with lock:
        if fcntl is None:
            yield
            return
        fd = os.open(cdir / LOCK_FILE, os.O_RDWR | os.O_CREAT | getattr(os, "O_CLOEXEC", 0), 0o666)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)  # releases the flock


def _check_version(frames: Mapping[str, FrameStatus], index: int, expected: int) -> Optional[FrameStatus]:
    cur = frames.get(frame_key(index))
    if expected != (cur.version if cur else 0):
        raise StaleWrite(index, expected, cur)
    return cur


def save_mask(result: PathLike, index: int, mask: np.ndarray, expected_version: int, reviewer: str = "") -> FrameStatus:
    """Store a corrected mask (bool (H, W), the frame's original size) for frame ``index`` and mark
    it ``edited`` by ``reviewer``, if the frame's stored version is ``expected_version`` (0: not yet
    reviewed), under the folder's lock, the mask first. Returns the new status.

    Raises :class:`StaleWrite` (nothing written) when the version differs; :class:`BadCorrection`
    when the frame holds boxes (state ``boxed``); :class:`InputError` when status.json cannot be read
    (it is never overwritten then)."""
    data = encode_png(mask_to_uint8(np.asarray(mask, bool)), "corrected mask")
    return _store(result, index, expected_version, "edited", reviewer,
                  lambda: write_bytes_atomic(corrected_mask_path(result, index), data),
                  corrected_boxes_path(result, index), f"frame {index} is annotated by boxes; forget them "
                  "(state 'unchecked') before correcting its mask")


def save_boxes(result: PathLike, index: int, boxes: object, frame_size: Sequence[int], expected_version: int,
               reviewer: str = "") -> FrameStatus:
    """Store frame ``index``'s boxes (``[[x, y, w, h], ...]`` or an (N, 4) array in pixels of the
    frame, N may be 0: annotated, no lesion) for a frame of ``frame_size`` (H, W) and mark it
    ``boxed`` by ``reviewer``, if the frame's stored version is ``expected_version`` (0: not yet
    reviewed), under the folder's lock. The file is :mod:`lgrnet.data.boxes`'s box file (values
    written so that they read back exactly as float32). Returns the new status.

    Raises :class:`BadCorrection` (one line, nothing written) for an invalid box (not four numbers,
    a non-positive size, outside the frame) or a frame with a corrected mask (state ``edited``),
    :class:`StaleWrite` for a stale version, :class:`InputError` when status.json cannot be read."""
    key = frame_key(index)
    try:
        text = box_file_text(boxes, frame_size, f"frame {index}")
    except BoxError as exc:
        raise BadCorrection(str(exc)) from None
    return _store(result, index, expected_version, "boxed", reviewer,
                  lambda: write_text_atomic(boxes_path(result, key), text),
                  corrected_mask_path(result, index), f"frame {index} has a corrected mask (state 'edited'); "
                  "revert it to the model's mask (state 'unchecked') before annotating it with boxes")


def _store(result: PathLike, index: int, expected_version: int, state: str, reviewer: str,
           write: Callable[[], None], conflicting: Path, conflict: str) -> FrameStatus:
    """The one write path of a frame's correction, under the folder's lock: check the version, refuse
    when ``conflicting`` (the other kind of correction) exists, ``write()`` the file, then the status
    (``state``, version + 1)."""
    with folder_lock(result):
        frames = read_status(result)
        cur = _check_version(frames, index, expected_version)
        if conflicting.is_file():
            raise BadCorrection(conflict)
        write()
        new = FrameStatus(state, now_iso(), (cur.version if cur else 0) + 1, reviewer)
        frames[frame_key(index)] = new
        write_status(result, frames)
    return new


def set_state(result: PathLike, index: int, state: str, expected_version: int,
              reviewer: str = "") -> Optional[FrameStatus]:
    """Mark frame ``index`` ``checked`` (the model's mask is right: no corrected mask or boxes may
    exist), ``edited`` (its corrected mask must exist), ``boxed`` (its boxes must exist) or
    ``unchecked`` (forget the review and remove the corrected mask and boxes: back to the model's),
    if its stored version is ``expected_version``, under the folder's lock, recording ``reviewer``.
    Returns the new status (None for ``unchecked``).

    Raises :class:`BadCorrection` for a state that contradicts the files or is not in
    :data:`SET_STATES`, :class:`StaleWrite` for a stale version (nothing written either way)."""
    if state not in SET_STATES:
        raise BadCorrection(f"state {state!r}: expected checked, edited, boxed or unchecked")
    path = corrected_mask_path(result, index)
    bpath = corrected_boxes_path(result, index)
    key = frame_key(index)
    with folder_lock(result):
        frames = read_status(result)
        cur = _check_version(frames, index, expected_version)
        has_mask, has_boxes = path.is_file(), bpath.is_file()
        if state == "checked" and (has_mask or has_boxes):
            kind = "a corrected mask, so it is 'edited'" if has_mask else "boxes, so it is 'boxed'"
            raise BadCorrection(f"frame {key} has {kind}; revert it to the model's mask (state 'unchecked') "
                                "before marking it checked")
        if state == "edited" and (not has_mask or has_boxes):
            raise BadCorrection(f"frame {key} has no corrected mask to mark as edited" if not has_mask else
                                f"frame {key} has boxes, so it is 'boxed', not 'edited'")
        if state == "boxed" and (not has_boxes or has_mask):
            raise BadCorrection(f"frame {key} has no boxes to mark as boxed" if not has_boxes else
                                f"frame {key} has a corrected mask, so it is 'edited', not 'boxed'")
        new: Optional[FrameStatus] = None
        if state == "unchecked":
            frames.pop(key, None)
            path.unlink(missing_ok=True)  # asked for: the reviewer's mask and boxes of this frame go
            bpath.unlink(missing_ok=True)
        else:
            new = FrameStatus(state, now_iso(), (cur.version if cur else 0) + 1, reviewer)
            frames[key] = new
        write_status(result, frames)
    return new
