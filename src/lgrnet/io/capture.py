"""Live inputs for ``lgrnet live``: a capture device, a network stream or a video file, read frame by
frame with PyAV (FFmpeg), each frame stamped with the moment it was read.

>>> src = open_capture("/dev/video0")            # or "0", "rtsp://...", "tcp://host:port", "exam.mp4"
>>> for f in src.frames():                       # CapturedFrame: index, frame (H, W, 3) uint8 RGB, read_time
...     ...
>>> src.close()

SOURCE is taken as:

- a capture device: ``/dev/videoN`` or its index ``N`` (Video4Linux2, FFmpeg's ``v4l2``);
- a network stream: a URL FFmpeg opens (``rtsp://``, ``rtmp://``, ``http(s)://``, ``tcp://``,
  ``udp://``, ``srt://``, ...); RTSP over TCP (no lost UDP packets);
- a video file (anything :mod:`lgrnet.io.video_file` reads); ``realtime=True`` plays it at its own
  frame rate (frames are released at their presentation times), else as fast as it decodes.

Opening fails with one :class:`~lgrnet.errors.InputError` line naming the source (not found, refused,
timed out after ``open_timeout`` s, no video stream). While streaming, FFmpeg gives up a read that
blocks longer than ``read_timeout`` s (network sources); a stall the reader cannot see (a device
that stops delivering) is caught by whoever waits for frames (:mod:`lgrnet.inference.realtime`).
A decoding error ends the stream with an :class:`~lgrnet.errors.InputError`.

:meth:`CaptureSource.close` may be called from any thread. FFmpeg's demuxer is not thread-safe: closing
the container while another thread is inside a read frees what that read uses (a crash or a hang
until the read times out). So a close that arrives during a read is deferred: it returns at once, and
the reading thread closes the container as soon as its read returns (data, end or ``read_timeout``)
and stops there.
"""
from __future__ import annotations

import itertools
import os
import re
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, Optional, Tuple

import numpy as np

from ..errors import InputError

URL = re.compile(r"^[a-zA-Z][a-zA-Z0-9+.-]*://")
DEVICE_INDEX = re.compile(r"^\d{1,3}$")
DEFAULT_OPEN_TIMEOUT = 10.0
DEFAULT_READ_TIMEOUT = 10.0


@dataclass
class CapturedFrame:
    """One frame as read: ``index`` in the source (counting every decoded frame), ``frame`` uint8
    RGB (H, W, 3), ``read_time``: ``time.perf_counter()`` when it was decoded (released, for a
    file played in real time)."""

    index: int
    frame: np.ndarray
    read_time: float


def source_kind(source: str) -> Tuple[str, str]:
    """SOURCE -> (kind, what FFmpeg opens): ("device", "/dev/video0") for a device or its index,
    ("stream", url) for a URL (``file://`` URLs are files), ("file", path) otherwise."""
    s = str(source)
    if DEVICE_INDEX.match(s):
        return "device", f"/dev/video{int(s)}"
    if s.startswith("/dev/video"):
        return "device", s
    if URL.match(s):
        if s.lower().startswith("file://"):
            return "file", s[7:]
        return "stream", s
    return "file", s


