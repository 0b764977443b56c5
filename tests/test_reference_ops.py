"""Reference ops against naive loops (float64) and gradcheck.

Each reference op is checked against a deliberately naive computation written here from the
definition (per pixel / per step / per sample Python loops in float64), within 1e-10, and its
autograd gradients with torch.autograd.gradcheck on tiny float64 inputs.
"""
from __future__ import annotations

import json
import math

import pytest
import torch

from lgrnet.ops import (gilbert2d, hilbert_order, ms_deform_attn_ref, neighborhood_attention_ref,
                        selective_scan_ref, window_indices, zigzag_order)


# ----------------------------------------------------------------------------- Hilbert order

def test_hilbert_orders_equal_official(shared_dir):
    orders = json.loads((shared_dir / "official" / "hilbert.json").read_text())["orders"]
    assert len(orders) == 160
    for key, expected in orders.items():
        nq, T = (int(part.split("=")[1]) for part in key.split(","))
        assert hilbert_order(T, nq).tolist() == expected, key


@pytest.mark.parametrize("w,h", [(1, 1), (20, 1), (1, 7), (5, 3), (20, 40), (16, 16), (7, 13)])
def test_gilbert_is_a_path_over_every_cell(w, h):
    cells = gilbert2d(w, h)
    assert sorted(cells) == sorted((x, y) for x in range(w) for y in range(h))
    assert cells[0] == (0, 0)
    # consecutive cells are neighbours (a diagonal step is allowed only on odd-sized grids)
    for (x0, y0), (x1, y1) in zip(cells, cells[1:]):
        assert max(abs(x1 - x0), abs(y1 - y0)) == 1


def test_zigzag_is_row_major():
    assert zigzag_order(3, 4).tolist() == list(range(12))


# ----------------------------------------------------------------------------- neighborhood attention

