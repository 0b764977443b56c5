"""Global branch: frame bottleneck queries and the Hilbert Selective Scan (HiSS).

Per encoder layer:
1. *collect*: Nf learned queries per frame cross-attend to all tokens of their own frame;
2. *scan*: the clip's T x Nf query grid is scanned by selective state-space blocks along a
   generalized Hilbert curve and its reverse (three blocks, then an FFN);
3. *distribute*: every token cross-attends back to the queries of its frame.
"""
from __future__ import annotations

import math
from typing import Optional

import torch
import torch.nn.functional as F
from torch import nn

from ...ops.constants import device_constant
from ...ops.hilbert import scan_order
from ...ops.selective_scan import compute_dtype, selective_scan
from ..attention import CrossAttentionLayer, FFNLayer
from ..blocking import by_frames
from ..depthwise import DepthwiseConv2d
from ..position import sine_embedding_1d


class SelectiveScan2D(nn.Module):
    """VMamba-style selective-scan mixer over a 2-D grid, scanned in a given order and its reverse.

    x: (B, H, W, C) grid (here H = frames, W = frame queries) -> (B, H, W, C).
    in_proj -> (x, z); x: depthwise 3x3 conv + SiLU on the grid; S6 scan along ``order`` and
    reversed ``order`` (each direction with its own x/dt projections, A and D); the two outputs
    are put back to grid positions and summed; LayerNorm; gated by SiLU(z); out_proj.
    """

    float32_names = ("A_logs", "Ds", "dt_projs_bias")  # the scan's parameters (lgrnet.models.bf16)

    def __init__(self, d_model: int, d_state: int = 16, d_conv: int = 3, expand: int = 2,
                 dt_min: float = 0.001, dt_max: float = 0.1, dt_init_floor: float = 1e-4):
        super().__init__()
        self.d_model = d_model
        self.d_state = d_state
        self.d_inner = int(expand * d_model)
        self.dt_rank = math.ceil(d_model / 16)
        self.num_directions = 2
        d_inner, K = self.d_inner, self.num_directions
        self.in_proj = nn.Linear(d_model, 2 * d_inner, bias=False)
        self.conv2d = DepthwiseConv2d(d_inner, d_inner, kernel_size=d_conv, padding=(d_conv - 1) // 2,
                                      groups=d_inner, bias=True)
        self.x_proj_weight = nn.Parameter(torch.empty(K, self.dt_rank + 2 * d_state, d_inner))
        self.dt_projs_weight = nn.Parameter(torch.empty(K, d_inner, self.dt_rank))
        self.dt_projs_bias = nn.Parameter(torch.empty(K, d_inner))
        self.A_logs = nn.Parameter(torch.log(torch.arange(1, d_state + 1, dtype=torch.float32))
                                   .repeat(K * d_inner, 1))  # (K * d_inner, d_state)
        self.Ds = nn.Parameter(torch.ones(K * d_inner))
        self.out_norm = nn.LayerNorm(d_inner)
        self.out_proj = nn.Linear(d_inner, d_model, bias=False)
        # Mamba initialisation (note: the encoder's Xavier re-init overwrites the 2-D ones).
        bound = 1 / math.sqrt(d_inner)
        nn.init.uniform_(self.x_proj_weight, -bound, bound)
        std = self.dt_rank ** -0.5
        nn.init.uniform_(self.dt_projs_weight, -std, std)
        dt = torch.exp(torch.rand(K, d_inner) * (math.log(dt_max) - math.log(dt_min)) + math.log(dt_min))
        dt = dt.clamp(min=dt_init_floor)
        with torch.no_grad():
            self.dt_projs_bias.copy_(dt + torch.log(-torch.expm1(-dt)))  # inverse softplus

    def scan(self, x: torch.Tensor, order: torch.Tensor) -> torch.Tensor:
        """x: (B, D, H, W) after the conv; order: (H*W,) grid indices in scan order -> (B, D, H, W)."""
        B, D, H, W = x.shape
        L = H * W
        K = self.num_directions
        xs = x.flatten(2).index_select(-1, order)  # (B, D, L) in scan order
        xs = torch.stack([xs, xs.flip(-1)], dim=1)  # (B, K, D, L)
        x_dbl = torch.einsum("bkdl,kcd->bkcl", xs, self.x_proj_weight)
        dts, Bs, Cs = torch.split(x_dbl, [self.dt_rank, self.d_state, self.d_state], dim=2)
        dts = torch.einsum("bkrl,kdr->bkdl", dts, self.dt_projs_weight)
        f = compute_dtype(xs)  # the scan runs in float32 even under autocast
        y = selective_scan(
            xs.to(f).reshape(B, K * D, L), dts.to(f).reshape(B, K * D, L),
            -torch.exp(self.A_logs.to(f)), Bs.to(f), Cs.to(f), self.Ds.to(f),
            delta_bias=self.dt_projs_bias.to(f).reshape(-1), delta_softplus=True,
        ).view(B, K, D, L)
        y_scan = y[:, 0] + y[:, 1].flip(-1)  # both directions, in scan order
        out = torch.empty_like(y_scan)
        out[..., order] = y_scan  # back to grid positions (order is a permutation)
        return out.view(B, D, H, W).to(self.out_norm.weight.dtype)  # float32 scan -> the model's dtype

    def forward(self, x: torch.Tensor, order: torch.Tensor) -> torch.Tensor:
        x, z = self.in_proj(x).chunk(2, dim=-1)  # (B, H, W, d_inner) each
        x = F.silu(self.conv2d(x.permute(0, 3, 1, 2).contiguous()))
        y = self.scan(x, order).permute(0, 2, 3, 1)
        y = self.out_norm(y) * F.silu(z)
        return self.out_proj(y)


