"""The fused multi-scale deformable attention core against the reference (one grid_sample per
level, stacked samples), forward and backward, on fresh random inputs with odd level sizes,
sampling locations outside the maps, one frame, and the frame-group path for long clips.

Tolerances: float32 max abs difference <= 1e-5 (outputs and gradients, unit-scale inputs);
float64 <= 1e-12; gradcheck on tiny float64 inputs.
"""
from __future__ import annotations

import pytest
import torch

import lgrnet.ops.ms_deform_attn_fast as fast_mod
from lgrnet.ops import chosen, force, ms_deform_attn, ms_deform_attn_ref
from lgrnet.ops.ms_deform_attn_fast import ms_deform_attn_fused


def inputs(N, shapes, Lq, M, P, D, seed, dtype=torch.float32):
    g = torch.Generator().manual_seed(seed)
    S = sum(h * w for h, w in shapes)
    value = torch.randn(N, S, M, D, generator=g, dtype=torch.float64)
    loc = torch.rand(N, Lq, M, len(shapes), P, 2, generator=g, dtype=torch.float64) * 1.4 - 0.2
    attn = torch.rand(N, Lq, M, len(shapes), P, generator=g, dtype=torch.float64)
    return [t.to(dtype) for t in (value, loc, attn)]


def fwd_bwd(fn, shapes, value, loc, attn):
    leaves = [t.clone().requires_grad_(True) for t in (value, loc, attn)]
    out = fn(leaves[0], shapes, leaves[1], leaves[2])
    out.backward(torch.randn(out.shape, generator=torch.Generator().manual_seed(2), dtype=torch.float64).to(out.dtype))
    return out.detach(), [t.grad for t in leaves]


@pytest.mark.parametrize("N,shapes,Lq,M,P,D", [
    (1, [(3, 5)], 7, 1, 1, 2),
    (2, [(3, 4), (5, 2), (6, 7)], 9, 2, 3, 3),
    (3, [(11, 11), (6, 5), (3, 3)], 25, 4, 4, 8),
    (1, [(1, 1), (2, 9)], 4, 3, 2, 5),
])
@pytest.mark.parametrize("dtype,tol", [(torch.float32, 1e-5), (torch.float64, 1e-12)])
def test_matches_reference(N, shapes, Lq, M, P, D, dtype, tol):
    value, loc, attn = inputs(N, shapes, Lq, M, P, D, seed=N * 10 + Lq, dtype=dtype)
    o_ref, g_ref = fwd_bwd(ms_deform_attn_ref, shapes, value, loc, attn)
    o, g = fwd_bwd(ms_deform_attn_fused, shapes, value, loc, attn)
    assert o.shape == (N, Lq, M * D) and o.dtype == dtype
    assert (o - o_ref).abs().max().item() <= tol
    for name, a, b in zip(("value", "locations", "weights"), g, g_ref):
        assert (a - b).abs().max().item() <= tol * max(1.0, b.abs().max().item()), name


def test_frame_groups_give_the_same_result(monkeypatch):
    shapes = [(4, 6), (2, 3)]
    value, loc, attn = inputs(5, shapes, 30, 2, 2, 4, seed=1)
    whole, g_whole = fwd_bwd(ms_deform_attn_fused, shapes, value, loc, attn)
    monkeypatch.setattr(fast_mod, "MAX_SAMPLED_BYTES", 1)  # one frame per group
    grouped, g_grouped = fwd_bwd(ms_deform_attn_fused, shapes, value, loc, attn)
    assert torch.equal(whole, grouped)
    for a, b in zip(g_whole, g_grouped):
        assert (a - b).abs().max().item() <= 1e-6


def test_gradcheck(one_thread):
    shapes = [(2, 3), (3, 3)]
    value, loc, attn = inputs(1, shapes, 3, 2, 2, 2, seed=4, dtype=torch.float64)
    loc = loc.clamp(0.05, 0.95)
    args = [t.requires_grad_(True) for t in (value, loc, attn)]
    assert torch.autograd.gradcheck(lambda v, loc, a: ms_deform_attn_fused(v, shapes, loc, a), args)


def test_bad_shapes_are_explained():
    value, loc, attn = inputs(1, [(3, 3)], 2, 1, 1, 2, seed=0)
    with pytest.raises(ValueError, match="spatial shapes"):
        ms_deform_attn_fused(value, [(3, 4)], loc, attn)


def test_dispatch_entry_point():
    shapes = [(5, 5), (3, 2)]
    value, loc, attn = inputs(2, shapes, 6, 2, 2, 4, seed=9)
    assert chosen("ms_deform_attn", value) == "fused"
    with force("reference"):
        ref = ms_deform_attn(value, shapes, loc, attn)
    assert (ms_deform_attn(value, shapes, loc, attn) - ref).abs().max().item() <= 1e-5
