"""The model shipped inside the package, and ``demo``, the name every ``--weights`` (and
``from_pretrained``) accepts for it, so that a ``pip install`` user need not know where the package
keeps its files. A file or folder named ``demo`` in the working directory wins over the name.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Union

SHIPPED_NAME = "demo"
SHIPPED_FILE = "demo_lite2.safetensors"  # the one place naming the shipped weights (in lgrnet/assets/)


def shipped_weights() -> Path:
    """The path of the shipped weights (lgrnet/assets/SHIPPED_FILE)."""
    return Path(__file__).resolve().parents[1] / "assets" / SHIPPED_FILE


def resolve_shipped(ref: Union[str, os.PathLike]) -> str:
    """``demo`` -> the shipped weights' path, unless a local file or folder has that name; any other
    reference unchanged."""
    ref = os.fspath(ref)
    if ref == SHIPPED_NAME and not os.path.exists(ref):
        return str(shipped_weights())
    return ref
