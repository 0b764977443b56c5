"""Where ``torch.compile``'s work is kept between runs, and how long a compile took.

Inductor caches each compiled graph on disk (its FX graph and AOTAutograd caches, on by default),
keyed by the graph, the input shapes and the machine, so a second process compiling the same model
for the same clip shape skips code generation and the C++ build and pays only Dynamo's trace. Its
default folder is ``$TMPDIR/torchinductor_$USER``, which a reboot or a tmp cleaner empties; lgrnet
puts it beside its other per-machine builds instead (``<lgrnet cache>/inductor``: ``$LGRNET_CACHE_DIR``,
``$XDG_CACHE_HOME/lgrnet`` or ``~/.cache/lgrnet``), unless ``TORCHINDUCTOR_CACHE_DIR`` names another
folder than that default.
Costs measured: docs/speed.md, "torch.compile".
"""
from __future__ import annotations

import os
from pathlib import Path

from ..ops.native import cache_dir

ENV = "TORCHINDUCTOR_CACHE_DIR"


def inductor_cache_dir() -> Path:
    """The folder Inductor will use: ``$TORCHINDUCTOR_CACHE_DIR`` if set to anything but Inductor's
    own default, else ``<lgrnet cache>/inductor``."""
    chosen = os.environ.get(ENV)
    # importing parts of torch (or timm) fills the variable with the default folder: not a choice
    if chosen and os.path.abspath(chosen) != _inductor_default():
        return Path(chosen)
    return cache_dir() / "inductor"


def _inductor_default() -> str:
    try:
        from torch._inductor.runtime.cache_dir_utils import default_cache_dir
    except ImportError:  # a PyTorch that moved it: only an explicit choice differs from this
        import getpass
        import tempfile

        return os.path.join(tempfile.gettempdir(), f"torchinductor_{getpass.getuser()}")
    return os.path.abspath(default_cache_dir())


def use_inductor_cache() -> Path:
    """Point Inductor at :func:`inductor_cache_dir` (before the first compile of the process; Inductor
    reads the variable when it first needs the folder) and return it."""
    folder = inductor_cache_dir()
    os.environ[ENV] = str(folder)
    return folder


def is_warm(folder: Path) -> bool:
    """Whether ``folder`` already holds compiled graphs (Inductor's FX graph cache)."""
    graphs = folder / "fxgraph"
    return graphs.is_dir() and any(graphs.iterdir())
