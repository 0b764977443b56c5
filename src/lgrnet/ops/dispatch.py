"""Choose an implementation for each op: the fastest one available and valid for the inputs.

Every op has a reference implementation (readable, pure PyTorch) and zero or more fast paths,
each registered with a predicate saying when it can run (device, installed package, dtype).
Fast paths are tested against the reference (tests/test_ops_*.py).

Under ``torch.compile`` only implementations that Dynamo can trace are chosen (the oneDNN dense
kernels are registered with ``traceable=False``: they are opaque calls into private ops). Under
``torch.export`` (and so ONNX export) the reference implementations are chosen unless forced.

Forcing a path, for debugging or benchmarking:
    * environment: ``LGRNET_OPS=reference`` (all ops) or ``LGRNET_OPS_<OP>=<impl name>``;
    * code: ``with lgrnet.ops.force("reference"): ...`` or ``force(selective_scan="chunked")``.
"""
from __future__ import annotations

import contextlib
import os
import threading
from typing import Callable, Dict, List, Optional, Tuple

import torch

Predicate = Callable[[torch.Tensor], bool]

_REGISTRY: Dict[str, List[Tuple[str, Predicate, Callable]]] = {}
_LOCAL = threading.local()


def register(op: str, name: str, fn: Callable, available: Optional[Predicate] = None,
             priority: int = 0, traceable: bool = True) -> None:
    """Register implementation ``name`` of ``op``. Higher priority is tried first; ``traceable``:
    whether torch.compile can trace it (if not, it is skipped while compiling)."""
    impls = _REGISTRY.setdefault(op, [])
    impls[:] = [i for i in impls if i[0] != name]
    impls.append((name, available or (lambda x: True), fn))
    fn._lgrnet_priority = priority  # type: ignore[attr-defined]
    fn._lgrnet_traceable = traceable  # type: ignore[attr-defined]
    impls.sort(key=lambda i: -getattr(i[2], "_lgrnet_priority", 0))


def implementations(op: str) -> List[str]:
    _ensure_registered()
    return [name for name, _, _ in _REGISTRY.get(op, [])]


def _forced(op: str) -> Optional[str]:
    stack = getattr(_LOCAL, "stack", [])
    for entry in reversed(stack):
        if op in entry:
            return entry[op]
        if "*" in entry:
            return entry["*"]
    env = os.environ.get(f"LGRNET_OPS_{op.upper()}") or os.environ.get("LGRNET_OPS")
    if not env and torch.compiler.is_exporting():
        return "reference"  # torch.export / ONNX: plain PyTorch ops that every exporter handles
    return env or None


def get_impl(op: str, x: torch.Tensor) -> Callable:
    _ensure_registered()
    impls = _REGISTRY.get(op)
    if not impls:
        raise KeyError(f"no implementation registered for op {op!r}")
    want = _forced(op)
    if want is not None:
        for name, _, fn in impls:
            if name == want:
                return fn
        if want != "auto":
            raise ValueError(f"op {op!r} has no implementation {want!r}; "
                             f"choose one of {[n for n, _, _ in impls]}")
    compiling = torch.compiler.is_compiling()
    for name, ok, fn in impls:
        if compiling and not getattr(fn, "_lgrnet_traceable", True):
            continue
        if ok(x):
            return fn
    return impls[-1][2]


def chosen(op: str, x: torch.Tensor) -> str:
    """Name of the implementation ``op`` would use for input ``x``."""
    fn = get_impl(op, x)
    for name, _, f in _REGISTRY[op]:
        if f is fn:
            return name
    return "?"


@contextlib.contextmanager
def force(default: Optional[str] = None, **per_op: str):
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


_registered = False
PARALLEL_SCAN_MAX_LENGTH = 16384


def _ensure_registered() -> None:
    global _registered
    if _registered:
        return
    _registered = True
    from .dense import conv_gelu_ref, linear_ref
    from .ms_deform_attn import ms_deform_attn_ref
    from .neighborhood_attention import neighborhood_attention_ref
    from .selective_scan import selective_scan_ref

    register("selective_scan", "reference", selective_scan_ref, priority=0)
    register("neighborhood_attention", "reference", neighborhood_attention_ref, priority=0)
    register("ms_deform_attn", "reference", ms_deform_attn_ref, priority=0)
    register("linear", "reference", linear_ref, priority=0)
    register("conv_gelu", "reference", conv_gelu_ref, priority=0)
    from .selective_scan_parallel import selective_scan_parallel

    # A GPU wants few kernels: log2(L) whole-tensor rounds (Hillis-Steele) instead of the chunked
    # form's ~3 sqrt(L) steps. The model scans L = 20 frame queries x T (120 at T=6, 6000 at T=300).
    # H100 float32, d=256, n=16 (benchmarks/gpu_check.py): L=11616 13.1 ms vs chunked 13.4-21.7 ms;
    # beyond ~16k positions the chunked form wins (L=58080: 73.5 vs 27-47 ms) and uses less memory.
    register("selective_scan", "parallel", selective_scan_parallel,
             available=lambda x: x.is_cuda and x.shape[-1] <= PARALLEL_SCAN_MAX_LENGTH, priority=15)
    # Fast paths register themselves from lgrnet.ops.fast, when that module exists.
    import importlib.util

    if importlib.util.find_spec(__package__ + ".fast") is not None:
        importlib.import_module(__package__ + ".fast")
