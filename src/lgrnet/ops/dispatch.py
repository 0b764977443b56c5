"""The op registry: for each op, the fastest implementation available and valid for the inputs.

This module is a leaf: it imports nothing from :mod:`lgrnet.ops`. Every op module registers its
readable reference next to its definition (``register(op, "reference", fn)``), and every fast path
registers itself next to its own code, with a predicate saying when it can run (device, installed
package, dtype). Fast paths are tested against the reference (tests/test_ops_*.py).
:mod:`lgrnet.ops` imports every op module, so importing any op registers all of them.

Under ``torch.compile`` only implementations that Dynamo can trace are chosen (the oneDNN dense
kernels are registered with ``traceable=False``: they are opaque calls into private ops). Under
``torch.export`` (and so ONNX export) the reference implementations are chosen unless forced.

Forcing a path, for debugging or benchmarking:
    * environment: ``LGRNET_OPS=reference`` (all ops) or ``LGRNET_OPS_<OP>=<impl name>``;
    * code: ``with lgrnet.ops.force("reference"): ...`` or ``force(selective_scan="chunked")``.
"""
from __future__ import annotations

import contextlib
import dataclasses
import os
import threading
from typing import Callable, Dict, Iterator, List, Optional

import torch

Predicate = Callable[[torch.Tensor], bool]


def _always(x: torch.Tensor) -> bool:
    return True


@dataclasses.dataclass(frozen=True)
class Implementation:
    """One implementation of an op.

    name: what ``force`` and ``LGRNET_OPS_<OP>`` call it; fn: the callable (the op's signature);
    available: whether it can run on an input (the op's first tensor argument); priority: higher
    is tried first; traceable: whether torch.compile can trace it (if not, it is skipped while
    compiling)."""

    name: str
    fn: Callable
    available: Predicate = _always
    priority: int = 0
    traceable: bool = True


_REGISTRY: Dict[str, List[Implementation]] = {}
_LOCAL = threading.local()


def register(op: str, name: str, fn: Callable, available: Optional[Predicate] = None,
             priority: int = 0, traceable: bool = True) -> Implementation:
    """Register implementation ``name`` of ``op`` (replacing one of the same name). Returns its record."""
    impl = Implementation(name, fn, available or _always, priority, traceable)
    impls = [i for i in _REGISTRY.get(op, []) if i.name != name] + [impl]
    impls.sort(key=lambda i: -i.priority)  # stable: equal priorities keep registration order
    _REGISTRY[op] = impls
    return impl


def records(op: str) -> List[Implementation]:
    """The registered implementations of ``op``, highest priority first."""
    return list(_REGISTRY.get(op, []))


def implementations(op: str) -> List[str]:
    """Names of the registered implementations of ``op``, highest priority first."""
    return [i.name for i in _REGISTRY.get(op, [])]


def _forced(op: str) -> Optional[str]:
    stack = getattr(_LOCAL, "stack", [])
    for entry in reversed(stack):
        if op in entry:
            return entry[op]
        if "*" in entry:
            return entry["*"]
    env = os.environ.get(f"LGRNET_OPS_{op.upper()}") or os.environ.get("LGRNET_OPS")
    if not env and _exporting():
        return "reference"  # torch.export / ONNX: plain PyTorch ops that every exporter handles
    return env or None


def _exporting() -> bool:
    fn = getattr(torch.compiler, "is_exporting", None)  # torch >= 2.5
    return bool(fn and fn())


def select(op: str, x: torch.Tensor) -> Implementation:
    """The implementation ``op`` runs for input ``x``: the forced one if any, else the first
    available one by priority (the lowest-priority one, the reference, when none is)."""
    impls = _REGISTRY.get(op)
    if not impls:
        raise KeyError(f"no implementation registered for op {op!r}")
    want = _forced(op)
    if want is not None:
        for impl in impls:
            if impl.name == want:
                return impl
        if want != "auto":
            raise ValueError(f"op {op!r} has no implementation {want!r}; "
                             f"choose one of {[i.name for i in impls]}")
    compiling = torch.compiler.is_compiling()
    for impl in impls:
        if compiling and not impl.traceable:
            continue
        if impl.available(x):
            return impl
    return impls[-1]


def get_impl(op: str, x: torch.Tensor) -> Callable:
    """The callable ``op`` runs for input ``x`` (see :func:`select`)."""
    return select(op, x).fn


def chosen(op: str, x: torch.Tensor) -> str:
    """Name of the implementation ``op`` would use for input ``x``."""
    return select(op, x).name


@contextlib.contextmanager
def force(default: Optional[str] = None, **per_op: str) -> Iterator[None]:
    """Force implementations inside a ``with`` block: ``force("reference")`` for every op,
    or ``force(selective_scan="chunked")`` for one."""
    entry = dict(per_op)
    if default is not None:
        entry["*"] = default
    stack = getattr(_LOCAL, "stack", None)
    if stack is None:
        stack = _LOCAL.stack = []
    stack.append(entry)
    try:
        yield
    finally:
        stack.pop()
