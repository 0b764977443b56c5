"""Corrected masks of a result folder: the layout the review page writes and ``lgrnet dataset`` reads.

Beside the model's own ``masks/`` (never modified), a result folder may hold::

    corrections/masks/<frame>.png   uint8 0/255 mask at the frame's original size, the corrected mask
    corrections/status.json         per-frame review state, schema below

``<frame>`` is the stem of the model's mask file for that frame, ``f"{index:06d}"`` (``000012`` for
frame 12), so ``corrections/masks/000012.png`` replaces ``masks/000012.png``. Readers also accept the
frame's ``name`` from predictions.json (``"504.png"`` or its stem ``"504"``) as a key, so a writer
that names frames that way is read the same.

``status.json`` (version 1)::

    {"version": 1,
     "frames": {"<frame>": {"state": "checked" | "edited",
                            "time": "<ISO-8601 time of the last change, e.g. 2026-12-01T21:50:03Z>",
                            "version": <int, incremented by every write of this frame>}}}

- ``checked``: the model's mask is right as it is (no file in ``corrections/masks/`` needed; if one
  exists it is used);
- ``edited``: the frame's corrected mask is ``corrections/masks/<frame>.png`` (it must exist);
- frames missing from ``frames`` have not been reviewed.

``version`` lets concurrent editors refuse stale writes (a write must name the version it read).
Every file here is written atomically (:mod:`lgrnet.files`).
"""
from __future__ import annotations

import datetime
import json
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, Mapping, Optional, Union

from ..errors import InputError
from ..files import write_text_atomic

CORRECTIONS_DIR = "corrections"
MASKS_DIR = "masks"
STATUS_FILE = "status.json"
SCHEMA_VERSION = 1
STATES = ("checked", "edited")

PathLike = Union[str, os.PathLike]


@dataclass(frozen=True)
class FrameStatus:
    """The review state of one frame: ``state`` in :data:`STATES`, ``time`` ISO-8601, ``version`` >= 0."""

    state: str
    time: str
    version: int = 1

    def to_json(self) -> Dict[str, object]:
        return {"state": self.state, "time": self.time, "version": self.version}


def frame_key(index: int) -> str:
    """The key and mask-file stem of frame ``index``: ``000012``."""
    return f"{int(index):06d}"


def now_iso() -> str:
    """The current UTC time as ISO-8601 with a ``Z`` (second resolution)."""
    return datetime.datetime.now(datetime.timezone.utc).replace(microsecond=0).isoformat().replace("+00:00", "Z")


def status_path(result: PathLike) -> Path:
    return Path(result) / CORRECTIONS_DIR / STATUS_FILE


def mask_path(result: PathLike, key: str) -> Path:
    """``<result>/corrections/masks/<key>.png``."""
    if not re.fullmatch(r"[A-Za-z0-9._-]+", key) or key in (".", ".."):
        raise ValueError(f"{key!r}: not a valid frame key")
    return Path(result) / CORRECTIONS_DIR / MASKS_DIR / f"{key}.png"


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
            raise InputError(f"{path}: frame {key!r} must have \"state\": \"checked\" or \"edited\", got {entry!r}")
        v = entry.get("version", 1)
        if not isinstance(v, int) or isinstance(v, bool) or v < 0:
            raise InputError(f"{path}: frame {key!r} has an invalid version {v!r}")
        out[str(key)] = FrameStatus(entry["state"], str(entry.get("time", "")), v)
    return out


def write_status(result: PathLike, frames: Mapping[str, FrameStatus]) -> Path:
    """Write ``<result>/corrections/status.json`` atomically (frames in key order)."""
    path = status_path(result)
    data = {"version": SCHEMA_VERSION, "frames": {k: frames[k].to_json() for k in sorted(frames)}}
    write_text_atomic(path, json.dumps(data, indent=1) + "\n")
    return path


def write_correction(result: PathLike, index: int, mask, state: str = "edited",
                     expected_version: Optional[int] = None) -> FrameStatus:
    """Store a corrected mask (bool (H, W); None for ``checked`` without a mask) for frame ``index``
    and its state, atomically, the mask first. ``expected_version``: refuse the write with
    :class:`ValueError` when the frame's stored version differs (a stale editor). Returns the new status.

    One process at a time: this reads, then writes, status.json without a lock (the review page
    serialises its writes; scripts should not write while it runs).
    """
    from .writers import encode_png, mask_to_uint8
    from ..files import write_bytes_atomic

    if state not in STATES:
        raise ValueError(f"state must be one of {STATES}, got {state!r}")
    frames = read_status(result)
    key = frame_key(index)
    old = frames.get(key)
    current = old.version if old else 0
    if expected_version is not None and expected_version != current:
        raise ValueError(f"frame {key}: version {expected_version} is stale (stored version {current})")
    if mask is not None:
        p = mask_path(result, key)
        write_bytes_atomic(p, encode_png(mask_to_uint8(mask), p))
    elif state == "edited":
        raise ValueError("an edited frame needs its mask")
    status = FrameStatus(state, now_iso(), current + 1)
    frames[key] = status
    write_status(result, frames)
    return status
