"""Scaled dot-product attention without a mask (the backbone's spatial-reduction attention):
``softmax(q k^T / sqrt(d)) v``.

Shapes: q (B, heads, Lq, d), k and v (B, heads, Lk, d) -> (B, heads, Lq, d).
The reference is PyTorch's ``F.scaled_dot_product_attention`` (its CPU flash kernel); faster
paths register themselves (:mod:`.attention_native`).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from .dispatch import get_impl, register


def attention_ref(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """``F.scaled_dot_product_attention(q, k, v)`` (no mask, no dropout, scale 1/sqrt(d))."""
    return F.scaled_dot_product_attention(q, k, v)


def attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """Unmasked scaled dot-product attention; fastest available path for the inputs."""
    return get_impl("attention", q)(q, k, v)


register("attention", "reference", attention_ref, priority=0)
