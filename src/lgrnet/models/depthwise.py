"""A depthwise convolution that is a float32 island under CPU autocast."""
from __future__ import annotations

import torch
from torch import nn

from ..precision import cpu_autocast_enabled


class DepthwiseConv2d(nn.Conv2d):
    """A depthwise ``nn.Conv2d`` (same parameters, same float32 and bfloat16-inference results)
    that under CPU autocast runs in float32 on a channels-last input: oneDNN's bfloat16 depthwise
    backward is slower than this (:mod:`lgrnet.precision`, "CPU autocast islands")."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.device.type != "cpu" or not cpu_autocast_enabled():
            return super().forward(x)
        with torch.autocast("cpu", enabled=False):
            x = x.float().contiguous(memory_format=torch.channels_last)
            return self._conv_forward(x, self.weight, self.bias)
