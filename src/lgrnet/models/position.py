"""Sine position embeddings (DETR style, normalised to [0, 2*pi], temperature 10000).

All are deterministic functions of the map size, computed in float32 and kept on each device
(:func:`lgrnet.ops.constants.device_constant`).
"""
from __future__ import annotations

import math

import torch

from ..ops.constants import device_constant

_SCALE = 2 * math.pi
_EPS = 1e-6


def _positions(n: int) -> torch.Tensor:
    """1..n normalised as cumsum / (last + eps) * 2pi (what the mask-cumsum formulation gives)."""
    pos = torch.arange(1, n + 1, dtype=torch.float32)
    return pos / (pos[-1:] + _EPS) * _SCALE


def _frequencies(num_feats: int, temperature: float = 10000.0) -> torch.Tensor:
    dim_t = torch.arange(num_feats, dtype=torch.float32)
    return temperature ** (2 * torch.div(dim_t, 2, rounding_mode="floor") / num_feats)


def _interleave_sin_cos(x: torch.Tensor) -> torch.Tensor:
    """(..., F) angles -> (..., F): sin at even features, cos at odd ones."""
    return torch.stack((x[..., 0::2].sin(), x[..., 1::2].cos()), dim=-1).flatten(-2)


def _sine_2d(h: int, w: int, dim: int) -> torch.Tensor:
    return _sine_yx(h, w, dim).permute(2, 0, 1).contiguous()  # (dim, h, w)


def _sine_yx(h: int, w: int, dim: int) -> torch.Tensor:
    """(h, w, dim): the first dim/2 features encode y, the rest x."""
    nf = dim // 2
    freqs = _frequencies(nf)
    pos_y = _interleave_sin_cos(_positions(h)[:, None] / freqs)  # (h, nf)
    pos_x = _interleave_sin_cos(_positions(w)[:, None] / freqs)  # (w, nf)
    return torch.cat([pos_y[:, None, :].expand(h, w, nf), pos_x[None, :, :].expand(h, w, nf)], dim=-1)


def sine_embedding_2d(h: int, w: int, dim: int, device=None, dtype=None) -> torch.Tensor:
    """(dim, h, w): first dim/2 features encode y, the rest x."""
    return device_constant(_sine_2d, int(h), int(w), int(dim), device=device, dtype=dtype or torch.float32)


def _sine_1d(n: int, dim: int) -> torch.Tensor:
    return _interleave_sin_cos(_positions(n)[:, None] / _frequencies(dim)).contiguous()


def sine_embedding_1d(n: int, dim: int, device=None, dtype=None) -> torch.Tensor:
    """(n, dim): a 1-D sine embedding over n positions (time), all dim features."""
    return device_constant(_sine_1d, int(n), int(dim), device=device, dtype=dtype or torch.float32)


def sine_embedding_3d(t: int, h: int, w: int, dim: int, device=None, dtype=None) -> torch.Tensor:
    """(dim, t, h, w): 2-D (y, x) sine embedding plus a dim-wide sine embedding over time.

    Only the two small parts, (h, w, dim) and (t, dim), are cached on the device; their sum is made
    there on each call (the (dim, t, h, w) sum grows with the clip length: ~190 MB at 300 frames
    of 352x352, too much to keep for every length seen)."""
    yx = device_constant(_sine_yx, int(h), int(w), int(dim), device=device, dtype=torch.float32)
    pos_t = device_constant(_sine_1d, int(t), int(dim), device=device, dtype=torch.float32)
    pos = yx[None] + pos_t[:, None, None, :]  # (t, h, w, dim)
    return pos.permute(3, 0, 1, 2).to(dtype=dtype or torch.float32, memory_format=torch.contiguous_format)
