"""What every annotation reader gives and every writer takes: frames of one video with their masks
(or boxes).

A reader returns :class:`AnnotatedFrame` items that name their frame by a reference (a file name,
a stem, or a frame number); :func:`match_annotations` ties them to the frames of the video the user
gives (``--frames DIR_OR_VIDEO``), checking that every frame exists and has the annotation's size,
and that every box lies inside its frame.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple, Union

import numpy as np

from ..data.boxes import validate_boxes
from . import AnnotationError


@dataclass
class AnnotatedFrame:
    """One annotated frame. ``ref``: the file name (``frame_000012.png``, ``12.png``) or frame number
    (int) the annotation file names it by; ``size``: (H, W) the file declares (None if it does not);
    ``mask``: bool (H, W), the union of the selected labels' shapes (all False: no lesion), or None
    for a frame annotated with boxes: ``boxes`` float32 (N, 4) ``[x, y, w, h]`` (N = 0: no lesion;
    :mod:`lgrnet.data.boxes`)."""

    ref: Union[str, int]
    size: Optional[Tuple[int, int]]
    mask: Optional[np.ndarray]
    boxes: Optional[np.ndarray] = None


@dataclass
class VideoMasks:
    """Masks of one video for writing: ``frames[i] = (file name, (H, W), mask or None)`` in order;
    a None mask is a frame that is not annotated."""

    name: str
    frames: List[Tuple[str, Tuple[int, int], Optional[np.ndarray]]]


def _number(name: str) -> Optional[int]:
    """The last number in a file name's stem (``frame_000012.png`` -> 12), or None."""
    nums = re.findall(r"\d+", Path(name).stem)
    return int(nums[-1]) if nums else None


def match_to_source(items: Sequence[AnnotatedFrame], source, what: Union[str, Path]) -> Dict[int, np.ndarray]:
    """{source frame index: mask} for ``items`` of the annotation file ``what`` (see
    :func:`match_annotations`; the masks only)."""
    return match_annotations(items, source, what)[0]


def match_annotations(items: Sequence[AnnotatedFrame], source, what: Union[str, Path]
                      ) -> Tuple[Dict[int, np.ndarray], Dict[int, np.ndarray]]:
    """({source frame index: mask}, {source frame index: boxes (N, 4)}) for ``items`` of the
    annotation file ``what``.

    ``source``: a :class:`lgrnet.io.source.FrameSource`. A frame folder is matched by file name
    (then by stem, so ``12.jpg`` in the file matches ``12.png`` on disk); a video or DICOM file by
    the frame number (int references, or the last number of a name, as CVAT names a video's frames
    ``frame_000012.png``). Raises :class:`AnnotationError` for a frame that is not in the source, a
    size that differs from the source's frames, or two annotations of one frame, and
    :class:`lgrnet.data.boxes.BoxError` for a box outside its frame or of non-positive size.
    """
    H, W = source.frame_size
    n = source.count_frames()
    by_name: Dict[str, int] = {}
    if source.kind == "frames":
        for i, name in enumerate(source.names()):
            by_name.setdefault(name, i)
            by_name.setdefault(Path(name).stem, i)
    out: Dict[int, np.ndarray] = {}
    boxes: Dict[int, np.ndarray] = {}
    refs: Dict[int, Union[str, int]] = {}
    for item in items:
        ref = item.ref
        if isinstance(ref, int):
            index: Optional[int] = ref if 0 <= ref < n else None
        elif source.kind == "frames":
            base = Path(ref.replace("\\", "/")).name
            index = by_name.get(base, by_name.get(Path(base).stem))
        else:
            num = _number(ref)
            index = num if num is not None and 0 <= num < n else None
        if index is None:
            where = f"frame {ref}" if isinstance(ref, int) else repr(ref)
            raise AnnotationError(f"{what}: frame missing: {where} is not a frame of {source.path} "
                                  f"({n} frames{', matched by file name' if source.kind == 'frames' else ', matched by frame number'})")
        size = item.size or (item.mask.shape if item.mask is not None else (H, W))
        if tuple(size) != (H, W) or (item.mask is not None and item.mask.shape != (H, W)):
            raise AnnotationError(f"{what}: size different: {ref!r} is annotated at {size[1]}x{size[0]}, but the frames of "
                                  f"{source.path} are {W}x{H}")
        if index in refs:
            raise AnnotationError(f"{what}: frame {index} of {source.path} is annotated twice ({refs[index]!r} and {ref!r})")
        if item.mask is not None:
            out[index] = item.mask
        else:
            boxes[index] = validate_boxes(item.boxes if item.boxes is not None else [], (H, W), f"{what}: frame {ref!r}")
        refs[index] = ref
    if not refs:
        raise AnnotationError(f"{what}: annotates no frame")
    return out, boxes


def select_labels(available: Sequence[str], wanted: Optional[Sequence[str]], what: Union[str, Path],
                  background: Sequence[str] = ()) -> List[str]:
    """The labels that make the lesion mask: ``wanted`` (each must be in ``available``), or the one
    label the file defines (``background`` names excluded). Raises :class:`AnnotationError`."""
    names = [a for a in available if a not in background]
    if wanted:
        unknown = [w for w in wanted if w not in available]
        if unknown:
            raise AnnotationError(f"{what}: unknown label {', '.join(map(repr, unknown))}; the file defines "
                                  f"{', '.join(map(repr, available)) or 'no labels'}")
        return list(wanted)
    if len(names) == 1:
        return names
    if not names:
        raise AnnotationError(f"{what}: defines no label")
    raise AnnotationError(f"{what}: defines several labels ({', '.join(map(repr, names))}); pass --label NAME "
                          f"(repeatable) to say which make the mask")
