"""The fused CPU kernels (lgrnet.ops.native, cpu_kernels.c) against the float32 references.

Tolerances: float32 inputs, the same sums in another order: max |diff| <= 1e-5 (inputs of unit
scale). bfloat16 inputs: the reference runs in float32 on the same (bf16-rounded) values, so the
kernels differ from it only by the rounding of their bfloat16 output (half an ulp: 2^-9 relative)
and, for attention, the bfloat16 rounding of the logits and probabilities between the two GEMMs:
max |diff| <= 2^-8 * max |ref| (deformable, neighbourhood) and <= 2e-2 * max |ref| (attention).
Shapes include the model's head dims (8: the specialised kernels) and others (the generic loops).
"""
from __future__ import annotations

import ctypes

import pytest
import torch
import torch.nn.functional as F

from lgrnet.ops import chosen, force, ms_deform_attn_ref, native, neighborhood_attention_ref
from lgrnet.ops.attention import attention_ref
from lgrnet.ops.attention_native import attention_bmm_softmax
from lgrnet.ops.ms_deform_attn_native import ms_deform_attn_native
from lgrnet.ops.neighborhood_attention_native import neighborhood_attention_native

pytestmark = pytest.mark.skipif(not native.available(), reason="no C compiler: the fused CPU kernels are not built")
G = torch.Generator().manual_seed(0)


def _close(out, ref, tol):
    err = (out.float() - ref).abs().max().item()
    assert err <= tol, (err, tol)


def _bf16(x):
    return x.bfloat16(), x.bfloat16().float()


@pytest.mark.parametrize("D", [4, 8, 12])
def test_ms_deform_attn_against_reference(D):
    shapes = [(3, 5), (6, 9), (12, 17)]
    N, M, L, P = 2, 3, 3, 4
    S = sum(h * w for h, w in shapes)
    value = torch.randn(N, S, M, D, generator=G)
    # locations from -0.2 to 1.2: samples outside the maps and on their borders read zeros
    loc = torch.rand(N, S, M, L, P, 2, generator=G) * 1.4 - 0.2
    weights = torch.rand(N, S, M, L, P, generator=G).softmax(-1)
    with torch.inference_mode():
        ref = ms_deform_attn_ref(value, shapes, loc, weights)
        _close(ms_deform_attn_native(value, shapes, loc, weights), ref, 1e-5)
        vb, vf = _bf16(value)
        ref = ms_deform_attn_ref(vf, shapes, loc, weights)
        out = ms_deform_attn_native(vb, shapes, loc, weights)
        assert out.dtype == torch.bfloat16 and out.shape == (N, S, M * D)
        _close(out, ref, 2 ** -8 * ref.abs().max().item())
        # a strided value (a view of a wider projection, as value_proj's output could be)
        wide = torch.randn(N, S, M, 2 * D, generator=G)
        _close(ms_deform_attn_native(wide[..., :D], shapes, loc, weights),
               ms_deform_attn_ref(wide[..., :D].contiguous(), shapes, loc, weights), 1e-5)


@pytest.mark.parametrize("K,dilation,H,W,d", [(5, 1, 9, 11, 8), (3, 1, 6, 5, 6), (5, 2, 12, 13, 8), (3, 3, 10, 9, 4), (3, 1, 7, 8, 4)])
def test_neighborhood_attention_against_reference(K, dilation, H, W, d):
    B, nh = 2, 3
    # as the model makes them: q contiguous in (B, H, W, nh, d), k and v views of one (B, H, W, 2, nh, d)
    q = torch.randn(B, H, W, nh, d, generator=G).permute(0, 3, 1, 2, 4)
    kv = torch.randn(B, H, W, 2, nh, d, generator=G).permute(3, 0, 4, 1, 2, 5)
    k, v = kv[0], kv[1]
    with torch.inference_mode():
        ref = neighborhood_attention_ref(q, k, v, K, dilation)
        out = neighborhood_attention_native(q, k, v, K, dilation)
        assert out.shape == ref.shape and out.permute(0, 2, 3, 1, 4).is_contiguous()  # heads merge for free
        _close(out, ref, 1e-5)
        _close(neighborhood_attention_native(q / 3, k, v, K, dilation, scale=3.0), ref, 1e-5)
        (qb, qf), (kb, kf), (vb, vf) = _bf16(q), _bf16(k), _bf16(v)
        ref = neighborhood_attention_ref(qf, kf, vf, K, dilation)
        out = neighborhood_attention_native(qb, kb, vb, K, dilation)
        assert out.dtype == torch.bfloat16
        _close(out, ref, 2 ** -8 * ref.abs().max().item())
        # large logits (|q . k| up to ~150): the softmax's exp stays accurate where one key dominates;
        # float32 logits that large carry ~1e-5 of rounding (summed in another order than the
        # reference's), which exp turns into ~1e-5 relative: tolerance 1e-4 on values of ~3
        ref = neighborhood_attention_ref(q * 30, k, v, K, dilation)
        _close(neighborhood_attention_native(q * 30, k, v, K, dilation), ref, 1e-4)


def test_neighborhood_attention_too_small_map_is_an_error():
    x = torch.randn(1, 1, 4, 9, 8)
    with torch.inference_mode(), pytest.raises(ValueError, match="smaller than the window"):
        neighborhood_attention_native(x, x, x, 5, 1)


