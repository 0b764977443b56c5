"""Image files as inputs: the extensions read as frames, natural (numeric) ordering of frame names,
listing a folder's images and subfolders, and reading a frame (uint8 RGB) or a mask (bool or grey)
with one clear error naming the file. Shared by the frame-folder reader, the dataset layouts, the
result folders and scoring."""
from __future__ import annotations

import os
import re
from pathlib import Path
from typing import List, Optional, Sequence, Tuple, Union

import numpy as np
from PIL import Image

from ..errors import InputError


IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff")


#: Pillow image modes that frames may not have, and what they are: converting 16-bit, float or alpha
#: images to 8-bit RGB silently would be wrong, so such frames are rejected.
UNSUPPORTED_FRAME_MODES = {
    "I;16": "16-bit", "I;16B": "16-bit", "I;16L": "16-bit", "I;16N": "16-bit", "I": "32-bit integer",
    "F": "32-bit float", "RGBA": "RGBA (alpha channel)", "LA": "grey + alpha", "PA": "palette + alpha",
    "RGBa": "RGBA (alpha channel)", "La": "grey + alpha",
}


def natural_key(name: str) -> Tuple:
    """Sort key that orders 'frame2' before 'frame10' (numbers compared as numbers)."""
    parts = re.split(r"(\d+)", name)
    return tuple((0, int(p)) if p.isdigit() else (1, p.lower()) for p in parts if p != "")


def natural_sorted(names: Sequence[str]) -> List[str]:
    return sorted(names, key=natural_key)


def list_images(folder: Path) -> List[Path]:
    """The image files (:data:`IMAGE_EXTENSIONS`, not hidden) in ``folder``, in natural order."""
    names = [n for n in os.listdir(folder) if n.lower().endswith(IMAGE_EXTENSIONS) and not n.startswith(".")]
    return [folder / n for n in natural_sorted(names) if (folder / n).is_file()]


def list_subdirs(folder: Path) -> List[str]:
    """The names of the (not hidden) sub-folders of ``folder``, in natural order."""
    return natural_sorted([d for d in os.listdir(folder) if not d.startswith(".") and (folder / d).is_dir()])


def image_header(path: Union[str, Path]) -> Tuple[Tuple[int, int], str]:
    """((W, H), Pillow mode) from an image file's header (the pixels are not decoded), or
    :class:`InputError` naming the file."""
    try:
        with Image.open(path) as im:
            return im.size, im.mode
    except Exception as exc:
        raise InputError(f"{path}: cannot read image ({reason(exc)})") from None


def reason(exc: Exception) -> str:
    """Why Pillow could not read a file, without the path it repeats."""
    from PIL import UnidentifiedImageError

    if isinstance(exc, UnidentifiedImageError):
        return "not an image, or a format Pillow cannot read"
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror
    return str(exc) or type(exc).__name__


def unsupported_frame_error(path: Union[str, Path], mode: str) -> Optional[InputError]:
    """The error for a frame of Pillow ``mode`` when frames may not have it, else None."""
    if mode in UNSUPPORTED_FRAME_MODES:
        return InputError(f"{path}: {UNSUPPORTED_FRAME_MODES[mode]} frames are not supported; convert the frames to 8-bit RGB")
    return None


def find_image(folder: Path, stem: str) -> Optional[Path]:
    """``folder/<stem>.<ext>`` for the first image extension that exists (.png first, then the
    others of :data:`IMAGE_EXTENSIONS`), or None."""
    for ext in (".png",) + tuple(e for e in IMAGE_EXTENSIONS if e != ".png"):
        p = folder / (stem + ext)
        if p.is_file():
            return p
    return None


def read_frame(path: Union[str, Path]) -> np.ndarray:
    """An RGB frame as uint8 (H, W, 3). Grey and palette frames are converted; 16-bit, float or
    alpha frames (:data:`UNSUPPORTED_FRAME_MODES`) are rejected with a clear error."""
    try:
        with Image.open(path) as im:
            im.load()
            error = unsupported_frame_error(path, im.mode)
            if error is not None:
                raise error
            return np.asarray(im.convert("RGB"))
    except InputError:
        raise
    except Exception as exc:
        raise InputError(f"{path}: cannot read image ({reason(exc)})") from None


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
        raise InputError(f"{path}: cannot read mask ({reason(exc)})") from None
