"""Masks of result folders (``lgrnet predict``) and their corrections, for datasets and exports.

A result folder records its input in predictions.json (``input``); its frames are re-read from
there. Corrections follow :mod:`lgrnet.results.corrections`: a frame's corrected mask is
``corrections/masks/<frame>.png``, a boxed frame's boxes ``corrections/boxes/<frame>.json``, and
its review state is in ``corrections/status.json``.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, List, Optional, Union

import numpy as np

from ..data.boxes import read_box_file
from ..io.images import read_mask
from ..errors import InputError
from ..results import corrections as corr
from ..results.folder import PREDICTIONS, Result, frame_key
from .frames import VideoMasks

PathLike = Union[str, os.PathLike]
ONLY = ("checked", "edited", "boxed", "all")


@dataclass
class ReviewedFrames:
    """The reviewed frames of one result: ``states[index]`` = "checked" | "edited" | "boxed", the
    path of the mask that holds each checked or edited frame's right answer (``mask_paths``), the box
    file of each boxed frame (``box_paths``), and who made the last change (``reviewers[index]``, ""
    when status.json does not say)."""

    result: Result
    states: Dict[int, str]
    mask_paths: Dict[int, Path]
    reviewers: Dict[int, str] = field(default_factory=dict)
    box_paths: Dict[int, Path] = field(default_factory=dict)


def frame_index_by_key(result: Result) -> Dict[str, int]:
    """Every key a correction may use for a frame -> its index: ``000012``, its name, its name's stem."""
    out: Dict[str, int] = {}
    for f in result.meta["frames"]:
        i = int(f["index"])
        out[frame_key(i)] = i
        name = f.get("name")
        if isinstance(name, str) and name:
            out.setdefault(name, i)
            out.setdefault(Path(name).stem, i)
    return out


def reviewed_frames(result: Result) -> ReviewedFrames:
    """The frames of ``result`` marked checked, edited or boxed, with the mask file to use for each
    checked or edited frame and the box file of each boxed one.

    Raises :class:`InputError` for a status key that names no frame, an edited frame whose
    corrected mask is missing, or a boxed frame whose box file is missing."""
    status = corr.read_status(result.root)
    keys = frame_index_by_key(result)
    states: Dict[int, str] = {}
    paths: Dict[int, Path] = {}
    box_paths: Dict[int, Path] = {}
    reviewers: Dict[int, str] = {}
    where = corr.status_path(result.root)
    for key, st in status.items():
        if key not in keys:
            raise InputError(f"{where}: frame {key!r} is not a frame of {result.root} ({result.num_frames} frames)")
        i = keys[key]
        if st.state == "boxed":
            boxes = _correction_file(result, key, i, corr.boxes_path)
            if boxes is None:
                raise InputError(f"{where}: frame {key!r} is marked boxed, but "
                                 f"{corr.corrected_boxes_path(result.root, i)} does not exist")
            states[i], box_paths[i], reviewers[i] = "boxed", boxes, st.reviewer
            continue
        fixed = _correction_file(result, key, i)
        if st.state == "edited" and fixed is None:
            raise InputError(f"{where}: frame {key!r} is marked edited, but {corr.corrected_mask_path(result.root, i)} "
                             f"does not exist")
        model = result.mask_path(i)
        if fixed is None and not model.is_file():
            raise InputError(f"{where}: frame {key!r} is marked checked, but the model's mask {model} is missing")
        states[i] = st.state
        paths[i] = fixed if fixed is not None else model
        reviewers[i] = st.reviewer
    return ReviewedFrames(result, states, paths, reviewers, box_paths)


def _correction_file(result: Result, key: str, index: int, where=corr.mask_path) -> Optional[Path]:
    """The frame's file among ``where(root, key)`` for its index key and the key status.json uses."""
    for k in dict.fromkeys([frame_key(index), key]):
        try:
            p = where(result.root, k)
        except ValueError:
            continue
        if p.is_file():
            return p
    return None


def open_result_source(result: Result):
    """The result's input (predictions.json ``input``) as a FrameSource, checked against the result."""
    from ..io import open_source

    src = result.source_path()
    if src is None:
        raise InputError(f"{result.root / PREDICTIONS}: records no input path; the frames cannot be re-read")
    if not src.exists():
        raise InputError(f"{src}: the input of {result.root} ({PREDICTIONS} 'input') is missing; "
                         f"the frames are read from it")
    source = open_source(src)
    n = source.count_frames()
    if n != result.num_frames:
        raise InputError(f"{src}: has {n} frames, but {result.root} was predicted on {result.num_frames}; "
                         f"the input changed since")
    w, h = result.meta.get("width"), result.meta.get("height")
    if isinstance(w, int) and isinstance(h, int) and (h, w) != tuple(source.frame_size):
        raise InputError(f"{src}: frames are {source.frame_size[1]}x{source.frame_size[0]}, but {result.root} "
                         f"was predicted on {w}x{h} frames; the input changed since")
    return source


