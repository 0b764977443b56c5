"""Writers for prediction outputs: mask and probability PNGs, and the overlay video.

- mask PNG: 8-bit grey, 0 (background) or 255 (lesion), at the frame's original size;
- probability PNG: 8-bit grey, ``round(255 * p)`` (zlib level 1: 4.6 ms a 574x500 frame against 7.4 at
  level 3 on this project's CPU, files ~25 % larger);
- overlay video: H.264 (yuv420p, browser-playable, ``+faststart``) at the input's frame rate,
  one video frame per input frame, with the lesion outline and the frame's score drawn. H.264
  with 4:2:0 chroma needs even sizes: odd widths or heights get one black column or row at the
  right or bottom.
"""
from __future__ import annotations

import os
from fractions import Fraction
from typing import Optional, Tuple, Union

import cv2
import numpy as np

OUTLINE_RGB = (0, 255, 0)


def encode_png(image: np.ndarray, path: Union[str, os.PathLike] = "image", compression: int = 3) -> bytes:
    """uint8 grey (H, W) or BGR (H, W, 3) image -> PNG bytes (``path`` only names it in errors)."""
    ok, buf = cv2.imencode(".png", image, [cv2.IMWRITE_PNG_COMPRESSION, compression])
    if not ok:
        raise OSError(f"{path}: PNG encoding failed")
    return buf.tobytes()


def _write_png(path: Union[str, os.PathLike], image: np.ndarray, compression: int = 3) -> None:
    with open(path, "wb") as f:
        f.write(encode_png(image, path, compression))


def mask_to_uint8(mask: np.ndarray) -> np.ndarray:
    """(H, W) bool (or 0/1) -> uint8 with values 0 and 255."""
    return np.where(np.asarray(mask, dtype=bool), 255, 0).astype(np.uint8)


def write_mask_png(path: Union[str, os.PathLike], mask: np.ndarray) -> None:
    """mask: (H, W) bool (or 0/1) -> 8-bit PNG with values 0 and 255."""
    _write_png(path, mask_to_uint8(mask))


def prob_to_uint8(prob: np.ndarray) -> np.ndarray:
    """(H, W) probabilities in [0, 1] -> uint8 ``round(255 * p)``."""
    return np.rint(np.clip(np.asarray(prob, dtype=np.float64), 0.0, 1.0) * 255.0).astype(np.uint8)


def write_prob_png(path: Union[str, os.PathLike], prob: np.ndarray) -> None:
    """prob: (H, W) float in [0, 1] -> 8-bit PNG holding ``round(255 * p)``."""
    _write_png(path, prob_to_uint8(prob), compression=1)


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
        cv2.drawContours(out, contours, -1, color, thickness, lineType=cv2.LINE_AA)
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
    ...     w.write(frame)
    """

    def __init__(self, path: Union[str, os.PathLike], fps: Union[float, Fraction], frame_size: Tuple[int, int],
                 crf: int = 20):
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
                self._stream.options = {"crf": str(crf), "preset": "veryfast"}
            self._time_base = 1 / self.rate
        except BaseException:
            self._container.close()
            raise
        self._av = av

    def write(self, frame: np.ndarray) -> None:
        """Append one uint8 RGB (H, W, 3) frame."""
        if frame.shape[:2] != self.frame_size:
            raise ValueError(f"{self.path}: frame of size {frame.shape[:2]}, expected {self.frame_size}")
        if self._even != self.frame_size:
            padded = np.zeros((*self._even, 3), dtype=np.uint8)
            padded[: frame.shape[0], : frame.shape[1]] = frame
            frame = padded
        vf = self._av.VideoFrame.from_ndarray(np.ascontiguousarray(frame, dtype=np.uint8), format="rgb24")
        vf.pts = self.count
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
