"""Check the lgrnet package's imports: no import cycles, and no import against the layer order
(:data:`LAYERS`); exit 1 on either.

The layers, bottom up (a module may import its own package and the layers below it; packages that
share a layer are peers and do not import each other)::

    errors version files progress runtime config   the foundation: no lgrnet imports above it
    precision                                      dtypes and autocast rules
    ops                                            special ops, a reference beside each fast path
    models losses metrics                          the network, its loss, pure metric formulas
    io                                             inputs: video files, frame folders, DICOM, images
    data                                           dataset layouts on disk
    results                                        the result folder (writer, reader, corrections)
    inference                                      the predictor and what it runs
    runs                                           many inputs, shares, launcher environment, index
    training evaluation export pacs                the phases over inference and runs; a PACS (DICOMweb)
    annotations                                    annotation files <-> results and datasets
    viewer                                         the review page
    commands                                       the command line
    cli                                            the entry point
    __main__ (and the package's __init__)         python -m lgrnet, the public API

The import graph is built from the source (``ast``; nothing is imported): one node per module of
src/lgrnet, one edge per ``import`` / ``from ... import`` of another lgrnet module. ``from pkg import
name`` points at ``pkg/name.py`` when that module exists, else at ``pkg/__init__.py``. Importing
``a.b.c`` also runs ``a/__init__.py``, but that implicit edge is left out: with it every module
would be in a cycle with the top-level ``lgrnet/__init__.py`` that re-exports the public API.

By default every import counts, also those inside functions (a function-level import only hides a
cycle until the function runs); ``--module-level`` counts only the imports that run at import time
(``if TYPE_CHECKING:`` blocks never count). ``--allow PREFIX`` reports cycles lying wholly inside
modules starting with PREFIX without failing (for a known cycle being removed).

    python scripts/check_imports.py [--src src] [--module-level] [--allow lgrnet.ops]
"""
from __future__ import annotations

import argparse
import ast
import sys
from pathlib import Path
from typing import Dict, Iterator, List, Set


def module_name(path: Path, src: Path) -> str:
    parts = list(path.relative_to(src).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _is_type_checking(node: ast.If) -> bool:
    t = node.test
    return (isinstance(t, ast.Name) and t.id == "TYPE_CHECKING") or (
        isinstance(t, ast.Attribute) and t.attr == "TYPE_CHECKING")


def _imports(tree: ast.Module, module_level: bool) -> Iterator[ast.Import | ast.ImportFrom]:
    """The import statements of a module, skipping ``if TYPE_CHECKING:`` bodies (and function
    bodies when ``module_level``)."""
    stack: List[ast.AST] = [tree]
    while stack:
        node = stack.pop()
        for child in ast.iter_child_nodes(node):
            if isinstance(child, (ast.Import, ast.ImportFrom)):
                yield child
            elif isinstance(child, ast.If) and _is_type_checking(child):
                stack.extend(child.orelse)
            elif module_level and isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
                continue
            else:
                stack.append(child)


def import_graph(src: Path, package: str = "lgrnet", module_level: bool = False) -> Dict[str, Set[str]]:
    """{module: {lgrnet modules it imports}} for every .py file under src/package."""
    files = {module_name(p, src): p for p in sorted((src / package).rglob("*.py"))}
    graph: Dict[str, Set[str]] = {m: set() for m in files}

    def resolve(name: str) -> str | None:
        while name and name not in files:  # `import lgrnet.x.attr`-style names: the longest module
            name = name.rpartition(".")[0]
        return name or None

    for mod, path in files.items():
        is_pkg = path.name == "__init__.py"
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        for node in _imports(tree, module_level):
            if isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            else:
                if node.level:  # relative: from the package this module is in (or is)
                    base = mod.split(".")
                    base = base[: len(base) - node.level + (1 if is_pkg else 0)]
                    pkg = ".".join(base + ([node.module] if node.module else []))
                else:
                    pkg = node.module or ""
                targets = [f"{pkg}.{a.name}" if f"{pkg}.{a.name}" in files else pkg for a in node.names]
            for t in targets:
                if t == package or t.startswith(package + "."):
                    r = resolve(t)
                    if r is not None and r != mod:
                        graph[mod].add(r)
    return graph


LAYERS: List[List[str]] = [
    ["errors", "version", "files", "progress", "runtime", "config"],
    ["precision"],
    ["ops"],
    ["models", "losses", "metrics"],
    ["io"],
    ["data"],
    ["results"],
    ["inference"],
    ["runs"],
    ["training", "evaluation", "export", "pacs"],
    ["annotations"],
    ["viewer"],
    ["commands"],
    ["cli"],
    ["__main__", ""],
]


def unit_of(module: str, package: str = "lgrnet") -> str:
    """The layer unit of a module: its first name under the package ("" for the package itself)."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 and parts[0] == package else ""


def layer_violations(graph: Dict[str, Set[str]], layers: List[List[str]] = LAYERS) -> List[str]:
    """Every import that runs up the layer order or between peers of one layer, as "a -> b (why)";
    a module whose unit is in no layer is reported too."""
    level = {u: i for i, units in enumerate(layers) for u in units}
    out = []
    for mod in sorted(graph):
        a = unit_of(mod)
        if a not in level:
            out.append(f"{mod}: {a!r} is in no layer of check_imports.LAYERS")
            continue
        for dep in sorted(graph[mod]):
            b = unit_of(dep)
            if a == b or b not in level:
                continue
            if level[b] > level[a]:
                out.append(f"{mod} -> {dep} (up: {a} is below {b})")
            elif level[b] == level[a]:
                out.append(f"{mod} -> {dep} (peers: {a} and {b} share a layer)")
    return out


def cycles(graph: Dict[str, Set[str]]) -> List[List[str]]:
    """The strongly connected components with more than one module (Tarjan), each sorted."""
    index: Dict[str, int] = {}
    low: Dict[str, int] = {}
    on_stack: Set[str] = set()
    stack: List[str] = []
    out: List[List[str]] = []
    counter = [0]

    def visit(v: str) -> None:
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    sys.setrecursionlimit(max(1000, 4 * len(graph)))
    for v in sorted(graph):
        if v not in index:
            visit(v)
    return sorted(out)


def edges_within(graph: Dict[str, Set[str]], comp: List[str]) -> List[str]:
    members = set(comp)
    return [f"{a} -> {b}" for a in comp for b in sorted(graph[a] & members)]


def main(argv: List[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--src", default=str(Path(__file__).resolve().parents[1] / "src"))
    p.add_argument("--module-level", action="store_true", help="count only imports that run at import time")
    p.add_argument("--allow", action="append", default=[], metavar="PREFIX",
                   help="report, without failing, cycles wholly inside modules starting with PREFIX")
    args = p.parse_args(argv)
    graph = import_graph(Path(args.src), module_level=args.module_level)
    failing = 0
    for comp in cycles(graph):
        allowed = any(all(m == a or m.startswith(a + ".") for m in comp) for a in args.allow)
        failing += not allowed
        print(f"{'known ' if allowed else ''}import cycle among {len(comp)} modules: {', '.join(comp)}")
        for e in edges_within(graph, comp):
            print(f"    {e}")
    against = layer_violations(graph)
    for line in against:
        print(f"import against the layers: {line}")
    n_edges = sum(len(v) for v in graph.values())
    print(f"{len(graph)} modules, {n_edges} imports between them: "
          f"{failing} import cycle(s)" + (" (and known ones above)" if failing == 0 and args.allow else "")
          + f", {len(against)} against the layer order")
    return 1 if failing or against else 0


if __name__ == "__main__":
    sys.exit(main())
