"""Every implementation of every special op under bf16 autocast (how the model runs on CUDA).

CPU autocast has the same dtype rules as CUDA autocast for these ops (products in bf16, softmax
in float32), so a path that mixes dtypes fails here as it would on a GPU. Each result is compared
with the float64 reference on the same bf16-rounded inputs: bf16 keeps 8 mantissa bits, so the tolerance is 5e-2 relative to the
largest reference value.
"""
from __future__ import annotations

import pytest
import torch

from lgrnet.ops import force, implementations, ms_deform_attn, neighborhood_attention, selective_scan

BF16_TOL = 5e-2
# CUDA-only or dense-layer paths; "native": the fused CPU inference kernels (no backward, never chosen
# under autocast; tests/test_ops_native.py)
OPTIONAL = {"mamba_ssm", "natten", "parallel", "onednn", "native"}


def _rel(a: torch.Tensor, b: torch.Tensor) -> float:
    return ((a.double() - b.double()).abs().max() / b.double().abs().max()).item()


def _cases():
    g = torch.Generator().manual_seed(0)
    L, dim, n = 300, 16, 4
    scan = [torch.randn(1, dim, L, generator=g), torch.randn(1, dim, L, generator=g) * 0.5,
            -torch.exp(torch.randn(dim, n, generator=g) * 0.5), torch.randn(1, 2, n, L, generator=g),
            torch.randn(1, 2, n, L, generator=g), torch.randn(dim, generator=g), torch.randn(dim, generator=g) * 0.1]
    na = [torch.randn(3, 2, 12, 13, 8, generator=g) * 0.5 for _ in range(3)]
    shapes = [(6, 6), (3, 3)]
    S = sum(h * w for h, w in shapes)
    md = [torch.randn(2, S, 2, 8, generator=g), torch.rand(2, 5, 2, 2, 4, 2, generator=g) * 1.2 - 0.1,
          torch.rand(2, 5, 2, 2, 4, generator=g).softmax(-1)]
    return {
        "selective_scan": (scan, lambda u, d, A, B, C, D, b: selective_scan(u, d, A, B, C, D, delta_bias=b,
                                                                             delta_softplus=True)),
        "neighborhood_attention": (na, lambda q, k, v: neighborhood_attention(q, k, v, 3, 2)),
        "ms_deform_attn": (md, lambda v, loc, a: ms_deform_attn(v, shapes, loc, a)),
    }


def _params():
    out = []
    for op in ("selective_scan", "neighborhood_attention", "ms_deform_attn"):
        for impl in implementations(op):
            if impl not in OPTIONAL:
                out.append((op, impl))
    return out


@pytest.mark.parametrize("op,impl", _params())
@pytest.mark.parametrize("mixed", [False, True], ids=["bf16-inputs", "mixed-inputs"])
def test_op_under_bf16_autocast(op, impl, mixed):
    args, fn = _cases()[op]
    # bf16 inputs as the layers before them give under autocast; "mixed": only the first input is
    # bf16 (a float32 tensor beside a bf16 one, as autocast's float32 ops leave them)
    low = [a.to(torch.bfloat16) if (i == 0 or not mixed) else a for i, a in enumerate(args)]
    with force("reference"):  # float64 on the same (rounded) inputs: what is left is the op's arithmetic
        expected = fn(*[a.double() for a in low])
    leaves = [a.clone().requires_grad_(True) for a in low]
    with force(**{op: impl}), torch.autocast("cpu", dtype=torch.bfloat16):
        y = fn(*leaves)
    assert y.shape == expected.shape
    assert _rel(y.float(), expected) < BF16_TOL, f"{op}[{impl}] under bf16 autocast: rel err {_rel(y.float(), expected):.2e}"
    y.float().sum().backward()
    for leaf in leaves:
        assert leaf.grad is not None and torch.isfinite(leaf.grad.float()).all()


def test_tiny_model_under_bf16_autocast():
    """The model's automatically chosen paths under autocast: runs forward and backward, and the
    best query's masks agree with float32 on >= 97% of the pixels (random weights, 64 px)."""
    from lgrnet import LGRNet

    torch.manual_seed(0)
    model = LGRNet.from_preset("tiny").eval()
    video = torch.rand(1, 3, 3, 64, 64, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        ref = model(video)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            low = model(video)
    q = int(ref.best_query()[0])
    agree = ((ref.mask_logits[0, :, q] > 0) == (low.mask_logits[0, :, q].float() > 0)).float().mean().item()
    assert agree >= 0.97, agree
    model.train()
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = model(video)
    sum(a.mask_logits.float().mean() + a.class_logits.float().mean() for a in out.aux).backward()
    grads = [p.grad for p in model.parameters() if p.requires_grad and p.grad is not None]
    assert grads and all(torch.isfinite(g.float()).all() for g in grads)
