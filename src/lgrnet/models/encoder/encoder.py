"""The local-global encoder: input projections, 3 local-global layers, and the FPN.

Token layout inside the encoder: (b*T, S, C), the encoded levels concatenated coarse first
(res5, res4, res3), each row-major.
"""
from __future__ import annotations

from typing import Dict, List, Tuple

import torch
import torch.nn.functional as F
from torch import nn

from ...config import EncoderConfig
from ...precision import float32_under_cpu_autocast
from ..blocking import by_frames, by_rows
from ..position import sine_embedding_2d
from .deformable import MSDeformAttn
from .global_branch import GlobalBranch
from .local_branch import CyclicNeighborhoodPropagation

ENCODED_LEVELS = ("res5", "res4", "res3")  # token order, coarse first


class ClipGroupNormProjection(nn.Module):
    """1x1 conv (no bias) + GroupNorm(32) whose statistics pool over ALL frames of the clip.

    x: (b*T, C_in, h, w) -> (b*T, C, h, w). Because of the clip-wide GroupNorm, a frame's
    features depend on the other frames of its clip.
    """

    def __init__(self, in_channels: int, d_model: int, num_groups: int = 32):
        super().__init__()
        self.conv = nn.Conv2d(in_channels, d_model, kernel_size=1, bias=False)
        self.norm = nn.GroupNorm(num_groups, d_model)

    def forward(self, x: torch.Tensor, num_frames: int) -> torch.Tensor:
        y = self.conv(x)
        BT, C, h, w = y.shape
        y = y.view(BT // num_frames, num_frames, C, h, w).transpose(1, 2)  # (b, C, T, h, w)
        y = self.norm(float32_under_cpu_autocast(y))
        return y.transpose(1, 2).reshape(BT, C, h, w)


class ConvNorm(nn.Module):
    """conv (no bias) -> GroupNorm(32) -> optional ReLU, per frame."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, relu: bool):
        super().__init__()
        self.conv = nn.Conv2d(in_channels, out_channels, kernel_size, padding=kernel_size // 2, bias=False)
        self.norm = nn.GroupNorm(32, out_channels)
        self.relu = relu

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.norm(float32_under_cpu_autocast(self.conv(x)))
        return F.relu(x) if self.relu else x


class LocalGlobalLayer(nn.Module):
    """local CNP -> global (collect, scan, distribute) -> deformable self-attention -> FFN."""

    def __init__(self, d_model: int, cfg: EncoderConfig, num_levels: int):
        super().__init__()
        lc, gc = cfg.local, cfg.global_
        self.local = (CyclicNeighborhoodPropagation(d_model, lc.num_heads, lc.kernel_size, lc.dilation)
                      if lc.enabled else None)
        self.global_branch = (GlobalBranch(d_model, gc.num_heads, gc.num_scan_layers, gc.d_state, gc.d_conv,
                                           gc.expand, gc.dim_feedforward, gc.scan_order, gc.attn_mask)
                              if gc.enabled else None)
        self.deform_attn = MSDeformAttn(d_model, num_levels, cfg.num_heads, cfg.num_points)
        self.deform_norm = nn.LayerNorm(d_model)
        self.linear1 = nn.Linear(d_model, cfg.dim_feedforward)
        self.linear2 = nn.Linear(cfg.dim_feedforward, d_model)
        self.ffn_norm = nn.LayerNorm(d_model)
        self.dropout = nn.Dropout(cfg.dropout)

    def forward(self, tokens, pos, queries, query_pos, spatial_shapes, num_frames):
        if self.local is not None:
            tokens = self.local(tokens, spatial_shapes, num_frames)
        if self.global_branch is not None:
            tokens, queries = self.global_branch(tokens, pos, queries, query_pos, spatial_shapes, num_frames)
        tokens = by_frames(lambda t, p: self.per_frame(t, p, spatial_shapes), tokens, pos)
        return tokens, queries

    def per_frame(self, tokens: torch.Tensor, pos: torch.Tensor, spatial_shapes) -> torch.Tensor:
        """Deformable self-attention and FFN (each frame on its own). tokens, pos: (N, S, C)."""
        tokens = self.deform_norm(tokens + self.dropout(self.deform_attn(tokens + pos, tokens, spatial_shapes)))
        return self.ffn_norm(tokens + self.dropout(by_rows(self.ffn, tokens)))

    def ffn(self, x: torch.Tensor) -> torch.Tensor:
        """linear2(dropout(relu(linear1(x)))), (..., C) -> (..., C)."""
        return self.linear2(self.dropout(F.relu(self.linear1(x), inplace=True)))


class LocalGlobalEncoder(nn.Module):
    """Backbone features of a clip -> encoded multi-scale features + the mask feature map.

    Input: {res2..res5: (b*T, C_l, h_l, w_l)}. Output: {res2..res5: (b*T, d, h_l, w_l)} where
    res3..res5 are the encoder's outputs and res2 the FPN's (the mask features), plus the frame
    queries after every layer.
    """

    def __init__(self, in_channels: Dict[str, int], d_model: int, cfg: EncoderConfig):
        super().__init__()
        self.d_model = d_model
        self.input_proj = nn.ModuleDict({name: ClipGroupNormProjection(in_channels[name], d_model)
                                         for name in ("res3", "res4", "res5")})
        num_levels = len(ENCODED_LEVELS)
        self.level_embed = nn.Parameter(torch.empty(num_levels, d_model))
        nf = cfg.global_.num_frame_queries
        self.frame_query_feat = nn.Embedding(nf, d_model)
        self.frame_query_pos = nn.Embedding(nf, d_model)
        self.layers = nn.ModuleList(LocalGlobalLayer(d_model, cfg, num_levels) for _ in range(cfg.num_layers))
        self.fpn_lateral = ConvNorm(in_channels["res2"], d_model, 1, relu=False)
        self.fpn_output = ConvNorm(d_model, d_model, 3, relu=True)
        self._reset_parameters()

    def _reset_parameters(self) -> None:
        # As published: Xavier on every >= 2-D parameter of the transformer part (this overwrites
        # the Mamba init of A_logs and dt_projs), deformable attention keeps its own init.
        for p in self.layers.parameters():
            if p.dim() > 1:
                nn.init.xavier_uniform_(p)
        for p in (self.frame_query_feat.weight, self.frame_query_pos.weight):
            nn.init.xavier_uniform_(p)
        for m in self.layers.modules():
            if isinstance(m, MSDeformAttn):
                m.reset_parameters()
        nn.init.normal_(self.level_embed)
        for m in (self.fpn_lateral.conv, self.fpn_output.conv):
            nn.init.kaiming_uniform_(m.weight, a=1)

    def forward(self, features: Dict[str, torch.Tensor], num_frames: int) -> Tuple[Dict[str, torch.Tensor], List[torch.Tensor]]:
        srcs, poses, shapes = [], [], []
        for lvl, name in enumerate(ENCODED_LEVELS):
            x = self.input_proj[name](features[name], num_frames)  # (bT, d, h, w)
            BT, C, h, w = x.shape
            shapes.append((h, w))
            srcs.append(x.flatten(2).transpose(1, 2))
            pos = sine_embedding_2d(h, w, C, x.device, x.dtype).flatten(1).transpose(0, 1)
            poses.append((pos + self.level_embed[lvl])[None].expand(BT, -1, -1))
        tokens = torch.cat(srcs, dim=1)
        pos = torch.cat(poses, dim=1)
        BT = tokens.shape[0]
        queries = self.frame_query_feat.weight[None].expand(BT, -1, -1)
        query_pos = self.frame_query_pos.weight[None].expand(BT, -1, -1)
        frame_queries = []
        for layer in self.layers:
            tokens, queries = layer(tokens, pos, queries, query_pos, shapes, num_frames)
            frame_queries.append(queries)

        out: Dict[str, torch.Tensor] = {}
        start = 0
        for name, (h, w) in zip(ENCODED_LEVELS, shapes):
            out[name] = tokens[:, start:start + h * w].transpose(1, 2).reshape(BT, self.d_model, h, w)
            start += h * w
        out["res2"] = self.fpn(features["res2"], out["res3"])
        return out, frame_queries

    def fpn(self, res2: torch.Tensor, res3: torch.Tensor) -> torch.Tensor:
        """Mask features, per frame: (N, C2, H/4, W/4), (N, d, H/8, W/8) -> (N, d, H/4, W/4)."""
        return by_frames(self._fpn, res2, res3)

    def _fpn(self, res2: torch.Tensor, res3: torch.Tensor) -> torch.Tensor:
        """fpn_output(fpn_lateral(res2) + upsample(res3))."""
        lateral = self.fpn_lateral(res2)
        up = F.interpolate(res3, size=lateral.shape[-2:], mode="bilinear", align_corners=False)
        return self.fpn_output(lateral + up)
