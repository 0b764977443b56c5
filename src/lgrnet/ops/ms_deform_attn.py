"""Multi-scale deformable attention sampling core (Deformable DETR), in plain PyTorch.

Each query samples, per head, level and point, one bilinear value of that level's map at a
fractional location, and sums them with its attention weights. Bilinear sampling follows
``grid_sample(mode='bilinear', padding_mode='zeros', align_corners=False)``: locations are
in [0, 1] x [0, 1] per level, samples outside the map read zeros.

Shapes:
    value: (N, S, heads, d) with S = sum_l H_l * W_l (levels concatenated, row-major);
    spatial_shapes: list of (H_l, W_l);
    sampling_locations: (N, Lq, heads, levels, points, 2) as (x, y) in [0, 1];
    attention_weights: (N, Lq, heads, levels, points).
    Returns (N, Lq, heads * d) in value's dtype (sampled in the wider of value's and the
    locations' dtypes: :func:`sample_dtype`).
"""
from __future__ import annotations

from typing import Sequence, Tuple

import torch
import torch.nn.functional as F

from .dispatch import get_impl, register


def ms_deform_attn_ref(value: torch.Tensor, spatial_shapes: Sequence[Tuple[int, int]],
                       sampling_locations: torch.Tensor,
                       attention_weights: torch.Tensor) -> torch.Tensor:
    """Reference: one ``grid_sample`` per level (the published pure-PyTorch core)."""
    N, S, M, D = value.shape
    _, Lq, _, L, P, _ = sampling_locations.shape
    out_dtype = value.dtype
    value = value.to(sample_dtype(value, sampling_locations))
    value_list = value.split([int(h) * int(w) for h, w in spatial_shapes], dim=1)
    grids = 2 * sampling_locations - 1
    sampled = []
    for lvl, (h, w) in enumerate(spatial_shapes):
        # (N, h*w, M, D) -> (N*M, D, h, w)
        v = value_list[lvl].flatten(2).transpose(1, 2).reshape(N * M, D, int(h), int(w))
        # (N, Lq, M, P, 2) -> (N*M, Lq, P, 2)
        g = grids[:, :, :, lvl].transpose(1, 2).flatten(0, 1)
        sampled.append(F.grid_sample(v, g, mode="bilinear", padding_mode="zeros", align_corners=False))
    # (N*M, D, Lq, L, P) * (N*M, 1, Lq, L, P)
    w = attention_weights.transpose(1, 2).reshape(N * M, 1, Lq, L * P)
    out = (torch.stack(sampled, dim=-2).flatten(-2) * w).sum(-1).view(N, M * D, Lq)
    return out.transpose(1, 2).contiguous().to(out_dtype)


def sample_dtype(value: torch.Tensor, sampling_locations: torch.Tensor) -> torch.dtype:
    """The dtype the sampling runs in: the wider of the values' and the locations' (bfloat16
    values with float32 locations are sampled in float32: exact locations); the result is in
    the values' dtype."""
    return torch.promote_types(value.dtype, sampling_locations.dtype)


def ms_deform_attn(value: torch.Tensor, spatial_shapes: Sequence[Tuple[int, int]],
                   sampling_locations: torch.Tensor, attention_weights: torch.Tensor) -> torch.Tensor:
    """Multi-scale deformable attention core; fastest available path for the inputs."""
    return get_impl("ms_deform_attn", value)(value, spatial_shapes, sampling_locations, attention_weights)


register("ms_deform_attn", "reference", ms_deform_attn_ref, priority=0)
