"""Mask2Former-style decoder with video-level queries.

Nv learned queries per clip attend, layer by layer, to the encoder's res5, res4, res3 tokens of
ALL frames (masked by the previous head's prediction), then to each other, then an FFN. A head
(LayerNorm, class linear, 3-layer MLP mask embedding) runs before the first layer and after every
layer; mask logits are the dot product of the mask embedding with the stride-4 mask features of
each frame, upsampled x4 bilinearly.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Dict, List, Optional, Tuple

import torch
import torch.nn.functional as F
from torch import nn

from ..config import DecoderConfig
from .attention import MLP, CrossAttentionLayer, FFNLayer, SelfAttentionLayer
from .position import sine_embedding_3d

MEMORY_LEVELS = ("res5", "res4", "res3")


@dataclass
class HeadOutput:
    class_logits: torch.Tensor  # (b, Nq, num_classes + 1)
    mask_logits: torch.Tensor  # (b, T, Nq, H, W) at the input resolution


class VideoMaskDecoder(nn.Module):
    def __init__(self, d_model: int, cfg: DecoderConfig, mask_stride: int = 4):
        super().__init__()
        self.num_heads = cfg.num_heads
        self.num_layers = cfg.num_layers
        self.mask_stride = mask_stride
        self.level_embed = nn.Embedding(len(MEMORY_LEVELS), d_model)
        self.cross_layers = nn.ModuleList(CrossAttentionLayer(d_model, cfg.num_heads) for _ in range(cfg.num_layers))
        self.self_layers = nn.ModuleList(SelfAttentionLayer(d_model, cfg.num_heads) for _ in range(cfg.num_layers))
        self.ffn_layers = nn.ModuleList(FFNLayer(d_model, cfg.dim_feedforward) for _ in range(cfg.num_layers))
        self.query_feat = nn.Embedding(cfg.num_queries, d_model)
        self.query_pos = nn.Embedding(cfg.num_queries, d_model)
        self.head_norm = nn.LayerNorm(d_model)
        self.class_embed = nn.Linear(d_model, cfg.num_classes + 1)
        self.mask_embed = MLP(d_model, d_model, d_model, 3)

    def forward(self, features: Dict[str, torch.Tensor], batch_size: int, num_frames: int,
                keep_all_heads: bool = True) -> List[HeadOutput]:
        """features: {res2..res5: (b*T, d, h, w)} -> one HeadOutput per head (num_layers + 1), or only
        the last one when ``keep_all_heads`` is false (inference: the full-resolution logits of the
        intermediate heads are then freed as soon as their attention masks are made)."""
        b, T = batch_size, num_frames
        memories, memory_pos, sizes = [], [], []
        for lvl, name in enumerate(MEMORY_LEVELS):
            x = features[name]
            _, C, h, w = x.shape
            sizes.append((h, w))
            # (b*T, C, h, w) -> (b, T*h*w, C)
            mem = x.view(b, T, C, h, w).permute(0, 1, 3, 4, 2).reshape(b, T * h * w, C)
            memories.append(mem + self.level_embed.weight[lvl])
            pos = sine_embedding_3d(T, h, w, C, x.device, x.dtype)  # (C, T, h, w)
            memory_pos.append(pos.flatten(1).transpose(0, 1)[None])
        mask_features = features["res2"]
        C = mask_features.shape[1]
        mask_features = mask_features.view(b, T, C, *mask_features.shape[-2:])

        queries = self.query_feat.weight[None].expand(b, -1, -1)
        query_pos = self.query_pos.weight[None].expand(b, -1, -1)
        outputs = []
        head, attn_mask = self.forward_head(queries, mask_features, sizes[0])
        if keep_all_heads:
            outputs.append(head)
        del head
        for i in range(self.num_layers):
            lvl = i % len(MEMORY_LEVELS)
            queries = self.cross_layers[i](queries, memories[lvl], pos=memory_pos[lvl], query_pos=query_pos,
                                           attn_mask=attn_mask)
            queries = self.self_layers[i](queries, query_pos=query_pos)
            queries = self.ffn_layers[i](queries)
            head, attn_mask = self.forward_head(queries, mask_features, sizes[(i + 1) % len(MEMORY_LEVELS)])
            if keep_all_heads or i == self.num_layers - 1:
                outputs.append(head)
            del head
        return outputs

    def forward_head(self, queries: torch.Tensor, mask_features: torch.Tensor,
                     attn_size: Tuple[int, int]) -> Tuple[HeadOutput, torch.Tensor]:
        """queries (b, Nq, C), mask_features (b, T, C, h4, w4) -> head output and the attention mask
        for the next layer: (b, heads, Nq, T*h*w), True = blocked."""
        b, T = mask_features.shape[:2]
        q = self.head_norm(queries)
        class_logits = self.class_embed(q)
        mask_embed = self.mask_embed(q)
        logits = torch.einsum("bqc,btchw->btqhw", mask_embed, mask_features)
        Nq = logits.shape[2]
        h4, w4 = logits.shape[-2:]
        full = F.interpolate(logits.reshape(b * T, Nq, h4, w4), scale_factor=self.mask_stride,
                             mode="bilinear", align_corners=False)
        with torch.no_grad():
            # As published: the upsampled LOGITS (not probabilities) are resized to the next level
            # and compared with 0.5.
            small = F.interpolate(full.detach(), size=attn_size, mode="bilinear", align_corners=False)
            blocked = small < 0.5  # (b*T, Nq, h, w)
            blocked = blocked.view(b, T, Nq, -1).permute(0, 2, 1, 3).reshape(b, Nq, -1)
            blocked[blocked.all(dim=-1)] = False  # a query masked everywhere attends everywhere
            attn_mask = blocked[:, None].expand(b, self.num_heads, Nq, blocked.shape[-1])
        mask_logits = full.view(b, T, Nq, *full.shape[-2:])
        return HeadOutput(class_logits=class_logits, mask_logits=mask_logits), attn_mask
