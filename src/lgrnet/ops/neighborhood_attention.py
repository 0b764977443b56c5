"""2-D neighborhood attention with NATTEN's border rule, in plain PyTorch.

Each query pixel (i, j) attends to a ``kernel_size x kernel_size`` grid of key pixels spaced
``dilation`` apart. At the borders the window is not zero-padded but shifted so that it stays
inside the map (NATTEN semantics). With dilation, a query only sees keys of its own phase
(``index % dilation``); the window start follows NATTEN's ``get_window_start``.

Two implementations of the same function:

* :func:`neighborhood_attention_ref` -- readable: explicit window indices, gathered keys, a
  softmax over the window; this is the reference every other path is tested against;
* :func:`neighborhood_attention` -- the entry point the model calls; it dispatches to the fastest
  path available for the inputs (see :mod:`lgrnet.ops.dispatch`).

Shapes: q, k, v are (B, heads, H, W, head_dim); the output has the shape of q.
The softmax scale is applied by the caller (the published module scales q before the product).
"""
from __future__ import annotations

from functools import lru_cache
from typing import List

import torch

from .constants import device_constant
from .dispatch import get_impl, register


def window_start(index: int, length: int, kernel_size: int, dilation: int) -> int:
    """First key index of the window of query ``index`` along an axis of ``length`` pixels
    (NATTEN's ``get_window_start``; requires ``length >= kernel_size * dilation``)."""
    half = kernel_size // 2
    if dilation <= 1:
        start = max(index - half, 0)
        if index + half >= length:
            start += length - index - half - 1
        return start
    if index - half * dilation < 0:
        return index % dilation
    if index + half * dilation >= length:
        phase = index % dilation
        full = (length // dilation) * dilation
        rest = length - full
        if phase < rest:
            return length - rest + phase - 2 * half * dilation
        return full + phase - kernel_size * dilation
    return index - half * dilation


@lru_cache(maxsize=512)
def _window_indices_list(length: int, kernel_size: int, dilation: int) -> List[List[int]]:
    if length < kernel_size * dilation:
        raise ValueError(f"axis of {length} pixels is smaller than the window "
                         f"(kernel {kernel_size} x dilation {dilation}); pad it first")
    rows = []
    for i in range(length):
        s = window_start(i, length, kernel_size, dilation)
        rows.append([s + t * dilation for t in range(kernel_size)])
    return rows


def window_indices(length: int, kernel_size: int, dilation: int, device=None) -> torch.Tensor:
    """(length, kernel_size) LongTensor: the key indices each query index attends to."""
    return device_constant(_window_indices, int(length), int(kernel_size), int(dilation), device=device)


def _window_indices(length: int, kernel_size: int, dilation: int) -> torch.Tensor:
    return torch.tensor(_window_indices_list(length, kernel_size, dilation), dtype=torch.long)


def neighborhood_attention_ref(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor,
                               kernel_size: int, dilation: int = 1) -> torch.Tensor:
    """Reference neighborhood attention.

    q, k, v: (B, heads, H, W, d) -> (B, heads, H, W, d). Logits = q . k over the window
    (row-major over the kernel), softmax over the window, weighted sum of v.
    """
    B, nh, H, W, d = q.shape
    rows = window_indices(H, kernel_size, dilation, q.device)  # (H, K)
    cols = window_indices(W, kernel_size, dilation, q.device)  # (W, K)
    # Gather every query's window: (B, nh, H, W, K, K, d)
    r = rows[:, None, :, None].expand(H, W, kernel_size, kernel_size)
    c = cols[None, :, None, :].expand(H, W, kernel_size, kernel_size)
    k_win = k[:, :, r, c]
    v_win = v[:, :, r, c]
    logits = torch.einsum("bnhwd,bnhwxyd->bnhwxy", q, k_win).flatten(-2)  # (B, nh, H, W, K*K)
    attn = logits.softmax(dim=-1).view(B, nh, H, W, kernel_size, kernel_size)
    return torch.einsum("bnhwxy,bnhwxyd->bnhwd", attn, v_win)


def neighborhood_attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor,
                           kernel_size: int, dilation: int = 1) -> torch.Tensor:
    """Neighborhood attention, (B, heads, H, W, d) -> (B, heads, H, W, d); fastest available path."""
    return get_impl("neighborhood_attention", q)(q, k, v, kernel_size, dilation)


register("neighborhood_attention", "reference", neighborhood_attention_ref, priority=0)
