"""Frames for the review page: a result's source, and its frames as JPEGs in a memory-bounded cache.

Sources (video files, frame folders, DICOM cine loops) are read with the package's reader,
:func:`lgrnet.io.dispatch.open_source`, which keeps a decoder open between reads so that playing a
video decodes each frame once.
"""
from __future__ import annotations

import io
import threading
from collections import OrderedDict
from pathlib import Path
from typing import Optional, Tuple, Union

import numpy as np
from PIL import Image

from ..errors import InputError
from ..io import FrameSource, open_source


def open_frames(path: Union[str, Path]) -> FrameSource:
    """Open a result's source (video file, frame folder or DICOM file) for random frame access.

    Raises :class:`InputError` naming the path when it is gone or cannot be opened.
    """
    path = Path(path)
    if not path.exists():
        raise InputError(f"{path}: source not found (moved or deleted?)")
    return open_source(path)


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
