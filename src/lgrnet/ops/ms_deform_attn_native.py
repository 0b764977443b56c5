"""Multi-scale deformable attention core in one fused CPU kernel (:mod:`.native`): the bilinear
sampling and the weighted sum over levels and points in one pass, reading the values where they
are (float32 or bfloat16, no cast, no layout copy) and accumulating in float32.

The same function as :func:`lgrnet.ops.ms_deform_attn.ms_deform_attn_ref` (tested in
tests/test_ops_native.py). For inference (no autograd): with gradients enabled the other paths run.
"""
from __future__ import annotations

from typing import Sequence, Tuple

import torch

from ..precision import autocast_enabled
from . import native
from .dispatch import register


def ms_deform_attn_native(value: torch.Tensor, spatial_shapes: Sequence[Tuple[int, int]],
                          sampling_locations: torch.Tensor, attention_weights: torch.Tensor) -> torch.Tensor:
    """(N, S, M, D) f32/bf16, [(H_l, W_l)], (N, Lq, M, L, P, 2) f32, (N, Lq, M, L, P) f32 -> (N, Lq, M * D)
    in value's dtype."""
    N, S, M, D = value.shape
    _, Lq, _, L, P, _ = sampling_locations.shape
    shapes = [(int(h), int(w)) for h, w in spatial_shapes]
    if len(shapes) != L or sum(h * w for h, w in shapes) != S:
        raise ValueError(f"spatial shapes {shapes} do not match {L} levels of {S} tokens")
    if value.stride(-1) != 1:
        value = value.contiguous()
    loc = sampling_locations.to(torch.float32).contiguous()
    attn = attention_weights.to(torch.float32).contiguous()
    out = torch.empty(N, Lq, M, D, dtype=value.dtype)
    starts, s = [], 0
    for h, w in shapes:
        starts.append(s)
        s += h * w
    status = native.library().lgr_ms_deform_attn(
        value.data_ptr(), int(value.dtype == torch.bfloat16), N, S, M, D,
        value.stride(0), value.stride(1), value.stride(2),
        native.int64s(*[x for hw in shapes for x in hw]), native.int64s(*starts), L, P,
        loc.data_ptr(), attn.data_ptr(), Lq, out.data_ptr(), int(out.dtype == torch.bfloat16), native.threads())
    native.check(status, "ms_deform_attn")
    return out.view(N, Lq, M * D)


def _available(value: torch.Tensor) -> bool:
    return (value.device.type == "cpu" and value.dtype in (torch.float32, torch.bfloat16)
            and not torch.is_grad_enabled() and not autocast_enabled(value.device.type) and native.available())


register("ms_deform_attn", "native", ms_deform_attn_native, available=_available, priority=20, traceable=False)
