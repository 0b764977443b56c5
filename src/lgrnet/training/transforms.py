"""Training augmentation of a clip: the same random parameters for every frame (as published),
plus the optional photometric and geometric options of the small-data recipe (:func:`apply_recipe`).

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
    """frames: uint8 (H, W, 3) each; masks: bool (H, W) or None (frame not annotated), or uint8
    (H, W) label maps (nearest-neighbour throughout, labels kept).

    Returns uint8 (T, size, size, 3) and a list of (size, size) masks, bool or uint8 as given (None kept).
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
        moved = _geometry(mu, params)
        out_masks.append(moved if m.dtype == np.uint8 else moved > 0)
    return np.stack(out_frames), out_masks


# ----------------------------------------------------------------------------- small-data recipe options


@dataclass(frozen=True)
class ClipRecipeParams:
    """One clip's draw of the optional photometric and geometric augmentation (identity values: off).

    Colour factors as torchvision's ``adjust_*``; blur_sigma 0: no blur; noise_std 0: no noise
    (noise_seed seeds the per-pixel noise); angle in degrees (clockwise as displayed, torchvision's affine), scale the zoom,
    translate (dx, dy) in pixels, all about the image centre."""

    brightness: float = 1.0
    contrast: float = 1.0
    saturation: float = 1.0
    hue: float = 0.0
    blur_sigma: float = 0.0
    noise_std: float = 0.0
    noise_seed: int = 0
    angle: float = 0.0
    scale: float = 1.0
    translate: Tuple[float, float] = (0.0, 0.0)

    @property
    def geometric(self) -> bool:
        return self.angle != 0.0 or self.scale != 1.0 or self.translate != (0.0, 0.0)


def recipe_enabled(cfg) -> bool:
    """Whether any option of :func:`draw_recipe_params` is on in ``cfg`` (a TrainConfig)."""
    return any(v > 0 for v in (cfg.aug_brightness, cfg.aug_contrast, cfg.aug_saturation, cfg.aug_hue,
                               cfg.aug_blur_prob, cfg.aug_noise_std, cfg.aug_scale, cfg.aug_rotate, cfg.aug_translate))


def draw_recipe_params(rng: np.random.Generator, cfg, size: int) -> Optional[ClipRecipeParams]:
    """One draw for a whole clip from ``cfg``'s ``aug_*`` fields (None when all are off, or with
    probability 1 - ``aug_prob``). Always consumes the same number of random values."""
    if not recipe_enabled(cfg):
        return None
    u = rng.random(12)
    if u[0] >= cfg.aug_prob:
        return None

    def sym(x: float, v: float) -> float:  # uniform in [-x, x]
        return float((2.0 * v - 1.0) * x)

    blur = float(0.1 + (max(cfg.aug_blur_sigma, 0.1) - 0.1) * u[6]) if u[5] < cfg.aug_blur_prob else 0.0
    return ClipRecipeParams(
        brightness=1.0 + sym(cfg.aug_brightness, u[1]), contrast=1.0 + sym(cfg.aug_contrast, u[2]),
        saturation=1.0 + sym(cfg.aug_saturation, u[3]), hue=sym(min(cfg.aug_hue, 0.5), u[4]), blur_sigma=blur,
        noise_std=float(cfg.aug_noise_std * u[7]), noise_seed=int(u[8] * 2**31),
        angle=sym(cfg.aug_rotate, u[9]), scale=1.0 + sym(cfg.aug_scale, u[10]),
        translate=(round(sym(cfg.aug_translate, u[11]) * size), round(sym(cfg.aug_translate, rng.random()) * size)))


def apply_recipe(video, masks, p: ClipRecipeParams):
    """video (T, 3, S, S) float in [0, 1], masks (T', S, S) bool (or uint8 label maps, kept as labels)
    -> the same, transformed by ``p``
    with torchvision's functional ops, identically for every frame: the geometric part (one affine
    map: rotation, zoom, shift; bilinear for frames, nearest for masks, zeros outside) first, then
    brightness, contrast, saturation, hue, blur and noise (independent per pixel, same std) on the
    frames only."""
    import torch
    from torchvision.transforms.v2 import InterpolationMode
    from torchvision.transforms.v2 import functional as TF

    if p.geometric:
        kw = {"angle": p.angle, "translate": list(p.translate), "scale": p.scale, "shear": [0.0, 0.0]}
        video = TF.affine(video, interpolation=InterpolationMode.BILINEAR, **kw)
        if masks.numel():
            moved = TF.affine(masks[:, None].to(torch.uint8), interpolation=InterpolationMode.NEAREST, **kw)[:, 0]
            masks = moved if masks.dtype == torch.uint8 else moved > 0
    if p.brightness != 1.0:
        video = TF.adjust_brightness(video, p.brightness)
    if p.contrast != 1.0:
        video = TF.adjust_contrast(video, p.contrast)
    if p.saturation != 1.0:
        video = TF.adjust_saturation(video, p.saturation)
    if p.hue != 0.0:
        video = TF.adjust_hue(video, p.hue)
    if p.blur_sigma > 0:
        k = 2 * int(np.ceil(3 * p.blur_sigma)) + 1
        video = TF.gaussian_blur(video, kernel_size=[k, k], sigma=[p.blur_sigma, p.blur_sigma])
    if p.noise_std > 0:
        g = torch.Generator().manual_seed(p.noise_seed)
        video = (video + p.noise_std * torch.randn(video.shape, generator=g)).clamp_(0.0, 1.0)
    return video, masks
