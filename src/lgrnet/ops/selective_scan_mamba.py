"""mamba_ssm's CUDA selective-scan kernel as a path of :func:`lgrnet.ops.selective_scan.selective_scan`
(``mamba_ssm.ops.selective_scan_interface.selective_scan_fn``), used on CUDA when installed and
checked once per device against the reference."""
from __future__ import annotations

import functools
from typing import Callable, Optional

import torch

from .dispatch import register
from .external import optional_import, verified_on
from .selective_scan import selective_scan_ref


@functools.lru_cache(maxsize=1)
def _mamba_fn() -> Optional[Callable]:
    mod = optional_import("mamba_ssm.ops.selective_scan_interface")
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
            and verified_on("mamba_ssm", x, _check_mamba))


register("selective_scan", "mamba_ssm", selective_scan_mamba, available=_mamba_available, priority=20)
