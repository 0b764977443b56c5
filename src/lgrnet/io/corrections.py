"""Corrections of a result folder: the masks a reviewer fixed, and which frames were reviewed.

``lgrnet view`` writes them beside the model's output, never over it::

    <result>/masks/<frame>.png                  the model's masks (not touched)
    <result>/corrections/masks/<frame>.png      a reviewer's mask, uint8 0/255 at the frame's size
    <result>/corrections/status.json            {"version": 1,
                                                 "frames": {"<frame>": {"state": "checked" | "edited",
                                                                        "time": ISO-8601 UTC,
                                                                        "version": int}}}

``<frame>`` is the stem of the model's mask file, ``f"{index:06d}"`` (:func:`frame_key`), so
``corrections/masks/<frame>.png`` and ``masks/<frame>.png`` are the same frame; the frame's source
name is ``predictions.json``'s ``frames[index]["name"]``.

- ``checked``: the reviewer confirmed the model's mask (``masks/<frame>.png``) as it is.
- ``edited``: the reviewer drew the mask; it is ``corrections/masks/<frame>.png``.
- a frame missing from ``frames`` has not been reviewed.

``version`` counts the changes to that frame (1 after the first); the review page refuses a write
whose expected version is not the current one, so two tabs cannot overwrite each other silently.
:func:`reviewed_mask_path` gives the mask to train on for a reviewed frame.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Dict, Mapping, Optional, Union

from ..errors import InputError
from ..files import write_text_atomic

CORRECTIONS_DIR = "corrections"
STATUS_NAME = "status.json"
SCHEMA_VERSION = 1
STATES = ("checked", "edited")

PathLike = Union[str, Path]


def frame_key(index: int) -> str:
    """Frame index -> its key in status.json and its file stem (``7`` -> ``"000007"``)."""
    if not isinstance(index, int) or index < 0:
        raise ValueError(f"frame index must be a non-negative integer, not {index!r}")
    return f"{index:06d}"


def frame_index(key: str) -> int:
    """The inverse of :func:`frame_key`; ValueError for anything else."""
    if not (isinstance(key, str) and len(key) >= 6 and key.isdigit() and key.isascii()) or frame_key(int(key)) != key:
        raise ValueError(f"{key!r} is not a frame key (six or more digits, as in masks/000000.png)")
    return int(key)


def utc_now() -> str:
    """The current time as ISO-8601 UTC, to the second (``2026-12-01T21:47:14+00:00``)."""
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


@dataclass(frozen=True)
class FrameStatus:
    """One reviewed frame: ``state`` in :data:`STATES`, ``time`` ISO-8601 UTC, ``version`` >= 1."""

    state: str
    time: str
    version: int

    def to_json(self) -> Dict[str, Any]:
        return {"state": self.state, "time": self.time, "version": self.version}


def corrections_dir(result_dir: PathLike) -> Path:
    return Path(result_dir) / CORRECTIONS_DIR


def status_path(result_dir: PathLike) -> Path:
    return corrections_dir(result_dir) / STATUS_NAME


def corrected_mask_path(result_dir: PathLike, index: int) -> Path:
    """``<result>/corrections/masks/<frame>.png`` (it may not exist)."""
    return corrections_dir(result_dir) / "masks" / f"{frame_key(index)}.png"


def model_mask_path(result_dir: PathLike, index: int) -> Path:
    """``<result>/masks/<frame>.png``, the model's mask (it may not exist)."""
    return Path(result_dir) / "masks" / f"{frame_key(index)}.png"


def reviewed_mask_path(result_dir: PathLike, index: int, status: FrameStatus) -> Path:
    """The mask a reviewer approved for a frame: the corrected one when ``edited``, the model's
    when ``checked``."""
    return corrected_mask_path(result_dir, index) if status.state == "edited" else model_mask_path(result_dir, index)


def parse_status(obj: Any, path: PathLike = STATUS_NAME) -> Dict[str, FrameStatus]:
    """Check a status.json object (see the module docstring) -> ``{frame key: FrameStatus}``.

    Raises :class:`InputError` naming ``path`` and the first problem.
    """
    if not isinstance(obj, dict):
        raise InputError(f"{path}: expected a JSON object")
    if obj.get("version") != SCHEMA_VERSION:
        raise InputError(f"{path}: unknown version {obj.get('version')!r} (this lgrnet reads version {SCHEMA_VERSION})")
    frames = obj.get("frames")
    if not isinstance(frames, dict):
        raise InputError(f"{path}: 'frames' must be an object")
    out: Dict[str, FrameStatus] = {}
    for key, entry in frames.items():
        try:
            frame_index(key)
        except ValueError as exc:
            raise InputError(f"{path}: {exc}") from None
        if not isinstance(entry, dict):
            raise InputError(f"{path}: frame {key}: expected an object")
        state, time, version = entry.get("state"), entry.get("time"), entry.get("version")
        if state not in STATES:
            raise InputError(f"{path}: frame {key}: state {state!r} is not one of {', '.join(STATES)}")
        if not isinstance(time, str):
            raise InputError(f"{path}: frame {key}: 'time' must be an ISO-8601 string")
        try:
            datetime.fromisoformat(time)
        except ValueError:
            raise InputError(f"{path}: frame {key}: time {time!r} is not ISO-8601") from None
        if isinstance(version, bool) or not isinstance(version, int) or version < 1:
            raise InputError(f"{path}: frame {key}: 'version' must be a positive integer, not {version!r}")
        out[key] = FrameStatus(state, time, version)
    return out


def read_status(result_dir: PathLike) -> Dict[str, FrameStatus]:
    """``{frame key: FrameStatus}`` of a result folder; empty when it has no corrections.

    Raises :class:`InputError` naming the file when status.json is unreadable or malformed.
    """
    path = status_path(result_dir)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return {}
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"{path}: cannot read ({exc})") from None
    try:
        obj = json.loads(text)
    except json.JSONDecodeError as exc:
        raise InputError(f"{path}: not valid JSON ({exc})") from None
    return parse_status(obj, path)


def status_json(frames: Mapping[str, FrameStatus]) -> Dict[str, Any]:
    """The status.json object for ``frames`` (keys in frame order)."""
    return {"version": SCHEMA_VERSION,
            "frames": {k: frames[k].to_json() for k in sorted(frames, key=frame_index)}}


def write_status(result_dir: PathLike, frames: Mapping[str, FrameStatus]) -> Path:
    """Write ``corrections/status.json`` atomically (:mod:`lgrnet.files`). Returns its path."""
    for key, st in frames.items():
        frame_index(key)
        if st.state not in STATES or st.version < 1:
            raise ValueError(f"frame {key}: bad status {st}")
    path = status_path(result_dir)
    write_text_atomic(path, json.dumps(status_json(frames), indent=1) + "\n")
    return path


def status_of(frames: Mapping[str, FrameStatus], index: int) -> Optional[FrameStatus]:
    return frames.get(frame_key(index))


__all__ = ["CORRECTIONS_DIR", "STATUS_NAME", "SCHEMA_VERSION", "STATES", "FrameStatus", "frame_key", "frame_index",
           "utc_now", "corrections_dir", "status_path", "corrected_mask_path", "model_mask_path",
           "reviewed_mask_path", "parse_status", "read_status", "status_json", "write_status", "status_of"]
