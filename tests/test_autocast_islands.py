"""bfloat16 training on a CPU (autocast): the memory-bound ops whose bfloat16 backward is slower
than their float32 one run in float32 (lgrnet.precision, "CPU autocast islands"), the matrix
products stay bfloat16, and nothing changes outside CPU autocast.

Which dtype each op ran in is read from the dispatcher (a TorchDispatchMode sees every aten call of
the forward and the backward), so a lost island fails here whatever the timings say."""
from __future__ import annotations

import collections

import pytest
import torch
from torch import nn
from torch.utils._python_dispatch import TorchDispatchMode

from lgrnet import LGRNet
from lgrnet.config import get_preset, override
from lgrnet.models.attention import MultiheadAttention
from lgrnet.models.depthwise import DepthwiseConv2d
from lgrnet.precision import float32_under_cpu_autocast


class DtypeLog(TorchDispatchMode):
    """{op name: set of dtypes of its floating-point tensor inputs} (plus groups for convolutions)."""

    def __init__(self):
        super().__init__()
        self.seen = collections.defaultdict(set)

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        name = func.overloadpacket.__name__
        if name in ("convolution", "convolution_backward"):
            groups = args[8] if name == "convolution" else args[9]
            name = f"{name}:{'depthwise' if groups > 1 else 'dense'}"
        for a in args:
            if isinstance(a, torch.Tensor) and a.is_floating_point():
                self.seen[name].add(a.dtype)
        return func(*args, **(kwargs or {}))


def _lite_model():
    cfg = get_preset("polyp_lite0")
    override(cfg, ["model.encoder.num_layers=1", "model.decoder.num_layers=1"])
    torch.manual_seed(0)
    return LGRNet(cfg.model).train()


def test_training_step_under_cpu_autocast_runs_the_islands_in_float32():
    model = _lite_model()
    x = torch.rand(1, 2, 3, 64, 64)
    log = DtypeLog()
    with log:
        with torch.autocast("cpu", dtype=torch.bfloat16):
            out = model(x)
        loss = out.mask_logits.float().square().mean() + out.class_logits.float().square().mean()
        loss.backward()
    seen = log.seen
    assert seen["convolution:dense"] == {torch.bfloat16}, seen["convolution:dense"]  # autocast still on
    for op in ("convolution:depthwise", "convolution_backward:depthwise", "native_group_norm",
               "native_group_norm_backward"):
        assert seen[op] == {torch.float32}, (op, seen[op])
    sdpa = [k for k in seen if k.startswith("_scaled_dot_product")]
    assert sdpa and all(seen[k] == {torch.float32} for k in sdpa), {k: seen[k] for k in sdpa}
    grads = [p.grad for p in model.parameters() if p.grad is not None]
    assert grads and all(g.dtype == torch.float32 and torch.isfinite(g).all() for g in grads)


def test_outside_cpu_autocast_nothing_changes():
    torch.manual_seed(0)
    ref = nn.Conv2d(16, 16, 5, padding=2, groups=16)
    dw = nn.Conv2d(16, 16, 5, padding=2, groups=16)
    dw.load_state_dict(ref.state_dict())
    dw.__class__ = DepthwiseConv2d
    x = torch.randn(2, 16, 12, 12)
    assert torch.equal(dw(x), ref(x))
    xb = x.bfloat16()
    assert torch.equal(dw.bfloat16()(xb), ref.bfloat16()(xb))  # bfloat16 inference: untouched
    assert float32_under_cpu_autocast(xb) is xb
    attn = MultiheadAttention(32, 4).eval()
    q, kv = torch.randn(2, 5, 32), torch.randn(2, 7, 32)
    out = attn(q, kv, kv)
    assert out.dtype == torch.float32
    log = DtypeLog()
    with log:
        attn.bfloat16()(q.bfloat16(), kv.bfloat16(), kv.bfloat16())  # a bfloat16 model, no autocast
    sdpa = [k for k in log.seen if k.startswith("_scaled_dot_product")]
    assert sdpa and all(log.seen[k] == {torch.bfloat16} for k in sdpa), dict(log.seen)


def test_islands_agree_with_float32_within_bfloat16_rounding():
    """The depthwise conv island computes what float32 does: under autocast, on a float32 input, its
    output and input gradient match the float32 conv (atol 1e-6 / 1e-5); on a bfloat16 input, the
    float32 conv of that input (atol 1e-5)."""
    torch.manual_seed(0)
    conv = nn.Conv2d(24, 24, 3, padding=1, groups=24)
    conv.__class__ = DepthwiseConv2d
    x = torch.randn(2, 24, 16, 16, requires_grad=True)
    y32 = conv(x)
    y32.square().sum().backward()
    g32 = x.grad.clone()
    x.grad = None
    with torch.autocast("cpu", dtype=torch.bfloat16):
        y = conv(x)
    assert y.dtype == torch.float32
    torch.testing.assert_close(y, y32, rtol=0, atol=1e-6)  # the input is float32: nothing to round
    y.square().sum().backward()
    torch.testing.assert_close(x.grad, g32, rtol=0, atol=1e-5)
    xb = x.detach().bfloat16()
    with torch.autocast("cpu", dtype=torch.bfloat16):
        yb = conv(xb)
    torch.testing.assert_close(yb, conv(xb.float()), rtol=0, atol=1e-5)


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_float32_under_cpu_autocast(dtype):
    x = torch.randn(3, dtype=dtype)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        assert float32_under_cpu_autocast(x).dtype == torch.float32
        assert float32_under_cpu_autocast(torch.arange(3)).dtype == torch.int64
    assert float32_under_cpu_autocast(x) is x


def test_batch_norms_after_depthwise_convs_are_still_folded_for_inference():
    """bfloat16 inference folds every BatchNorm into the conv before it; the depthwise convs are
    DepthwiseConv2d now and must be folded too (else a slower, different bfloat16 model)."""
    from lgrnet.models.backbone import FrameBackbone
    from lgrnet.models.fuse import fold_batch_norms

    body = FrameBackbone("efficientnet_lite0").eval()
    assert any(isinstance(m, DepthwiseConv2d) for m in body.modules())
    x = torch.rand(1, 3, 64, 64)
    with torch.no_grad():
        ref = body(x)
        fold_batch_norms(body)
        out = body(x)
    assert not any(isinstance(m, nn.BatchNorm2d) for m in body.modules())
    for k in ref:
        torch.testing.assert_close(out[k], ref[k], rtol=1e-4, atol=1e-4 * ref[k].abs().max().item())
