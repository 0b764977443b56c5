"""Frame sources: a video file, a folder of frames or a DICOM multi-frame file, read as a stream.

:func:`open_source` inspects the input and returns a :class:`FrameSource`. Every source yields
uint8 RGB frames of shape (H, W, 3), one at a time (memory does not grow with the length of the
input), and offers random access with :meth:`FrameSource.read` (for compressed videos a far jump
seeks to the previous key frame and decodes forward; reading the next frames continues decoding).

Checks done when the source is opened (so that a bad input fails before any work is done):

- the path exists and is a video file (by extension: mp4, avi, mov, mkv, ...), a DICOM file
  (``.dcm`` or the ``DICM`` preamble) or a folder of images (png, jpg, bmp, tif);
- the first frame decodes (an empty video, folder or DICOM file is rejected);
- frame folders: every image header is read; sizes must all match, and 16-bit grey, float or alpha
  (RGBA, LA) images are rejected, since converting them to 8-bit RGB silently would be wrong
  (16-bit RGB PNGs are full-range: Pillow decodes them to 8-bit RGB, the high byte of each sample);
- videos: pixel formats with an alpha channel are rejected; high-bit-depth videos (10-bit H.265,
  ...) are converted to 8-bit RGB by FFmpeg, which scales them correctly;
- DICOM: 8-bit pixel data, 1 (grey) or 3 (RGB, YBR) samples per pixel or a palette; 16-bit data
  is rejected (it needs a VOI window to become an image). Compressed transfer syntaxes decode
  through pydicom's plugins (Pillow for JPEG baseline, pylibjpeg for JPEG lossless, JPEG-LS,
  JPEG 2000 and fast RLE: ``pip install "lgrnet[dicom]"``).

Errors found while streaming (a truncated or corrupt video, a frame of another size) raise
:class:`~lgrnet.errors.InputError` as well; every message starts with the input's path.
"""
from __future__ import annotations

import itertools
import os
import re
import threading
import warnings
from pathlib import Path
from typing import Iterator, List, Optional, Sequence, Tuple, Union

import numpy as np

from ..io.images import IMAGE_EXTENSIONS, image_header, list_images, list_subdirs, read_frame, unsupported_frame_error
from ..errors import InputError, InputWarning

VIDEO_EXTENSIONS = (".mp4", ".m4v", ".avi", ".mov", ".mkv", ".webm", ".mpg", ".mpeg", ".wmv", ".ogv",
                    ".ts", ".mts", ".m2ts", ".flv", ".3gp")
DICOM_EXTENSIONS = (".dcm", ".dicom", ".dic")
DEFAULT_FPS = 25.0
#: a video whose header gives only a duration is truncated when it decodes fewer than this share of
#: the frames the duration implies (slack for variable frame rates and rounded durations)
DURATION_SLACK = 0.9
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


# ---------------------------------------------------------------------------------------------- video


def _has_alpha(fmt) -> bool:
    """Whether a PyAV VideoFormat carries an alpha channel (rgba, yuva420p, ya8, gbrap, ...)."""
    if fmt is None:
        return False
    n = len(fmt.components)
    return n == 4 or (n == 2 and not fmt.has_palette)


def _av_reason(exc: Exception) -> str:
    """FFmpeg's reason without the errno and the path PyAV appends."""
    return str(getattr(exc, "strerror", None) or exc)


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
    """A video file decoded with PyAV (FFmpeg): mp4, avi, mov, mkv, ...; the first video stream."""

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
            size = (int(first.height), int(first.width))
        finally:
            container.close()
        super().__init__(path, fps if fps else (float(rate) if rate else DEFAULT_FPS), declared, size)
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
            raise InputError(f"{path}: cannot open as a video (its header is corrupt: {_first_line(exc)})") from None

    def __iter__(self) -> Iterator[np.ndarray]:
        container = self._open()
        try:
            stream = container.streams.video[0]
            stream.thread_type = "AUTO"
            reformatter = self._av.video.reformatter.VideoReformatter()  # one scaler for all frames: ~8x faster
            n = 0
            try:
                for frame in container.decode(stream):
                    yield self._check_size(reformatter.reformat(frame, format="rgb24").to_ndarray(), n)
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
                        return _DecodeCursor(self._av, container, itertools.chain([first], frames), landed)
            except self._av.FFmpegError:
                pass
            container.close()  # timestamps do not map to frame numbers: count from the start
            container = self._open()
            stream = container.streams.video[0]
        return _DecodeCursor(self._av, container, container.decode(stream), 0)

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

    def __init__(self, av, container, frames: Iterator, next_index: int):
        self.container = container
        self.frames = frames
        self.next = next_index
        self._reformatter = av.video.reformatter.VideoReformatter()

    def advance_to(self, index: int) -> Optional[np.ndarray]:
        """Decode up to frame ``index`` (>= ``next``) and return it as RGB; None if the video ends first."""
        for frame in self.frames:
            i = self.next
            self.next += 1
            if i == index:
                return self._reformatter.reformat(frame, format="rgb24").to_ndarray()
        return None

    def close(self) -> None:
        self.container.close()


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


