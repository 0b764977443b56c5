"""Multi-scale deformable attention core with fused weighting, batched over heads, in bounded
memory: the same function as :func:`lgrnet.ops.ms_deform_attn.ms_deform_attn_ref`.

Per level, one ``grid_sample`` call samples all heads and points of a group of frames
((N*M, D, Lq, P)); the attention weights are applied by one batched dot product over the points
(``torch.linalg.vecdot``) and accumulated over levels, instead of stacking every level's samples
into one (N*M, D, Lq, L*P) tensor and multiplying it out. Frames are processed in groups so that
the sampled tensor stays below ``MAX_SAMPLED_BYTES`` whatever the clip length (each frame's
sampling is independent).

A gather form (``F.embedding_bag`` over the 4 bilinear corners) and one ``grid_sample`` call over
all levels packed into one canvas were also measured on CPU: the gather form was ~2x slower than
the reference (forming corner indices and weights costs more than the sampling) and the canvas
form changes the sampling coordinates' rounding; neither is used.
"""
from __future__ import annotations

from typing import List, Sequence, Tuple

import torch
import torch.nn.functional as F

from .dispatch import register
from .ms_deform_attn import sample_dtype

MAX_SAMPLED_BYTES = 16 << 20


def ms_deform_attn_fused(value: torch.Tensor, spatial_shapes: Sequence[Tuple[int, int]],
                         sampling_locations: torch.Tensor,
                         attention_weights: torch.Tensor) -> torch.Tensor:
    """(N, S, M, D), [(H_l, W_l)], (N, Lq, M, L, P, 2), (N, Lq, M, L, P) -> (N, Lq, M * D)."""
    N, S, M, D = value.shape
    _, Lq, _, L, P, _ = sampling_locations.shape
    shapes: List[Tuple[int, int]] = [(int(h), int(w)) for h, w in spatial_shapes]
    if sum(h * w for h, w in shapes) != S:
        raise ValueError(f"spatial shapes {shapes} cover {sum(h * w for h, w in shapes)} tokens, value has {S}")
    out_dtype = value.dtype
    value = value.to(sample_dtype(value, sampling_locations))
    per_frame = M * D * Lq * P * value.element_size()
    group = max(1, min(N, MAX_SAMPLED_BYTES // max(1, per_frame)))
    outs = [_fused(value[i:i + group], shapes, sampling_locations[i:i + group], attention_weights[i:i + group])
            for i in range(0, N, group)]
    return (outs[0] if len(outs) == 1 else torch.cat(outs, dim=0)).to(out_dtype)


def _fused(value, shapes, locations, weights):
    N, S, M, D = value.shape
    Lq = locations.shape[1]
    P = locations.shape[4]
    value_list = value.split([h * w for h, w in shapes], dim=1)
    out = None
    for lvl, (h, w) in enumerate(shapes):
        v = value_list[lvl].flatten(2).transpose(1, 2).reshape(N * M, D, h, w)
        grid = (2 * locations[:, :, :, lvl] - 1).transpose(1, 2).reshape(N * M, Lq, P, 2)
        sampled = F.grid_sample(v, grid, mode="bilinear", padding_mode="zeros", align_corners=False)
        wl = weights[:, :, :, lvl].transpose(1, 2).reshape(N * M, 1, Lq, P)
        part = torch.linalg.vecdot(sampled, wl.to(sampled.dtype))  # (N*M, D, Lq)
        out = part if out is None else out + part
    return out.view(N, M * D, Lq).transpose(1, 2).contiguous()


def _floating(x: torch.Tensor) -> bool:
    return x.is_floating_point()


register("ms_deform_attn", "fused", ms_deform_attn_fused, available=_floating, priority=10)
