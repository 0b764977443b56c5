"""Writing one video into the training layout that ``lgrnet train`` reads::

    DATASET/Frame/<video>/<frame>.<ext>     every frame of the video (the training clips' context)
    DATASET/GT/<video>/<frame>.png          uint8 0/255, for the annotated frames only
    DATASET/Box/<video>/<frame>.json        boxes (lgrnet.data.boxes), for frames annotated with boxes

Frames of a frame folder are copied byte for byte (same file names); frames of a video or DICOM
file are decoded and written as PNG named by their index (``0.png``, ``1.png``, ...; the dataset
readers sort by number). Both folders of the video are written under temporary names inside
``DATASET`` and renamed into place at the end, so an error leaves no half-written video; a video
that is already there is an error unless ``overwrite``.
"""
from __future__ import annotations

import os
import shutil
import unicodedata
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, Optional, Union

import numpy as np

from ..data.boxes import BOX_DIR_NAME, BOX_SUFFIX, box_file_text
from ..errors import UserError
from ..files import make_temp_dir
from ..results.folder import safe_filename
from ..results.writers import encode_png, mask_to_uint8

PathLike = Union[str, os.PathLike]


@dataclass
class WrittenVideo:
    """What :func:`write_video` wrote: the video's name, frame and mask counts, foreground masks,
    box files and the boxes in them."""

    name: str
    frames: int
    masks: int
    nonempty: int
    box_frames: int = 0
    boxes: int = 0


def check_video_name(name: str) -> str:
    """``name`` in Unicode NFC if it can be a folder name on any system: as
    :func:`~lgrnet.results.folder.safe_filename` leaves it (letters and digits of every script, spaces,
    most punctuation; none of ``/ \\ : * ? " < > |`` or control characters; not starting or ending with
    a dot or a space)."""
    fixed = safe_filename(name or "", default="", max_len=None)
    if not fixed or fixed != unicodedata.normalize("NFC", name):
        raise UserError(f"{name!r}: not a usable video name (no / \\ : * ? \" < > | or control characters, "
                        f"not starting or ending with a dot or a space); pass --video NAME")
    return fixed


def video_exists(out_root: PathLike, name: str) -> bool:
    out_root = Path(out_root)
    return any((out_root / sub / name).exists() for sub in ("Frame", "GT", BOX_DIR_NAME))


def write_video(out_root: PathLike, name: str, source, masks: Dict[int, np.ndarray], overwrite: bool = False,
                progress=None, boxes: Optional[Dict[int, np.ndarray]] = None) -> WrittenVideo:
    """Write every frame of ``source`` (a :class:`lgrnet.io.source.FrameSource`), the ``masks``
    (bool (H, W) by frame index) and the ``boxes`` ((N, 4) ``[x, y, w, h]`` by frame index, N may
    be 0: annotated, no lesion) as video ``name`` of the dataset ``out_root``. Every box is checked
    before anything is written (:class:`lgrnet.data.boxes.BoxError` naming the frame)."""
    out_root = Path(out_root)
    name = check_video_name(name)
    if out_root.exists() and not out_root.is_dir():
        raise UserError(f"{out_root}: is a file, not a dataset folder")
    if video_exists(out_root, name) and not overwrite:
        raise UserError(f"{out_root}: already holds video {name!r} (Frame/{name} or GT/{name}); pass --overwrite "
                        f"to replace it, or choose another --video name")
    H, W = source.frame_size
    for i, m in masks.items():
        if m.shape != (H, W):
            raise ValueError(f"mask of frame {i} is {m.shape[1]}x{m.shape[0]}, frames are {W}x{H}")
    n_frames = source.count_frames()
    box_texts: Dict[int, str] = {}
    for i, b in sorted((boxes or {}).items()):
        if not 0 <= i < n_frames:
            raise UserError(f"{name}: boxes for frame {i}, but the video has frames 0..{n_frames - 1}")
        box_texts[i] = box_file_text(b, (H, W), f"{name}: frame {i}")
    out_root.mkdir(parents=True, exist_ok=True)
    tmp = make_temp_dir(out_root, f".{name}.partial-")
    try:
        (tmp / "Frame").mkdir()
        (tmp / "GT").mkdir()
        if box_texts:
            (tmp / BOX_DIR_NAME).mkdir()
        n = 0
        for index in range(n_frames):
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
            if index in box_texts:
                (tmp / BOX_DIR_NAME / (Path(file_name).stem + BOX_SUFFIX)).write_text(box_texts[index], encoding="utf-8")
            n += 1
            if progress is not None:
                progress(n)
        for sub in ("Frame", "GT", BOX_DIR_NAME):
            final = out_root / sub / name
            if final.exists():  # overwrite: checked above (an old Box/<video> goes even when no boxes come)
                old = make_temp_dir(out_root, f".{name}.old-")
                os.replace(final, old / name)
                shutil.rmtree(old, ignore_errors=True)
            if (tmp / sub).is_dir():
                (out_root / sub).mkdir(exist_ok=True)
                os.replace(tmp / sub, final)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
        close = getattr(source, "close", None)
        if close is not None:
            close()
    return WrittenVideo(name, n, len(masks), sum(1 for m in masks.values() if m.any()), len(box_texts),
                        sum(len(np.asarray(b).reshape(-1, 4)) for b in (boxes or {}).values()))


def source_video_name(path: PathLike, explicit: Optional[str] = None) -> str:
    """The dataset video name for a source: ``explicit``, else the folder's name or the file's stem."""
    if explicit:
        return check_video_name(explicit)
    p = Path(os.path.abspath(os.fspath(path)))
    name = p.name if p.is_dir() else p.stem
    return check_video_name(safe_filename(name, default=""))
