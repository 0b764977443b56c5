"""Reading weight files without running code in them, with one clear line when a file is not one.

A weight file is a ``.safetensors`` file or a PyTorch checkpoint (``torch.save``: a zip archive,
or the legacy pickle format). PyTorch files are read with ``torch.load(weights_only=True)``, which
never runs code; its own error text (which suggests turning that protection off) and its warnings
about pickle protocols are replaced by :func:`read_torch_file`'s one line: what the file is not,
and what is expected.
"""
from __future__ import annotations

import contextlib
import os
import re
import warnings
from typing import Any, Dict

import torch

EXPECTED = "expected an lgrnet .safetensors file or a PyTorch state dict (torch.save(model.state_dict(), PATH))"
_ZIP_MAGIC = b"PK\x03\x04"
_PICKLE_PROTO = 0x80  # pickle protocol 2+ starts with PROTO; torch's legacy format is a pickle too


def _head(path: str, n: int = 8) -> bytes:
    try:
        with open(path, "rb") as f:
            return f.read(n)
    except OSError as exc:
        raise ValueError(f"{path}: cannot read ({exc.strerror or exc})") from None


def _unsupported_global(message: str) -> str:
    """The class torch refused (``GLOBAL module.Name``), if its message names one."""
    m = re.search(r"Unsupported global: GLOBAL ([\w.]+)", message)
    return m.group(1) if m else ""


def _trainer_state_globals() -> list:
    """numpy array rebuilding, allowed for ``weights_only`` loads: the authors' trainer stores
    ``np.random.get_state()`` beside the weights in ``ckpt.pth.tar``. The unpickler stays the
    restricted one (no other callable can run); numpy 1.x files name the module numpy.core."""
    import numpy as np

    core = getattr(np, "_core", None) or np.core
    rebuild = core.multiarray._reconstruct
    return [rebuild, (rebuild, "numpy.core.multiarray._reconstruct"), np.ndarray, np.dtype,
            type(np.dtype(np.uint32))]


def read_torch_file(path: str) -> Any:
    """``torch.load(path, weights_only=True)`` on CPU; raises ValueError naming the file and the problem."""
    if not os.path.isfile(path):
        raise FileNotFoundError(f"{path}: no such weight file")
    head = _head(path)
    if not head:
        raise ValueError(f"{path}: the file is empty; {EXPECTED}")
    if not head.startswith(_ZIP_MAGIC) and head[0] != _PICKLE_PROTO:
        raise ValueError(f"{path}: not a weight file (neither a safetensors file nor a PyTorch checkpoint); {EXPECTED}")
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=r".*pickle protocol", category=UserWarning)
        try:
            allow = getattr(torch.serialization, "safe_globals", None)  # torch >= 2.5
            with allow(_trainer_state_globals()) if allow else contextlib.nullcontext():
                return torch.load(path, map_location="cpu", weights_only=True)
        except Exception as exc:
            text = str(exc)
    if head.startswith(_ZIP_MAGIC):
        name = _unsupported_global(text)
        if name:
            raise ValueError(f"{path}: a PyTorch file holding Python objects ({name}), which are never loaded "
                             f"(loading them could run code); {EXPECTED}") from None
        if "zip archive" in text or "central directory" in text or "PytorchStreamReader" in text:
            raise ValueError(f"{path}: a damaged or truncated PyTorch file (its zip archive cannot be read); "
                             f"{EXPECTED}") from None
        raise ValueError(f"{path}: a PyTorch file that cannot be read safely; {EXPECTED}") from None
    name = _unsupported_global(text)
    if name:
        raise ValueError(f"{path}: a pickle holding Python objects ({name}), which are never loaded "
                         f"(loading them could run code); {EXPECTED}") from None
    raise ValueError(f"{path}: a Python pickle or a truncated legacy PyTorch file, not a readable checkpoint; "
                     f"{EXPECTED}") from None


def read_safetensors_file(path: str, device: str = "cpu") -> Dict[str, torch.Tensor]:
    """Every tensor of a ``.safetensors`` file; raises ValueError naming the file and the problem."""
    from safetensors.torch import load_file

    if not os.path.isfile(path):
        raise FileNotFoundError(f"{path}: no such weight file")
    head = _head(path)
    if not head:
        raise ValueError(f"{path}: the file is empty; {EXPECTED}")
    try:
        return load_file(path, device=str(device))
    except Exception as exc:
        kind = "a PyTorch checkpoint named .safetensors" if head.startswith(_ZIP_MAGIC) else "not a readable safetensors file"
        raise ValueError(f"{path}: {kind} ({str(exc).splitlines()[0] if str(exc) else type(exc).__name__}); "
                         f"{EXPECTED}") from None
