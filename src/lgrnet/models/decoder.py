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
from ..ops.constants import device_constant
from .attention import MLP, CrossAttentionLayer, FFNLayer, SelfAttentionLayer
from .position import sine_embedding_3d

MEMORY_LEVELS = ("res5", "res4", "res3")


@dataclass
class HeadOutput:
    class_logits: torch.Tensor  # (b, Nq, num_classes + 1)
    mask_logits: torch.Tensor  # (b, T, Nq, H, W) at the input resolution


class VideoMaskDecoder(nn.Module):
    # the heads' outputs are thresholded (masks at 0, attention masks at 0.5): kept float32 by
    # lgrnet.models.bf16.to_bfloat16, and run on float32 copies of their inputs
    float32_names = ("head_norm", "class_embed", "mask_embed")

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
        mask_features = features["res2"].to(self.head_norm.weight.dtype)
        C = mask_features.shape[1]
        mask_features = mask_features.view(b, T, C, *mask_features.shape[-2:])

        queries = self.query_feat.weight[None].expand(b, -1, -1)
        query_pos = self.query_pos.weight[None].expand(b, -1, -1)
        outputs = []
        head, attn_mask = self.forward_head(queries, mask_features, sizes[0], full_res=keep_all_heads)
        if keep_all_heads:
            outputs.append(head)
        del head
        for i in range(self.num_layers):
            lvl = i % len(MEMORY_LEVELS)
            queries = self.cross_layers[i](queries, memories[lvl], pos=memory_pos[lvl], query_pos=query_pos,
                                           attn_mask=attn_mask)
            queries = self.self_layers[i](queries, query_pos=query_pos)
            queries = self.ffn_layers[i](queries)
            last = i == self.num_layers - 1
            head, attn_mask = self.forward_head(queries, mask_features, sizes[(i + 1) % len(MEMORY_LEVELS)],
                                                full_res=keep_all_heads or last, make_mask=keep_all_heads or not last)
            if keep_all_heads or last:
                outputs.append(head)
            del head
        return outputs

    def forward_head(self, queries: torch.Tensor, mask_features: torch.Tensor, attn_size: Tuple[int, int],
                     full_res: bool = True, make_mask: bool = True) -> Tuple[HeadOutput, Optional[torch.Tensor]]:
        """queries (b, Nq, C), mask_features (b, T, C, h4, w4) -> head output and the attention mask
        for the next layer: (b, heads, Nq, T*h*w), True = blocked.

        ``full_res=False`` (a head whose output is not kept): the input-resolution logits are not
        formed (``mask_logits`` is None) and the mask comes from one composite resize that equals
        upsample-then-downsample in exact arithmetic. ``make_mask=False``: no mask (None)."""
        b, T = mask_features.shape[:2]
        q = self.head_norm(queries.to(self.head_norm.weight.dtype))
        class_logits = self.class_embed(q)
        mask_embed = self.mask_embed(q)
        logits = torch.einsum("bqc,btchw->btqhw", mask_embed, mask_features)
        Nq = logits.shape[2]
        h4, w4 = logits.shape[-2:]
        logits = logits.reshape(b * T, Nq, h4, w4)
        full = None
        if full_res:
            full = F.interpolate(logits, scale_factor=self.mask_stride, mode="bilinear", align_corners=False)
        attn_mask = None
        if make_mask:
            with torch.no_grad():
                # As published: the upsampled LOGITS (not probabilities) are resized to the next level
                # and compared with 0.5.
                if full is not None:
                    small = F.interpolate(full.detach(), size=attn_size, mode="bilinear", align_corners=False)
                else:
                    small = composite_resize(logits.detach(), self.mask_stride, attn_size)
                attn_mask = self._blocked(small, b, T, Nq)
        mask_logits = full.view(b, T, Nq, *full.shape[-2:]) if full is not None else None
        return HeadOutput(class_logits=class_logits, mask_logits=mask_logits), attn_mask

    def _blocked(self, small: torch.Tensor, b: int, T: int, Nq: int) -> torch.Tensor:
        with torch.no_grad():
            blocked = small < 0.5  # (b*T, Nq, h, w)
            blocked = blocked.view(b, T, Nq, -1).permute(0, 2, 1, 3).reshape(b, Nq, -1)
            blocked &= ~blocked.all(dim=-1, keepdim=True)  # a query masked everywhere attends everywhere
            return blocked[:, None].expand(b, self.num_heads, Nq, blocked.shape[-1])


def _resize_matrix(n_in: int, scale: int, n_out: int) -> torch.Tensor:
    """(n_out, n_in) float64: 1-D linear upsampling by ``scale`` followed by linear resizing to
    ``n_out`` (align_corners=False), as one matrix; the weights are exact binary fractions."""
    eye = torch.eye(n_in, dtype=torch.float64).view(n_in, 1, n_in)
    up = F.interpolate(eye, scale_factor=scale, mode="linear", align_corners=False)
    down = F.interpolate(up, size=n_out, mode="linear", align_corners=False)
    return down.view(n_in, n_out).t().contiguous()


def composite_resize(x: torch.Tensor, scale: int, size: Tuple[int, int]) -> torch.Tensor:
    """(N, C, h, w) -> (N, C, size): bilinear upsampling by ``scale`` then bilinear resizing to
    ``size`` (both align_corners=False) as two small matrix products, without forming the
    (h * scale, w * scale) map. Equal to the two-step resize up to float rounding."""
    mh = device_constant(_resize_matrix, int(x.shape[-2]), int(scale), int(size[0]), device=x.device, dtype=x.dtype)
    mw = device_constant(_resize_matrix, int(x.shape[-1]), int(scale), int(size[1]), device=x.device, dtype=x.dtype)
    return torch.matmul(torch.matmul(mh, x), mw.t())