# --------------------------------------------------------------------------------------- frame folder


class FrameFolderSource(FrameSource):
    """A folder of images (png, jpg, bmp, tif), ordered by the numbers in their names (natural sort).

    ``files``: the frames' file names in ``path``, in temporal order, instead of every image of the
    folder (a dataset's video, see :meth:`from_files`).
    """

    kind = "frames"

    def __init__(self, path: Path, fps: Optional[float] = None, files: Optional[Sequence[str]] = None):
        path = Path(path)
        if files is None:
            try:
                files = [p.name for p in list_images(path)]
                subdirs = [] if files else list_subdirs(path)
            except OSError as exc:
                raise InputError(f"{path}: cannot list the folder ({exc.strerror or exc})") from None
            if not files:
                hint = f"; it has sub-folders ({', '.join(subdirs[:3])}{', ...' if len(subdirs) > 3 else ''}): pass one of them" if subdirs else ""
                raise InputError(f"{path}: the folder has no frames (no {'/'.join(e[1:] for e in IMAGE_EXTENSIONS)} images){hint}")
        files = list(files)
        if not files:
            raise InputError(f"{path}: no frames given")
        size = None
        for name in files:  # headers only: fail before any work on size or format problems
            wh, mode = image_header(path / name)
            error = unsupported_frame_error(path / name, mode)
            if error is not None:
                raise error
            hw = (wh[1], wh[0])
            if size is None:
                size = hw
            elif hw != size:
                raise InputError(f"{path}: frames have different sizes: {files[0]} is {size[1]}x{size[0]}, "
                                 f"{name} is {hw[1]}x{hw[0]}; all frames must have one size")
        self.files = files
        super().__init__(path, fps or DEFAULT_FPS, len(files), size)

    @classmethod
    def from_files(cls, paths: Sequence[PathLike], fps: Optional[float] = None) -> "FrameFolderSource":
        """The given image files, in this order, as one source; they must share one folder."""
        paths = [Path(os.fspath(p)) for p in paths]
        if not paths:
            raise InputError("no frames given")
        folders = {p.parent for p in paths}
        if len(folders) > 1:
            raise InputError(f"{paths[0].parent}: frames of one source must be in one folder (also {sorted(folders)[1]})")
        return cls(paths[0].parent, fps, files=[p.name for p in paths])

    def name(self, index: int) -> str:
        return self.files[index]

    def names(self) -> List[str]:
        return list(self.files)

    def read(self, index: int) -> np.ndarray:
        index = self._check_index(index)
        return self._check_size(read_frame(self.path / self.files[index]), index)

    def __iter__(self) -> Iterator[np.ndarray]:
        for i in range(len(self.files)):
            yield self.read(i)


# ---------------------------------------------------------------------------------------------- DICOM

_DICOM_COLOUR = {"RGB", "YBR_FULL", "YBR_FULL_422", "YBR_PARTIAL_420", "YBR_PARTIAL_422", "YBR_ICT", "YBR_RCT"}