def read_mask_file(path: Path, size) -> np.ndarray:
    """A 0/255 mask PNG as bool, checked to be (H, W) = ``size``."""
    m = read_mask(path, 127)
    if tuple(m.shape) != tuple(size):
        raise InputError(f"{path}: is {m.shape[1]}x{m.shape[0]}, but the frames are {size[1]}x{size[0]}")
    return m


def _selected(reviewed: ReviewedFrames, only: str, reviewer: Optional[str], kinds) -> List[int]:
    if only not in ONLY:
        raise ValueError(f"only must be one of {ONLY}, got {only!r}")
    return [i for i, s in sorted(reviewed.states.items())
            if s in kinds and (only == "all" or s == only) and (reviewer is None or reviewed.reviewers.get(i, "") == reviewer)]


def selected_masks(reviewed: ReviewedFrames, only: str, size, reviewer: Optional[str] = None) -> Dict[int, np.ndarray]:
    """{index: mask} of the checked or edited frames whose state matches ``only`` ("checked", "edited",
    "boxed" (none) or "all") and, when ``reviewer`` is given, whose last change that reviewer made."""
    return {i: read_mask_file(reviewed.mask_paths[i], size) for i in _selected(reviewed, only, reviewer, ("checked", "edited"))}


def selected_boxes(reviewed: ReviewedFrames, only: str, size, reviewer: Optional[str] = None) -> Dict[int, np.ndarray]:
    """{index: float32 (N, 4) ``[x, y, w, h]``} of the boxed frames when ``only`` is "boxed" or "all"
    (and, when ``reviewer`` is given, whose last change that reviewer made); each box file checked
    to be for a frame of ``size`` (H, W) (:class:`InputError` naming the file)."""
    return {i: read_box_file(reviewed.box_paths[i], size) for i in _selected(reviewed, only, reviewer, ("boxed",))}


def result_video_masks(result: Result, name: Optional[str] = None, corrected: bool = True) -> VideoMasks:
    """Every frame of a result with its mask: the corrected one where there is one (``corrected``),
    else the model's. File names: the frame's name for a frame folder input, else CVAT's
    ``frame_000012.png``."""
    reviewed = reviewed_frames(result) if corrected else None
    w, h = result.meta.get("width"), result.meta.get("height")
    frames = []
    for f in result.meta["frames"]:
        i = int(f["index"])
        path = reviewed.mask_paths.get(i, result.mask_path(i)) if reviewed else result.mask_path(i)
        if not path.is_file():
            raise InputError(f"{path}: missing (frame {i} of {result.root})")
        m = read_mask(path, 127)
        if isinstance(w, int) and isinstance(h, int) and m.shape != (h, w):
            raise InputError(f"{path}: is {m.shape[1]}x{m.shape[0]}, but the result's frames are {w}x{h}")
        file_name = f.get("name") if result.meta.get("kind") == "frames" and f.get("name") else f"frame_{i:06d}.png"
        frames.append((str(file_name), m.shape, m))
    return VideoMasks(name or result.root.resolve().name, frames)


def dataset_video_boxes(root: PathLike) -> List[VideoMasks]:
    """Every video of a dataset split with box files (``Box/``, :mod:`lgrnet.data.boxes`): frames hold
    (N, 4) ``[x, y, w, h]`` boxes in place of masks, None for frames without a box file."""
    from ..data.boxes import read_box_file
    from ..data.datasets import find_videos
    from ..io.images import image_header

    out = []
    videos = find_videos(root, require_masks=True)
    if not any(v.has_boxes for v in videos):
        raise InputError(f"{root}: has no box files (Box/<video>/<frame>.json)")
    for v in videos:
        frames = []
        for i, fpath in enumerate(v.frames):
            (w, h), _ = image_header(fpath)
            box = v.box_file(i)
            frames.append((fpath.name, (h, w), None if box is None else read_box_file(box, (h, w))))
        out.append(VideoMasks(v.name, frames))
    return out


def dataset_video_masks(root: PathLike) -> List[VideoMasks]:
    """Every video of a dataset split (``Frame/`` + ``GT/``) with its GT masks (grey > 0, as
    training reads them); frames without a mask get None."""
    from ..data.datasets import TRAIN_MASK_THRESHOLD, find_videos
    from ..io.images import image_header

    out = []
    for v in find_videos(root, require_masks=True):
        frames = []
        for fpath, mpath in zip(v.frames, v.masks):
            (w, h), _ = image_header(fpath)
            m = None if mpath is None else read_mask(mpath, TRAIN_MASK_THRESHOLD)
            if m is not None and m.shape != (h, w):
                raise InputError(f"{mpath}: is {m.shape[1]}x{m.shape[0]}, but its frame {fpath} is {w}x{h}")
            frames.append((fpath.name, (h, w), m))
        out.append(VideoMasks(v.name, frames))
    return out

