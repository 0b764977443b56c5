"""Neighborhood attention by shifted views: the same function as
:func:`lgrnet.ops.neighborhood_attention.neighborhood_attention_ref`, without gathering windows.

With dilation 1, the window of query ``(i, j)`` starts at ``(clamp(i - h, 0, H - K),
clamp(j - h, 0, W - K))`` (``h = K // 2``). For the *interior* queries (``h <= i < H - h`` and the
same for ``j``) the key at kernel offset ``(a, b)`` is ``k[i - h + a, j - h + b]``: one shifted
view of the whole key map per offset. So the interior costs ``K * K`` batched products over views
(no copies); the thin *ring* of border queries (width ``h``) gathers its windows explicitly.
Interior and ring are separate softmax problems (a softmax is per query).

Dilation ``r`` splits the map into ``r * r`` phase grids (rows ``i = p + r * m``): NATTEN's
dilated window rule is exactly the undilated rule on each phase grid, so each is solved as above.

Layout inside: (B, heads, d, H, W), so that a shifted view is contiguous along W and the sum over
``d`` is a reduction over a middle dimension (vectorised along W). A custom autograd function
recomputes the shifted views in the backward pass and keeps only q, k, v and the attention.
Python work is per kernel offset, never per position.
"""
from __future__ import annotations

from typing import Tuple

import torch
from torch.autograd.function import once_differentiable

from .constants import device_constant
from .dispatch import register
from .neighborhood_attention import neighborhood_attention_ref, window_indices

# Elements (frames x heads x head_dim x H x W) per group of frames processed together.
CHUNK_ELEMENTS = 1 << 20


def _ring(H: int, W: int, K: int, device) -> Tuple[torch.Tensor, torch.Tensor]:
    """Flat indices of the border queries (R,) and of their windows' keys (R, K*K), dilation 1,
    on ``device`` (made once per shape and device)."""
    return (device_constant(_ring_queries, H, W, K, device=device),
            device_constant(_ring_keys, H, W, K, device=device))


def _ring_queries(H: int, W: int, K: int) -> torch.Tensor:
    return _ring_uncached(H, W, K)[0]


def _ring_keys(H: int, W: int, K: int) -> torch.Tensor:
    return _ring_uncached(H, W, K)[1]


def _ring_uncached(H: int, W: int, K: int) -> Tuple[torch.Tensor, torch.Tensor]:
    h = K // 2
    rows = window_indices(H, K, 1)
    cols = window_indices(W, K, 1)
    # border pixels in raster order: the top h rows, the h left and h right pixels of each middle
    # row, the bottom h rows (built without nonzero: no data-dependent shapes for torch.compile)
    middle = torch.arange(h, H - h)[:, None] * W + torch.cat([torch.arange(h), torch.arange(W - h, W)])[None, :]
    ring = torch.cat([torch.arange(h * W), middle.reshape(-1), torch.arange((H - h) * W, H * W)])
    ri, rj = ring // W, ring % W
    win = (rows[ri][:, :, None] * W + cols[rj][:, None, :]).reshape(len(ring), K * K)
    return ring, win


def _pixel_major(x: torch.Tensor) -> torch.Tensor:
    """(B, nh, d, H, W) -> (H*W, d * B * nh) contiguous: one row per pixel, so that gathering
    windows is a row copy."""
    B, nh, d, H, W = x.shape
    return x.permute(3, 4, 2, 0, 1).reshape(H * W, d * B * nh)


def _from_pixel_major(x: torch.Tensor, B: int, nh: int) -> torch.Tensor:
    """(P, d, B*nh) -> (B, nh, d, P)."""
    P, d = x.shape[0], x.shape[1]
    return x.view(P, d, B, nh).permute(2, 3, 1, 0)


def _softmax(x: torch.Tensor, dim: int) -> torch.Tensor:
    """Softmax computed in float32 for half / bfloat16 inputs (as autocast does), in x's dtype."""
    if x.dtype in (torch.float16, torch.bfloat16):
        return torch.softmax(x, dim=dim, dtype=torch.float32).to(x.dtype)
    return torch.softmax(x, dim=dim)


