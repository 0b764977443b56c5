"""Point sampling for mask losses (PointRend / Mask2Former), written on ``grid_sample``.

Coordinates are normalised to [0, 1] x [0, 1] as (x, y), so a prediction and a target of
different resolutions are sampled at the same physical points (the multi-scale training step
relies on this: predictions are at the step's random size, targets at the clip's size).
"""
from __future__ import annotations

from typing import Callable, Optional

import torch
import torch.nn.functional as F


def point_sample(inputs: torch.Tensor, coords: torch.Tensor, align_corners: bool = False) -> torch.Tensor:
    """Bilinearly sample ``inputs`` (N, C, H, W) at ``coords`` (N, P, 2) in [0, 1] (x, y).

    Returns (N, C, P). Points outside the map read zeros (``grid_sample``'s zero padding).
    """
    if coords.dim() != 3 or coords.shape[-1] != 2:
        raise ValueError(f"point coordinates must be (N, P, 2), got {tuple(coords.shape)}")
    grid = (2.0 * coords - 1.0).unsqueeze(2).to(inputs.dtype)  # (N, P, 1, 2) in [-1, 1]
    return F.grid_sample(inputs, grid, mode="bilinear", padding_mode="zeros", align_corners=align_corners).squeeze(3)


def logit_uncertainty(logits: torch.Tensor) -> torch.Tensor:
    """Uncertainty of class-agnostic mask logits: -|logit| (highest at the decision boundary)."""
    return -logits.abs()


def uncertain_point_coords_with_randomness(
    logits: torch.Tensor,
    num_points: int,
    oversample_ratio: float,
    importance_sample_ratio: float,
    uncertainty: Callable[[torch.Tensor], torch.Tensor] = logit_uncertainty,
    generator: Optional[torch.Generator] = None,
) -> torch.Tensor:
    """PointRend's training-time point selection for masks ``logits`` (N, 1, H, W).

    Draw ``int(num_points * oversample_ratio)`` uniform random points per mask, keep the
    ``int(importance_sample_ratio * num_points)`` most uncertain of them, and add
    ``num_points - that`` fresh uniform points. Returns (N, num_points, 2) in [0, 1].
    ``generator`` (on ``logits``' device) makes the draw reproducible.
    """
    if not 0.0 <= importance_sample_ratio <= 1.0:
        raise ValueError(f"importance_sample_ratio must be in [0, 1], got {importance_sample_ratio}")
    if oversample_ratio < 1.0:
        raise ValueError(f"oversample_ratio must be >= 1, got {oversample_ratio}")
    n = logits.shape[0]
    num_sampled = int(num_points * oversample_ratio)
    coords = torch.rand(n, num_sampled, 2, device=logits.device, generator=generator)
    scores = uncertainty(point_sample(logits, coords))[:, 0]  # (N, num_sampled)
    num_uncertain = int(importance_sample_ratio * num_points)
    num_random = num_points - num_uncertain
    idx = torch.topk(scores, k=num_uncertain, dim=1).indices  # (N, num_uncertain)
    coords = torch.gather(coords, 1, idx[..., None].expand(-1, -1, 2))
    if num_random > 0:
        extra = torch.rand(n, num_random, 2, device=logits.device, generator=generator)
        coords = torch.cat([coords, extra], dim=1)
    return coords
