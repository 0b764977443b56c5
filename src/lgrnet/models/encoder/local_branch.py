"""Local branch: Cyclic Neighborhood Propagation (CNP).

Every pixel of frame t attends to a k x k neighborhood (NATTEN border rule, optional dilation)
of frame t-1 at the same level; frame 0 attends to the last frame (the clip is treated as a
cycle). Separate q and kv projections without bias, 8 heads, no relative position bias, an
output projection; then residual + LayerNorm over all tokens.
"""
from __future__ import annotations

from typing import List, Tuple

import torch
import torch.nn.functional as F
from torch import nn

from ...ops.neighborhood_attention import neighborhood_attention
from ..blocking import by_frames


class NeighborhoodCrossFrameAttention(nn.Module):
    """Neighborhood attention from a query map to a key/value map of the same size.

    Maps smaller than ``kernel_size * dilation`` are zero-padded at the bottom/right before the
    projections (padded keys/values are zero vectors that still take part in the softmax) and the
    output is cropped back, as published.
    """

    def __init__(self, d_model: int, num_heads: int, kernel_size: int, dilation: int = 1):
        super().__init__()
        if kernel_size < 3 or kernel_size % 2 == 0:
            raise ValueError(f"kernel_size must be odd and >= 3, got {kernel_size}")
        if dilation < 1:
            raise ValueError(f"dilation must be >= 1, got {dilation}")
        if d_model % num_heads:
            raise ValueError(f"d_model {d_model} is not divisible by {num_heads} heads")
        self.num_heads = num_heads
        self.head_dim = d_model // num_heads
        self.scale = self.head_dim ** -0.5
        self.kernel_size = kernel_size
        self.dilation = dilation
        self.q_proj = nn.Linear(d_model, d_model, bias=False)
        self.kv_proj = nn.Linear(d_model, 2 * d_model, bias=False)
        self.out_proj = nn.Linear(d_model, d_model)

    def forward(self, x_q: torch.Tensor, x_kv: torch.Tensor) -> torch.Tensor:
        """x_q, x_kv: (N, H, W, C) -> (N, H, W, C)."""
        N, H, W, C = x_q.shape
        window = self.kernel_size * self.dilation
        pad_h, pad_w = max(0, window - H), max(0, window - W)
        if pad_h or pad_w:
            x_q = F.pad(x_q, (0, 0, 0, pad_w, 0, pad_h))
            x_kv = F.pad(x_kv, (0, 0, 0, pad_w, 0, pad_h))
        Hp, Wp = H + pad_h, W + pad_w
        nh, hd = self.num_heads, self.head_dim
        q = self.q_proj(x_q).view(N, Hp, Wp, nh, hd).permute(0, 3, 1, 2, 4) * self.scale
        kv = self.kv_proj(x_kv).view(N, Hp, Wp, 2, nh, hd).permute(3, 0, 4, 1, 2, 5)
        out = neighborhood_attention(q, kv[0], kv[1], self.kernel_size, self.dilation)
        out = out.permute(0, 2, 3, 1, 4).reshape(N, Hp, Wp, C)
        if pad_h or pad_w:
            out = out[:, :H, :W]
        return self.out_proj(out)


class CyclicNeighborhoodPropagation(nn.Module):
    """tokens = LayerNorm(tokens + NA(q = frame t, kv = frame t-1 cyclically)), per level."""

    def __init__(self, d_model: int, num_heads: int = 8, kernel_size: int = 5, dilation: int = 1,
                 dropout: float = 0.0):
        super().__init__()
        self.attn = NeighborhoodCrossFrameAttention(d_model, num_heads, kernel_size, dilation)
        self.norm = nn.LayerNorm(d_model)
        self.dropout = nn.Dropout(dropout)

    def forward(self, tokens: torch.Tensor, spatial_shapes: List[Tuple[int, int]],
                num_frames: int) -> torch.Tensor:
        """tokens: (b*T, S, C), levels concatenated row-major -> same shape."""
        BT, S, C = tokens.shape
        # frame t sees frame t-1; frame 0 sees frame T-1
        previous = torch.roll(tokens.view(BT // num_frames, num_frames, S, C), shifts=1, dims=1).view(BT, S, C)
        return by_frames(lambda cur, prev: self.propagate(cur, prev, spatial_shapes), tokens, previous)

    def propagate(self, tokens: torch.Tensor, previous: torch.Tensor,
                  spatial_shapes: List[Tuple[int, int]]) -> torch.Tensor:
        """LayerNorm(tokens + NA(tokens -> previous)), level by level. tokens, previous: (N, S, C)."""
        N, S, C = tokens.shape
        outputs = []
        start = 0
        for h, w in spatial_shapes:
            out = self.attn(tokens[:, start:start + h * w].reshape(N, h, w, C),
                            previous[:, start:start + h * w].reshape(N, h, w, C))
            outputs.append(out.reshape(N, h * w, C))
            start += h * w
        return self.norm(tokens + self.dropout(torch.cat(outputs, dim=1)))
