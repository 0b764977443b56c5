"""Inference-only rewrites of a model that keep its function: BatchNorm folded into the
convolution before it, and a ReLU6 after it computed by the convolution.

:func:`fold_batch_norms` turns every ``Conv2d`` -> ``BatchNorm2d`` pair of siblings (timm's
EfficientNet / MobileNet blocks: ``conv_pw``, ``bn1``, ``conv_dw``, ``bn2``, ...) into one
convolution with the normalisation in its weights and bias (``torch.nn.utils.fusion``); a
BatchNorm with a fused activation (timm's ``BatchNormAct2d``) keeps its activation. The result
equals the original in eval mode up to float rounding. Used by :func:`lgrnet.models.bf16.bfloat16_copy`
(folded in float32, then cast: one rounding instead of two, and no BatchNorm pass over the
activations). A folded convolution whose BatchNorm's activation was ReLU6 (EfficientNet-Lite)
becomes a :class:`ConvReLU6`, computed by :func:`lgrnet.ops.dense.conv_relu6` (oneDNN's clamp
post-op in CPU inference).
"""
from __future__ import annotations

import torch
from torch import nn
from torch.nn.utils.fusion import fuse_conv_bn_weights

from ..ops.dense import conv_relu6
from .depthwise import DepthwiseConv2d


class ConvReLU6(nn.Conv2d):
    """``relu6(conv(x))`` through :func:`lgrnet.ops.dense.conv_relu6` (same parameters)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return conv_relu6(x, self)


def fold_batch_norms(model: nn.Module) -> int:
    """Fold, in place, every BatchNorm2d (eval statistics) that directly follows a Conv2d among
    its parent's children. Returns how many were folded. ``model`` must be in eval mode."""
    if model.training:
        raise ValueError("fold_batch_norms: the model must be in eval mode (running statistics)")
    folded = 0
    for parent in list(model.modules()):
        children = list(parent.named_children())
        for (conv_name, conv), (bn_name, bn) in zip(children, children[1:]):
            if not (type(conv) in (nn.Conv2d, DepthwiseConv2d) and isinstance(bn, nn.BatchNorm2d) and bn.track_running_stats
                    and bn.running_mean is not None and conv.out_channels == bn.num_features):
                continue
            conv.weight, conv.bias = fuse_conv_bn_weights(conv.weight, conv.bias, bn.running_mean, bn.running_var,
                                                          bn.eps, bn.weight, bn.bias)
            act = [m for name, m in bn.named_children() if name in ("drop", "act")]  # timm's BatchNormAct2d
            act = [m for m in act if not isinstance(m, nn.Identity)]
            if len(act) == 1 and type(act[0]) is nn.ReLU6:
                conv.__class__, act = ConvReLU6, []
            setattr(parent, bn_name, nn.Sequential(*act) if act else nn.Identity())
            folded += 1
    return folded
