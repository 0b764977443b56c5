"""Video files (mp4, avi, mov, mkv, ...) decoded with PyAV (FFmpeg): the first video stream.

Checks when the file is opened: it opens as a container with a video stream and its first frame
decodes; pixel formats with an alpha channel are rejected; high-bit-depth videos (10-bit H.265,
...) are converted to 8-bit RGB by FFmpeg, which scales them correctly. While streaming, a video
that decodes fewer frames than its header declares (or than its duration implies) is truncated.
Random access: a far jump seeks to the previous key frame and decodes forward; reading the next
frames continues decoding.
"""
from __future__ import annotations

import itertools
import threading
from pathlib import Path
import warnings
from typing import Dict, Iterator, Optional

import numpy as np

from ..errors import InputError, InputWarning
from .source import DEFAULT_FPS, FrameSource, first_line

VIDEO_EXTENSIONS = (".mp4", ".m4v", ".avi", ".mov", ".mkv", ".webm", ".mpg", ".mpeg", ".wmv", ".ogv",
                    ".ts", ".mts", ".m2ts", ".flv", ".3gp")
#: a video whose header gives only a duration is truncated when it decodes fewer than this share of
#: the frames the duration implies (slack for variable frame rates and rounded durations)
DURATION_SLACK = 0.9


def _has_alpha(fmt) -> bool:
    """Whether a PyAV VideoFormat carries an alpha channel (rgba, yuva420p, ya8, gbrap, ...)."""
    if fmt is None:
        return False
    n = len(fmt.components)
    return n == 4 or (n == 2 and not fmt.has_palette)


def _av_reason(exc: Exception) -> str:
    """FFmpeg's reason without the errno and the path PyAV appends."""
    return str(getattr(exc, "strerror", None) or exc)


def _display_rotation(path: Path, frame) -> int:
    """The counter-clockwise rotation (0, 90, 180 or 270) that frame's display matrix asks for; 0
    with a warning for an angle that is not a multiple of 90 degrees."""
    try:
        degrees = int(frame.rotation)  # FFmpeg's av_display_rotation_get: counter-clockwise, -180..180
    except (AttributeError, TypeError, ValueError):
        return 0
    if degrees % 90:
        warnings.warn(f"{path}: its display matrix rotates by {degrees} degrees; frames are processed as stored "
                      f"(not rotated)", InputWarning, stacklevel=4)
        return 0
    return degrees % 360


def _stream_duration(container, stream) -> Optional[float]:
    """The video stream's duration in seconds from the header: the stream's own, its DURATION tag
    (Matroska), or the container's when the video is its only stream; None when unknown."""
    try:
        if stream.duration and stream.time_base:
            return float(stream.duration * stream.time_base)
        tag = (stream.metadata or {}).get("DURATION")
        if tag:
            h, m, sec = tag.split(":")
            return int(h) * 3600 + int(m) * 60 + float(sec)
        if len(container.streams) == 1 and container.duration and container.duration > 0:
            return float(container.duration) / 1e6
    except (ValueError, TypeError, AttributeError):
        return None
    return None


