"""Multi-scale deformable self-attention (Deformable DETR) over the encoded levels of a frame."""
from __future__ import annotations

import math
from typing import List, Tuple

import torch
from torch import nn

from ...ops.constants import device_constant
from ...ops.ms_deform_attn import ms_deform_attn



def _reference_points(spatial_shapes: Tuple[Tuple[int, int], ...]) -> torch.Tensor:
    """(S, 2) normalised (x, y) pixel centres of every token, levels concatenated."""
    points = []
    for h, w in spatial_shapes:
        ys, xs = torch.meshgrid(torch.linspace(0.5, h - 0.5, h, dtype=torch.float32),
                                torch.linspace(0.5, w - 0.5, w, dtype=torch.float32), indexing="ij")
        points.append(torch.stack([xs.reshape(-1) / w, ys.reshape(-1) / h], dim=-1))
    return torch.cat(points, dim=0)


class MSDeformAttn(nn.Module):
    """Each token samples ``num_points`` offsets around its reference point on every level, per
    head, and sums the bilinear samples with softmax weights.

    query, value_input: (N, S, C) -> (N, S, C).
    """

    def __init__(self, d_model: int, num_levels: int = 3, num_heads: int = 8, num_points: int = 4):
        super().__init__()
        if d_model % num_heads:
            raise ValueError(f"d_model {d_model} is not divisible by {num_heads} heads")
        self.d_model, self.num_levels, self.num_heads, self.num_points = d_model, num_levels, num_heads, num_points
        self.sampling_offsets = nn.Linear(d_model, num_heads * num_levels * num_points * 2)
        self.attention_weights = nn.Linear(d_model, num_heads * num_levels * num_points)
        self.value_proj = nn.Linear(d_model, d_model)
        self.output_proj = nn.Linear(d_model, d_model)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        nn.init.zeros_(self.sampling_offsets.weight)
        thetas = torch.arange(self.num_heads, dtype=torch.float32) * (2.0 * math.pi / self.num_heads)
        grid = torch.stack([thetas.cos(), thetas.sin()], -1)
        grid = (grid / grid.abs().max(-1, keepdim=True)[0]).view(self.num_heads, 1, 1, 2)
        grid = grid.repeat(1, self.num_levels, self.num_points, 1)
        for i in range(self.num_points):
            grid[:, :, i, :] *= i + 1
        with torch.no_grad():
            self.sampling_offsets.bias.copy_(grid.view(-1))
        nn.init.zeros_(self.attention_weights.weight)
        nn.init.zeros_(self.attention_weights.bias)
        nn.init.xavier_uniform_(self.value_proj.weight)
        nn.init.zeros_(self.value_proj.bias)
        nn.init.xavier_uniform_(self.output_proj.weight)
        nn.init.zeros_(self.output_proj.bias)

    def forward(self, query: torch.Tensor, value_input: torch.Tensor,
                spatial_shapes: List[Tuple[int, int]]) -> torch.Tensor:
        """query: (N, S, C) (one query per token: the reference points are the tokens' pixel
        centres), value_input: (N, S, C) -> (N, S, C)."""
        N, Lq, _ = query.shape
        M, L, P = self.num_heads, self.num_levels, self.num_points
        value = self.value_proj(value_input).view(N, value_input.shape[1], M, self.d_model // M)
        weights = _softmax_last(self.attention_weights(query).view(N, Lq, M, L * P)).view(N, Lq, M, L, P)
        # location = reference point + offset / (w, h) of the sampled level, computed on the flat
        # (N, Lq, M*L*P*2) layout (the same operations, without 6-D broadcasting), in float32
        # (at least): a bfloat16 location on a 44-pixel map would be off by up to 0.17 pixel
        shapes = tuple((int(h), int(w)) for h, w in spatial_shapes)
        f = torch.promote_types(query.dtype, torch.float32)
        ref = device_constant(_reference_terms, shapes, M, P, device=query.device, dtype=f)
        normalizer = device_constant(_level_sizes, shapes, M, P, device=query.device, dtype=f)
        if ref.shape[0] != Lq:
            raise ValueError(f"{Lq} queries for {ref.shape[0]} tokens: MSDeformAttn needs one query per token")
        locations = torch.addcdiv(ref, self.sampling_offsets(query).to(f), normalizer).view(N, Lq, M, L, P, 2)
        out = ms_deform_attn(value, spatial_shapes, locations, weights)
        return self.output_proj(out)


def _softmax_last(x: torch.Tensor) -> torch.Tensor:
    """Softmax over the last dimension, written out: for the 12 weights per head it is ~3x faster
    on CPU than ``F.softmax`` (equal up to float rounding). In float32 (at least)."""
    x = x.to(torch.promote_types(x.dtype, torch.float32))
    e = (x - x.amax(dim=-1, keepdim=True)).exp()
    return e / e.sum(dim=-1, keepdim=True)


def _reference_terms(spatial_shapes: Tuple[Tuple[int, int], ...], num_heads: int, num_points: int) -> torch.Tensor:
    """(S, M*L*P*2): each token's reference point, repeated in the sampling-offset layout
    (head, level, point, xy)."""
    ref = _reference_points(spatial_shapes)  # (S, 2)
    L = len(spatial_shapes)
    return ref[:, None, None, None, :].expand(-1, num_heads, L, num_points, 2).reshape(ref.shape[0], -1).contiguous()


def _level_sizes(spatial_shapes: Tuple[Tuple[int, int], ...], num_heads: int, num_points: int) -> torch.Tensor:
    """(M*L*P*2,): the (w, h) of the sampled level, in the sampling-offset layout."""
    L = len(spatial_shapes)
    norm = torch.tensor([[w, h] for h, w in spatial_shapes], dtype=torch.float32)
    return norm[None, :, None, :].expand(num_heads, L, num_points, 2).reshape(-1).contiguous()
