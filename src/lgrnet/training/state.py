"""Training checkpoints: everything needed to continue a run exactly.

A checkpoint (``<run>/last.pt``, written atomically: temp file + rename) holds the model,
optimizer, LR scheduler and gradient scaler states, the step (the data position follows from it:
the next clip is stream position ``step * batch_size``), the best validation score so far, the
resolved config (JSON) and the RNG states (Python, NumPy, torch CPU and CUDA) of every process.
It contains only tensors and plain Python values, so it loads with ``torch.load(weights_only=True)``.
"""
from __future__ import annotations

import os
import random
from typing import Any, Dict

import numpy as np
import torch

from ..errors import UserError
from ..files import atomic_write

FORMAT = "lgrnet-train-1"
LAST = "last.pt"


def capture_rng() -> Dict[str, Any]:
    """This process's RNG states as plain values and tensors."""
    name, keys, pos, has_gauss, cached = np.random.get_state()
    state: Dict[str, Any] = {
        "python": random.getstate(),
        "numpy": {"name": name, "keys": torch.from_numpy(keys.astype(np.int64)), "pos": int(pos),
                  "has_gauss": int(has_gauss), "cached_gaussian": float(cached)},
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def restore_rng(state: Dict[str, Any]) -> None:
    random.setstate(_as_tuple(state["python"]))
    n = state["numpy"]
    np.random.set_state((n["name"], n["keys"].numpy().astype(np.uint32), n["pos"], n["has_gauss"], n["cached_gaussian"]))
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        cuda = state["cuda"]
        if len(cuda) == torch.cuda.device_count():
            torch.cuda.set_rng_state_all(cuda)
        else:
            torch.cuda.set_rng_state(cuda[torch.cuda.current_device() % len(cuda)])


def _as_tuple(x):
    return tuple(_as_tuple(i) for i in x) if isinstance(x, (list, tuple)) else x


def save_checkpoint(path: str, state: Dict[str, Any]) -> str:
    state = dict(state, format=FORMAT)
    return atomic_write(path, lambda tmp: torch.save(state, tmp))


def load_checkpoint(path: str) -> Dict[str, Any]:
    if not os.path.isfile(path):
        raise UserError(f"{path}: no checkpoint to resume from")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        raise UserError(f"{path}: not a readable training checkpoint ({type(exc).__name__}: "
                        f"{str(exc).splitlines()[0] if str(exc) else ''})") from None
    if not isinstance(state, dict) or state.get("format") != FORMAT:
        raise UserError(f"{path}: not an lgrnet training checkpoint (format {state.get('format') if isinstance(state, dict) else None!r})")
    return state


def diff_dicts(a: Any, b: Any, prefix: str = "") -> Dict[str, tuple]:
    """Flattened {key: (a, b)} of the entries that differ between two nested dicts."""
    out: Dict[str, tuple] = {}
    if isinstance(a, dict) and isinstance(b, dict):
        for k in sorted(set(a) | set(b)):
            out.update(diff_dicts(a.get(k), b.get(k), f"{prefix}{k}."))
        return out
    if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):
        a, b = list(a), list(b)
    if a != b:
        out[prefix[:-1]] = (a, b)
    return out
