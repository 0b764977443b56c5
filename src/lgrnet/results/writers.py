"""Writers for prediction outputs: mask and probability PNGs, and the overlay video.

- mask PNG: 8-bit grey, 0 (background) or 255 (lesion), at the frame's original size;
- probability PNG: 8-bit grey, ``round(255 * p)``;
- overlay video: H.264 (yuv420p, browser-playable, ``+faststart``) at the input's frame rate,
  one video frame per input frame, each shown at its input frame's time (a variable-frame-rate
  input keeps its timing), with the lesion outline and the frame's score drawn. H.264
  with 4:2:0 chroma needs even sizes: odd widths or heights get one black column or row at the
  right or bottom.

Encoder settings, chosen for speed (the writers run beside the model and share its cores; the
measurements are in docs/inference.md, "Speed and memory measured here"): PNGs at zlib level 1 with
the run-length strategy, masks with no row filter and probability maps with the "up" filter where
this OpenCV has the setting (4.11 and later); H.264 with x264's ``ultrafast`` preset at CRF 20.
"""
from __future__ import annotations

import os
from fractions import Fraction
from typing import List, Optional, Tuple, Union

import cv2
import numpy as np

OUTLINE_RGB = (0, 255, 0)


def _fast_png_params(row_filter: str) -> List[int]:
    """cv2.imencode parameters: zlib level 1, run-length strategy, the named row filter where
    this OpenCV has the setting (4.11 and later)."""
    params = [cv2.IMWRITE_PNG_COMPRESSION, 1, cv2.IMWRITE_PNG_STRATEGY, cv2.IMWRITE_PNG_STRATEGY_RLE]
    if hasattr(cv2, "IMWRITE_PNG_FILTER"):
        params += [cv2.IMWRITE_PNG_FILTER, getattr(cv2, f"IMWRITE_PNG_FILTER_{row_filter}")]
    return params


MASK_PNG_PARAMS = _fast_png_params("NONE")  # 0/255 masks: long runs, a filter only adds work
PROB_PNG_PARAMS = _fast_png_params("UP")  # smooth maps: rows resemble the row above


def encode_png(image: np.ndarray, path: Union[str, os.PathLike] = "image", compression: int = 3,
               params: Optional[List[int]] = None) -> bytes:
    """uint8 grey (H, W) or BGR (H, W, 3) image -> PNG bytes (``path`` only names it in errors).
    ``params``: cv2.imencode parameters instead of the zlib ``compression`` level."""
    ok, buf = cv2.imencode(".png", image, params or [cv2.IMWRITE_PNG_COMPRESSION, compression])
    if not ok:
        raise OSError(f"{path}: PNG encoding failed")
    return buf.tobytes()


def _write_png(path: Union[str, os.PathLike], image: np.ndarray, params: List[int]) -> None:
    with open(path, "wb") as f:
        f.write(encode_png(image, path, params=params))


def mask_to_uint8(mask: np.ndarray) -> np.ndarray:
    """(H, W) bool (or 0/1) -> uint8 with values 0 and 255."""
    # ``!= 0`` makes canonical bools (a byte 0 or 1) before the view: arrays of PIL's 1-bit images
    # hold True as 255, which the view would multiply to 1
    return (np.asarray(mask) != 0).view(np.uint8) * np.uint8(255)


def write_mask_png(path: Union[str, os.PathLike], mask: np.ndarray) -> None:
    """mask: (H, W) bool (or 0/1) -> 8-bit PNG with values 0 and 255."""
    _write_png(path, mask_to_uint8(mask), MASK_PNG_PARAMS)


def prob_to_uint8(prob: np.ndarray) -> np.ndarray:
    """(H, W) probabilities in [0, 1] -> uint8 ``round(255 * p)``."""
    return np.rint(np.clip(np.asarray(prob, dtype=np.float64), 0.0, 1.0) * 255.0).astype(np.uint8)


def write_prob_png(path: Union[str, os.PathLike], prob: np.ndarray) -> None:
    """prob: (H, W) float in [0, 1] -> 8-bit PNG holding ``round(255 * p)``."""
    _write_png(path, prob_to_uint8(prob), PROB_PNG_PARAMS)


