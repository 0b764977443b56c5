"""The chunked selective scan against the step loop (our reference and mamba's original indexing
loop), in float32 and float64, forward and backward.

Tolerances: float32 outputs and gradients within 1e-5 of the reference, relative to the reference's
largest magnitude (the issue's bar); float64 within 1e-12 relative; gradcheck on tiny float64
inputs.
"""
from __future__ import annotations

import pytest
import torch

from lgrnet.ops import force, selective_scan, selective_scan_ref
from lgrnet.ops.selective_scan import _prepare
from lgrnet.ops.selective_scan_chunked import chunk_length, selective_scan_chunked


def original_step_loop(u, delta, A, B, C, D=None, delta_bias=None, delta_softplus=False):
    """mamba_ssm's selective_scan_ref as published: indexes the (b, d, L, n) tensors per step."""
    u, delta, A, Bx, Cx = _prepare(u, delta, A, B, C, delta_bias, delta_softplus)
    h = u.new_zeros(u.shape[0], u.shape[1], A.shape[1])
    decay = torch.exp(torch.einsum("bdl,dn->bdln", delta, A))
    drive = torch.einsum("bdl,bdnl,bdl->bdln", delta, Bx.expand(u.shape[0], -1, -1, -1), u)
    ys = []
    for i in range(u.shape[2]):
        h = decay[:, :, i] * h + drive[:, :, i]
        ys.append(torch.einsum("bdn,bdn->bd", h, Cx.expand(u.shape[0], -1, -1, -1)[:, :, :, i]))
    y = torch.stack(ys, dim=2)
    return y if D is None else y + u * D[:, None]


def inputs(batch=2, dim=6, n=3, L=17, groups=2, seed=0, dtype=torch.float32, a_scale=1.0):
    g = torch.Generator().manual_seed(seed)

    def r(*s):
        return torch.randn(*s, generator=g, dtype=torch.float64)

    u, delta = r(batch, dim, L), r(batch, dim, L) * 0.7
    A = -torch.exp(r(dim, n) * 0.5) * a_scale
    shape = (batch, groups, n, L) if groups else (batch, n, L)
    B, C = r(*shape), r(*shape)
    D, bias = r(dim), r(dim) * 0.1
    return [t.to(dtype) for t in (u, delta, A, B, C, D, bias)]


def rel(a: torch.Tensor, b: torch.Tensor) -> float:
    return ((a.double() - b.double()).abs().max() / b.double().abs().max().clamp_min(1e-30)).item()


def run(fn, args, softplus=True, use_d=True, use_bias=True, grad_out=None):
    leaves = [a.clone().requires_grad_(True) for a in args]
    u, delta, A, B, C, D, bias = leaves
    y = fn(u, delta, A, B, C, D if use_d else None, delta_bias=bias if use_bias else None, delta_softplus=softplus)
    if grad_out is None:
        grad_out = torch.randn(y.shape, generator=torch.Generator().manual_seed(7), dtype=torch.float64)
    grad_out = grad_out.to(y.dtype)
    y.backward(grad_out)
    grads = [t.grad if t.grad is not None else torch.zeros_like(t) for t in leaves]
    return y.detach(), grads


@pytest.mark.parametrize("L,groups,chunk", [(1, 2, None), (2, 1, 1), (7, 2, 3), (17, 0, 4), (37, 2, 5),
                                            (64, 2, 8), (130, 1, None), (9, 2, 9), (9, 2, 20)])
def test_matches_step_loop_forward_and_backward(L, groups, chunk):
    args = inputs(L=L, groups=groups, seed=L)
    def fast(*a, **k):
        return selective_scan_chunked(*a, **k, chunk=chunk)

    y_ref, g_ref = run(selective_scan_ref, args)
    y, g = run(fast, args)
    assert y.dtype == torch.float32 and y.shape == y_ref.shape
    assert rel(y, y_ref) <= 1e-5
    for name, a, b in zip("u delta A B C D bias".split(), g, g_ref):
        assert a.shape == b.shape, name
        assert rel(a, b) <= 1e-5, name
    # and against mamba's original indexing loop, run in float64
    y64, g64 = run(original_step_loop, [a.double() for a in args])
    assert rel(y, y64) <= 1e-5
    for name, a, b in zip("u delta A B C D bias".split(), g, g64):
        assert rel(a, b) <= 1e-5, name