def naive_window_start(i: int, length: int, k: int, d: int) -> int:
    """Independent formulation: the query's own phase (i mod d) forms a sub-grid; the window is k
    consecutive sub-grid cells centred on the query and clamped inside that sub-grid."""
    phase = i % d
    sub_len = len(range(phase, length, d))
    start = min(max(i // d - k // 2, 0), sub_len - k)
    return phase + d * start


def naive_neighborhood_attention(q, k, v, kernel, dil):
    B, nh, H, W, D = q.shape
    out = torch.zeros_like(q)
    for b in range(B):
        for n in range(nh):
            for i in range(H):
                for j in range(W):
                    r0 = naive_window_start(i, H, kernel, dil)
                    c0 = naive_window_start(j, W, kernel, dil)
                    keys = [(r0 + a * dil, c0 + c * dil) for a in range(kernel) for c in range(kernel)]
                    logits = torch.stack([q[b, n, i, j] @ k[b, n, r, c] for r, c in keys])
                    w = torch.softmax(logits, 0)
                    out[b, n, i, j] = sum(w[t] * v[b, n, r, c] for t, (r, c) in enumerate(keys))
    return out


@pytest.mark.parametrize("H,W,kernel,dil", [(5, 5, 5, 1), (7, 9, 3, 1), (8, 6, 5, 1), (10, 11, 5, 2),
                                              (13, 10, 3, 3), (12, 12, 5, 2), (6, 9, 3, 2)])
def test_neighborhood_attention_matches_naive_loop(H, W, kernel, dil):
    g = torch.Generator().manual_seed(H * 100 + W * 10 + kernel + dil)
    q, k, v = (torch.randn(1, 2, H, W, 3, generator=g, dtype=torch.float64) for _ in range(3))
    ref = naive_neighborhood_attention(q, k, v, kernel, dil)
    out = neighborhood_attention_ref(q, k, v, kernel, dil)
    assert out.shape == q.shape
    assert (out - ref).abs().max().item() < 1e-10


def test_window_indices_stay_inside_and_in_phase():
    for length in range(10, 24):
        for kernel, dil in [(3, 1), (5, 1), (5, 2), (3, 3), (7, 2)]:
            if length < kernel * dil:
                continue
            idx = window_indices(length, kernel, dil)
            assert idx.min() >= 0 and idx.max() < length
            for i in range(length):
                assert (idx[i] % dil == i % dil).all()
                assert i in idx[i].tolist()


def test_window_smaller_than_kernel_is_an_error():
    with pytest.raises(ValueError, match="smaller than the window"):
        window_indices(4, 5, 1)


def test_neighborhood_attention_gradcheck():
    g = torch.Generator().manual_seed(0)
    q, k, v = (torch.randn(1, 2, 6, 7, 2, generator=g, dtype=torch.float64, requires_grad=True) for _ in range(3))
    assert torch.autograd.gradcheck(lambda a, b, c: neighborhood_attention_ref(a, b, c, 3, 2), (q, k, v))


# ----------------------------------------------------------------------------- selective scan

def naive_selective_scan(u, delta, A, B, C, D, bias):
    """Scalar recurrence per (batch, channel, state), float64."""
    batch, dim, L = u.shape
    n = A.shape[1]
    groups = B.shape[1]
    y = torch.zeros_like(u)
    for b in range(batch):
        for d in range(dim):
            g = d // (dim // groups)
            h = [0.0] * n
            for t in range(L):
                dt = math.log1p(math.exp(delta[b, d, t].item() + bias[d].item()))
                acc = 0.0
                for s in range(n):
                    h[s] = math.exp(dt * A[d, s].item()) * h[s] + dt * B[b, g, s, t].item() * u[b, d, t].item()
                    acc += C[b, g, s, t].item() * h[s]
                y[b, d, t] = acc + D[d].item() * u[b, d, t].item()
    return y


def scan_inputs(batch=2, dim=4, n=3, L=7, groups=2, seed=0, requires_grad=False):
    g = torch.Generator().manual_seed(seed)
    def r(*s):
        return torch.randn(*s, generator=g, dtype=torch.float64)

    u, delta = r(batch, dim, L), r(batch, dim, L) * 0.5
    A = -torch.exp(r(dim, n) * 0.5)
    B, C = r(batch, groups, n, L), r(batch, groups, n, L)
    D, bias = r(dim), r(dim) * 0.1
    tensors = [u, delta, A, B, C, D, bias]
    if requires_grad:
        for t in tensors:
            t.requires_grad_(True)
    return tensors


def test_selective_scan_matches_naive_loop():
    u, delta, A, B, C, D, bias = scan_inputs()
    ref = naive_selective_scan(u, delta, A, B, C, D, bias)
    out = selective_scan_ref(u, delta, A, B, C, D, delta_bias=bias, delta_softplus=True)
    assert out.dtype == torch.float64
    assert (out - ref).abs().max().item() < 1e-10


def test_selective_scan_float32_and_ungrouped_B():
    u, delta, A, B, C, D, bias = scan_inputs(groups=1)
    y32 = selective_scan_ref(u.float(), delta.float(), A.float(), B[:, 0].float(), C[:, 0].float(), D.float(),
                             delta_bias=bias.float(), delta_softplus=True)
    y64 = selective_scan_ref(u, delta, A, B, C, D, delta_bias=bias, delta_softplus=True)
    assert y32.dtype == torch.float32
    assert ((y32.double() - y64).norm() / y64.norm()).item() < 1e-6


def test_selective_scan_gradcheck():
    args = scan_inputs(batch=1, dim=2, n=2, L=5, groups=1, seed=1, requires_grad=True)
    def fn(u, delta, A, B, C, D, bias):
        return selective_scan_ref(u, delta, A, B, C, D, delta_bias=bias, delta_softplus=True)

    assert torch.autograd.gradcheck(fn, args)


# ----------------------------------------------------------------------------- deformable attention

def naive_bilinear(img, x, y):
    """grid_sample(align_corners=False, zeros padding) at normalised location (x, y) in [0, 1]."""
    C, H, W = img.shape
    px, py = x * W - 0.5, y * H - 0.5
    x0, y0 = math.floor(px), math.floor(py)
    out = torch.zeros(C, dtype=img.dtype)
    for yy, wy in ((y0, 1 - (py - y0)), (y0 + 1, py - y0)):
        for xx, wx in ((x0, 1 - (px - x0)), (x0 + 1, px - x0)):
            if 0 <= yy < H and 0 <= xx < W:
                out += wy * wx * img[:, yy, xx]
    return out


def test_ms_deform_attn_matches_naive_loop():
    g = torch.Generator().manual_seed(3)
    shapes = [(3, 4), (5, 2), (6, 7)]
    N, M, D, Lq, P = 2, 2, 3, 5, 3
    S = sum(h * w for h, w in shapes)
    value = torch.randn(N, S, M, D, generator=g, dtype=torch.float64)
    loc = torch.rand(N, Lq, M, len(shapes), P, 2, generator=g, dtype=torch.float64) * 1.4 - 0.2  # some outside
    attn = torch.rand(N, Lq, M, len(shapes), P, generator=g, dtype=torch.float64)
    out = ms_deform_attn_ref(value, shapes, loc, attn)
    ref = torch.zeros(N, Lq, M * D, dtype=torch.float64)
    starts = [0, 12, 22]
    for n in range(N):
        for q in range(Lq):
            for m in range(M):
                acc = torch.zeros(D, dtype=torch.float64)
                for lvl, (h, w) in enumerate(shapes):
                    img = value[n, starts[lvl]:starts[lvl] + h * w, m].t().reshape(D, h, w)
                    for p in range(P):
                        x, y = loc[n, q, m, lvl, p].tolist()
                        acc += attn[n, q, m, lvl, p] * naive_bilinear(img, x, y)
                ref[n, q, m * D:(m + 1) * D] = acc
    assert (out - ref).abs().max().item() < 1e-10


def test_ms_deform_attn_gradcheck():
    g = torch.Generator().manual_seed(4)
    shapes = [(2, 3), (3, 3)]
    value = torch.randn(1, 15, 2, 2, generator=g, dtype=torch.float64, requires_grad=True)
    loc = (torch.rand(1, 3, 2, 2, 2, 2, generator=g, dtype=torch.float64) * 0.8 + 0.1).requires_grad_(True)
    attn = torch.rand(1, 3, 2, 2, 2, generator=g, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda v, loc, a: ms_deform_attn_ref(v, shapes, loc, a), (value, loc, attn))


def test_parallel_scan_equals_step_loop():
    """The GPU path (Hillis-Steele prefix scan) computes the same function, on any length."""
    from lgrnet.ops.selective_scan_parallel import selective_scan_parallel

    for L in (1, 2, 5, 16, 33):
        args = scan_inputs(batch=2, dim=4, n=3, L=L, groups=2, seed=L)
        ref = selective_scan_ref(*args[:6], delta_bias=args[6], delta_softplus=True)
        out = selective_scan_parallel(*args[:6], delta_bias=args[6], delta_softplus=True)
        assert (out - ref).abs().max().item() < 1e-12
    args = scan_inputs(batch=1, dim=2, n=2, L=6, groups=1, seed=7, requires_grad=True)
    def fn(u, delta, A, B, C, D, bias):
        return selective_scan_parallel(u, delta, A, B, C, D, delta_bias=bias, delta_softplus=True)

    assert torch.autograd.gradcheck(fn, args)