class ScanBlock(nn.Module):
    """queries = LayerNorm(queries + SelectiveScan2D(queries + query_pos + time_pos))."""

    def __init__(self, d_model: int, d_state: int, d_conv: int, expand: int, dropout: float = 0.0):
        super().__init__()
        self.mixer = SelectiveScan2D(d_model, d_state=d_state, d_conv=d_conv, expand=expand)
        self.norm = nn.LayerNorm(d_model)
        self.dropout = nn.Dropout(dropout)

    def forward(self, queries: torch.Tensor, query_pos: torch.Tensor, order: torch.Tensor) -> torch.Tensor:
        """queries, query_pos: (b, T, Nf, C) -> (b, T, Nf, C)."""
        b, T, Nf, C = queries.shape
        grid = queries + query_pos + sine_embedding_1d(T, C, queries.device, queries.dtype)[None, :, None, :]
        return self.norm(queries + self.dropout(self.mixer(grid, order)))


class HilbertSelectiveScan(nn.Module):
    """Scan blocks over the clip's frame-query grid, then an FFN."""

    def __init__(self, d_model: int, num_layers: int = 3, d_state: int = 16, d_conv: int = 3,
                 expand: int = 2, dim_feedforward: int = 2048, order: str = "hilbert", dropout: float = 0.0):
        super().__init__()
        self.order = order
        self.blocks = nn.ModuleList(ScanBlock(d_model, d_state, d_conv, expand, dropout)
                                    for _ in range(num_layers))
        self.ffn = FFNLayer(d_model, dim_feedforward, dropout)

    def forward(self, queries: torch.Tensor, query_pos: torch.Tensor, num_frames: int) -> torch.Tensor:
        """queries, query_pos: (b*T, Nf, C) -> (b*T, Nf, C)."""
        BT, Nf, C = queries.shape
        b = BT // num_frames
        order = device_constant(scan_order, self.order, int(num_frames), int(Nf), device=queries.device)
        grid = queries.reshape(b, num_frames, Nf, C)
        pos = query_pos.reshape(b, num_frames, Nf, C)
        for block in self.blocks:
            grid = block(grid, pos, order)
        return self.ffn(grid.reshape(BT, Nf, C))


class GlobalBranch(nn.Module):
    """collect (frame queries <- tokens), scan (HiSS over the clip), distribute (tokens <- queries)."""

    def __init__(self, d_model: int, num_heads: int = 8, num_scan_layers: int = 3, d_state: int = 16,
                 d_conv: int = 3, expand: int = 2, dim_feedforward: int = 2048, order: str = "hilbert",
                 attn_mask: bool = False, dropout: float = 0.0):
        super().__init__()
        self.num_heads = num_heads
        self.use_attn_mask = attn_mask
        self.collect = CrossAttentionLayer(d_model, num_heads, dropout)
        self.scan = HilbertSelectiveScan(d_model, num_scan_layers, d_state, d_conv, expand,
                                         dim_feedforward, order, dropout)
        self.distribute = CrossAttentionLayer(d_model, num_heads, dropout)

    @torch.no_grad()
    def collect_mask(self, queries: torch.Tensor, tokens: torch.Tensor,
                     spatial_shapes) -> torch.Tensor:
        """The fibroid config's attention mask (True = blocked): sigmoid(query . token) < 0.5,
        computed on the finest encoded level and resized bilinearly to the others.
        queries (BT, Nf, C), tokens (BT, S, C) -> (BT, heads, Nf, S)."""
        BT, Nf, C = queries.shape
        h, w = spatial_shapes[-1]
        finest = tokens[:, tokens.shape[1] - h * w:].transpose(1, 2).reshape(BT, C, h, w)
        logits = torch.einsum("bnc,bchw->bnhw", queries, finest)
        parts = [F.interpolate(logits, size=(int(hh), int(ww)), mode="bilinear", align_corners=False).flatten(2)
                 for hh, ww in spatial_shapes[:-1]]
        logits = torch.cat(parts + [logits.flatten(2)], dim=-1)
        mask = logits.sigmoid() < 0.5
        mask &= ~mask.all(dim=-1, keepdim=True)  # a query masked everywhere attends everywhere
        return mask[:, None].expand(BT, self.num_heads, Nf, mask.shape[-1])

    def forward(self, tokens: torch.Tensor, pos: torch.Tensor, queries: torch.Tensor,
                query_pos: torch.Tensor, spatial_shapes, num_frames: int):
        """tokens, pos: (b*T, S, C); queries, query_pos: (b*T, Nf, C). Returns (tokens, queries).
        Collect and distribute attend within each frame; the scan runs over the whole clip."""
        queries = by_frames(lambda q, t, qp, p: self.collect_frames(q, t, qp, p, spatial_shapes),
                            queries, tokens, query_pos, pos)
        queries = self.scan(queries, query_pos, num_frames)
        tokens = by_frames(lambda t, q, p, qp: self.distribute(t, q, pos=qp, query_pos=p), tokens, queries, pos, query_pos)
        return tokens, queries

    def collect_frames(self, queries: torch.Tensor, tokens: torch.Tensor, query_pos: torch.Tensor,
                       pos: torch.Tensor, spatial_shapes) -> torch.Tensor:
        """Frame queries <- their frame's tokens (with the fibroid config's mask). (N, Nf, C), (N, S, C) -> (N, Nf, C)."""
        mask: Optional[torch.Tensor] = None
        if self.use_attn_mask:
            mask = self.collect_mask(queries, tokens, spatial_shapes)
        return self.collect(queries, tokens, pos=pos, query_pos=query_pos, attn_mask=mask)
