"""The shifted-view neighborhood attention against the reference (explicit windows), forward and
backward, on fresh random inputs: odd and non-square sizes, dilation > 1, maps exactly the window
size, one frame, the model's non-contiguous views.

Tolerances: float32 max abs difference <= 1e-5 on unit-normal inputs (outputs and gradients);
float64 <= 1e-12; gradcheck on tiny float64 inputs.
"""
from __future__ import annotations

import pytest
import torch

from lgrnet.ops import chosen, force, neighborhood_attention, neighborhood_attention_ref
from lgrnet.ops.neighborhood_attention_fast import neighborhood_attention_shifted

CASES = [  # H, W, kernel, dilation
    (5, 5, 5, 1), (6, 7, 5, 1), (9, 13, 3, 1), (7, 7, 7, 1), (11, 11, 5, 1), (23, 17, 5, 1),
    (10, 10, 5, 2), (12, 9, 3, 2), (11, 17, 3, 3), (15, 15, 5, 3), (13, 16, 3, 4),
]


def qkv(B, nh, H, W, d, seed, dtype=torch.float32):
    g = torch.Generator().manual_seed(seed)
    return [torch.randn(B, nh, H, W, d, generator=g, dtype=torch.float64).to(dtype) for _ in range(3)]


def fwd_bwd(fn, q, k, v, K, r, gout):
    leaves = [t.clone().requires_grad_(True) for t in (q, k, v)]
    out = fn(*leaves, K, r)
    out.backward(gout)
    return out.detach(), [t.grad for t in leaves]


@pytest.mark.parametrize("H,W,K,r", CASES)
@pytest.mark.parametrize("dtype,tol", [(torch.float32, 1e-5), (torch.float64, 1e-12)])
def test_matches_reference(H, W, K, r, dtype, tol):
    q, k, v = qkv(2, 3, H, W, 4, seed=H * 100 + W * 7 + K + r, dtype=dtype)
    gout = torch.randn(q.shape, generator=torch.Generator().manual_seed(1), dtype=dtype)
    o_ref, g_ref = fwd_bwd(neighborhood_attention_ref, q, k, v, K, r, gout)
    o, g = fwd_bwd(neighborhood_attention_shifted, q, k, v, K, r, gout)
    assert o.shape == q.shape and o.dtype == dtype
    assert (o - o_ref).abs().max().item() <= tol
    for name, a, b in zip("qkv", g, g_ref):
        assert (a - b).abs().max().item() <= tol * max(1.0, b.abs().max().item()), name


def test_model_layout_views_and_one_frame():
    # the model passes permuted views of (N, H, W, heads, d) projections; N = 1 frame
    g = torch.Generator().manual_seed(0)
    x = torch.randn(1, 22, 22, 2, 8, 8, generator=g)
    q, k = x[..., 0, :, :].permute(0, 3, 1, 2, 4), x[..., 1, :, :].permute(0, 3, 1, 2, 4)
    v = torch.randn(1, 22, 22, 8, 8, generator=g).permute(0, 3, 1, 2, 4)
    assert not q.is_contiguous()
    ref = neighborhood_attention_ref(q, k, v, 5, 1)
    out = neighborhood_attention_shifted(q, k, v, 5, 1)
    assert (out - ref).abs().max().item() <= 1e-5


def test_gradcheck(one_thread):
    q, k, v = (t.requires_grad_(True) for t in qkv(1, 1, 6, 6, 2, seed=3, dtype=torch.float64))
    assert torch.autograd.gradcheck(lambda a, b, c: neighborhood_attention_shifted(a, b, c, 3, 2), (q, k, v))
    q, k, v = (t.requires_grad_(True) for t in qkv(1, 1, 5, 6, 2, seed=4, dtype=torch.float64))
    assert torch.autograd.gradcheck(lambda a, b, c: neighborhood_attention_shifted(a, b, c, 5, 1), (q, k, v))


def test_map_smaller_than_window_is_an_error_like_the_reference():
    q, k, v = qkv(1, 1, 4, 9, 2, seed=0)
    with pytest.raises(ValueError, match="smaller than the window"):
        neighborhood_attention_ref(q, k, v, 5, 1)
    with pytest.raises(ValueError, match="smaller than the window"):
        neighborhood_attention_shifted(q, k, v, 5, 1)
    with pytest.raises(ValueError, match="smaller than the window"):
        neighborhood_attention_shifted(*qkv(1, 1, 9, 9, 2, seed=0), 5, 2)


def test_even_kernel_falls_back_to_reference():
    q, k, v = qkv(1, 2, 8, 8, 2, seed=5)
    assert torch.equal(neighborhood_attention_shifted(q, k, v, 4, 1), neighborhood_attention_ref(q, k, v, 4, 1))


def test_module_pads_small_maps_same_with_both_paths():
    # the model's module zero-pads maps smaller than the window; both paths must agree there too
    from lgrnet.models.encoder.local_branch import NeighborhoodCrossFrameAttention

    torch.manual_seed(0)
    m = NeighborhoodCrossFrameAttention(16, 2, kernel_size=5, dilation=2)
    xq, xkv = torch.randn(3, 6, 11, 16), torch.randn(3, 6, 11, 16)
    with force("reference"):
        ref = m(xq, xkv)
    assert chosen("neighborhood_attention", xq) == "shifted"
    out = m(xq, xkv)
    assert out.shape == (3, 6, 11, 16)
    assert (out - ref).abs().max().item() <= 1e-5


def test_dispatch_entry_point():
    q, k, v = qkv(2, 2, 9, 9, 4, seed=8)
    with force(neighborhood_attention="reference"):
        ref = neighborhood_attention(q, k, v, 3, 2)
    assert (neighborhood_attention(q, k, v, 3, 2) - ref).abs().max().item() <= 1e-5


def test_frame_groups_give_the_same_result(monkeypatch):
    import lgrnet.ops.neighborhood_attention_fast as fast_mod

    q, k, v = qkv(5, 2, 9, 10, 4, seed=12)
    gout = torch.randn(q.shape, generator=torch.Generator().manual_seed(3))
    whole, g_whole = fwd_bwd(neighborhood_attention_shifted, q, k, v, 3, 2, gout)
    monkeypatch.setattr(fast_mod, "CHUNK_ELEMENTS", 1)  # one frame per group
    grouped, g_grouped = fwd_bwd(neighborhood_attention_shifted, q, k, v, 3, 2, gout)
    # equal up to rounding (vectorised and scalar exp differ in the last bit)
    assert (whole - grouped).abs().max().item() <= 1e-6
    for a, b in zip(g_whole, g_grouped):
        assert (a - b).abs().max().item() <= 1e-5