class _ShiftedNA(torch.autograd.Function):
    """Dilation-1 neighborhood attention on contiguous (B, nh, d, H, W) tensors of one dtype.
    Runs with autocast off (the caller has chosen the dtype); softmaxes in float32."""

    @staticmethod
    def forward(ctx, q, k, v, K: int):
        B, nh, d, H, W = q.shape
        h = K // 2
        Hi, Wi = H - 2 * h, W - 2 * h
        out = torch.empty_like(q)
        # interior: one shifted view of k / v per kernel offset
        qi = q[..., h:H - h, h:W - h]
        logits = q.new_empty(K * K, B, nh, Hi, Wi)
        for a in range(K):
            for b in range(K):
                torch.sum(qi * k[..., a:a + Hi, b:b + Wi], dim=2, out=logits[a * K + b])
        attn = _softmax(logits, dim=0)
        del logits
        oi = out[..., h:H - h, h:W - h]
        oi.copy_(attn[0].unsqueeze(2) * v[..., 0:Hi, 0:Wi])
        for a in range(K):
            for b in range(K):
                if a or b:
                    oi.addcmul_(attn[a * K + b].unsqueeze(2), v[..., a:a + Hi, b:b + Wi])
        # ring: explicit windows, gathered as rows of pixel-major copies (HW, d * B * nh)
        ring, win = _ring(H, W, K, q.device)
        R = ring.numel()
        attn_ring = q.new_empty(R, K * K, B * nh)
        if R:
            flat = win.reshape(-1)
            qr = _pixel_major(q).index_select(0, ring).view(R, 1, d, B * nh)
            kr = _pixel_major(k).index_select(0, flat).view(R, K * K, d, B * nh)
            attn_ring = _softmax((qr * kr).sum(2), dim=1)  # (R, KK, B*nh)
            vr = _pixel_major(v).index_select(0, flat).view(R, K * K, d, B * nh)
            out_ring = (attn_ring.unsqueeze(2) * vr).sum(1)  # (R, d, B*nh)
            out.view(B, nh, d, H * W).index_copy_(3, ring, _from_pixel_major(out_ring, B, nh))
        ctx.save_for_backward(q, k, v, attn, attn_ring)
        ctx.K = K
        return out

    @staticmethod
    @once_differentiable
    def backward(ctx, gout):
        q, k, v, attn, attn_ring = ctx.saved_tensors
        K = ctx.K
        gout = gout.contiguous()
        B, nh, d, H, W = q.shape
        h = K // 2
        Hi, Wi = H - 2 * h, W - 2 * h
        gq, gk, gv = torch.zeros_like(q), torch.zeros_like(k), torch.zeros_like(v)
        qi, goi = q[..., h:H - h, h:W - h], gout[..., h:H - h, h:W - h]
        g_attn = torch.empty_like(attn)
        for a in range(K):
            for b in range(K):
                i = a * K + b
                torch.sum(goi * v[..., a:a + Hi, b:b + Wi], dim=2, out=g_attn[i])
                gv[..., a:a + Hi, b:b + Wi].addcmul_(attn[i].unsqueeze(2), goi)
        g_logits = attn * (g_attn - (attn * g_attn).sum(0, keepdim=True))
        del g_attn
        gqi = gq[..., h:H - h, h:W - h]
        for a in range(K):
            for b in range(K):
                g = g_logits[a * K + b].unsqueeze(2)
                gqi.addcmul_(g, k[..., a:a + Hi, b:b + Wi])
                gk[..., a:a + Hi, b:b + Wi].addcmul_(g, qi)
        ring, win = _ring(H, W, K, q.device)
        R = ring.numel()
        if R:
            flat = win.reshape(-1)
            KK = K * K
            qr = _pixel_major(q).index_select(0, ring).view(R, 1, d, B * nh)
            gor = _pixel_major(gout).index_select(0, ring).view(R, 1, d, B * nh)
            kr = _pixel_major(k).index_select(0, flat).view(R, KK, d, B * nh)
            vr = _pixel_major(v).index_select(0, flat).view(R, KK, d, B * nh)
            ga = (gor * vr).sum(2)  # (R, KK, B*nh)
            gl = attn_ring * (ga - (attn_ring * ga).sum(1, keepdim=True))
            gq.view(B, nh, d, H * W).index_copy_(3, ring, _from_pixel_major((gl.unsqueeze(2) * kr).sum(1), B, nh))
            g_pm = q.new_zeros(H * W, d * B * nh)
            g_pm.index_add_(0, flat, (gl.unsqueeze(2) * qr).view(R * KK, -1))
            gk += _from_pixel_major(g_pm.view(H * W, d, B * nh), B, nh).view_as(gk)
            g_pm.zero_().index_add_(0, flat, (attn_ring.unsqueeze(2) * gor).view(R * KK, -1))
            gv += _from_pixel_major(g_pm.view(H * W, d, B * nh), B, nh).view_as(gv)
        return gq, gk, gv, None


