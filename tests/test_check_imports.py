"""scripts/check_imports.py finds import cycles from the source: on small packages written here with
known graphs (absolute, relative and function-level imports, ``from pkg import module``,
``TYPE_CHECKING`` blocks), and it runs on src/lgrnet (CI runs it there with the known exceptions)."""
from __future__ import annotations

import importlib.util
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "check_imports.py"


@pytest.fixture(scope="module")
def ci():
    spec = importlib.util.spec_from_file_location("check_imports", SCRIPT)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def write(root: Path, files: dict) -> Path:
    for name, text in files.items():
        p = root / "lgrnet" / name
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(textwrap.dedent(text))
    return root


def test_graph_resolves_every_import_form(ci, tmp_path):
    src = write(tmp_path, {
        "__init__.py": "from .a import x\n",
        "a.py": "import lgrnet.sub.b\nx = 1\n",
        "sub/__init__.py": "",
        "sub/b.py": "from . import c\nfrom .. import a\nfrom lgrnet.sub.c import y\n",
        "sub/c.py": "from lgrnet.sub import thing\ny = 2\n",  # `thing` is not a module: the package
        "d.py": "def f():\n    from .a import x\n    return x\n",
        "e.py": "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from .d import f\nelse:\n    import os\n",
    })
    g = ci.import_graph(src)
    assert g == {"lgrnet": {"lgrnet.a"}, "lgrnet.a": {"lgrnet.sub.b"}, "lgrnet.sub": set(),
                 "lgrnet.sub.b": {"lgrnet.sub.c", "lgrnet.a"}, "lgrnet.sub.c": {"lgrnet.sub"},
                 "lgrnet.d": {"lgrnet.a"}, "lgrnet.e": set()}
    assert ci.import_graph(src, module_level=True)["lgrnet.d"] == set()


def test_cycles_are_the_strongly_connected_parts(ci):
    g = {"a": {"b"}, "b": {"c"}, "c": {"a", "d"}, "d": {"e"}, "e": {"d"}, "f": {"a"}, "g": set()}
    assert ci.cycles(g) == [["a", "b", "c"], ["d", "e"]]
    assert ci.cycles({"a": {"b"}, "b": set()}) == []


def test_exit_status_and_allow(ci, tmp_path, capsys):
    src = write(tmp_path, {"__init__.py": "", "ops/__init__.py": "", "ops/x.py": "from . import y\n",
                           "ops/y.py": "def f():\n    from .x import g\n", "cli.py": "from .ops import x\n"})
    assert ci.main(["--src", str(src)]) == 1
    assert "import cycle among 2 modules: lgrnet.ops.x, lgrnet.ops.y" in capsys.readouterr().out
    assert ci.main(["--src", str(src), "--module-level"]) == 0
    assert ci.main(["--src", str(src), "--allow", "lgrnet.ops"]) == 0
    assert "known import cycle" in capsys.readouterr().out
    assert ci.main(["--src", str(src), "--allow", "lgrnet.op"]) == 1  # a prefix is a whole module name


def test_imports_against_the_layers_fail(ci, tmp_path, capsys):
    """Up the order (io -> inference), between peers (training -> evaluation, also inside a function)
    and from a package in no layer: each named; downward imports pass."""
    files = {"__init__.py": "", "io/__init__.py": "", "io/video.py": "from ..errors import E\n",
             "errors.py": "E = 1\n", "inference/__init__.py": "", "inference/p.py": "from ..io import video\n",
             "training/__init__.py": "", "training/t.py": "from ..inference import p\n",
             "evaluation/__init__.py": "", "evaluation/e.py": "from ..inference.p import x\n"}
    src = write(tmp_path / "ok", files)
    assert ci.main(["--src", str(src)]) == 0
    assert "0 against the layer order" in capsys.readouterr().out
    src = write(tmp_path / "bad", {**files, "io/video.py": "from ..inference import p\n",
                                   "training/t.py": "def f():\n    from ..evaluation import e\n",
                                   "extra/__init__.py": ""})
    assert ci.main(["--src", str(src)]) == 1
    out = capsys.readouterr().out
    assert "lgrnet.io.video -> lgrnet.inference.p (up: io is below inference)" in out
    assert "lgrnet.training.t -> lgrnet.evaluation.e (peers" in out
    assert "lgrnet.extra: 'extra' is in no layer" in out


def test_runs_on_the_package():
    """CI's command: no cycle outside the allowed prefix (the op registry's, being removed)."""
    r = subprocess.run([sys.executable, str(SCRIPT), "--allow", "lgrnet.ops"], capture_output=True, text=True,
                       timeout=60)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "0 import cycle(s)" in r.stdout and "0 against the layer order" in r.stdout
