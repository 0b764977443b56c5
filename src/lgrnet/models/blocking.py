"""Cache blocking on the CPU: a per-frame (or per-row) function run on small groups at a time.

Parts of the network act on every frame (or every token row) independently: the deformable
attention and FFN, the global branch's collect and distribute attentions, the cyclic propagation
(each frame with its previous one), the FPN. On a CPU, running them on a few frames at a time keeps
their intermediate tensors in the cache, which is faster than one call over a long clip and
bounds their memory. The result is the same as one call over everything: each group computes
the same values for its frames (up to float rounding of the matrix products' blocking).

This module is the one place that decides it; the model's modules call :func:`by_frames` /
:func:`by_rows` around the published computation. Blocking applies on the CPU (training and
inference alike); on a GPU everything is one call (fewer, larger kernels).

The setting: :data:`BLOCKING` (frames per group, token rows per block), changed for a block of
code with :func:`blocking`; ``frames=0`` / ``rows=0`` turn it off.
"""
from __future__ import annotations

import contextlib
import dataclasses
from typing import Callable, Iterator, Optional

import torch


@dataclasses.dataclass
class Blocking:
    """frames: frames per group of the per-frame parts (0 = no grouping); rows: token rows per
    block of the position-wise FFNs (0 = no blocking)."""

    frames: int = 8
    rows: int = 512


BLOCKING = Blocking()


@contextlib.contextmanager
def blocking(frames: Optional[int] = None, rows: Optional[int] = None) -> Iterator[Blocking]:
    """Change :data:`BLOCKING` inside a ``with`` block (``blocking(frames=0, rows=0)``: none)."""
    old = dataclasses.replace(BLOCKING)
    if frames is not None:
        BLOCKING.frames = int(frames)
    if rows is not None:
        BLOCKING.rows = int(rows)
    try:
        yield BLOCKING
    finally:
        BLOCKING.frames, BLOCKING.rows = old.frames, old.rows


def _split(n: int, size: int, x: torch.Tensor) -> bool:
    return x.device.type == "cpu" and 0 < size < n


def _run_blocks(fn: Callable[..., torch.Tensor], n: int, size: int, *xs: torch.Tensor) -> torch.Tensor:
    """fn on consecutive slices [i, i + size) of dim 0 of every ``xs``, written into one output."""
    out: Optional[torch.Tensor] = None
    for i in range(0, n, size):
        part = fn(*(x[i:i + size] for x in xs))
        if out is None:  # one output, no concatenation copy
            out = part.new_empty((n,) + tuple(part.shape[1:]))
        out[i:i + part.shape[0]] = part
    assert out is not None
    return out


def by_frames(fn: Callable[..., torch.Tensor], *xs: torch.Tensor) -> torch.Tensor:
    """``fn(*xs)`` for a function that treats every frame (dim 0 of each ``xs``, all of one
    length N) on its own and returns (N, ...); on a CPU it runs on groups of
    ``BLOCKING.frames`` frames."""
    n = xs[0].shape[0]
    if not _split(n, BLOCKING.frames, xs[0]):
        return fn(*xs)
    return _run_blocks(fn, n, BLOCKING.frames, *xs)


def by_rows(fn: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor) -> torch.Tensor:
    """``fn(x)`` for a position-wise function of the last dimension (x: (..., C) ->
    (..., C')); on a CPU it runs on blocks of ``BLOCKING.rows`` rows."""
    flat = x.reshape(-1, x.shape[-1])
    if not _split(flat.shape[0], BLOCKING.rows, x):
        return fn(x)
    out = _run_blocks(fn, flat.shape[0], BLOCKING.rows, flat)
    return out.view(*x.shape[:-1], out.shape[-1])
