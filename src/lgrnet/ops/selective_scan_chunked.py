"""Selective scan as a two-level chunked loop (no Python work per sequence position).

Same function as :func:`lgrnet.ops.selective_scan.selective_scan_ref`; only the order of the work
differs. The sequence of length L is cut into ``nc`` chunks of ``c`` positions (c * nc >= L), and
position ``i`` of every chunk is processed by one batched tensor operation:

1. from a zero state, run the recurrence over the ``c`` positions of all chunks at once; the
   states at the chunk ends are kept (``c`` steps on (b, d, nc, n) tensors);
2. carry the true state across chunks: ``S[k+1] = exp(A * sum(delta over chunk k)) * S[k] +
   end[k]`` (``nc`` small steps);
3. run the recurrence once more from the chunk start states ``S``, reading out
   ``y = sum_n C * h`` at every step.

The decays ``exp(delta * A)`` and inputs ``delta * B * u`` are formed per step from the small
(b, d, L) and (b, G, n, L) tensors, so no (b, d, L, n) tensor exists in the forward pass. The
backward pass (a custom autograd function) recomputes the states, runs the same chunked loop
backwards in time for the state gradients, and forms the parameter gradients with batched
contractions; it holds a few (b, d, L, n) tensors. Only decays in (0, 1] are multiplied, so
nothing overflows (decays that underflow to 0 do so in the step loop as well).

Python steps: about ``2 c + nc`` instead of ``L``; ``c`` is chosen so that each step works on
about ``target`` elements.
"""
from __future__ import annotations

import math
from typing import Optional

import torch
import torch.nn.functional as F

from .dispatch import register
from .selective_scan import compute_dtype

# Elements per step tensor (b * d * nc * n) that the chunk length aims for: large enough to keep
# the per-op overhead small, small enough to stay in the L2 cache.
TARGET_STEP_ELEMENTS = 1 << 16


