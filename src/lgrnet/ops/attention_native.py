"""Unmasked attention with few keys in bfloat16 on the CPU: two bfloat16 GEMMs (oneDNN through
``torch.bmm``) around a fused softmax (:mod:`.native`: scale, maximum, exp and normalisation in
one float32 pass over each row of logits, written back as bfloat16 probabilities).

PyTorch's CPU flash kernel runs bfloat16 at the float32 speed for the backbone's shapes (queries
of 121 to 7,744 pixels against 121 reduced keys, head dim 32 to 64): its time goes into the
exponentials and the per-block rescaling, not the products. Queries are processed in blocks of
``ROWS`` so that a block's logits stay in the core's cache.

The same function as :func:`lgrnet.ops.attention.attention_ref` up to bfloat16 rounding of the
logits and probabilities (tests/test_ops_native.py). For inference (no autograd).
"""
from __future__ import annotations

import torch

from ..precision import autocast_enabled
from . import native
from .attention import attention_ref
from .dispatch import register

ROWS = 1024  # query rows per block
MAX_KEYS = 1024


def attention_bmm_softmax(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """q (B, heads, Lq, d), k, v (B, heads, Lk, d), bfloat16 or float32 -> (B, heads, Lq, d)."""
    B, h, Lq, d = q.shape
    Lk = k.shape[2]
    if Lk > MAX_KEYS:
        return attention_ref(q, k, v)
    qf = q.reshape(B * h, Lq, d)
    kt = k.reshape(B * h, Lk, d).transpose(1, 2)
    vf = v.reshape(B * h, Lk, d)
    out = torch.empty(B * h, Lq, d, dtype=q.dtype)
    lib, bf16, threads = native.library(), int(q.dtype == torch.bfloat16), native.threads()
    for s in range(0, Lq, ROWS):
        logits = torch.bmm(qf[:, s:s + ROWS], kt)  # (B*h, rows, Lk), contiguous
        rows = logits.shape[0] * logits.shape[1]
        native.check(lib.lgr_softmax_rows(logits.data_ptr(), bf16, rows, Lk, Lk, d ** -0.5, threads), "attention")
        torch.bmm(logits, vf, out=out[:, s:s + ROWS])
    return out.view(B, h, Lq, d)


def _available(q: torch.Tensor) -> bool:
    return (q.device.type == "cpu" and q.dtype == torch.bfloat16 and q.dim() == 4 and q.shape[-1] >= 16
            and not torch.is_grad_enabled() and not autocast_enabled("cpu") and native.available())


register("attention", "bmm_softmax", attention_bmm_softmax, available=_available, priority=20, traceable=False)
