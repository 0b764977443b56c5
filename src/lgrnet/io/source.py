"""The interface every input reader offers (:class:`FrameSource`), and the checks on frame sizes
that hold for every kind of input.

A source yields uint8 RGB frames of shape (H, W, 3), one at a time (memory does not grow with the
length of the input), and offers random access with :meth:`FrameSource.read`. The readers are
:mod:`lgrnet.io.video_file` (PyAV), :mod:`lgrnet.io.frame_folder` and :mod:`lgrnet.io.dicom`;
:func:`lgrnet.io.dispatch.open_source` picks one for a path.

Errors found while streaming (a truncated or corrupt video, a frame of another size) raise
:class:`~lgrnet.errors.InputError`; every message starts with the input's path.
"""
from __future__ import annotations

import os
import warnings
from pathlib import Path
from typing import Any, Dict, Iterator, List, Optional, Tuple, Union

import numpy as np

from ..errors import InputError, InputWarning

DEFAULT_FPS = 25.0
#: frame sizes that make results unreliable (see :func:`frame_size_warning`)
MIN_SIDE, MAX_UPSCALE, MAX_DISTORTION = 32, 8.0, 4.0

PathLike = Union[str, os.PathLike]


class FrameSource:
    """Frames of one input, in temporal order.

    Attributes: ``path`` (Path), ``kind`` ("video" | "frames" | "dicom"), ``fps`` (float; the
    container's rate, DICOM's FrameTime/CineRate, else :data:`DEFAULT_FPS`), ``num_frames``
    (int, or None when it is unknown before decoding), ``frame_size`` ((H, W) of every frame).
    Iterating yields uint8 RGB (H, W, 3) frames; every iteration starts from the first frame.
    """

    kind: str = ""
    #: what the reader changed in the frames relative to the stored data, recorded in predictions.json
    #: (``{"rotation": 90}``: a display matrix applied; ``{"colour": "..."}``: a colour space corrected)
    input_corrections: Dict[str, Any] = {}

    def __init__(self, path: Path, fps: float, num_frames: Optional[int], frame_size: Tuple[int, int]):
        self.path = path
        self.fps = float(fps)
        self.num_frames = num_frames
        self.frame_size = frame_size

    def __iter__(self) -> Iterator[np.ndarray]:
        raise NotImplementedError

    def read(self, index: int) -> np.ndarray:
        """Frame ``index`` as uint8 RGB (H, W, 3)."""
        raise NotImplementedError

    def close(self) -> None:
        """Release what :meth:`read` keeps open (nothing for most sources)."""

    def name(self, index: int) -> str:
        """The name of frame ``index``: its file name for folders, the index as text otherwise."""
        return str(index)

    def names(self) -> List[str]:
        """Names of all frames (see :meth:`name`)."""
        n = self.num_frames if self.num_frames is not None else self.count_frames()
        return [self.name(i) for i in range(n)]

    def frame_time(self, index: int) -> float:
        """The presentation time of frame ``index`` in seconds from the first frame (``index / fps``
        for sources without per-frame timing)."""
        return int(index) / self.fps if self.fps > 0 else 0.0

    def count_frames(self) -> int:
        """The number of frames, decoding the input if its header does not say."""
        if self.num_frames is not None:
            return self.num_frames
        return sum(1 for _ in self)

    def _check_index(self, index: int) -> int:
        index = int(index)
        if index < 0 or (self.num_frames is not None and index >= self.num_frames):
            raise IndexError(f"{self.path}: frame {index} out of range (0..{self.num_frames - 1 if self.num_frames else '?'})")
        return index

    def _check_size(self, frame: np.ndarray, index: int) -> np.ndarray:
        if frame.shape[:2] != tuple(self.frame_size):
            raise InputError(f"{self.path}: frame {self.name(index)} is {frame.shape[1]}x{frame.shape[0]} but the first "
                             f"frame is {self.frame_size[1]}x{self.frame_size[0]}; all frames must have one size")
        return frame

    def __repr__(self) -> str:
        H, W = self.frame_size
        return (f"{type(self).__name__}(path={str(self.path)!r}, kind={self.kind!r}, num_frames={self.num_frames}, "
                f"fps={self.fps:g}, frame_size=({H}, {W}))")


def first_line(exc: Exception) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def frame_size_warning(path: PathLike, frame_size: Tuple[int, int], model_size: Tuple[int, int]) -> Optional[str]:
    """Why frames of ``frame_size`` (H, W) resized to the model's ``model_size`` (h, w) give
    unreliable results, or None: tiny frames (a side under :data:`MIN_SIDE` pixels, or upscaled
    more than :data:`MAX_UPSCALE` times) and extreme aspect ratios (one side stretched more than
    :data:`MAX_DISTORTION` times relative to the other)."""
    H, W = (int(v) for v in frame_size)
    h, w = (int(v) for v in model_size)
    if H <= 0 or W <= 0:
        return None
    sy, sx = h / H, w / W
    problems = []
    if min(H, W) < MIN_SIDE or max(sy, sx) > MAX_UPSCALE:
        problems.append(f"upscaled {max(sy, sx):.1f}x")
    distortion = max(sy / sx, sx / sy)
    if distortion > MAX_DISTORTION:
        problems.append(f"squashed: one side is scaled {distortion:.1f}x more than the other")
    if not problems:
        return None
    return (f"{os.fspath(path)}: {W}x{H} frames are resized to the model's {w}x{h} ({'; '.join(problems)}); "
            f"masks and scores on such frames are unreliable")


def warn_frame_size(source: "FrameSource", model_size: Tuple[int, int]) -> None:
    """Issue :func:`frame_size_warning` for ``source`` as an :class:`~lgrnet.errors.InputWarning`."""
    message = frame_size_warning(source.path, source.frame_size, model_size)
    if message:
        warnings.warn(message, InputWarning, stacklevel=2)
