"""Selective scan (the S6 recurrence of Mamba), in plain PyTorch.

For every channel d and state n, along the sequence l = 0..L-1::

    delta = softplus(delta_raw + delta_bias)            (if delta_softplus)
    h[l]  = exp(delta[l] * A[d, n]) * h[l-1] + delta[l] * B[n, l] * u[l]
    y[l]  = sum_n C[n, l] * h[l, n] + D[d] * u[l]

Shapes follow ``mamba_ssm.selective_scan_fn``:
    u, delta: (batch, dim, L); A: (dim, d_state); B, C: (batch, groups, d_state, L) (each group
    shared by dim / groups consecutive channels) or (batch, d_state, L); D: (dim,);
    delta_bias: (dim,). Returns y: (batch, dim, L) in u's dtype (computed in float32, or
    float64 for float64 inputs).

:func:`selective_scan_ref` is the readable step loop; :func:`selective_scan` dispatches to the
fastest path available (see :mod:`lgrnet.ops.dispatch`).
"""
from __future__ import annotations

from typing import Optional

import torch
import torch.nn.functional as F

from .dispatch import get_impl, register


def _expand_groups(x: torch.Tensor, dim: int) -> torch.Tensor:
    """(b, G, n, L) -> (b, dim, n, L) by repeating each group over dim // G channels;
    (b, n, L) -> (b, 1, n, L) (broadcast over channels)."""
    if x.dim() == 3:
        return x.unsqueeze(1)
    groups = x.shape[1]
    if dim % groups:
        raise ValueError(f"dim {dim} is not a multiple of the {groups} groups of B/C")
    return x.repeat_interleave(dim // groups, dim=1)


def compute_dtype(x: torch.Tensor) -> torch.dtype:
    """The scan runs in float32, or float64 for float64 inputs (half inputs are upcast)."""
    return torch.promote_types(x.dtype, torch.float32)


def _prepare(u, delta, A, B, C, delta_bias, delta_softplus):
    dt = compute_dtype(u)
    u = u.to(dt)
    delta = delta.to(dt)
    if delta_bias is not None:
        delta = delta + delta_bias[..., None].to(dt)
    if delta_softplus:
        delta = F.softplus(delta)
    dim = A.shape[0]
    Bx = _expand_groups(B.to(dt), dim)
    Cx = _expand_groups(C.to(dt), dim)
    return u, delta, A.to(dt), Bx, Cx


def selective_scan_ref(u: torch.Tensor, delta: torch.Tensor, A: torch.Tensor, B: torch.Tensor,
                       C: torch.Tensor, D: Optional[torch.Tensor] = None,
                       delta_bias: Optional[torch.Tensor] = None,
                       delta_softplus: bool = False) -> torch.Tensor:
    """Reference: one step of the recurrence per sequence position (mamba's
    ``selective_scan_ref`` semantics, real A, no z gate)."""
    dtype_in = u.dtype
    u, delta, A, Bx, Cx = _prepare(u, delta, A, B, C, delta_bias, delta_softplus)
    batch, dim, L = u.shape
    decay = torch.exp(torch.einsum("bdl,dn->bdln", delta, A))            # (b, d, L, n)
    drive = torch.einsum("bdl,bdnl,bdl->bdln", delta, Bx.expand(batch, dim, -1, -1), u)
    h = u.new_zeros(batch, dim, A.shape[1])
    ys = []
    # unbind once: indexing a big tensor per step would make backward quadratic in L
    Cs = Cx.expand(batch, dim, -1, -1).unbind(-1)
    for decay_l, drive_l, C_l in zip(decay.unbind(2), drive.unbind(2), Cs):
        h = decay_l * h + drive_l
        ys.append((h * C_l).sum(-1))
    y = torch.stack(ys, dim=-1)
    if D is not None:
        y = y + u * D.to(y.dtype)[:, None]
    return y.to(dtype_in)


def selective_scan(u: torch.Tensor, delta: torch.Tensor, A: torch.Tensor, B: torch.Tensor,
                   C: torch.Tensor, D: Optional[torch.Tensor] = None,
                   delta_bias: Optional[torch.Tensor] = None,
                   delta_softplus: bool = False) -> torch.Tensor:
    """Selective scan; fastest available path for the inputs."""
    return get_impl("selective_scan", u)(u, delta, A, B, C, D, delta_bias, delta_softplus)


register("selective_scan", "reference", selective_scan_ref, priority=0)
