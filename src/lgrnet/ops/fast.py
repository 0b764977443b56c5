"""Fast paths for the network's special ops, registered with :mod:`lgrnet.ops.dispatch`.

Pure PyTorch (any device, always available), each tested against its reference in
tests/test_ops_*.py:

* ``selective_scan``: ``chunked`` (:mod:`.selective_scan_chunked`), forward and backward;
* ``neighborhood_attention``: ``shifted`` (:mod:`.neighborhood_attention_fast`);
* ``ms_deform_attn``: ``fused`` (:mod:`.ms_deform_attn_fast`);
* ``linear`` and ``conv_gelu``: ``onednn`` (:mod:`.dense`): oneDNN kernels with fused bias / GELU
  for CPU float32 inference (no autograd), when PyTorch has them (checked once against the
  reference).

Optional kernels from other packages, used on CUDA when installed (never required), each checked
once against the reference on the device before it is trusted (a mismatch disables it with a
warning):

* ``selective_scan``: ``mamba_ssm`` (``mamba_ssm.ops.selective_scan_interface.selective_scan_fn``);
* ``neighborhood_attention``: ``natten`` (``natten.functional.na2d`` or the older
  ``na2d_qk``/``na2d_av``).
"""
from __future__ import annotations

import functools
import importlib
import warnings
from typing import Callable, Optional

import torch
import torch.nn.functional as F

from .dispatch import register
from .ms_deform_attn_fast import ms_deform_attn_fused
from .neighborhood_attention import neighborhood_attention_ref
from .neighborhood_attention_fast import neighborhood_attention_shifted
from .selective_scan import selective_scan_ref
from .selective_scan_chunked import selective_scan_chunked


def _floating(x: torch.Tensor) -> bool:
    return x.is_floating_point()


def _floating_cpu(x: torch.Tensor) -> bool:
    return x.is_floating_point() and x.device.type == "cpu"


register("selective_scan", "chunked", selective_scan_chunked, available=_floating, priority=10)
# On CUDA the reference's gathered windows are one batched product and faster than the shifted
# form's K*K small kernels (H100, 6 x 44 x 44, kernel 5: 0.8 vs 1.4 ms forward, benchmarks/gpu_check.py).
register("neighborhood_attention", "shifted", neighborhood_attention_shifted, available=_floating_cpu, priority=10)
register("ms_deform_attn", "fused", ms_deform_attn_fused, available=_floating, priority=10)


# oneDNN dense layers (CPU float32 inference) ------------------------------------------------------

def linear_onednn(x, weight, bias=None):
    return torch.ops.mkldnn._linear_pointwise(x, weight, bias, "none", [], "")


def conv_gelu_onednn(x, weight, bias, padding, stride, dilation, groups):
    return torch.ops.mkldnn._convolution_pointwise(x, weight, bias, padding, stride, dilation, groups,
                                                   "gelu", [], "none")


@functools.lru_cache(maxsize=1)
def _onednn_ok() -> bool:
    """oneDNN's fused CPU kernels exist in this PyTorch and agree with the references."""
    try:
        if not (torch.backends.mkldnn.is_available() and hasattr(torch.ops.mkldnn, "_linear_pointwise")
                and hasattr(torch.ops.mkldnn, "_convolution_pointwise")):
            return False
        g = torch.Generator().manual_seed(0)
        with torch.no_grad():
            x, w, b = torch.randn(2, 33, 40, generator=g), torch.randn(24, 40, generator=g), torch.randn(24, generator=g)
            ok = torch.allclose(linear_onednn(x, w, b), F.linear(x, w, b), rtol=1e-5, atol=1e-5)
            xi = torch.randn(1, 6, 9, 7, generator=g).to(memory_format=torch.channels_last)
            cw, cb = torch.randn(6, 1, 3, 3, generator=g), torch.randn(6, generator=g)
            ref = F.gelu(F.conv2d(xi, cw, cb, 1, 1, 1, 6))
            ok &= torch.allclose(conv_gelu_onednn(xi, cw, cb, [1, 1], [1, 1], [1, 1], 6), ref, rtol=1e-5, atol=1e-5)
        return bool(ok)
    except Exception:  # a PyTorch without these private ops, or with another signature
        return False


def _onednn_available(x: torch.Tensor) -> bool:
    return (x.device.type == "cpu" and x.dtype == torch.float32 and not torch.is_grad_enabled()
            and x.layout == torch.strided and _onednn_ok())


# traceable=False: Dynamo cannot trace these private oneDNN ops; compiled code uses the reference
# (and Inductor's own CPU kernels)
register("linear", "onednn", linear_onednn, available=_onednn_available, priority=10, traceable=False)
register("conv_gelu", "onednn", conv_gelu_onednn, available=_onednn_available, priority=10, traceable=False)


# ----------------------------------------------------------------------------- optional CUDA kernels


def _import(name: str):
    try:
        return importlib.import_module(name)
    except Exception:  # not installed, or installed without its compiled extension
        return None


