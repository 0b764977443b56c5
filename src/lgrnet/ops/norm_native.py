"""LayerNorm in one fused CPU kernel (:mod:`.native`): each row read once into float32, mean and
variance in float32, scaled, shifted and written in the input's dtype. PyTorch's CPU LayerNorm
is slower in bfloat16 than in float32 for the model's rows of 64 to 512 channels; this kernel
reads half the bytes. Used for bfloat16 inference on rows of at least ``MIN_ELEMENTS`` elements (in
float32 PyTorch's kernel is as fast; below that the call's overhead dominates). Tested against :func:`lgrnet.ops.norm.layer_norm_ref`
(tests/test_ops_native.py).
"""
from __future__ import annotations

from typing import Optional

import torch

from ..precision import autocast_enabled
from . import native
from .dispatch import register
from .norm import layer_norm_ref

MIN_ELEMENTS = 1 << 15


def layer_norm_native(x: torch.Tensor, weight: Optional[torch.Tensor], bias: Optional[torch.Tensor],
                      eps: float) -> torch.Tensor:
    """(..., C) float32 or bfloat16 -> (..., C) in x's dtype; weight and bias (C,) in x's dtype or float32."""
    C = x.shape[-1]
    params = [t for t in (weight, bias) if t is not None]
    if (x.numel() < MIN_ELEMENTS or x.stride(-1) != 1 or any(t.dtype != params[0].dtype or t.stride(-1) != 1 for t in params)
            or (params and params[0].dtype not in (torch.float32, torch.bfloat16))):
        return layer_norm_ref(x, weight, bias, eps)
    if x.dim() > 2 and not x.is_contiguous():
        x = x.contiguous()
    rows = x.reshape(-1, C)
    out = torch.empty(rows.shape, dtype=x.dtype)
    bf16 = int(x.dtype == torch.bfloat16)
    status = native.library().lgr_add_layer_norm(
        rows.data_ptr(), bf16, rows.stride(0), None, 0, 0, native.ptr(weight), native.ptr(bias),
        int(bool(params) and params[0].dtype == torch.bfloat16), float(eps), rows.shape[0], C,
        out.data_ptr(), bf16, C, native.threads())
    native.check(status, "layer_norm")
    return out.view(x.shape)


def _available(x: torch.Tensor) -> bool:
    return (x.device.type == "cpu" and x.dtype == torch.bfloat16 and not torch.is_grad_enabled()
            and not autocast_enabled("cpu") and native.available())


register("layer_norm", "native", layer_norm_native, available=_available, priority=20, traceable=False)