class DicomSource(FrameSource):
    """A DICOM file with one or more frames (ultrasound cine loops, endoscopy video exports).

    fps: 1000 / FrameTime (ms), else CineRate, else RecommendedDisplayFrameRate, else the mean of
    FrameTimeVector, else :data:`DEFAULT_FPS`. Frames are decoded one at a time.
    """

    kind = "dicom"

    def __init__(self, path: Path, fps: Optional[float] = None):
        try:
            self._open(path, fps)
        except InputError:
            raise
        except Exception as exc:  # pydicom parsing corrupt elements lazily: unknown VRs, bad UIDs, ...
            raise InputError(f"{path}: the DICOM header is corrupt ({_first_line(exc)})") from None

    def _open(self, path: Path, fps: Optional[float]) -> None:
        import pydicom
        from pydicom.errors import InvalidDicomError

        try:
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                ds = pydicom.dcmread(str(path), defer_size="4 KB")
        except InvalidDicomError:
            raise InputError(f"{path}: not a DICOM file (no DICM header)") from None
        except Exception as exc:
            raise InputError(f"{path}: cannot read the DICOM file ({_first_line(exc)}); it is corrupt or truncated") from None
        ended_early = any("End of file reached" in str(w.message) for w in caught)
        if not any(k in ds for k in ("PixelData", "FloatPixelData", "DoubleFloatPixelData")):
            if ended_early:  # pydicom drops an encapsulated pixel data element that the file cuts off
                raise InputError(f"{path}: truncated: the file ends inside its pixel data")
            hint = ", or the file is truncated" if "Rows" in ds else ""  # image attributes but no pixels
            raise InputError(f"{path}: DICOM file has no pixel data (not an image{hint})")
        if "PixelData" not in ds:
            raise InputError(f"{path}: DICOM float pixel data is not supported; export 8-bit frames")
        try:
            rows, cols = int(ds.Rows), int(ds.Columns)
            spp = int(ds.get("SamplesPerPixel", 1))
            bits = int(ds.BitsAllocated)
            stored = int(ds.get("BitsStored", bits))
            photometric = str(ds.PhotometricInterpretation).strip().upper()
            frames = int(ds.get("NumberOfFrames", 1) or 0)
        except (AttributeError, TypeError, ValueError) as exc:
            raise InputError(f"{path}: DICOM image attributes missing or invalid ({exc})") from None
        if frames <= 0 or rows <= 0 or cols <= 0:
            raise InputError(f"{path}: the DICOM file has no frames (NumberOfFrames {frames}, {cols}x{rows})")
        if bits != 8 or stored > 8:
            raise InputError(f"{path}: {stored}-bit DICOM pixel data is not supported (it needs a display window "
                             f"to become an image); export 8-bit frames")
        if spp not in (1, 3):
            raise InputError(f"{path}: {spp} samples per pixel is not supported (grey, RGB or YBR only)")
        if photometric not in ({"MONOCHROME1", "MONOCHROME2", "PALETTE COLOR"} | _DICOM_COLOUR):
            raise InputError(f"{path}: photometric interpretation {photometric} is not supported")
        self.photometric = photometric
        self.max_value = (1 << stored) - 1
        syntax = getattr(getattr(ds, "file_meta", None), "TransferSyntaxUID", None)
        self.transfer_syntax = str(syntax or "unknown")
        self.compressed = bool(getattr(syntax, "is_compressed", False))
        if not self.compressed:
            _check_native_length(path, ds, frames * rows * cols * spp)
        self._palette_ds = ds if photometric == "PALETTE COLOR" else None
        super().__init__(path, fps or _dicom_fps(ds) or DEFAULT_FPS, frames, (rows, cols))
        del ds
        self.read(0)  # fail now if no decoder handles the transfer syntax

    def _decode_error(self, exc: Exception, index: int) -> InputError:
        reason = _first_line(exc)
        if self.compressed and re.search(r"plugin|dependenc|not installed|no .*decoder|unable to decompress", reason, re.I):
            return InputError(f"{self.path}: cannot decode DICOM frame {index} (transfer syntax {self.transfer_syntax}: "
                              f"{reason}); compressed DICOM needs pylibjpeg: pip install \"lgrnet[dicom]\"")
        return InputError(f"{self.path}: cannot decode DICOM frame {index} ({reason}); the file is corrupt or truncated")

    def _to_rgb(self, arr: np.ndarray) -> np.ndarray:
        if self.photometric == "PALETTE COLOR":
            from pydicom.pixels import apply_color_lut

            rgb = apply_color_lut(arr, self._palette_ds)
            if rgb.dtype != np.uint8:  # 16-bit palette entries
                rgb = (rgb.astype(np.float32) / 257.0).round().clip(0, 255).astype(np.uint8)
            return np.ascontiguousarray(rgb)
        arr = np.asarray(arr)
        if arr.dtype != np.uint8:
            arr = arr.astype(np.uint8)
        if arr.ndim == 2:
            if self.photometric == "MONOCHROME1":  # 0 is white
                arr = np.uint8(self.max_value) - np.minimum(arr, self.max_value)
            arr = np.repeat(arr[:, :, None], 3, axis=2)
        return np.ascontiguousarray(arr)

    def read(self, index: int) -> np.ndarray:
        from pydicom.pixels import pixel_array

        index = self._check_index(index)
        try:
            rgb = self._to_rgb(pixel_array(str(self.path), index=index, as_rgb=True))
        except Exception as exc:
            raise self._decode_error(exc, index) from None
        return self._check_size(rgb, index)

    def __iter__(self) -> Iterator[np.ndarray]:
        from pydicom.pixels import iter_pixels

        n = 0
        it = iter_pixels(str(self.path), as_rgb=True)
        while True:
            try:
                rgb = self._to_rgb(next(it))
            except StopIteration:
                break
            except Exception as exc:
                raise self._decode_error(exc, n) from None
            yield self._check_size(rgb, n)
            n += 1
        if n < (self.num_frames or 0):
            raise InputError(f"{self.path}: truncated: decoded {n} of the {self.num_frames} frames it declares")


