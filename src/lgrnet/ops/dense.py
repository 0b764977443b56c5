"""Dense layers routed through the dispatcher: ``linear`` and ``conv_gelu`` (a convolution followed
by exact GELU, PVTv2's depthwise MLP step).

Reference implementations are ``F.linear`` and ``F.gelu(F.conv2d(...))``. The registered fast
path (:mod:`lgrnet.ops.dense_onednn`) calls oneDNN directly for CPU float32 inference (no autograd):
``linear`` with the bias fused into the GEMM, ``conv_gelu`` with GELU fused into the convolution.
On this project's AMD EPYC machines the default float32 GEMM (MKL) reaches about 100 GFLOP/s
per core and oneDNN's 150-230 GFLOP/s on the model's shapes; results agree to float32 rounding
(the sums are accumulated in another order).

:class:`DispatchLinear` is an ``nn.Linear`` whose forward goes through :func:`linear`;
:func:`use_dispatch_linear` turns the ``nn.Linear`` modules of a model into it in place (same
parameters and state dict).
"""
from __future__ import annotations

from typing import Optional

import torch
import torch.nn.functional as F
from torch import nn

from .dispatch import get_impl, register


def linear_ref(x: torch.Tensor, weight: torch.Tensor, bias: Optional[torch.Tensor] = None) -> torch.Tensor:
    return F.linear(x, weight, bias)


def conv_gelu_ref(x: torch.Tensor, weight: torch.Tensor, bias: Optional[torch.Tensor], padding, stride,
                  dilation, groups: int) -> torch.Tensor:
    return F.gelu(F.conv2d(x, weight, bias, stride, padding, dilation, groups))


def conv_relu6_ref(x: torch.Tensor, weight: torch.Tensor, bias: Optional[torch.Tensor], padding, stride,
                   dilation, groups: int) -> torch.Tensor:
    return F.relu6(F.conv2d(x, weight, bias, stride, padding, dilation, groups))


def linear(x: torch.Tensor, weight: torch.Tensor, bias: Optional[torch.Tensor] = None) -> torch.Tensor:
    """``F.linear``; fastest available path for the inputs."""
    return get_impl("linear", x)(x, weight, bias)


def conv_gelu(x: torch.Tensor, conv: nn.Conv2d) -> torch.Tensor:
    """``gelu(conv(x))`` (exact GELU) for a zero-padded ``nn.Conv2d``; fastest available path."""
    if conv.padding_mode != "zeros" or isinstance(conv.padding, str):
        return F.gelu(conv(x))
    return get_impl("conv_gelu", x)(x, conv.weight, conv.bias, list(conv.padding), list(conv.stride),
                                   list(conv.dilation), conv.groups)


def conv_relu6(x: torch.Tensor, conv: nn.Conv2d) -> torch.Tensor:
    """``relu6(conv(x))`` for a zero-padded ``nn.Conv2d`` (EfficientNet-Lite's conv + ReLU6 once its
    BatchNorm is folded, :mod:`lgrnet.models.fuse`); fastest available path."""
    if conv.padding_mode != "zeros" or isinstance(conv.padding, str):
        return F.relu6(conv(x))
    return get_impl("conv_relu6", x)(x, conv.weight, conv.bias, list(conv.padding), list(conv.stride),
                                    list(conv.dilation), conv.groups)


class DispatchLinear(nn.Linear):
    """``nn.Linear`` computed through :func:`linear` (same parameters, same state dict)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return linear(x, self.weight, self.bias)


def use_dispatch_linear(module: nn.Module) -> nn.Module:
    """Turn every plain ``nn.Linear`` inside ``module`` into a :class:`DispatchLinear`, in place."""
    for m in module.modules():
        if type(m) is nn.Linear:
            m.__class__ = DispatchLinear
    return module


register("linear", "reference", linear_ref, priority=0)
register("conv_gelu", "reference", conv_gelu_ref, priority=0)
register("conv_relu6", "reference", conv_relu6_ref, priority=0)
