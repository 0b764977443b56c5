"""Sine position embeddings (DETR style, normalised to [0, 2*pi], temperature 10000).

All are deterministic functions of the map size; computed in float32 and cached per shape.
"""
from __future__ import annotations

import math
from functools import lru_cache

import torch

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


@lru_cache(maxsize=64)
def _sine_2d(h: int, w: int, dim: int) -> torch.Tensor:
    nf = dim // 2
    freqs = _frequencies(nf)
    pos_y = _interleave_sin_cos(_positions(h)[:, None] / freqs)  # (h, nf)
    pos_x = _interleave_sin_cos(_positions(w)[:, None] / freqs)  # (w, nf)
    pos = torch.cat([pos_y[:, None, :].expand(h, w, nf), pos_x[None, :, :].expand(h, w, nf)], dim=-1)
    return pos.permute(2, 0, 1).contiguous()  # (dim, h, w)


def sine_embedding_2d(h: int, w: int, dim: int, device=None, dtype=None) -> torch.Tensor:
    """(dim, h, w): first dim/2 features encode y, the rest x."""
    return _sine_2d(int(h), int(w), int(dim)).to(device=device, dtype=dtype or torch.float32)


@lru_cache(maxsize=64)
def _sine_1d(n: int, dim: int) -> torch.Tensor:
    return _interleave_sin_cos(_positions(n)[:, None] / _frequencies(dim)).contiguous()


def sine_embedding_1d(n: int, dim: int, device=None, dtype=None) -> torch.Tensor:
    """(n, dim): a 1-D sine embedding over n positions (time), all dim features."""
    return _sine_1d(int(n), int(dim)).to(device=device, dtype=dtype or torch.float32)


@lru_cache(maxsize=64)
def _sine_3d_parts(t: int, h: int, w: int, dim: int):
    nf = dim // 2
    freqs = _frequencies(nf)
    freqs_t = _frequencies(nf * 2)
    pos_y = _interleave_sin_cos(_positions(h)[:, None] / freqs)  # (h, nf)
    pos_x = _interleave_sin_cos(_positions(w)[:, None] / freqs)  # (w, nf)
    pos_t = _interleave_sin_cos(_positions(t)[:, None] / freqs_t)  # (t, dim)
    yx = torch.cat([pos_y[:, None, :].expand(h, w, nf), pos_x[None, :, :].expand(h, w, nf)], dim=-1)
    return yx, pos_t


def _sine_3d(t: int, h: int, w: int, dim: int) -> torch.Tensor:
    # Only the small parts are cached: the (dim, t, h, w) sum grows with the clip length (~190 MB
    # per clip length at 300 frames of 352x352), too much to keep for every length seen.
    with torch.inference_mode(False):
        yx, pos_t = _sine_3d_parts(t, h, w, dim)
        pos = yx[None] + pos_t[:, None, None, :]  # (t, h, w, dim)
        return pos.permute(3, 0, 1, 2).contiguous()  # (dim, t, h, w)


def sine_embedding_3d(t: int, h: int, w: int, dim: int, device=None, dtype=None) -> torch.Tensor:
    """(dim, t, h, w): 2-D (y, x) sine embedding plus a dim-wide sine embedding over time."""
    return _sine_3d(int(t), int(h), int(w), int(dim)).to(device=device, dtype=dtype or torch.float32)