@pytest.mark.parametrize("B,h,Lq,Lk,d", [(1, 2, 300, 49, 32), (2, 1, 1100, 121, 64)])
def test_attention_against_reference(B, h, Lq, Lk, d):
    q, k, v = (torch.randn(B, h, n, d, generator=G) for n in (Lq, Lk, Lk))
    (qb, qf), (kb, kf), (vb, vf) = _bf16(q), _bf16(k), _bf16(v)
    with torch.inference_mode():
        ref = attention_ref(qf, kf, vf)
        out = attention_bmm_softmax(qb, kb, vb)
        assert out.dtype == torch.bfloat16 and out.shape == ref.shape
        _close(out, ref, 2e-2 * ref.abs().max().item())
        # float32 through the same kernels: the softmax alone differs by rounding
        _close(attention_bmm_softmax(q, k, v), F.scaled_dot_product_attention(q, k, v), 1e-5)


def test_registry_picks_the_kernels_for_inference_only():
    x = torch.randn(2, 3, 4, 5, 8)
    y = torch.randn(1, 2, 5, 32)
    with torch.inference_mode():
        assert chosen("neighborhood_attention", x) == "native"
        assert chosen("ms_deform_attn", x) == "native"
        assert chosen("attention", y.bfloat16()) == "bmm_softmax"
        assert chosen("attention", y) == "reference"  # float32: PyTorch's flash kernel is as fast
        with force("reference"):
            assert chosen("neighborhood_attention", x) == "reference"
        with torch.autocast("cpu", dtype=torch.bfloat16):
            assert chosen("neighborhood_attention", x) != "native"
    # with autograd the paths with a backward pass run
    assert chosen("neighborhood_attention", x) == "shifted"
    assert chosen("ms_deform_attn", x) == "fused"


def test_build_is_cached_per_source_and_machine(tmp_path, monkeypatch):
    cc = native._compiler()
    out = tmp_path / "k.so"
    native.build(out, cc)
    lib = ctypes.CDLL(str(out))
    assert hasattr(lib, "lgr_ms_deform_attn") and not list(tmp_path.glob("*.tmp"))
    key = native._build_key(cc)
    assert key == native._build_key(cc) and len(key) == 16
    monkeypatch.setattr(native, "SOURCE", tmp_path / "other.c")
    (tmp_path / "other.c").write_text("int f(void) { return 0; }\n")
    assert native._build_key(cc) != key  # another source: another file, never a stale build
    monkeypatch.setenv("LGRNET_CACHE_DIR", str(tmp_path / "c"))
    assert native.cache_dir() == tmp_path / "c"


def test_pvt_attention_through_the_op_equals_timms():
    import copy

    from timm.models.pvt_v2 import Attention

    from lgrnet.models.backbone import dispatch_pvt_attention

    torch.manual_seed(0)
    ref = Attention(64, num_heads=2, sr_ratio=4).eval()
    ours = copy.deepcopy(ref)
    dispatch_pvt_attention(ours)
    assert type(ours).__name__ == "_PvtDispatchAttention"
    x = torch.randn(2, 16 * 12, 64, generator=G)
    with torch.inference_mode():
        expected = ref(x, [16, 12])
        assert torch.equal(ours(x, [16, 12]), expected)  # float32: the reference op, PyTorch's SDPA
        ours.bfloat16()
        out = ours(x.bfloat16(), [16, 12])  # bfloat16: the fused path
    _close(out, expected, 3e-2 * expected.abs().max().item())


@pytest.mark.parametrize("shape", [(3, 4000, 24), (2, 300, 130)])
def test_layer_norm_against_reference(shape):
    from lgrnet.ops.norm import layer_norm_ref
    from lgrnet.ops.norm_native import MIN_ELEMENTS, layer_norm_native

    x = torch.randn(*shape, generator=G) * 3 + 1
    C = shape[-1]
    w, b = torch.randn(C, generator=G), torch.randn(C, generator=G)
    assert x.numel() >= MIN_ELEMENTS
    with torch.inference_mode():
        _close(layer_norm_native(x, w, b, 1e-5), layer_norm_ref(x, w, b, 1e-5), 1e-5)
        _close(layer_norm_native(x, None, None, 1e-5), layer_norm_ref(x, None, None, 1e-5), 1e-5)
        (xb, xf), (wb, wf), (bb, bf) = _bf16(x), _bf16(w), _bf16(b)
        ref = layer_norm_ref(xf, wf, bf, 1e-5)
        out = layer_norm_native(xb, wb, bb, 1e-5)
        assert out.dtype == torch.bfloat16
        _close(out, ref, 2 ** -8 * ref.abs().max().item())
        # a strided input (a slice of the channels' rows) and a non-contiguous one
        wide = torch.randn(shape[0], shape[1], 2 * C, generator=G)
        _close(layer_norm_native(wide[..., :C], w, b, 1e-5), layer_norm_ref(wide[..., :C], w, b, 1e-5), 1e-5)
        assert chosen("layer_norm", xb) == "native" and chosen("layer_norm", x) == "reference"


def test_fold_batch_norms_keeps_the_function():
    import timm

    from lgrnet.models.fuse import fold_batch_norms

    torch.manual_seed(0)
    net = timm.create_model("efficientnet_lite0", pretrained=False, num_classes=0)
    for m in net.modules():  # non-trivial running statistics and affine parameters
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.uniform_(-0.5, 0.5)
            m.running_var.uniform_(0.5, 2.0)
            m.weight.data.uniform_(0.5, 1.5)
            m.bias.data.uniform_(-0.2, 0.2)
    net.eval()
    x = torch.rand(2, 3, 64, 64, generator=G)
    with torch.no_grad():
        ref = net(x)
        n = fold_batch_norms(net)
        assert n > 10 and not any(isinstance(m, torch.nn.BatchNorm2d) for m in net.modules())
        assert any(type(m).__name__ == "ConvReLU6" for m in net.modules())
        out = net(x)
    _close(out, ref, 1e-4 * ref.abs().max().item())