def _first_line(exc: Exception) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def _check_native_length(path: Path, ds, expected: int) -> None:
    """Uncompressed pixel data: the file must hold every frame its header declares (8-bit samples)."""
    try:
        el = ds.get_item("PixelData", keep_deferred=True)
        start = getattr(el, "value_tell", None)
        size = os.path.getsize(path)
    except (OSError, AttributeError, TypeError):
        return
    if start is None:  # read in full (small): its length is the value's
        value = ds.PixelData
        have = len(value) if value is not None else 0
    else:
        have = max(0, size - int(start))
    if have < expected:
        frame = expected // max(1, int(ds.get("NumberOfFrames", 1) or 1))
        raise InputError(f"{path}: truncated: the file holds {have // max(1, frame)} of the "
                         f"{expected // max(1, frame)} frames its header declares ({have} of {expected} pixel bytes)")


def _dicom_fps(ds) -> Optional[float]:
    try:
        if ds.get("FrameTime"):
            ft = float(ds.FrameTime)
            if ft > 0:
                return 1000.0 / ft
        for key in ("CineRate", "RecommendedDisplayFrameRate"):
            if ds.get(key):
                v = float(ds.get(key))
                if v > 0:
                    return v
        if ds.get("FrameTimeVector"):
            ftv = [float(v) for v in ds.FrameTimeVector][1:]  # the first entry is 0 (time of frame 1)
            if ftv and sum(ftv) > 0:
                return 1000.0 * len(ftv) / sum(ftv)
    except (TypeError, ValueError):
        return None
    return None


def _has_dicom_preamble(path: Path) -> bool:
    try:
        with open(path, "rb") as f:
            f.seek(128)
            return f.read(4) == b"DICM"
    except OSError:
        return False


# ------------------------------------------------------------------------------------------- dispatch


def open_source(path: PathLike, fps: Optional[float] = None) -> FrameSource:
    """Open a video file, a folder of frames or a DICOM file as a :class:`FrameSource`.

    ``fps`` overrides the frame rate (useful for folders and DICOM files without timing).
    Raises :class:`~lgrnet.errors.InputError` (message: ``"<path>: <problem>"``) for a missing
    path, a file of an unknown kind, an image file where a folder of frames is expected, an
    unreadable, empty or truncated video, frames of different sizes, and 16-bit or RGBA frames.
    """
    raw = os.fspath(path)
    p = Path(raw)
    if not p.exists():
        raise InputError(f"{p}: no such file or folder")
    if p.is_dir():
        return FrameFolderSource(p, fps)
    if raw.endswith(("/", os.sep)):
        raise InputError(f"{p}: is a file, not a folder of frames")
    if not p.is_file():
        raise InputError(f"{p}: not a regular file or folder")
    suffix = p.suffix.lower()
    try:
        empty = p.stat().st_size == 0
    except OSError as exc:
        raise InputError(f"{p}: cannot read ({exc.strerror or exc})") from None
    if empty:
        raise InputError(f"{p}: the file is empty (0 bytes)")
    if suffix in IMAGE_EXTENSIONS:
        raise InputError(f"{p}: is a single image file; pass the folder that holds the frames (or a video / DICOM file)")
    if suffix in DICOM_EXTENSIONS or _has_dicom_preamble(p):
        return DicomSource(p, fps)
    if suffix in VIDEO_EXTENSIONS:
        return VideoFileSource(p, fps)
    raise InputError(f"{p}: not a video ({', '.join(e[1:] for e in VIDEO_EXTENSIONS[:6])}, ...), "
                     f"a DICOM file or a folder of frames")
