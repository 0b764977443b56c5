"""Training augmentation of a clip: the same random parameters for every frame (as published).

Resize to ``size`` x ``size`` (frames bilinear, masks nearest, like albumentations' ``Resize``),
then horizontal flip (p 0.5), vertical flip (p 0.5) and ``RandomRotate90`` (p 0.5, then 0-3
quarter turns, as albumentations draws it). The multi-scale resize happens later, per batch, in
the training step.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import List, Optional, Sequence, Tuple

import cv2
import numpy as np


@dataclass(frozen=True)
class ClipAugParams:
    hflip: bool
    vflip: bool
    rot90: int  # quarter turns counter-clockwise (np.rot90's k)


def draw_params(rng: np.random.Generator, hflip: bool = True, vflip: bool = True, rot90: bool = True) -> ClipAugParams:
    """One draw for a whole clip. Always consumes the same number of random values."""
    u = rng.random(3)
    k = int(rng.integers(0, 4))
    return ClipAugParams(hflip=bool(hflip and u[0] < 0.5), vflip=bool(vflip and u[1] < 0.5),
                         rot90=k if (rot90 and u[2] < 0.5) else 0)


def _geometry(x: np.ndarray, p: ClipAugParams) -> np.ndarray:
    if p.hflip:
        x = x[:, ::-1]
    if p.vflip:
        x = x[::-1]
    if p.rot90:
        x = np.rot90(x, p.rot90)
    return np.ascontiguousarray(x)


def augment_clip(frames: Sequence[np.ndarray], masks: Sequence[Optional[np.ndarray]], size: int,
                 params: ClipAugParams) -> Tuple[np.ndarray, List[Optional[np.ndarray]]]:
    """frames: uint8 (H, W, 3) each; masks: bool (H, W) or None (frame not annotated).

    Returns uint8 (T, size, size, 3) and a list of bool (size, size) masks (None kept).
    """
    out_frames = []
    out_masks: List[Optional[np.ndarray]] = []
    for f, m in zip(frames, masks):
        if f.shape[:2] != (size, size):
            f = cv2.resize(f, (size, size), interpolation=cv2.INTER_LINEAR)
        out_frames.append(_geometry(f, params))
        if m is None:
            out_masks.append(None)
            continue
        mu = m.astype(np.uint8)
        if mu.shape != (size, size):
            mu = cv2.resize(mu, (size, size), interpolation=cv2.INTER_NEAREST)
        out_masks.append(_geometry(mu, params) > 0)
    return np.stack(out_frames), out_masks
