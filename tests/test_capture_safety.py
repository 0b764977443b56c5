"""The network's forward is capture-safe for CUDA graphs (checked on any machine, no GPU needed).

Run on fake CUDA tensors (FakeTensorMode), a second forward does no host-to-device copy and no
synchronising op (``.item()``, nonzero, boolean-mask indexing): the things that break a CUDA graph
capture or bake one input's data into it. The checker itself is shown to catch each (negative
controls). Shape-only constants come from :mod:`lgrnet.ops.constants`, tested here too.
"""
from __future__ import annotations

import collections
import traceback
import warnings

import pytest
import torch
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_leaves

from lgrnet import LGRNet
from lgrnet.config import get_preset, override
from lgrnet.ops import constants

_SYNCING = ("nonzero", "masked_select", "_local_scalar_dense", "unique", "bincount")
_INDEXING = (torch.ops.aten.index_put_.default, torch.ops.aten.index_put.default, torch.ops.aten.index.Tensor)


class CaptureHazards(TorchDispatchMode):
    """Records ops that a CUDA graph capture cannot contain: copies of (non-scalar) CPU tensors into
    CUDA ops, ops that synchronise with the host, and indexing with boolean masks (a hidden nonzero)."""

    def __init__(self):
        super().__init__()
        self.found = collections.Counter()

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        out = func(*args, **kwargs)
        leaves = tree_leaves((args, kwargs))
        ins = [a for a in leaves if isinstance(a, torch.Tensor)]
        outs = [o for o in tree_leaves(out) if isinstance(o, torch.Tensor)]
        problem = None
        if any(name in str(func) for name in _SYNCING):
            problem = "synchronises"
        elif func in _INDEXING and any(isinstance(t, torch.Tensor) and t.dtype == torch.bool for t in tree_leaves(args[1])):
            problem = "boolean-mask indexing"
        elif any(o.device.type == "cuda" for o in outs) and any(i.device.type == "cpu" and i.dim() > 0 for i in ins):
            problem = "host-to-device copy"
        if problem:
            where = "".join(line for line in traceback.format_stack(limit=10)[:-1] if "lgrnet" in line)
            self.found[f"{problem}: {func}\n{where}"] += 1
        return out


def hazards_of_second_forward(model: torch.nn.Module, shape) -> collections.Counter:
    """Move ``model`` to fake CUDA, run two inference forwards of a random clip of ``shape``, return
    the hazards of the second one (the first may initialise caches, as the warm-up before a capture)."""
    from torch._subclasses.fake_tensor import FakeTensorMode

    rec = CaptureHazards()
    with FakeTensorMode(allow_non_fake_inputs=True), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "CUDA is not available, disabling autocast"
        model = model.to("cuda")
        x = torch.rand(*shape, device="cuda")
        with torch.inference_mode():
            model(x)
            with rec:
                out = model(x)
    assert out.mask_logits.device.type == "cuda" and out.mask_logits.shape[-2:] == shape[-2:]
    return rec.found


@pytest.mark.parametrize("preset,overrides", [
    ("tiny", []),
    ("tiny", ["model.encoder.global.attn_mask=true", "model.encoder.global.scan_order=zigzag"]),
    ("sunseg_pvt", []),
    ("fibroid_pvt", []),
])
def test_forward_is_capture_safe(preset, overrides):
    torch.manual_seed(0)
    model = LGRNet(override(get_preset(preset), overrides).model).eval()
    found = hazards_of_second_forward(model, (1, 5, 3, 96, 96))
    assert not found, "capture hazards in the forward:\n" + "\n".join(f"{n} x {k}" for k, n in found.items())


class _CopiesConstant(torch.nn.Module):
    def forward(self, x):
        return x + torch.arange(x.shape[-1], dtype=x.dtype).to(x.device)


class _MaskAssign(torch.nn.Module):
    def forward(self, x):
        m = x > 0
        m[m.all(dim=-1)] = False
        return x * m


class _Item(torch.nn.Module):
    def forward(self, x):
        return x * float(x.max())


class _Out:
    def __init__(self, t):
        self.mask_logits = t


@pytest.mark.parametrize("module,problem", [(_CopiesConstant, "host-to-device copy"),
                                            (_MaskAssign, "boolean-mask indexing")])
def test_hazard_checker_catches_what_breaks_a_capture(module, problem):
    class Wrap(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.inner = module()

        def forward(self, x):
            return _Out(self.inner(x))

    found = hazards_of_second_forward(Wrap(), (1, 2, 3, 4, 4))
    assert any(k.startswith(problem) for k in found), found


def test_hazard_checker_rejects_item():
    from torch._subclasses.fake_tensor import DataDependentOutputException

    class Wrap(torch.nn.Module):
        def forward(self, x):
            return _Out(_Item()(x))

    with pytest.raises(DataDependentOutputException):
        hazards_of_second_forward(Wrap(), (1, 2, 3, 4, 4))


def test_device_constants_are_cached_and_usable_for_training():
    calls = []

    def make(n):
        calls.append(n)
        return torch.arange(n, dtype=torch.float32)

    with torch.inference_mode():
        a = constants.device_constant(make, 5)
    b = constants.device_constant(make, 5)
    c = constants.device_constant(make, 5, dtype=torch.float64)
    assert a is b and calls == [5, 5] and c.dtype == torch.float64
    assert not a.is_inference() and not a.requires_grad
    w = torch.ones(5, requires_grad=True)
    (w * a).sum().backward()  # a constant made under inference_mode can be saved for backward
    assert torch.equal(w.grad, torch.arange(5.0))


def test_device_constants_are_bounded(monkeypatch):
    monkeypatch.setattr(constants, "MAX_ENTRIES", 3)
    constants.clear()
    made = [constants.device_constant(torch.zeros, n) for n in range(5)]
    assert len(constants._CACHE) == 3
    assert constants.device_constant(torch.zeros, 4) is made[4]
    assert constants.device_constant(torch.zeros, 0) is not made[0]  # dropped, made again
    constants.clear()
