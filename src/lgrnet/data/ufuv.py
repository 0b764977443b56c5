"""UFUV (uterine fibroid ultrasound videos, the LGRNet paper's own dataset) as the authors lay it out.

The authors' fibroid dataset code (``data_schedule/vis/fibroid/fibroid_utils.py``) reads a root
``$DATASET_PATH/uterus_myoma/Dataset`` holding three train/test partitions of the 100 videos::

    temp/{train,test}/      80 / 20 videos   set names fibroid_train,        fibroid_validate
    temp7/{train,test}/     85 / 15 videos   set names fibroid_train_temp7,  fibroid_validate_temp7
    temp8/{train,test}/     83 / 17 videos   set names fibroid_train_temp8,  fibroid_validate_temp8

and each of them in the MICCAI VPS frame-folder layout, one mask per frame::

    <split>/Frame/<video>/<frame>.png        <split>/GT/<video>/<frame>.png

(a ``uterus_myoma_WeakPolyP_temp*/train`` box-supervision copy also exists there; it is not a
segmentation split and is not read here). Their released fibroid config trains on
``fibroid_train_temp8`` and validates on ``fibroid_validate_temp8``.

``--data ROOT --split NAME`` takes ``NAME`` as one of those set names or as a path
(``temp8/test``); ``ROOT`` may be the folder holding ``temp*/``, or one of the folders above it
named as the authors do (``uterus_myoma/Dataset/``, ``Dataset/``). The names resolve through
:data:`lgrnet.data.datasets.SPLIT_ALIASES`; the layout itself is the frame-folder layout and is
read and checked like every other split.

This module holds facts only (no file access), so :mod:`lgrnet.data.datasets` can import it.
"""
from __future__ import annotations

from pathlib import PurePath
from typing import Dict, Optional, Tuple, Union

#: The authors' set names -> the split folder under the UFUV root.
UFUV_SPLITS: Dict[str, str] = {
    "fibroid_train": "temp/train",
    "fibroid_validate": "temp/test",
    "fibroid_train_temp7": "temp7/train",
    "fibroid_validate_temp7": "temp7/test",
    "fibroid_train_temp8": "temp8/train",
    "fibroid_validate_temp8": "temp8/test",
}

#: How many videos the authors' code asserts each split holds (``SET_NAME_TO_NUM_VIDEOS``).
UFUV_VIDEO_COUNTS: Dict[str, int] = {
    "temp/train": 80, "temp/test": 20,
    "temp7/train": 85, "temp7/test": 15,
    "temp8/train": 83, "temp8/test": 17,
}

#: Folders that may sit between ``--data`` and ``temp*/`` (the authors' ``uterus_myoma/Dataset``).
UFUV_PREFIXES: Tuple[str, ...] = ("", "uterus_myoma/Dataset/", "Dataset/")


def split_aliases() -> Dict[str, Tuple[str, ...]]:
    """Each set name -> its candidate locations under a data root, first that exists wins."""
    return {name: tuple(prefix + folder for prefix in UFUV_PREFIXES) for name, folder in UFUV_SPLITS.items()}


def ufuv_folder(split: Optional[str], path: Union[str, PurePath, None] = None) -> Optional[str]:
    """``temp8/test`` and the like when ``split`` is a UFUV set name or ``path`` (the resolved split
    folder) ends in one of the UFUV split folders, else None."""
    if split in UFUV_SPLITS:
        return UFUV_SPLITS[split]
    if path is not None:
        parts = PurePath(path).parts[-2:]
        tail = "/".join(parts)
        if tail in UFUV_VIDEO_COUNTS:
            return tail
    return None


def count_note(folder: str, videos: int) -> Optional[str]:
    """A note when a UFUV split holds another number of videos than the authors' (a partial copy, or
    another release), else None."""
    expected = UFUV_VIDEO_COUNTS.get(folder)
    if expected is None or expected == videos:
        return None
    return (f"UFUV split {folder} holds {videos} video(s); the authors' holds {expected} "
            f"(a partial copy or another release: scores are not comparable with theirs)")
