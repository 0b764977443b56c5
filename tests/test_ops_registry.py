"""The op registry (lgrnet.ops.dispatch): a leaf module of records, filled by the op modules
themselves; no import cycle inside lgrnet.ops; forcing by context and environment."""
from __future__ import annotations

import ast
import dataclasses
from pathlib import Path
from typing import Dict, Set

import pytest
import torch

import lgrnet.ops as ops
from lgrnet.ops import dispatch

OPS_DIR = Path(ops.__file__).parent
OPS = ("selective_scan", "neighborhood_attention", "ms_deform_attn", "linear", "conv_gelu")


def _imports(path: Path, package: str) -> Set[str]:
    """Modules of ``package`` that the file imports (module level or inside functions)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            if node.level == 1:  # from .x import y / from . import x, y
                if node.module:
                    found.add(node.module.split(".")[0])
                else:
                    found.update(a.name for a in node.names)
            elif node.level == 0 and node.module and node.module.startswith(package + "."):
                found.add(node.module[len(package) + 1:].split(".")[0])
            elif node.level == 2 and node.module:  # from ..x import y: lgrnet.x
                found.add("../" + node.module.split(".")[0])
        elif isinstance(node, ast.Import):
            found.update(a.name[len(package) + 1:].split(".")[0] for a in node.names if a.name.startswith(package + "."))
    return found


def _graph() -> Dict[str, Set[str]]:
    return {p.stem: _imports(p, "lgrnet.ops") for p in OPS_DIR.glob("*.py") if p.stem != "__init__"}


def test_dispatch_is_a_leaf():
    assert _imports(OPS_DIR / "dispatch.py", "lgrnet.ops") == set()


def test_no_import_cycle_inside_ops():
    graph = _graph()
    # what ops import from the rest of lgrnet must not import ops back (a cycle through lgrnet)
    for outside in {m for deps in graph.values() for m in deps if m.startswith("../")}:
        src = (OPS_DIR.parent / (outside[3:] + ".py")).read_text()
        assert "ops" not in {n.module.split(".")[0] for n in ast.walk(ast.parse(src))
                             if isinstance(n, ast.ImportFrom) and n.level == 1 and n.module}, outside
    state: Dict[str, int] = {}

    def visit(node, path):
        state[node] = 1
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                raise AssertionError("import cycle: " + " -> ".join(path + [node, nxt]))
            if nxt in graph and not state.get(nxt):
                visit(nxt, path + [node])
        state[node] = 2

    for node in sorted(graph):
        if not state.get(node):
            visit(node, [])


def test_every_op_has_a_reference_registered_beside_it():
    for op in OPS:
        recs = ops.records(op)
        assert all(isinstance(r, dispatch.Implementation) and dataclasses.is_dataclass(r) for r in recs)
        assert [r.name for r in recs] == ops.implementations(op)
        assert recs[-1].name == "reference" and recs[-1].priority == min(r.priority for r in recs)
        assert [r.priority for r in recs] == sorted((r.priority for r in recs), reverse=True)
        # the reference is defined in the module that registers it, and every fast path too
        ref = recs[-1].fn
        assert ref.__module__.startswith("lgrnet.ops.") and ref.__name__.endswith("_ref")
    assert not hasattr(ops.selective_scan_ref, "_lgrnet_priority")  # records, not function attributes
    onednn = {r.name: r for r in ops.records("linear")}["onednn"]
    assert onednn.traceable is False and onednn.fn.__module__ == "lgrnet.ops.dense_onednn"


def test_selection_force_and_environment(monkeypatch):
    monkeypatch.delenv("LGRNET_OPS", raising=False)
    monkeypatch.delenv("LGRNET_OPS_SELECTIVE_SCAN", raising=False)
    u = torch.zeros(1, 4, 10)
    assert ops.chosen("selective_scan", u) == "chunked"
    assert ops.chosen("selective_scan", u.long()) == "reference"  # no fast path available: the reference
    with ops.force("reference"):
        assert ops.chosen("selective_scan", u) == "reference"
        with ops.force(selective_scan="chunked"):
            assert ops.chosen("selective_scan", u) == "chunked"
            assert ops.chosen("ms_deform_attn", u) == "reference"
    monkeypatch.setenv("LGRNET_OPS_SELECTIVE_SCAN", "reference")
    assert ops.chosen("selective_scan", u) == "reference"
    assert ops.chosen("ms_deform_attn", u) == "fused"
    monkeypatch.setenv("LGRNET_OPS_SELECTIVE_SCAN", "no_such_path")
    with pytest.raises(ValueError, match="no implementation 'no_such_path'"):
        ops.chosen("selective_scan", u)


def test_register_replaces_by_name_and_orders_by_priority():
    op = "test_only_op"
    try:
        dispatch.register(op, "reference", lambda x: "ref")
        dispatch.register(op, "fast", lambda x: "fast", available=lambda x: x.dtype == torch.float32, priority=5)
        dispatch.register(op, "faster", lambda x: "faster", available=lambda x: False, priority=9)
        x = torch.zeros(1)
        assert ops.implementations(op) == ["faster", "fast", "reference"]
        assert dispatch.get_impl(op, x)(x) == "fast"
        assert dispatch.get_impl(op, x.double())(x) == "ref"
        dispatch.register(op, "fast", lambda x: "fast2", priority=1)
        assert ops.implementations(op) == ["faster", "fast", "reference"]
        assert dispatch.get_impl(op, x)(x) == "fast2"
    finally:
        dispatch._REGISTRY.pop(op, None)
