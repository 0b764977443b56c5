"""Writing one video into the training layout that ``lgrnet train`` reads::

    DATASET/Frame/<video>/<frame>.<ext>     every frame of the video (the training clips' context)
    DATASET/GT/<video>/<frame>.png          uint8 0/255, for the annotated frames only

Frames of a frame folder are copied byte for byte (same file names); frames of a video or DICOM
file are decoded and written as PNG named by their index (``0.png``, ``1.png``, ...; the dataset
readers sort by number). Both folders of the video are written under temporary names inside
``DATASET`` and renamed into place at the end, so an error leaves no half-written video; a video
that is already there is an error unless ``overwrite``.
"""
from __future__ import annotations

import os
import re
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, Optional, Union

import numpy as np

from ..errors import UserError
from ..files import make_temp_dir
from ..results.writers import encode_png, mask_to_uint8

PathLike = Union[str, os.PathLike]


@dataclass
class WrittenVideo:
    """What :func:`write_video` wrote: the video's name, frame and mask counts, foreground masks."""

    name: str
    frames: int
    masks: int
    nonempty: int


def check_video_name(name: str) -> str:
    """``name`` if it can be a folder name (letters, digits, ``._-``, not starting with a dot)."""
    if not re.fullmatch(r"[A-Za-z0-9_-][A-Za-z0-9._-]*", name or ""):
        raise UserError(f"{name!r}: not a usable video name (letters, digits, '.', '_', '-'); pass --video NAME")
    return name


def video_exists(out_root: PathLike, name: str) -> bool:
    out_root = Path(out_root)
    return (out_root / "Frame" / name).exists() or (out_root / "GT" / name).exists()


def write_video(out_root: PathLike, name: str, source, masks: Dict[int, np.ndarray], overwrite: bool = False,
                progress=None) -> WrittenVideo:
    """Write every frame of ``source`` (a :class:`lgrnet.io.source.FrameSource`) and the ``masks``
    (bool (H, W) by frame index) as video ``name`` of the dataset ``out_root``."""
    out_root = Path(out_root)
    check_video_name(name)
    if out_root.exists() and not out_root.is_dir():
        raise UserError(f"{out_root}: is a file, not a dataset folder")
    if video_exists(out_root, name) and not overwrite:
        raise UserError(f"{out_root}: already holds video {name!r} (Frame/{name} or GT/{name}); pass --overwrite "
                        f"to replace it, or choose another --video name")
    H, W = source.frame_size
    for i, m in masks.items():
        if m.shape != (H, W):
            raise ValueError(f"mask of frame {i} is {m.shape[1]}x{m.shape[0]}, frames are {W}x{H}")
    out_root.mkdir(parents=True, exist_ok=True)
    tmp = make_temp_dir(out_root, f".{name}.partial-")
    try:
        (tmp / "Frame").mkdir()
        (tmp / "GT").mkdir()
        n = 0
        for index in range(source.count_frames()):
            if source.kind == "frames":
                file_name = source.name(index)
                shutil.copyfile(source.path / file_name, tmp / "Frame" / file_name)
            else:
                import cv2

                file_name = f"{index}.png"
                frame = source.read(index)
                (tmp / "Frame" / file_name).write_bytes(encode_png(cv2.cvtColor(frame, cv2.COLOR_RGB2BGR), file_name))
            if index in masks:
                stem = Path(file_name).stem
                (tmp / "GT" / f"{stem}.png").write_bytes(encode_png(mask_to_uint8(masks[index]), stem))
            n += 1
            if progress is not None:
                progress(n)
        for sub in ("Frame", "GT"):
            (out_root / sub).mkdir(exist_ok=True)
            final = out_root / sub / name
            if final.exists():  # overwrite: checked above
                old = make_temp_dir(out_root, f".{name}.old-")
                os.replace(final, old / name)
                shutil.rmtree(old, ignore_errors=True)
            os.replace(tmp / sub, final)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
        close = getattr(source, "close", None)
        if close is not None:
            close()
    return WrittenVideo(name, n, len(masks), sum(1 for m in masks.values() if m.any()))


def source_video_name(path: PathLike, explicit: Optional[str] = None) -> str:
    """The dataset video name for a source: ``explicit``, else the folder's name or the file's stem."""
    if explicit:
        return check_video_name(explicit)
    p = Path(os.path.abspath(os.fspath(path)))
    name = p.name if p.is_dir() else p.stem
    return check_video_name(re.sub(r"[^A-Za-z0-9._-]+", "_", name).lstrip("."))
