"""CPU bfloat16 (lgrnet.models.bf16, lgrnet.precision): every op's path for bfloat16 inputs against
its float32 reference on the same (bf16-rounded) inputs, the bfloat16 model against the float32
one, and the predictor's precision setting.

Tolerances: bfloat16 has an 8-bit mantissa (relative rounding 2^-9 = 0.2 %); an op's result is
compared with the float32 reference on the same rounded inputs at ``max |diff| <= 2e-2 * max |ref|``
(a few roundings of the inputs to each product, accumulations in float32). The model: the tiny
random model's confident mask logits (|logit| > 1) keep their sign on >= 99 % of the pixels and
the class probabilities agree to 0.05.
"""
from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from lgrnet import LGRNet, VideoPredictor
from lgrnet.models.bf16 import bfloat16_copy, float32_tensors, is_bfloat16
from lgrnet.ops import chosen, conv_gelu, linear, ms_deform_attn_ref, neighborhood_attention_ref, selective_scan_ref
from lgrnet.ops.ms_deform_attn_fast import ms_deform_attn_fused
from lgrnet.ops.neighborhood_attention_fast import neighborhood_attention_shifted
from lgrnet.ops.selective_scan_chunked import selective_scan_chunked
from lgrnet.precision import cpu_bf16_support

NATIVE = cpu_bf16_support()[0]
native_only = pytest.mark.skipif(not NATIVE, reason="this CPU has no native bfloat16")
G = torch.Generator().manual_seed(0)


def rnd(*shape, scale=1.0):
    """A bfloat16 tensor and its exact float32 value."""
    x = (torch.randn(*shape, generator=G) * scale).bfloat16()
    return x, x.float()


def close(out, ref, rel=2e-2):
    assert out.dtype == torch.bfloat16 or out.dtype == torch.float32
    err = (out.float() - ref).abs().max().item()
    assert err <= rel * ref.abs().max().item(), (err, ref.abs().max().item())


@native_only
def test_dense_layers_onednn_bf16():
    x, x32 = rnd(3, 50, 64)
    w, w32 = rnd(96, 64, scale=0.1)
    b, b32 = rnd(96)
    with torch.inference_mode():
        assert chosen("linear", x) == "onednn"
        out = linear(x, w, b)
        assert out.dtype == torch.bfloat16
        close(out, F.linear(x32, w32, b32))
        img, img32 = rnd(2, 16, 9, 11)
        convb = torch.nn.Conv2d(16, 16, 3, padding=1, groups=16).to(torch.bfloat16)
        conv32 = torch.nn.Conv2d(16, 16, 3, padding=1, groups=16)
        conv32.load_state_dict({k: v.float() for k, v in convb.state_dict().items()})  # the same weights
        ref = F.gelu(conv32(img32))
        assert chosen("conv_gelu", img) == "onednn"
        close(conv_gelu(img.contiguous(memory_format=torch.channels_last), convb), ref)


def test_neighborhood_attention_bf16():
    q, q32 = rnd(2, 2, 12, 13, 8, scale=0.5)
    k, k32 = rnd(2, 2, 12, 13, 8, scale=0.5)
    v, v32 = rnd(2, 2, 12, 13, 8)
    for K, r in ((5, 1), (3, 2)):
        out = neighborhood_attention_shifted(q, k, v, K, r)
        assert out.dtype == torch.bfloat16
        close(out, neighborhood_attention_ref(q32, k32, v32, K, r))


def test_deformable_attention_bf16_values_float32_locations():
    shapes = [(4, 5), (8, 10)]
    S = sum(h * w for h, w in shapes)
    value, value32 = rnd(2, S, 2, 8)
    loc = torch.rand(2, S, 2, 2, 3, 2, generator=G)  # float32: exact sampling positions
    w = torch.rand(2, S, 2, 2, 3, generator=G).softmax(-1)
    ref = ms_deform_attn_ref(value32, shapes, loc, w)
    for fn in (ms_deform_attn_fused, ms_deform_attn_ref):
        out = fn(value, shapes, loc, w)
        assert out.dtype == torch.bfloat16
        close(out, ref)


def test_selective_scan_bf16_inputs_run_in_float32():
    b, d, n, L = 1, 8, 4, 60
    u, u32 = rnd(b, d, L)
    delta, delta32 = rnd(b, d, L, scale=0.5)
    A = -torch.rand(d, n, generator=G) - 0.1
    B, B32 = rnd(b, 1, n, L)
    C, C32 = rnd(b, 1, n, L)
    D = torch.randn(d, generator=G)
    out = selective_scan_chunked(u, delta, A, B, C, D, delta_softplus=True)
    assert out.dtype == torch.bfloat16
    ref = selective_scan_ref(u32, delta32, A, B32, C32, D, delta_softplus=True)
    close(out, ref, rel=1e-2)  # float32 inside: only the output's rounding


@pytest.fixture(scope="module")
def tiny():
    torch.manual_seed(0)
    return LGRNet.from_preset("tiny").eval()


def test_bf16_model_float32_islands_and_agreement(tiny):
    twin = bfloat16_copy(tiny)
    assert is_bfloat16(twin) and not is_bfloat16(tiny)  # the float32 model is untouched
    kept = {(type(m).__name__, n) for m, n in float32_tensors(twin)}
    assert {("SelectiveScan2D", "A_logs"), ("LGRNet", "pixel_mean")} <= kept
    for m, n in float32_tensors(twin):
        assert getattr(m, n).dtype == torch.float32, (type(m).__name__, n)
    assert twin.backbone.dtype == torch.bfloat16
    assert twin.encoder.layers[0].deform_attn.value_proj.weight.dtype == torch.bfloat16
    video = torch.rand(1, 3, 3, 96, 64, generator=torch.Generator().manual_seed(1))
    with torch.inference_mode():
        ref, out = tiny(video), twin(video)
    assert out.mask_logits.dtype == torch.float32 and out.class_logits.dtype == torch.float32
    sure = ref.mask_logits.abs() > 1
    agree = ((out.mask_logits > 0) == (ref.mask_logits > 0))[sure].float().mean().item()
    assert sure.sum() > 100 and agree >= 0.99, agree
    assert (out.class_probs - ref.class_probs).abs().max().item() <= 0.05


@native_only
def test_predictor_precision(tiny):
    frames = (np.random.default_rng(0).random((4, 70, 90, 3)) * 255).astype(np.uint8)
    fp32 = VideoPredictor(tiny, size=64, precision="fp32")
    bf16 = VideoPredictor(tiny, size=64, precision="bf16")
    auto = VideoPredictor(tiny, size=64, precision="auto")
    assert fp32.settings()["dtype"] == "float32" and bf16.settings()["dtype"] == "bfloat16"
    assert auto.settings()["precision"]["precision"] == "bf16" and "native bfloat16" in auto.settings()["precision"]["reason"]
    a, b = fp32.predict(frames), bf16.predict(frames)
    assert (a.masks == b.masks).mean() >= 0.99
    assert np.abs(a.probs - b.probs).max() <= 0.1
    assert not is_bfloat16(tiny)
