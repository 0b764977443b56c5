"""DICOM files with one or more frames (ultrasound cine loops, endoscopy video exports) as a source.

Accepted: 8-bit pixel data, 1 (grey) or 3 (RGB, YBR) samples per pixel or a palette; 16-bit data
is rejected (it needs a VOI window to become an image). Compressed transfer syntaxes decode
through pydicom's plugins (Pillow for JPEG baseline, pylibjpeg for JPEG lossless, JPEG-LS,
JPEG 2000 and fast RLE: ``pip install "lgrnet[dicom]"``). The first frame is decoded when the file
is opened, so that a form no installed decoder handles fails before any work is done.
"""
from __future__ import annotations

import os
import re
import warnings
from pathlib import Path
from typing import Iterator, Optional

import numpy as np

from ..errors import InputError, InputWarning
from .dicom_codecs import JPEG_DCT_SYNTAXES, first_fragment_head, fragment_head_from_bytes, jpeg_colour, missing_decoder_message
from .source import DEFAULT_FPS, FrameSource, first_line

DICOM_EXTENSIONS = (".dcm", ".dicom", ".dic")
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
            raise InputError(f"{path}: the DICOM header is corrupt ({first_line(exc)})") from None

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
            raise InputError(f"{path}: cannot read the DICOM file ({first_line(exc)}); it is corrupt or truncated") from None
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
        #: decoding options passed to pydicom (a Photometric Interpretation that overrides the header's)
        self._decode_options = {}
        if self.compressed and spp == 3 and self.transfer_syntax in JPEG_DCT_SYNTAXES:
            self._check_jpeg_colour(path, ds, photometric)
        super().__init__(path, fps or _dicom_fps(ds) or DEFAULT_FPS, frames, (rows, cols))
        self._times = None if fps else _dicom_frame_times(ds, frames)
        del ds
        self.read(0)  # fail now if no decoder handles the transfer syntax

    def _check_jpeg_colour(self, path: Path, ds, photometric: str) -> None:
        """Decode JPEG frames in the colour space their codestream declares when the header says
        otherwise (see :mod:`.dicom_codecs`), with one warning line."""
        element = ds.get_item("PixelData", keep_deferred=True)
        offset = getattr(element, "value_tell", None)
        try:
            head = (first_fragment_head(path, offset) if offset is not None
                    else fragment_head_from_bytes(bytes(ds.PixelData or b"")))
        except OSError:
            return
        colour = jpeg_colour(head)
        header = "RGB" if photometric == "RGB" else ("YBR" if photometric.startswith("YBR") else None)
        if colour is None or header is None or colour.space == header:
            return
        if colour.space is None:
            warnings.warn(f"{path}: the DICOM header says {photometric}, and its JPEG data do not say whether they are "
                          f"RGB or YCbCr ({colour.evidence}); decoded as {photometric}", InputWarning, stacklevel=3)
            return
        decode_as = "RGB" if colour.space == "RGB" else ("YBR_FULL_422" if colour.subsampled else "YBR_FULL")
        self._decode_options = {"photometric_interpretation": decode_as}
        note = (f"the DICOM header says {photometric} but its JPEG data are "
                f"{'RGB' if colour.space == 'RGB' else 'YCbCr'} ({colour.evidence}); decoded as {decode_as}")
        self.input_corrections = {"colour": note}
        warnings.warn(f"{path}: {note}", InputWarning, stacklevel=3)

    def frame_time(self, index: int) -> float:
        """Frame ``index``'s time in seconds: the running sum of Frame Time Vector when the file has one
        (variable timing), else ``index / fps``."""
        if self._times is not None and 0 <= index < len(self._times):
            return self._times[index]
        return super().frame_time(index)

    def _decode_error(self, exc: Exception, index: int) -> InputError:
        reason = first_line(exc)
        if self.compressed and re.search(r"plugin|dependenc|not installed|no .*decoder|unable to (decompress|decode)",
                                         reason, re.I):
            return InputError(f"{self.path}: cannot decode DICOM frame {index}: "
                              f"{missing_decoder_message(self.transfer_syntax)}")
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
            rgb = self._to_rgb(pixel_array(str(self.path), index=index, as_rgb=True, **self._decode_options))
        except Exception as exc:
            raise self._decode_error(exc, index) from None
        return self._check_size(rgb, index)

    def __iter__(self) -> Iterator[np.ndarray]:
        from pydicom.pixels import iter_pixels

        n = 0
        it = iter_pixels(str(self.path), as_rgb=True, **self._decode_options)
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


def _dicom_frame_times(ds, frames: int):
    """Each frame's time in seconds from Frame Time Vector (ms from the previous frame; the first
    entry is 0) when the file times its frames that way, else None (constant Frame Time, or a
    vector of another length or with invalid values)."""
    try:
        vector = ds.get("FrameTimeVector")
        if not vector or ds.get("FrameTime"):
            return None
        values = [vector] if isinstance(vector, (int, float, str)) else list(vector)  # one value is not a list
        steps = [float(v) / 1000.0 for v in values]
    except (TypeError, ValueError):
        return None
    if len(steps) != frames or any(v < 0 for v in steps):
        return None
    steps[0] = 0.0
    return [float(t) for t in np.cumsum(steps)]


def has_dicom_preamble(path: Path) -> bool:
    try:
        with open(path, "rb") as f:
            f.seek(128)
            return f.read(4) == b"DICM"
    except OSError:
        return False
