"""Optional kernels from other packages (mamba_ssm, NATTEN): imported when installed, never
required, and checked once per device against our reference before they are trusted (a mismatch
or an unknown API disables the kernel with a warning)."""
from __future__ import annotations

import importlib
import warnings
from types import ModuleType
from typing import Callable, Dict, Optional, Tuple

import torch


def optional_import(name: str) -> Optional[ModuleType]:
    """The module ``name``, or None when it is not installed (or lacks its compiled extension)."""
    try:
        return importlib.import_module(name)
    except Exception:  # not installed, or installed without its compiled extension
        return None


_verified: Dict[Tuple[str, str], bool] = {}


def verified_on(name: str, x: torch.Tensor, check: Callable[[torch.device], bool]) -> bool:
    """Run ``check`` once per (kernel, device); remember the answer."""
    key = (name, str(x.device))
    if key not in _verified:
        try:
            ok = bool(check(x.device))
        except Exception as exc:  # an API that differs from the one we know
            warnings.warn(f"lgrnet: {name} is installed but failed its check ({type(exc).__name__}: {exc}); "
                          f"using the built-in path")
            ok = False
        else:
            if not ok:
                warnings.warn(f"lgrnet: {name} is installed but disagrees with the reference; using the built-in path")
        _verified[key] = ok
    return _verified[key]
