"""Transformer building blocks shared by the encoder's global branch and the decoder.

All tensors are batch-first: (batch, length, d_model). Parameter names follow
``torch.nn.MultiheadAttention`` (``in_proj_weight``, ``in_proj_bias``, ``out_proj``) so that
published checkpoints map one to one. Layers are post-norm (residual, then LayerNorm), as
published.
"""
from __future__ import annotations

from typing import Optional

import torch
import torch.nn.functional as F
from torch import nn

from ..ops.dense import linear
from ..precision import cpu_autocast_enabled


def scaled_dot_product_attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, mask: Optional[torch.Tensor],
                                 dropout_p: float) -> torch.Tensor:
    """``F.scaled_dot_product_attention``; under CPU autocast in float32 (its bfloat16 CPU kernels
    with a mask are slower, forward and backward: :mod:`lgrnet.precision`, "CPU autocast islands")."""
    if q.device.type == "cpu" and cpu_autocast_enabled():
        with torch.autocast("cpu", enabled=False):
            return F.scaled_dot_product_attention(q.float(), k.float(), v.float(), attn_mask=mask, dropout_p=dropout_p)
    return F.scaled_dot_product_attention(q, k, v, attn_mask=mask, dropout_p=dropout_p)


class MultiheadAttention(nn.Module):
    """Multi-head attention with packed q/k/v input projections.

    ``attn_mask``: bool (batch * heads, Lq, Lk) or (batch, heads, Lq, Lk), True where a query may
    NOT attend (the ``nn.MultiheadAttention`` convention). Rows masked everywhere must have been
    un-masked by the caller.
    """

    def __init__(self, d_model: int, num_heads: int, dropout: float = 0.0):
        super().__init__()
        if d_model % num_heads:
            raise ValueError(f"d_model {d_model} is not divisible by {num_heads} heads")
        self.d_model = d_model
        self.num_heads = num_heads
        self.dropout = dropout
        self.in_proj_weight = nn.Parameter(torch.empty(3 * d_model, d_model))
        self.in_proj_bias = nn.Parameter(torch.zeros(3 * d_model))
        self.out_proj = nn.Linear(d_model, d_model)
        nn.init.xavier_uniform_(self.in_proj_weight)
        nn.init.zeros_(self.out_proj.bias)

    def forward(self, query: torch.Tensor, key: torch.Tensor, value: torch.Tensor,
                attn_mask: Optional[torch.Tensor] = None) -> torch.Tensor:
        """query (B, Lq, d), key/value (B, Lk, d) -> (B, Lq, d)."""
        B, Lq, d = query.shape
        Lk = key.shape[1]
        h = self.num_heads
        w_q, w_k, w_v = self.in_proj_weight.chunk(3)
        b_q, b_k, b_v = self.in_proj_bias.chunk(3)
        q = linear(query, w_q, b_q).view(B, Lq, h, d // h).transpose(1, 2)
        k = linear(key, w_k, b_k).view(B, Lk, h, d // h).transpose(1, 2)
        v = linear(value, w_v, b_v).view(B, Lk, h, d // h).transpose(1, 2)
        mask = None
        if attn_mask is not None:
            mask = ~attn_mask.view(B, -1, Lq, Lk)  # SDPA: True = may attend
        out = scaled_dot_product_attention(q, k, v, mask, self.dropout if self.training else 0.0)
        return self.out_proj(out.transpose(1, 2).reshape(B, Lq, d))


class CrossAttentionLayer(nn.Module):
    """tgt = LayerNorm(tgt + Attn(q = tgt + query_pos, k = memory + pos, v = memory))."""

    def __init__(self, d_model: int, num_heads: int, dropout: float = 0.0):
        super().__init__()
        self.multihead_attn = MultiheadAttention(d_model, num_heads)
        self.norm = nn.LayerNorm(d_model)
        self.dropout = nn.Dropout(dropout)

    def forward(self, tgt: torch.Tensor, memory: torch.Tensor, pos: Optional[torch.Tensor] = None,
                query_pos: Optional[torch.Tensor] = None,
                attn_mask: Optional[torch.Tensor] = None) -> torch.Tensor:
        q = tgt if query_pos is None else tgt + query_pos
        k = memory if pos is None else memory + pos
        out = self.multihead_attn(q, k, memory, attn_mask=attn_mask)
        return self.norm(tgt + self.dropout(out))


class SelfAttentionLayer(nn.Module):
    """tgt = LayerNorm(tgt + Attn(q = k = tgt + query_pos, v = tgt))."""

    def __init__(self, d_model: int, num_heads: int, dropout: float = 0.0):
        super().__init__()
        self.self_attn = MultiheadAttention(d_model, num_heads)
        self.norm = nn.LayerNorm(d_model)
        self.dropout = nn.Dropout(dropout)

    def forward(self, tgt: torch.Tensor, query_pos: Optional[torch.Tensor] = None) -> torch.Tensor:
        qk = tgt if query_pos is None else tgt + query_pos
        return self.norm(tgt + self.dropout(self.self_attn(qk, qk, tgt)))


class FFNLayer(nn.Module):
    """tgt = LayerNorm(tgt + Linear(ReLU(Linear(tgt))))."""

    def __init__(self, d_model: int, dim_feedforward: int, dropout: float = 0.0):
        super().__init__()
        self.linear1 = nn.Linear(d_model, dim_feedforward)
        self.linear2 = nn.Linear(dim_feedforward, d_model)
        self.norm = nn.LayerNorm(d_model)
        self.dropout = nn.Dropout(dropout)
        nn.init.xavier_uniform_(self.linear1.weight)
        nn.init.xavier_uniform_(self.linear2.weight)

    def forward(self, tgt: torch.Tensor) -> torch.Tensor:
        return self.norm(tgt + self.dropout(self.linear2(self.dropout(F.relu(self.linear1(tgt))))))


class MLP(nn.Module):
    """A small MLP with ReLU between layers (the mask-embedding head)."""

    def __init__(self, input_dim: int, hidden_dim: int, output_dim: int, num_layers: int):
        super().__init__()
        dims = [input_dim] + [hidden_dim] * (num_layers - 1)
        outs = [hidden_dim] * (num_layers - 1) + [output_dim]
        self.layers = nn.ModuleList(nn.Linear(i, o) for i, o in zip(dims, outs))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for i, layer in enumerate(self.layers):
            x = layer(x)
            if i < len(self.layers) - 1:
                x = F.relu(x)
        return x