def neighborhood_attention_shifted(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor,
                                   kernel_size: int, dilation: int = 1) -> torch.Tensor:
    """Neighborhood attention, (B, heads, H, W, d) -> (B, heads, H, W, d); same math and border
    rule as the reference (odd kernels; even ones go to the reference)."""
    if q.shape != k.shape or q.shape != v.shape or q.dim() != 5:
        raise ValueError(f"q, k, v must have one shape (B, heads, H, W, d); got {tuple(q.shape)}, "
                         f"{tuple(k.shape)}, {tuple(v.shape)}")
    K, r = int(kernel_size), int(dilation)
    if K % 2 == 0 or K < 1 or r < 1:
        return neighborhood_attention_ref(q, k, v, kernel_size, dilation)
    B, nh, H, W, d = q.shape
    window_indices(H, K, r)  # raises a clear error when the map is smaller than the window
    window_indices(W, K, r)
    # One dtype for the three inputs: under autocast, the one autocast gives the reference's products.
    dtype = torch.promote_types(torch.promote_types(q.dtype, k.dtype), v.dtype)
    autocast_dtype = _autocast_dtype(q.device.type)
    if autocast_dtype is not None:
        dtype = autocast_dtype
    # (B, nh, H, W, d) -> (B, nh, d, H, W)
    qc, kc, vc = (x.to(dtype).permute(0, 1, 4, 2, 3) for x in (q, k, v))
    # frames in groups of about CHUNK_ELEMENTS elements, so that the per-offset tensors stay in cache
    group = max(1, CHUNK_ELEMENTS // max(1, nh * d * H * W))
    with torch.autocast(q.device.type, enabled=False):
        parts = [_dilated(qc[i:i + group], kc[i:i + group], vc[i:i + group], K, r) for i in range(0, B, group)]
    out = parts[0] if len(parts) == 1 else torch.cat(parts, dim=0)
    return out.permute(0, 1, 3, 4, 2)


def _autocast_dtype(device_type: str):
    """The dtype autocast casts products to on this device type, or None when it is off."""
    if hasattr(torch, "get_autocast_dtype"):  # torch >= 2.4
        return torch.get_autocast_dtype(device_type) if torch.is_autocast_enabled(device_type) else None
    if device_type == "cuda":
        return torch.get_autocast_gpu_dtype() if torch.is_autocast_enabled() else None
    return torch.get_autocast_cpu_dtype() if torch.is_autocast_cpu_enabled() else None


def _dilated(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, K: int, r: int) -> torch.Tensor:
    """(B, nh, d, H, W) views -> (B, nh, d, H, W): dilation r as r * r undilated phase grids."""
    if r == 1:
        return _ShiftedNA.apply(q.contiguous(), k.contiguous(), v.contiguous(), K)
    out = q.new_empty(q.shape)
    for p in range(r):
        for s in range(r):
            phase = (Ellipsis, slice(p, None, r), slice(s, None, r))
            out[phase] = _ShiftedNA.apply(q[phase].contiguous(), k[phase].contiguous(), v[phase].contiguous(), K)
    return out


def _floating_cpu(x: torch.Tensor) -> bool:
    return x.is_floating_point() and x.device.type == "cpu"


# On CUDA the reference's gathered windows are one batched product and faster than the shifted
# form's K*K small kernels (H100, 6 x 44 x 44, kernel 5: 0.8 vs 1.4 ms forward, benchmarks/gpu_check.py).
register("neighborhood_attention", "shifted", neighborhood_attention_shifted, available=_floating_cpu, priority=10)