_verified = {}


def _verified_on(name: str, x: torch.Tensor, check: Callable[[torch.device], bool]) -> bool:
    """Run ``check`` once per (kernel, device); remember the answer."""
    key = (name, str(x.device))
    if key not in _verified:
        try:
            ok = bool(check(x.device))
        except Exception as exc:  # an API that differs from the one we know
            warnings.warn(f"lgrnet: {name} is installed but failed its check ({type(exc).__name__}: {exc}); "
                          f"using the built-in path")
            ok = False
        else:
            if not ok:
                warnings.warn(f"lgrnet: {name} is installed but disagrees with the reference; using the built-in path")
        _verified[key] = ok
    return _verified[key]


# mamba_ssm ---------------------------------------------------------------------------------------

@functools.lru_cache(maxsize=1)
def _mamba_fn() -> Optional[Callable]:
    mod = _import("mamba_ssm.ops.selective_scan_interface")
    return getattr(mod, "selective_scan_fn", None) if mod is not None else None


def selective_scan_mamba(u, delta, A, B, C, D=None, delta_bias=None, delta_softplus=False):
    """mamba_ssm's CUDA kernel (same argument convention as ours)."""
    fn = _mamba_fn()
    if fn is None:
        raise RuntimeError("selective_scan 'mamba_ssm': mamba_ssm is not installed (or lacks its CUDA extension)")
    y = fn(u, delta, A, B, C, D, None, delta_bias, delta_softplus)
    return y.to(u.dtype)


def _check_mamba(device) -> bool:
    g = torch.Generator(device="cpu").manual_seed(0)
    b, d, n, L, G = 2, 8, 4, 37, 2
    args = [torch.randn(b, d, L, generator=g), torch.randn(b, d, L, generator=g) * 0.5,
            -torch.rand(d, n, generator=g) - 0.1, torch.randn(b, G, n, L, generator=g),
            torch.randn(b, G, n, L, generator=g), torch.randn(d, generator=g), torch.randn(d, generator=g) * 0.1]
    args = [a.to(device) for a in args]
    ref = selective_scan_ref(*args[:6], delta_bias=args[6], delta_softplus=True)
    out = selective_scan_mamba(*args[:6], delta_bias=args[6], delta_softplus=True)
    return bool(((out - ref).abs().max() <= 1e-4 * ref.abs().max().clamp_min(1)).item())


def _mamba_available(x: torch.Tensor) -> bool:
    return (x.is_cuda and x.dtype in (torch.float32, torch.float16, torch.bfloat16) and _mamba_fn() is not None
            and _verified_on("mamba_ssm", x, _check_mamba))


register("selective_scan", "mamba_ssm", selective_scan_mamba, available=_mamba_available, priority=20)


# NATTEN ------------------------------------------------------------------------------------------

@functools.lru_cache(maxsize=1)
def _natten():
    mod = _import("natten.functional")
    if mod is None:
        return None
    if hasattr(mod, "na2d"):
        return "fused", mod
    if hasattr(mod, "na2d_qk") and hasattr(mod, "na2d_av"):
        return "qk_av", mod
    return None


def neighborhood_attention_natten(q, k, v, kernel_size: int, dilation: int = 1):
    """NATTEN's kernels; q, k, v (B, heads, H, W, d), q already scaled (scale 1 here)."""
    found = _natten()
    if found is None:
        raise RuntimeError("neighborhood_attention 'natten': NATTEN is not installed (or has no 2-D kernels)")
    kind, mod = found
    if kind == "fused":  # NATTEN >= 0.20: (B, H, W, heads, d) layout, softmax scale argument
        out = mod.na2d(q.permute(0, 2, 3, 1, 4), k.permute(0, 2, 3, 1, 4), v.permute(0, 2, 3, 1, 4),
                       kernel_size=kernel_size, dilation=dilation, scale=1.0)
        return out.permute(0, 3, 1, 2, 4)
    attn = mod.na2d_qk(q.contiguous(), k.contiguous(), kernel_size, dilation).softmax(dim=-1)
    return mod.na2d_av(attn, v.contiguous(), kernel_size, dilation)


def _check_natten(device) -> bool:
    g = torch.Generator(device="cpu").manual_seed(0)
    ok = True
    for H, W, K, r in ((9, 11, 5, 1), (12, 10, 3, 2)):
        q, k, v = (torch.randn(2, 2, H, W, 8, generator=g).to(device) for _ in range(3))
        ref = neighborhood_attention_ref(q, k, v, K, r)
        out = neighborhood_attention_natten(q, k, v, K, r)
        ok &= bool(((out.float() - ref).abs().max() <= 1e-4).item())
    return ok


def _natten_available(x: torch.Tensor) -> bool:
    return (x.is_cuda and x.dtype == torch.float32 and _natten() is not None
            and _verified_on("natten", x, _check_natten))


register("neighborhood_attention", "natten", neighborhood_attention_natten, available=_natten_available, priority=20)
