"""Frames for the review page: decode a result's source and keep JPEGs in a memory-bounded cache.

Everything that reads a source goes through :func:`open_frames`, so that switching to the
package-wide reader (``lgrnet.io.video.open_source``) is a change in one place. Until that reader
exists, a small fallback reads frame folders (Pillow, natural order), video files (PyAV, exact
frame indices with keyframe seeking) and DICOM cine loops (pydicom).
"""
from __future__ import annotations

import io
import itertools
import os
import threading
from collections import OrderedDict
from pathlib import Path
from typing import Dict, List, Optional, Protocol, Tuple, Union

import numpy as np
from PIL import Image

from ..errors import InputError


class FrameReader(Protocol):
    """What the viewer needs from a source: ``read(index)`` -> uint8 RGB (H, W, 3)."""

    num_frames: int

    def read(self, index: int) -> np.ndarray: ...


def open_frames(path: Union[str, Path], kind: Optional[str] = None) -> FrameReader:
    """Open a result's source (video file, frame folder or DICOM file) for random frame access.

    Uses ``lgrnet.io.video.open_source`` when this build has it; otherwise the fallback readers
    below. Raises :class:`InputError` naming the path when it cannot be opened.
    """
    path = Path(path)
    if not path.exists():
        raise InputError(f"{path}: source not found (moved or deleted?)")
    try:
        from ..io.video import open_source  # type: ignore[import-not-found]
    except ImportError:
        open_source = None
    if open_source is not None:
        return open_source(path)
    if path.is_dir():
        return FolderFrames(path)
    if kind == "dicom" or path.suffix.lower() in (".dcm", ".dicom"):
        return DicomFrames(path)
    return VideoFrames(path)


class FolderFrames:
    """A folder of images, ordered by the number in their names."""

    def __init__(self, folder: Path) -> None:
        from ..data.datasets import IMAGE_EXTENSIONS, natural_sorted

        names = [n for n in os.listdir(folder) if n.lower().endswith(IMAGE_EXTENSIONS) and not n.startswith(".")]
        if not names:
            raise InputError(f"{folder}: no image files in this folder")
        self.paths: List[Path] = [folder / n for n in natural_sorted(names)]
        self.num_frames = len(self.paths)

    def read(self, index: int) -> np.ndarray:
        from ..data.datasets import read_frame

        _check_index(index, self.num_frames)
        return read_frame(self.paths[index])


class VideoFrames:
    """A video file decoded with PyAV, with exact frame indices.

    Frames are counted in decode order from the start. While decoding, the presentation
    timestamp of every keyframe is recorded; going back (or far ahead of what was decoded) seeks
    to the last recorded keyframe at or before the target and decodes forward from there.
    Not thread-safe: callers hold a lock (the cache below does).
    """

    def __init__(self, path: Path) -> None:
        import av

        self.path = path
        try:
            self._container = av.open(str(path))
        except Exception as exc:
            raise InputError(f"{path}: cannot open as video ({exc})") from None
        if not self._container.streams.video:
            self._container.close()
            raise InputError(f"{path}: no video stream")
        self._stream = self._container.streams.video[0]
        self._stream.thread_type = "AUTO"
        self._keyframes: Dict[int, int] = {}  # frame index -> pts, keyframes seen so far
        self._iter = None
        self._next = 0  # index of the frame the iterator yields next
        self.num_frames = int(self._stream.frames or 0) or self._count_frames()
        self._restart()

    def _count_frames(self) -> int:
        n = 0
        self._restart()
        for _ in self._decode():
            n += 1
        if n == 0:
            raise InputError(f"{self.path}: no decodable video frames")
        return n

    def _restart(self) -> None:
        self._container.seek(0)
        self._iter = self._container.decode(self._stream)
        self._next = 0

    def _decode(self):
        for frame in self._iter:
            if frame.key_frame and frame.pts is not None:
                self._keyframes.setdefault(self._next, frame.pts)
            self._next += 1
            yield frame

    def read(self, index: int) -> np.ndarray:
        _check_index(index, self.num_frames)
        if index < self._next or index - self._next > 64:
            self._seek_before(index)
        for frame in self._decode():
            if self._next - 1 == index:
                return frame.to_ndarray(format="rgb24")
        raise InputError(f"{self.path}: frame {index} could not be decoded (the file has fewer frames than it says)")

    def _seek_before(self, index: int) -> None:
        start = max((i for i in self._keyframes if i <= index), default=0)
        if self._next <= index and start < self._next:
            return  # decoding forward from here is no worse than seeking
        if start == 0:
            self._restart()
            return
        pts = self._keyframes[start]
        self._container.seek(pts, stream=self._stream, backward=True)
        self._iter = self._container.decode(self._stream)
        first = next(self._iter, None)
        if first is None or first.pts != pts:
            self._restart()  # the seek did not land on the recorded keyframe: count from the start
            return
        self._next = start
        self._iter = itertools.chain([first], self._iter)

    def close(self) -> None:
        self._container.close()


class DicomFrames:
    """A (multi-frame) DICOM file; grey or 16-bit images are scaled to 8-bit RGB."""

    def __init__(self, path: Path) -> None:
        try:
            import pydicom

            arr = pydicom.dcmread(str(path)).pixel_array
        except Exception as exc:
            raise InputError(f"{path}: cannot read DICOM pixel data ({exc})") from None
        frames = int(getattr(pydicom.dcmread(str(path), stop_before_pixels=True), "NumberOfFrames", 1) or 1)
        if frames == 1:
            arr = arr[None]
        if arr.ndim == 3:
            arr = np.repeat(arr[..., None], 3, axis=-1)
        if arr.dtype != np.uint8:
            lo, hi = float(arr.min()), float(arr.max())
            arr = ((arr.astype(np.float32) - lo) * (255.0 / max(hi - lo, 1e-6))).round().astype(np.uint8)
        self._frames = arr
        self.num_frames = int(arr.shape[0])

    def read(self, index: int) -> np.ndarray:
        _check_index(index, self.num_frames)
        return self._frames[index]


def _check_index(index: int, n: int) -> None:
    if not 0 <= index < n:
        raise IndexError(f"frame {index} out of range (0..{n - 1})")


def encode_jpeg(frame: np.ndarray, quality: int = 88) -> bytes:
    """uint8 RGB (H, W, 3) -> JPEG bytes."""
    buf = io.BytesIO()
    Image.fromarray(frame).save(buf, format="JPEG", quality=quality)
    return buf.getvalue()


class JpegCache:
    """Least-recently-used cache of encoded frames, bounded by total bytes. Thread-safe."""

    def __init__(self, max_bytes: int = 256 << 20) -> None:
        self.max_bytes = int(max_bytes)
        self._items: "OrderedDict[Tuple[str, int], bytes]" = OrderedDict()
        self._bytes = 0
        self._lock = threading.Lock()

    def get(self, key: Tuple[str, int]) -> Optional[bytes]:
        with self._lock:
            data = self._items.get(key)
            if data is not None:
                self._items.move_to_end(key)
            return data

    def put(self, key: Tuple[str, int], data: bytes) -> None:
        if len(data) > self.max_bytes:
            return
        with self._lock:
            old = self._items.pop(key, None)
            if old is not None:
                self._bytes -= len(old)
            self._items[key] = data
            self._bytes += len(data)
            while self._bytes > self.max_bytes:
                _, dropped = self._items.popitem(last=False)
                self._bytes -= len(dropped)

    @property
    def nbytes(self) -> int:
        return self._bytes

    def __len__(self) -> int:
        return len(self._items)