class CaptureSource:
    """An opened live input (see the module documentation). Attributes the result folder writer
    reads: ``path`` (the SOURCE as given), ``kind`` ("device" | "stream" | "video"), ``fps``
    (the stream's rate, or 25 when it does not say), ``frame_size`` (H, W) of the first frame;
    ``live``: a device or network stream (its end is not expected); ``realtime``: frames released
    at their presentation times."""

    def __init__(self, source: str, realtime: bool = False, open_timeout: float = DEFAULT_OPEN_TIMEOUT,
                 read_timeout: float = DEFAULT_READ_TIMEOUT):
        import av

        self.path = str(source)
        kind, target = source_kind(self.path)
        self.live = kind != "file"
        self.kind = "video" if kind == "file" else kind
        self.realtime = realtime or self.live
        self._lock = threading.Lock()  # guards the three flags below
        self._reading = False  # a thread is inside a container read
        self._close_requested = False  # close() came during that read: the reader closes
        self._closed = False
        options = {}
        fmt = None
        if kind == "file" and not Path(target).is_file():
            raise InputError(f"{self.path}: not found (expected a video file, a capture device /dev/videoN or its "
                             f"index, or a stream URL)")
        if kind == "device":
            if not os.path.exists(target):
                raise InputError(f"{self.path}: no such capture device ({target})")
            fmt = "v4l2"
        if target.lower().startswith("rtsp://"):
            options["rtsp_transport"] = "tcp"
        try:
            self._container = av.open(target, format=fmt, options=options, timeout=(open_timeout, read_timeout))
        except av.error.ExitError:
            raise InputError(f"{self.path}: timed out after {open_timeout:g} s opening the source") from None
        except (av.error.FFmpegError, OSError) as exc:
            raise InputError(f"{self.path}: cannot open ({_reason(exc)})") from None
        if not self._container.streams.video:
            self._container.close()
            raise InputError(f"{self.path}: no video stream")
        self._stream = self._container.streams.video[0]
        self._stream.thread_type = "AUTO"
        rate = self._stream.average_rate or self._stream.guessed_rate
        self.fps = float(rate) if rate and 0 < float(rate) < 1000 else 25.0
        self._decoded = self._decode()
        try:
            first = next(self._decoded, None)
        except InputError:
            self.close()
            raise
        if first is None:
            self.close()
            raise InputError(f"{self.path}: no frame decoded (an empty video, or a stream that sent nothing)")
        self._first = first
        self.frame_size = first[1].shape[:2]

    def _decode(self) -> Iterator[Tuple[int, np.ndarray, Optional[float]]]:
        """(index, uint8 RGB frame, presentation time in s or None), as decoded; ends without a
        frame once the source is closed (see the module documentation)."""
        import av

        decoded = self._container.decode(self._stream)
        index = 0
        while True:
            with self._lock:
                if self._closed:
                    return
                self._reading = True
            try:
                frame = next(decoded, None)
            except av.error.ExitError:
                if self._close_requested:  # the read timed out after close(): not an error
                    return
                raise InputError(f"{self.path}: stalled: no data for the read timeout, after {index} frames") from None
            except (av.error.FFmpegError, OSError) as exc:
                raise InputError(f"{self.path}: cannot decode frame {index} ({_reason(exc)})") from None
            finally:
                with self._lock:
                    self._reading = False
                    if self._close_requested:
                        self._close_container()
            if frame is None or self._closed:
                return
            yield index, frame.to_ndarray(format="rgb24"), frame.time
            index += 1

    def frames(self) -> Iterator[CapturedFrame]:
        """The frames from the first, once (a live source cannot be rewound); a file played in real
        time releases each frame at its presentation time, counted from the first frame's release."""
        first, self._first = self._first, None
        if first is None:
            raise RuntimeError("frames() can be iterated once")
        pace = self.realtime and not self.live
        t0 = pts0 = None
        for index, rgb, pts in itertools.chain([first], self._decoded):
            if pace and pts is not None:
                now = time.perf_counter()
                if t0 is None:
                    t0, pts0 = now, pts
                delay = t0 + (pts - pts0) - now
                if delay > 0:
                    time.sleep(delay)
            yield CapturedFrame(index, rgb, time.perf_counter())

    def names(self):
        return []

    def close(self) -> None:
        """Close the source (any thread, any number of times). During another thread's read this
        only asks that thread to close when the read returns; ``frames()`` then ends."""
        with self._lock:
            if self._reading:
                self._close_requested = True
            else:
                self._close_container()

    def _close_container(self) -> None:
        """Close the container now; the caller holds ``_lock`` and no read is in progress."""
        if self._closed:
            return
        self._closed = True
        try:
            self._container.close()
        except Exception:  # a broken connection
            pass

    def __repr__(self) -> str:
        return f"CaptureSource({self.path!r}, kind={self.kind!r}, fps={self.fps:g}, frame_size={self.frame_size})"


def _reason(exc: Exception) -> str:
    return str(getattr(exc, "strerror", None) or exc)


def open_capture(source: str, realtime: bool = False, open_timeout: float = DEFAULT_OPEN_TIMEOUT,
                 read_timeout: float = DEFAULT_READ_TIMEOUT) -> CaptureSource:
    """Open SOURCE (a device, its index, a stream URL or a video file) for :meth:`CaptureSource.frames`."""
    return CaptureSource(source, realtime=realtime, open_timeout=open_timeout, read_timeout=read_timeout)