def draw_overlay(frame: np.ndarray, mask: np.ndarray, score: float, label: Optional[str] = None,
                 color: Tuple[int, int, int] = OUTLINE_RGB) -> np.ndarray:
    """A copy of ``frame`` (uint8 RGB (H, W, 3)) with the outline of ``mask`` ((H, W) bool) and a
    caption ``"<label>  score 0.87"`` in the top-left corner."""
    out = np.ascontiguousarray(frame, dtype=np.uint8).copy()
    H, W = out.shape[:2]
    thickness = max(1, round(min(H, W) / 240))
    m = np.asarray(mask, dtype=np.uint8)
    if m.any():
        contours, _ = cv2.findContours(m, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_NONE)
        cv2.drawContours(out, contours, -1, color, thickness, lineType=cv2.LINE_8)  # AA: 4x the time
    text = f"{label}  score {score:.2f}" if label else f"score {score:.2f}"
    scale = max(0.3, min(H, W) / 720)
    font = cv2.FONT_HERSHEY_SIMPLEX
    (tw, th), base = cv2.getTextSize(text, font, scale, 1)
    pad = max(2, round(4 * scale))
    cv2.rectangle(out, (0, 0), (min(W - 1, tw + 2 * pad), min(H - 1, th + base + 2 * pad)), (0, 0, 0), -1)
    cv2.putText(out, text, (pad, pad + th), font, scale, (255, 255, 255), 1, cv2.LINE_AA)
    return out


def video_rate(fps: Union[float, Fraction]) -> Fraction:
    """A frame rate as an exact fraction (29.97 -> 30000/1001)."""
    if isinstance(fps, Fraction):
        return fps
    if fps <= 0:
        raise ValueError(f"frame rate must be positive, got {fps}")
    return Fraction(fps).limit_denominator(1001)


class OverlayVideoWriter:
    """Write uint8 RGB frames of one size to an H.264 mp4 (mpeg4 when libx264 is missing).

    >>> with OverlayVideoWriter("overlay.mp4", fps=25, frame_size=(288, 384)) as w:
    ...     w.write(frame)               # frame i shown at i / fps
    ...     w.write(frame, time=0.25)    # or at a given time (s): variable frame rates

    Frames written with a ``time`` are stamped in units of :data:`TIME_BASE` (1/90000 s, the MPEG
    clock); the first write decides for the whole file.
    """

    TIME_BASE = Fraction(1, 90000)

    def __init__(self, path: Union[str, os.PathLike], fps: Union[float, Fraction], frame_size: Tuple[int, int],
                 crf: int = 20, preset: str = "ultrafast"):
        import av

        self.path = os.fspath(path)
        self.frame_size = (int(frame_size[0]), int(frame_size[1]))
        self.rate = video_rate(fps)
        self.count = 0
        H, W = self.frame_size
        self._even = (H + H % 2, W + W % 2)
        codec = "libx264" if "libx264" in av.codecs_available else "mpeg4"
        self._container = av.open(self.path, mode="w", container_options={"movflags": "+faststart"})
        try:
            self._stream = self._container.add_stream(codec, rate=self.rate)
            self._stream.height, self._stream.width = self._even
            self._stream.pix_fmt = "yuv420p"
            if codec == "libx264":
                self._stream.options = {"crf": str(crf), "preset": preset}
            self._time_base: Optional[Fraction] = None  # set by the first write
            self._last_pts = -1
        except BaseException:
            self._container.close()
            raise
        self._av = av

    def write(self, frame: np.ndarray, time: Optional[float] = None) -> None:
        """Append one uint8 RGB (H, W, 3) frame, shown at ``time`` seconds (default: count / fps)."""
        if frame.shape[:2] != self.frame_size:
            raise ValueError(f"{self.path}: frame of size {frame.shape[:2]}, expected {self.frame_size}")
        if self._even != self.frame_size:
            padded = np.zeros((*self._even, 3), dtype=np.uint8)
            padded[: frame.shape[0], : frame.shape[1]] = frame
            frame = padded
        vf = self._av.VideoFrame.from_ndarray(np.ascontiguousarray(frame, dtype=np.uint8), format="rgb24")
        if self._time_base is None:
            self._time_base = self.TIME_BASE if time is not None else 1 / self.rate
            self._stream.codec_context.time_base = self._time_base
            if time is not None:
                self._stream.time_base = self._time_base
        if time is None:
            pts = self.count if self._time_base == 1 / self.rate else round(self.count / self.rate / self._time_base)
        else:
            pts = round(Fraction(time).limit_denominator(10**9) / self._time_base)
        pts = max(pts, self._last_pts + 1)  # strictly increasing, whatever the input's timestamps
        self._last_pts = pts
        vf.pts = pts
        vf.time_base = self._time_base
        for packet in self._stream.encode(vf):
            self._container.mux(packet)
        self.count += 1

    def close(self) -> None:
        if self._container is None:
            return
        try:
            for packet in self._stream.encode(None):
                self._container.mux(packet)
        finally:
            self._container.close()
            self._container = None

    def __enter__(self) -> "OverlayVideoWriter":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