class VideoFileSource(FrameSource):
    """A video file decoded with PyAV (FFmpeg): mp4, avi, mov, mkv, ...; the first video stream.

    Frames come in their displayed orientation: a display matrix that rotates by a multiple of 90
    degrees (what phones record in portrait) is applied to every frame (:attr:`rotation`, also in
    ``frame_size``); another angle or a mirrored matrix is reported with a warning and not applied.
    :meth:`frame_time` gives each decoded frame's presentation time, so that a variable-frame-rate
    video keeps its timing (``fps`` is the average rate).
    """

    kind = "video"
    #: a :meth:`read` at most this many frames after the previous one decodes forward instead of seeking
    READ_AHEAD = 64

    def __init__(self, path: Path, fps: Optional[float] = None):
        import av
        import av.video.reformatter

        self._av = av
        container = self._open(path)
        try:
            if not container.streams.video:
                raise InputError(f"{path}: has no video frames (no video stream)")
            stream = container.streams.video[0]
            rate = stream.average_rate or stream.guessed_rate or stream.base_rate
            self.time_base = stream.time_base
            self.start_pts = stream.start_time or 0
            declared = int(stream.frames or 0) or None
            # mkv/webm headers give no frame count, only a duration: frames it implies (None: unknown)
            duration = _stream_duration(container, stream)
            try:
                first = next(iter(container.decode(stream)), None)
            except av.FFmpegError as exc:
                raise InputError(f"{path}: cannot decode the first frame ({_av_reason(exc)}); the file is corrupt or truncated") from None
            if first is None:
                raise InputError(f"{path}: the video has no frames")
            if _has_alpha(first.format):
                raise InputError(f"{path}: pixel format {first.format.name} has an alpha channel; convert the video "
                                 f"without it (e.g. ffmpeg -i IN -pix_fmt yuv420p OUT.mp4)")
            rotation = _display_rotation(path, first)
            size = (int(first.height), int(first.width))
            if rotation % 180:
                size = size[::-1]
        finally:
            container.close()
        super().__init__(path, fps if fps else (float(rate) if rate else DEFAULT_FPS), declared, size)
        #: degrees (counter-clockwise) every frame is rotated by to show it as the display matrix says
        self.rotation = rotation
        if rotation:
            self.input_corrections = {"rotation": rotation}
        self._times: Dict[int, float] = {}
        self.rate = rate  # exact Fraction, for writing a video with the same timing
        self.duration = duration
        self.expected_frames = declared or (int(round(duration * float(rate))) if duration and rate else None)
        self._lock = threading.Lock()
        self._cursor: Optional[_DecodeCursor] = None

    def _open(self, path: Optional[Path] = None):
        path = path or self.path
        try:
            return self._av.open(str(path), mode="r")
        except self._av.FFmpegError as exc:
            raise InputError(f"{path}: cannot open as a video ({_av_reason(exc)}); it is not a video, "
                             f"or it is truncated or corrupt") from None
        except OSError as exc:
            raise InputError(f"{path}: cannot read ({exc.strerror or exc})") from None
        except (UnicodeDecodeError, ValueError) as exc:  # PyAV decoding corrupt metadata as text
            raise InputError(f"{path}: cannot open as a video (its header is corrupt: {first_line(exc)})") from None

    def __iter__(self) -> Iterator[np.ndarray]:
        container = self._open()
        try:
            stream = container.streams.video[0]
            stream.thread_type = "AUTO"
            reformatter = self._av.video.reformatter.VideoReformatter()  # one scaler for all frames: ~8x faster
            n = 0
            try:
                for frame in container.decode(stream):
                    self._record_time(n, frame)
                    yield self._check_size(self._rgb(reformatter, frame), n)
                    n += 1
            except self._av.FFmpegError as exc:
                raise InputError(f"{self.path}: decoding failed after {n} frames ({_av_reason(exc)}); the file is corrupt or truncated") from None
            if n == 0:
                raise InputError(f"{self.path}: the video has no frames")
            if self.num_frames is not None and n < self.num_frames:
                raise InputError(f"{self.path}: truncated: decoded {n} of the {self.num_frames} frames its header declares")
            expected = self.expected_frames
            if self.num_frames is None and expected and n < DURATION_SLACK * expected - 1:
                raise InputError(f"{self.path}: truncated: decoded {n} frames, but its header's duration "
                                 f"({self.duration:.2f} s at {float(self.rate):g} fps) says about {expected}")
        finally:
            container.close()

    def _rgb(self, reformatter, frame) -> np.ndarray:
        """A decoded frame as uint8 RGB (H, W, 3), rotated as the display matrix says."""
        rgb = reformatter.reformat(frame, format="rgb24").to_ndarray()
        return np.ascontiguousarray(np.rot90(rgb, self.rotation // 90)) if self.rotation else rgb

    def _record_time(self, index: int, frame) -> None:
        if frame.pts is not None and self.time_base:
            self._times[index] = float((frame.pts - self.start_pts) * self.time_base)

    def frame_time(self, index: int) -> float:
        """Frame ``index``'s presentation time in seconds from the first frame's: its timestamp once
        it has been decoded (variable frame rates keep their timing), else ``index / fps``."""
        t = self._times.get(int(index))
        return t if t is not None else super().frame_time(index)

    def read(self, index: int) -> np.ndarray:
        """Frame ``index`` as uint8 RGB (H, W, 3). Thread-safe.

        A decoder stays open between calls: a read at or up to :attr:`READ_AHEAD` frames after the
        previous one decodes forward from there (playing or stepping through the video costs one
        decode per frame). Any other read seeks to the key frame before ``index`` and decodes
        forward, falling back to decoding from the start when the timestamps do not map to frame
        numbers. :meth:`close` releases the decoder.
        """
        index = self._check_index(index)
        with self._lock:
            cursor = self._cursor
            if cursor is None or not cursor.next <= index <= cursor.next + self.READ_AHEAD:
                self._close_cursor()
                cursor = self._cursor = self._seek(index)
            try:
                frame = cursor.advance_to(index)
            except self._av.FFmpegError as exc:
                self._close_cursor()
                raise InputError(f"{self.path}: cannot decode frame {index} ({_av_reason(exc)}); the file is corrupt or truncated") from None
            if frame is None:
                self._close_cursor()
                raise IndexError(f"{self.path}: frame {index} out of range (the video has fewer frames)")
            return self._check_size(frame, index)

    def _seek(self, index: int) -> "_DecodeCursor":
        """An open decoder positioned at or before frame ``index``."""
        container = self._open()
        stream = container.streams.video[0]
        if index > 0 and self.time_base and self.fps > 0:
            tb = float(self.time_base)
            try:
                container.seek(self.start_pts + int(round(index / self.fps / tb)), stream=stream, backward=True,
                               any_frame=False)
                frames = container.decode(stream)
                first = next(frames, None)
                if first is not None and first.pts is not None:
                    landed = int(round((first.pts - self.start_pts) * tb * self.fps))
                    if 0 <= landed <= index:
                        return _DecodeCursor(self, container, itertools.chain([first], frames), landed)
            except self._av.FFmpegError:
                pass
            container.close()  # timestamps do not map to frame numbers: count from the start
            container = self._open()
            stream = container.streams.video[0]
        return _DecodeCursor(self, container, container.decode(stream), 0)

    def _close_cursor(self) -> None:
        if self._cursor is not None:
            cursor, self._cursor = self._cursor, None
            cursor.close()

    def close(self) -> None:
        """Release the decoder kept open by :meth:`read` (reading again reopens it)."""
        with self._lock:
            self._close_cursor()


class _DecodeCursor:
    """An open container whose decoder yields frame ``next`` next (frames counted in presentation order)."""

    def __init__(self, source: VideoFileSource, container, frames: Iterator, next_index: int):
        self.source = source
        self.container = container
        self.frames = frames
        self.next = next_index
        self._reformatter = source._av.video.reformatter.VideoReformatter()

    def advance_to(self, index: int) -> Optional[np.ndarray]:
        """Decode up to frame ``index`` (>= ``next``) and return it as RGB; None if the video ends first."""
        for frame in self.frames:
            i = self.next
            self.next += 1
            if i == index:
                self.source._record_time(i, frame)
                return self.source._rgb(self._reformatter, frame)
        return None

    def close(self) -> None:
        self.container.close()
