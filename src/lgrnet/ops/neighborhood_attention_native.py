"""Neighborhood attention in one fused CPU kernel (:mod:`.native`): per query pixel and head, the
window's logits, a float32 softmax and the weighted sum of values in one pass, reading q, k, v
where they are (any strides with a contiguous head dim, float32 or bfloat16: no permute copies)
and writing the output in (B, H, W, heads, d) memory, so that merging the heads is free.

Window starts come from :func:`lgrnet.ops.neighborhood_attention.window_start` (NATTEN's border
rule, any dilation). The same function as
:func:`lgrnet.ops.neighborhood_attention.neighborhood_attention_ref` (tests/test_ops_native.py).
For inference (no autograd).
"""
from __future__ import annotations

from functools import lru_cache
from typing import Tuple

import torch

from ..precision import autocast_enabled
from . import native
from .dispatch import register
from .neighborhood_attention import window_start


@lru_cache(maxsize=256)
def _starts(length: int, kernel_size: int, dilation: int) -> Tuple[int, ...]:
    if length < kernel_size * dilation:
        raise ValueError(f"axis of {length} pixels is smaller than the window "
                         f"(kernel {kernel_size} x dilation {dilation}); pad it first")
    return tuple(window_start(i, length, kernel_size, dilation) for i in range(length))


def neighborhood_attention_native(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, kernel_size: int,
                                  dilation: int = 1, scale: float = 1.0) -> torch.Tensor:
    """q, k, v: (B, heads, H, W, d) -> (B, heads, H, W, d) (a permuted view of (B, H, W, heads, d)
    memory), in q's dtype; logits are ``scale * q . k``."""
    if q.shape != k.shape or q.shape != v.shape or q.dim() != 5:
        raise ValueError(f"q, k, v must have one shape (B, heads, H, W, d); got {tuple(q.shape)}, "
                         f"{tuple(k.shape)}, {tuple(v.shape)}")
    B, nh, H, W, d = q.shape
    K, r = int(kernel_size), int(dilation)
    rows, cols = _starts(H, K, r), _starts(W, K, r)
    dtype = q.dtype
    q, k, v = (x if x.dtype == dtype and x.stride(-1) == 1 else x.to(dtype).contiguous() for x in (q, k, v))
    out = torch.empty(B, H, W, nh, d, dtype=dtype).permute(0, 3, 1, 2, 4)
    status = native.library().lgr_neighborhood_attention(
        q.data_ptr(), k.data_ptr(), v.data_ptr(), int(dtype == torch.bfloat16), B, nh, H, W, d,
        native.int64s(*q.stride()[:4]), native.int64s(*k.stride()[:4]), native.int64s(*v.stride()[:4]),
        out.data_ptr(), native.int64s(*out.stride()[:4]), int(dtype == torch.bfloat16),
        native.int64s(*rows), native.int64s(*cols), K, r, float(scale), native.threads())
    native.check(status, "neighborhood_attention")
    return out


def _available(q: torch.Tensor) -> bool:
    return (q.device.type == "cpu" and q.dtype in (torch.float32, torch.bfloat16)
            and not torch.is_grad_enabled() and not autocast_enabled(q.device.type) and native.available())


register("neighborhood_attention", "native", neighborhood_attention_native, available=_available, priority=20,
         traceable=False)
