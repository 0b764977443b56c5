"""NATTEN's kernels as a path of :func:`lgrnet.ops.neighborhood_attention.neighborhood_attention`
(``natten.functional.na2d``, or the older ``na2d_qk``/``na2d_av``), used on CUDA for float32
when installed and checked once per device against the reference."""
from __future__ import annotations

import functools

import torch

from .dispatch import register
from .external import optional_import, verified_on
from .neighborhood_attention import neighborhood_attention_ref


@functools.lru_cache(maxsize=1)
def _natten():
    mod = optional_import("natten.functional")
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
            and verified_on("natten", x, _check_natten))


register("neighborhood_attention", "natten", neighborhood_attention_natten, available=_natten_available, priority=20)