@pytest.mark.parametrize("softplus,use_d,use_bias", [(False, False, False), (True, False, True), (False, True, False)])
def test_optional_arguments(softplus, use_d, use_bias):
    args = inputs(L=23, seed=3)
    if not softplus:
        args[1] = args[1].abs() * 0.3  # keep delta positive, as after softplus
    y_ref, g_ref = run(selective_scan_ref, args, softplus, use_d, use_bias)
    y, g = run(selective_scan_chunked, args, softplus, use_d, use_bias)
    assert rel(y, y_ref) <= 1e-5
    for a, b in zip(g, g_ref):
        if b.abs().max() > 0:
            assert rel(a, b) <= 1e-5


def test_float64_is_exact_to_rounding():
    args = inputs(L=300, dtype=torch.float64, seed=5)
    y_ref, g_ref = run(selective_scan_ref, args)
    y, g = run(lambda *a, **k: selective_scan_chunked(*a, **k, chunk=16), args)
    assert y.dtype == torch.float64
    assert rel(y, y_ref) <= 1e-12
    for a, b in zip(g, g_ref):
        assert rel(a, b) <= 1e-12


def test_long_sequence_against_float64():
    args = inputs(batch=1, dim=4, n=2, L=3000, groups=2, seed=11)
    y64, g64 = run(selective_scan_ref, [a.double() for a in args])
    y, g = run(selective_scan_chunked, args)
    assert rel(y, y64) <= 1e-5
    for name, a, b in zip("u delta A B C D bias".split(), g, g64):
        assert rel(a, b) <= 1e-5, name


def test_strong_decays_underflow_without_nan():
    args = inputs(L=50, seed=2, a_scale=200.0)  # exp(delta * A) underflows to 0 for most steps
    y_ref, g_ref = run(selective_scan_ref, args)
    y, g = run(selective_scan_chunked, args)
    assert torch.isfinite(y).all() and all(torch.isfinite(t).all() for t in g)
    assert rel(y, y_ref) <= 1e-5
    for a, b in zip(g, g_ref):
        assert rel(a, b) <= 1e-5


def test_gradcheck(one_thread):
    args = [a.requires_grad_(True) for a in inputs(batch=1, dim=2, n=2, L=7, groups=1, seed=1, dtype=torch.float64)]
    def fn(u, delta, A, B, C, D, bias):
        return selective_scan_chunked(u, delta, A, B, C, D, delta_bias=bias, delta_softplus=True, chunk=3)

    assert torch.autograd.gradcheck(fn, args)


def test_half_inputs_are_computed_in_float32():
    args = inputs(L=20, seed=4)
    low = [a.to(torch.bfloat16) for a in args]
    y = selective_scan_chunked(*low[:6], delta_bias=low[6], delta_softplus=True)
    y_ref = selective_scan_ref(*low[:6], delta_bias=low[6], delta_softplus=True)
    assert y.dtype == torch.bfloat16
    assert rel(y.float(), y_ref.float()) <= 1e-2  # both round to bf16 at the end


def test_bad_groups_are_explained():
    u, delta, A, B, C, D, bias = inputs(dim=6, groups=4)
    with pytest.raises(ValueError, match="groups"):
        selective_scan_chunked(u, delta, A, B, C, D)


def test_chunk_length_covers_the_sequence():
    for L in (1, 2, 119, 120, 121, 6000):
        for rows in (1, 64, 4096, 10 ** 6):
            c = chunk_length(L, rows)
            assert 1 <= c <= L
            nc = -(-L // c)
            assert nc * c >= L and (nc - 1) * c < L


def test_dispatch_uses_chunked_path_and_can_be_forced():
    args = inputs(L=12)
    from lgrnet.ops import chosen

    assert chosen("selective_scan", args[0]) == "chunked"
    with force("reference"):
        assert chosen("selective_scan", args[0]) == "reference"
        y_ref = selective_scan(*args[:6], delta_bias=args[6], delta_softplus=True)
    y = selective_scan(*args[:6], delta_bias=args[6], delta_softplus=True)
    assert rel(y, y_ref) <= 1e-5


def test_chunk_length_on_gpus_is_about_sqrt_L():
    for L in (1, 2, 5, 120, 6000):
        c = chunk_length(L, 4096, device_type="cuda")
        assert 1 <= c <= L and c * c >= L and (c - 1) ** 2 < L
