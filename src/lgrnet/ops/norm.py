"""LayerNorm routed through the op registry: ``layer_norm(x, weight, bias, eps)`` over the last
dimension, and :class:`DispatchLayerNorm`, an ``nn.LayerNorm`` whose forward goes through it.

The reference is ``F.layer_norm``; the fused CPU kernel (:mod:`.norm_native`) registers itself.
"""
from __future__ import annotations

from typing import Optional

import torch
import torch.nn.functional as F
from torch import nn

from .dispatch import get_impl, register


def layer_norm_ref(x: torch.Tensor, weight: Optional[torch.Tensor], bias: Optional[torch.Tensor],
                   eps: float) -> torch.Tensor:
    """``F.layer_norm`` over the last dimension. x: (..., C) -> (..., C)."""
    return F.layer_norm(x, x.shape[-1:], weight, bias, eps)


def layer_norm(x: torch.Tensor, weight: Optional[torch.Tensor], bias: Optional[torch.Tensor],
               eps: float) -> torch.Tensor:
    """LayerNorm over the last dimension; fastest available path for the inputs."""
    return get_impl("layer_norm", x)(x, weight, bias, eps)


class DispatchLayerNorm(nn.LayerNorm):
    """``nn.LayerNorm`` over the last dimension computed through :func:`layer_norm` (same
    parameters, same state dict)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return layer_norm(x, self.weight, self.bias, self.eps)


def use_dispatch_layer_norm(module: nn.Module) -> nn.Module:
    """Turn every plain ``nn.LayerNorm`` over one dimension inside ``module`` into a
    :class:`DispatchLayerNorm`, in place."""
    for m in module.modules():
        if type(m) is nn.LayerNorm and len(m.normalized_shape) == 1:
            m.__class__ = DispatchLayerNorm
    return module


register("layer_norm", "reference", layer_norm_ref, priority=0)
