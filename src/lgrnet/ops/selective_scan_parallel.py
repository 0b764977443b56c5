"""Selective scan as a parallel prefix scan (Hillis-Steele), for GPUs.

The recurrence h[l] = a[l] * h[l-1] + b[l] is an associative scan over pairs (a, b) with
(a1, b1) o (a2, b2) = (a1 * a2, a2 * b1 + b2). Hillis-Steele does it in ceil(log2 L) rounds of
whole-tensor operations (O(L log L) work): few kernel launches, which is what a GPU needs; on a CPU
the step loop does less work and is as fast. Only products of decays in (0, 1] are formed, so
nothing overflows (tiny products underflow to 0, as the true values do).
"""
from __future__ import annotations

from typing import Optional

import torch

from .dispatch import register
from .selective_scan import _prepare

# A GPU wants few kernels: log2(L) whole-tensor rounds (Hillis-Steele) instead of the chunked
# form's ~3 sqrt(L) steps. The model scans L = 20 frame queries x T (120 at T=6, 6000 at T=300).
# H100 float32, d=256, n=16 (benchmarks/gpu_check.py): L=11616 13.1 ms vs chunked 13.4-21.7 ms;
# beyond ~16k positions the chunked form wins (L=58080: 73.5 vs 27-47 ms) and uses less memory.
PARALLEL_SCAN_MAX_LENGTH = 16384


def selective_scan_parallel(u: torch.Tensor, delta: torch.Tensor, A: torch.Tensor, B: torch.Tensor,
                            C: torch.Tensor, D: Optional[torch.Tensor] = None,
                            delta_bias: Optional[torch.Tensor] = None,
                            delta_softplus: bool = False) -> torch.Tensor:
    dtype_in = u.dtype
    u, delta, A, Bx, Cx = _prepare(u, delta, A, B, C, delta_bias, delta_softplus)
    batch, dim, L = u.shape
    a = torch.exp(delta[:, :, None, :] * A[None, :, :, None])          # (b, d, n, L)
    h = (delta * u)[:, :, None, :] * Bx                                 # (b, d, n, L)
    step = 1
    while step < L:
        h = torch.cat([h[..., :step], torch.addcmul(h[..., step:], a[..., step:], h[..., :-step])], dim=-1)
        if step * 2 < L:
            a = torch.cat([a[..., :step], a[..., step:] * a[..., :-step]], dim=-1)
        step *= 2
    y = (h * Cx).sum(2)
    if D is not None:
        y = y + u * D.to(y.dtype)[:, None]
    return y.to(dtype_in)


def _short_on_cuda(x: torch.Tensor) -> bool:
    return x.is_cuda and x.shape[-1] <= PARALLEL_SCAN_MAX_LENGTH


register("selective_scan", "parallel", selective_scan_parallel, available=_short_on_cuda, priority=15)