def chunk_length(L: int, step_rows: int, target: int = TARGET_STEP_ELEMENTS, device_type: str = "cpu") -> int:
    """Chunk length c for a sequence of L positions when one position of all chunks is a tensor
    of ``step_rows`` (= b * d * n) elements per chunk. On GPUs (no cache to fit; every step is a
    kernel launch) c = ceil(sqrt(L)) minimises the number of steps."""
    if device_type != "cpu":
        return max(1, math.isqrt(max(L - 1, 0)) + 1)
    nc = max(1, min(L, target // max(1, step_rows)))
    nc = max(nc, int(math.isqrt(L // 4)))  # long sequences: keep ~2c + nc steps small
    return -(-L // nc)


def _group_view(B: torch.Tensor, batch: int) -> torch.Tensor:
    """B or C: (b, G, n, L) or (b, n, L) -> (b, G, n, L) (G = 1 for the 3-D form)."""
    if B.dim() == 3:
        B = B.unsqueeze(1)
    if B.dim() != 4 or B.shape[0] != batch:
        raise ValueError(f"B/C must be (batch, groups, d_state, L) or (batch, d_state, L), got {tuple(B.shape)}")
    return B


def _to_chunks(x: torch.Tensor, c: int) -> torch.Tensor:
    """(..., L) -> (c, ..., nc) contiguous: entry [i, ..., k] is position k * c + i; positions
    past L are zero (a zero delta is a decay of 1 and a zero input, so they change nothing)."""
    L = x.shape[-1]
    nc = -(-L // c)
    x = F.pad(x, (0, nc * c - L)).unflatten(-1, (nc, c))
    return x.movedim(-1, 0).contiguous()


def _from_chunks(x: torch.Tensor, L: int) -> torch.Tensor:
    """Inverse of :func:`_to_chunks`: (c, ..., nc) -> (..., L)."""
    return x.movedim(0, -1).flatten(-2)[..., :L]


class _Chunked:
    """The chunk-layout tensors of one scan. dl, du: (c, b, G, dg, nc); Bc, Cc: (c, b, G, 1, nc, n);
    Ag: (G, dg, 1, n)."""

    def __init__(self, dl, u, A, B, C, c):
        b, d, L = u.shape
        G, n = B.shape[1], A.shape[1]
        dg = d // G
        self.shape = (b, G, dg, L, n)
        self.c = c
        self.dl = _to_chunks(dl.view(b, G, dg, L), c)
        self.u = _to_chunks(u.view(b, G, dg, L), c)
        self.du = self.dl * self.u
        self.Bc = _to_chunks(B, c).transpose(-1, -2).contiguous().unsqueeze(3)  # (c, b, G, 1, nc, n)
        self.Cc = _to_chunks(C, c).transpose(-1, -2).contiguous().unsqueeze(3)
        self.Ag = A.view(G, dg, 1, n)

    def decay(self, i: int) -> torch.Tensor:
        """exp(delta * A) at position i of every chunk: (b, G, dg, nc, n)."""
        return torch.exp(self.dl[i].unsqueeze(-1) * self.Ag)

    def chunk_decay(self) -> torch.Tensor:
        """exp(A * sum of delta over each chunk) = product of the chunk's decays: (b, G, dg, nc, n)."""
        return torch.exp(self.dl.sum(0).unsqueeze(-1) * self.Ag)

    def start_states(self) -> torch.Tensor:
        """True state before the first position of every chunk (zero before the sequence)."""
        h = torch.zeros_like(self.decay(0))
        for i in range(self.c):  # every chunk from a zero state
            h.mul_(self.decay(i)).addcmul_(self.du[i].unsqueeze(-1), self.Bc[i])
        P = self.chunk_decay()
        starts = torch.empty_like(h)
        s = torch.zeros_like(h[..., 0, :])
        for k in range(h.shape[-2]):  # carry across chunks
            starts[..., k, :] = s
            s = torch.addcmul(h[..., k, :], P[..., k, :], s)
        return starts

    def outputs(self) -> torch.Tensor:
        """y = sum_n C h at every position: (c, b, G, dg, nc)."""
        h = self.start_states()
        y = self.dl.new_empty(self.dl.shape)
        for i in range(self.c):
            h.mul_(self.decay(i)).addcmul_(self.du[i].unsqueeze(-1), self.Bc[i])
            torch.sum(h * self.Cc[i], dim=-1, out=y[i])
        return y

    def states(self) -> torch.Tensor:
        """(c + 1, b, G, dg, nc, n): [0] the chunk start states, [i + 1] the state at position i."""
        h = self.start_states()
        out = h.new_empty((self.c + 1,) + h.shape)
        out[0] = h
        for i in range(self.c):
            torch.addcmul(out[i] * self.decay(i), self.du[i].unsqueeze(-1), self.Bc[i], out=out[i + 1])
        return out

    def backward(self, gy: torch.Tensor):
        """Gradients of sum(gy * y) for gy (b, d, L). Returns (g_u, g_dl, g_A, g_B, g_C) in the
        chunk layout (g_A: (G, dg, n))."""
        b, G, dg, L, n = self.shape
        c = self.c
        gyc = _to_chunks(gy.reshape(b, G, dg, L), c)  # (c, b, G, dg, nc)
        hs = self.states()
        # State gradients, backwards in time: gh[l] = gy[l] C[l] + exp(dl[l+1] A) gh[l+1].
        # g below holds exp(dl[l] A) gh[l] after step l: what flows into position l - 1.
        g = torch.zeros_like(hs[0])
        for i in reversed(range(c)):  # every chunk from zero at its end
            g.addcmul_(gyc[i].unsqueeze(-1), self.Cc[i]).mul_(self.decay(i))
        P = self.chunk_decay()
        incoming = torch.empty_like(g)
        t = torch.zeros_like(g[..., 0, :])
        for k in reversed(range(g.shape[-2])):  # carry across chunks, right to left
            incoming[..., k, :] = t
            t = torch.addcmul(g[..., k, :], P[..., k, :], t)
        g = incoming
        g_dl = torch.empty_like(self.dl)
        g_du = torch.empty_like(self.dl)
        g_B = self.Bc.new_empty((c, b, G, g.shape[-2], n))
        g_C = torch.empty_like(g_B)
        acc_A = torch.zeros_like(g)
        for i in reversed(range(c)):
            a = self.decay(i)
            g.addcmul_(gyc[i].unsqueeze(-1), self.Cc[i])  # g = gh at position i
            q = g * hs[i] * a  # gradient of (dl * A) at position i
            torch.sum(q * self.Ag, dim=-1, out=g_dl[i])
            acc_A.addcmul_(q, self.dl[i].unsqueeze(-1))
            torch.sum(g * self.Bc[i], dim=-1, out=g_du[i])
            torch.sum(g * self.du[i].unsqueeze(-1), dim=2, out=g_B[i])
            torch.sum(hs[i + 1] * gyc[i].unsqueeze(-1), dim=2, out=g_C[i])
            g.mul_(a)
        g_A = acc_A.sum(dim=(0, 3))  # (G, dg, n)
        g_u = g_du * self.dl
        g_dl.addcmul_(g_du, self.u)
        return g_u, g_dl, g_A, g_B, g_C


class _ChunkedScan(torch.autograd.Function):
    """y = scan(u, delta, A, B, C) without the D skip term. u, delta: (b, d, L) and A: (d, n) in
    the compute dtype; B, C: (b, G, n, L)."""

    @staticmethod
    def forward(ctx, u, dl, A, B, C, chunk: int):
        b, d, L = u.shape
        y = _from_chunks(_Chunked(dl, u, A, B, C, chunk).outputs(), L)
        ctx.save_for_backward(u, dl, A, B, C)
        ctx.chunk = chunk
        return y.reshape(b, d, L)

    @staticmethod
    def backward(ctx, gy):
        u, dl, A, B, C = ctx.saved_tensors
        b, d, L = u.shape
        st = _Chunked(dl, u, A, B, C, ctx.chunk)
        g_u, g_dl, g_A, g_B, g_C = st.backward(gy.to(u.dtype))
        # (c, b, G, nc, n) -> (b, G, n, L)
        g_B = _from_chunks(g_B.transpose(-1, -2), L)
        g_C = _from_chunks(g_C.transpose(-1, -2), L)
        return (_from_chunks(g_u, L).reshape(b, d, L), _from_chunks(g_dl, L).reshape(b, d, L),
                g_A.reshape(A.shape), g_B, g_C, None)


def selective_scan_chunked(u: torch.Tensor, delta: torch.Tensor, A: torch.Tensor, B: torch.Tensor,
                           C: torch.Tensor, D: Optional[torch.Tensor] = None,
                           delta_bias: Optional[torch.Tensor] = None,
                           delta_softplus: bool = False, chunk: Optional[int] = None) -> torch.Tensor:
    """Chunked selective scan; arguments, shapes and result as
    :func:`~lgrnet.ops.selective_scan.selective_scan_ref` (``chunk`` overrides the chunk length)."""
    if A.is_complex():
        raise NotImplementedError("complex A is not supported")
    dtype_in = u.dtype
    dt = compute_dtype(u)
    if u.dim() != 3:
        raise ValueError(f"u must be (batch, dim, L), got {tuple(u.shape)}")
    batch, dim, L = u.shape
    if A.shape[0] != dim:
        raise ValueError(f"A has {A.shape[0]} rows for {dim} channels")
    Bt = _group_view(B.to(dt), batch)
    Ct = _group_view(C.to(dt), batch)
    if dim % Bt.shape[1] or Ct.shape[1] != Bt.shape[1]:
        raise ValueError(f"dim {dim} is not a multiple of the {Bt.shape[1]} groups of B/C "
                         f"(or B and C have different groups)")
    u32 = u.to(dt).contiguous()
    dl = delta.to(dt)
    if delta_bias is not None:
        dl = dl + delta_bias[..., None].to(dt)
    if delta_softplus:
        dl = F.softplus(dl)
    dl = dl.contiguous()
    A32 = A.to(dt).contiguous()
    if L == 0:
        return u.new_zeros(u.shape)
    c = chunk or chunk_length(L, batch * dim * A.shape[1], device_type=u.device.type)
    y = _ChunkedScan.apply(u32, dl, A32, Bt, Ct, int(c))
    if D is not None:
        y = y + u32 * D.to(dt)[:, None]
    return y.to(dtype_in)


def _floating(x: torch.Tensor) -> bool:
    return x.is_floating_point()


register("selective_scan", "chunked", selective_scan_chunked, available=_floating, priority=10)
