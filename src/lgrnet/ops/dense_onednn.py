"""oneDNN paths of the dense layers (:mod:`lgrnet.ops.dense`) for CPU inference in float32, and in
bfloat16 on CPUs with native bfloat16 (:func:`lgrnet.precision.cpu_bf16_support`).

``linear`` with the bias fused into the GEMM and ``conv_gelu`` with exact GELU fused into the
convolution, called through PyTorch's private ``torch.ops.mkldnn`` kernels. Used when PyTorch
has them and they agree with the references (checked once), for CPU float32 inputs without
autograd (bfloat16: inputs and weights bfloat16, products accumulated in float32 by oneDNN; tested
against the float32 reference in tests/test_ops_bf16.py). Dynamo cannot trace these private ops, so they are registered ``traceable=False``:
compiled code uses the references (and Inductor's own CPU kernels).
"""
from __future__ import annotations

import functools
from typing import List, Optional

import torch
import torch.nn.functional as F

from ..precision import cpu_autocast_enabled
from .dispatch import register


def linear_onednn(x: torch.Tensor, weight: torch.Tensor, bias: Optional[torch.Tensor] = None) -> torch.Tensor:
    """``F.linear`` with the bias fused into oneDNN's GEMM. x: (..., in) -> (..., out)."""
    return torch.ops.mkldnn._linear_pointwise(x, weight, bias, "none", [], "")


def conv_gelu_onednn(x: torch.Tensor, weight: torch.Tensor, bias: Optional[torch.Tensor], padding: List[int],
                     stride: List[int], dilation: List[int], groups: int) -> torch.Tensor:
    """``gelu(conv2d(x))`` with GELU fused into oneDNN's convolution. x: (N, C, H, W)."""
    return torch.ops.mkldnn._convolution_pointwise(x, weight, bias, padding, stride, dilation, groups,
                                                   "gelu", [], "none")


def conv_relu6_onednn(x: torch.Tensor, weight: torch.Tensor, bias: Optional[torch.Tensor], padding: List[int],
                      stride: List[int], dilation: List[int], groups: int) -> torch.Tensor:
    """``relu6(conv2d(x))`` with the clamp fused into oneDNN's convolution (its "hardtanh" post-op). x: (N, C, H, W)."""
    return torch.ops.mkldnn._convolution_pointwise(x, weight, bias, padding, stride, dilation, groups,
                                                   "hardtanh", [0.0, 6.0], "")


@functools.lru_cache(maxsize=1)
def _onednn_ok() -> bool:
    """oneDNN's fused CPU kernels exist in this PyTorch and agree with the references."""
    try:
        if not (torch.backends.mkldnn.is_available() and hasattr(torch.ops.mkldnn, "_linear_pointwise")
                and hasattr(torch.ops.mkldnn, "_convolution_pointwise")):
            return False
        g = torch.Generator().manual_seed(0)
        with torch.no_grad():
            x, w, b = torch.randn(2, 33, 40, generator=g), torch.randn(24, 40, generator=g), torch.randn(24, generator=g)
            ok = torch.allclose(linear_onednn(x, w, b), F.linear(x, w, b), rtol=1e-5, atol=1e-5)
            xi = torch.randn(1, 6, 9, 7, generator=g).to(memory_format=torch.channels_last)
            cw, cb = torch.randn(6, 1, 3, 3, generator=g), torch.randn(6, generator=g)
            ref = F.gelu(F.conv2d(xi, cw, cb, 1, 1, 1, 6))
            ok &= torch.allclose(conv_gelu_onednn(xi, cw, cb, [1, 1], [1, 1], [1, 1], 6), ref, rtol=1e-5, atol=1e-5)
            xr = xi * 8  # values beyond 6 and below 0: the clamp is exercised
            ref6 = F.relu6(F.conv2d(xr, cw, cb, 1, 1, 1, 6))
            ok &= torch.allclose(conv_relu6_onednn(xr, cw, cb, [1, 1], [1, 1], [1, 1], 6), ref6, rtol=1e-5, atol=1e-4)
        return bool(ok)
    except Exception:  # a PyTorch without these private ops, or with another signature
        return False


@functools.lru_cache(maxsize=1)
def _bf16_ok() -> bool:
    """The CPU computes bfloat16 natively (else oneDNN would emulate it, slower than float32)."""
    from ..precision import cpu_bf16_support  # lgrnet.precision imports nothing from lgrnet.ops

    return cpu_bf16_support()[0]


def _onednn_available(x: torch.Tensor) -> bool:
    # under CPU autocast the reference (F.linear / F.conv2d) casts the weights as autocast decides;
    # these kernels take the weights as they are and refuse mixed dtypes
    if x.device.type != "cpu" or torch.is_grad_enabled() or x.layout != torch.strided or cpu_autocast_enabled():
        return False
    if x.dtype == torch.float32:
        return _onednn_ok()
    return x.dtype == torch.bfloat16 and _onednn_ok() and _bf16_ok()


register("linear", "onednn", linear_onednn, available=_onednn_available, priority=10, traceable=False)
register("conv_gelu", "onednn", conv_gelu_onednn, available=_onednn_available, priority=10, traceable=False)
register("conv_relu6", "onednn", conv_relu6_onednn, available=_onednn_available, priority=10, traceable=False)
