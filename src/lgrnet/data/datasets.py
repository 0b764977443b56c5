"""Video segmentation datasets on disk: videos as ordered frames with their masks.

The common layout (MICCAI VPS, SUN-SEG, and the generic one) is::

    <split root>/Frame/<video>/<frame>.<jpg|png>
    <split root>/GT/<video>/<frame>.png

Frames are ordered by the number in their name (natural sort), not as strings.
"""
from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import List, Optional, Sequence, Tuple, Union

import numpy as np
from PIL import Image

from ..errors import InputError

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff")
FRAME_DIR_NAMES = ("Frame", "Frames", "Image", "Images", "images")
MASK_DIR_NAMES = ("GT", "Mask", "Masks", "masks", "Annotation")


class DatasetError(InputError):
    """A dataset folder cannot be used as is; the message lists the files concerned."""


def natural_key(name: str) -> Tuple:
    """Sort key that orders 'frame2' before 'frame10' (numbers compared as numbers)."""
    parts = re.split(r"(\d+)", name)
    return tuple((0, int(p)) if p.isdigit() else (1, p.lower()) for p in parts if p != "")


def natural_sorted(names: Sequence[str]) -> List[str]:
    return sorted(names, key=natural_key)


@dataclass(frozen=True)
class VideoRecord:
    """One video: its frames in temporal order and, aligned with them, its masks.

    ``masks[i]`` is None where frame i has no annotation (or the dataset has no GT at all).
    """

    name: str
    frames: Tuple[Path, ...]
    masks: Tuple[Optional[Path], ...]

    def __len__(self) -> int:
        return len(self.frames)

    @property
    def has_masks(self) -> bool:
        return any(m is not None for m in self.masks)


def _list_images(folder: Path) -> List[Path]:
    names = [n for n in os.listdir(folder) if n.lower().endswith(IMAGE_EXTENSIONS) and not n.startswith(".")]
    return [folder / n for n in natural_sorted(names)]


def _find_subdir(root: Path, candidates: Sequence[str]) -> Optional[Path]:
    for name in candidates:
        if (root / name).is_dir():
            return root / name
    return None


def split_root(root: Union[str, Path], split: Optional[str] = None) -> Path:
    """The folder holding Frame/ (and GT/) for ``root`` and an optional ``split`` sub-path."""
    root = Path(root)
    if not root.exists():
        raise DatasetError(f"{root}: no such dataset folder")
    base = root / split if split else root
    if not base.is_dir():
        raise DatasetError(f"{base}: no such split folder (root {root}, split {split!r})")
    if _find_subdir(base, FRAME_DIR_NAMES) is None:
        raise DatasetError(f"{base}: has no Frame/ folder (expected <split>/Frame/<video>/<frame> "
                           f"and <split>/GT/<video>/<frame>.png)")
    return base


def find_videos(root: Union[str, Path], split: Optional[str] = None, require_masks: bool = False) -> List[VideoRecord]:
    """All videos of a split, in natural order of their names.

    Masks are matched to frames by file stem (``12.jpg`` <-> ``12.png``).
    """
    base = split_root(root, split)
    frame_dir = _find_subdir(base, FRAME_DIR_NAMES)
    mask_dir = _find_subdir(base, MASK_DIR_NAMES)
    if require_masks and mask_dir is None:
        raise DatasetError(f"{base}: has no GT/ folder with masks")
    videos = natural_sorted([d for d in os.listdir(frame_dir) if (frame_dir / d).is_dir() and not d.startswith(".")])
    if not videos:
        # A flat folder of images: every image is a one-frame video (e.g. Kvasir-SEG).
        images = _list_images(frame_dir)
        if not images:
            raise DatasetError(f"{frame_dir}: contains no videos and no images")
        records = []
        for img in images:
            mask = None
            if mask_dir is not None:
                mask = _match_mask(mask_dir, img.stem)
            records.append(VideoRecord(img.stem, (img,), (mask,)))
        return records
    records = []
    for video in videos:
        frames = _list_images(frame_dir / video)
        masks: List[Optional[Path]] = [None] * len(frames)
        if mask_dir is not None and (mask_dir / video).is_dir():
            masks = [_match_mask(mask_dir / video, f.stem) for f in frames]
        records.append(VideoRecord(video, tuple(frames), tuple(masks)))
    return records


def _match_mask(folder: Path, stem: str) -> Optional[Path]:
    for ext in (".png", ".jpg", ".bmp", ".tif", ".jpeg"):
        p = folder / (stem + ext)
        if p.is_file():
            return p
    return None


def read_frame(path: Union[str, Path]) -> np.ndarray:
    """An RGB frame as uint8 (H, W, 3). Grey frames are repeated to 3 channels; 16-bit or RGBA
    frames are rejected with a clear error."""
    try:
        with Image.open(path) as im:
            im.load()
            mode = im.mode
            if mode in ("I;16", "I;16B", "I;16L", "I", "F"):
                raise InputError(f"{path}: {mode} frames (16-bit or float) are not supported; convert to 8-bit RGB")
            if mode in ("RGBA", "LA", "PA"):
                raise InputError(f"{path}: frame has an alpha channel ({mode}); convert it to RGB")
            return np.asarray(im.convert("RGB"))
    except InputError:
        raise
    except Exception as exc:
        raise InputError(f"{path}: cannot read image ({exc})") from None


def read_mask(path: Union[str, Path], threshold: int = 128) -> np.ndarray:
    """A binary mask as bool (H, W): grey level > ``threshold`` (the SUN-SEG toolbox's rule; RGB
    masks are converted to grey first)."""
    return read_mask_gray(path) > threshold


def read_mask_gray(path: Union[str, Path]) -> np.ndarray:
    """A mask as uint8 grey levels (H, W)."""
    try:
        with Image.open(path) as im:
            im.load()
            if im.mode in ("I;16", "I;16B", "I;16L", "I"):
                arr = np.asarray(im).astype(np.float64)
                return (arr * (255.0 / max(arr.max(), 1))).astype(np.uint8)
            return np.asarray(im.convert("L"))
    except Exception as exc:
        raise InputError(f"{path}: cannot read mask ({exc})") from None
