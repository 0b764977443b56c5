"""Shape-only constant tensors, made once per device: position embeddings, index tables, resize
matrices, the scan order.

The network needs a few tensors that depend only on shapes. :func:`device_constant` builds each on
the CPU once, copies it to the device once, and hands the same device tensor to every later
forward:

* a forward then does no host-to-device copy, so it can be captured in a CUDA graph (copying from
  pageable host memory synchronises the stream, which capture forbids), and it saves the copy;
* the tensors are made outside inference mode and without autograd, so a model that ran inference
  can train with them afterwards.

Cached tensors are shared: treat them as read-only.
"""
from __future__ import annotations

import collections
import threading
from typing import Callable, Hashable, Optional

import torch

MAX_ENTRIES = 256
_CACHE: "collections.OrderedDict[Hashable, torch.Tensor]" = collections.OrderedDict()
_LOCK = threading.Lock()


def _fake_mode_active() -> bool:
    """True while a FakeTensorMode is active (tracing, or the capture-safety test): its tensors
    must not be mixed with real ones, so they get their own cache entries."""
    try:
        return torch._C._get_dispatch_mode(torch._C._TorchDispatchModeKey.FAKE) is not None
    except (AttributeError, RuntimeError):
        return False


def device_constant(make: Callable[..., torch.Tensor], *args: Hashable, device=None,
                    dtype: Optional[torch.dtype] = None) -> torch.Tensor:
    """``make(*args).to(device, dtype)``, built once per (make, args, device, dtype) and reused.

    make: builds the tensor on the CPU from the hashable ``args`` (ints, tuples, strings).
    At most :data:`MAX_ENTRIES` tensors are kept (least recently used dropped first).
    """
    compiling = torch.compiler.is_compiling()
    key = (make, args, str(torch.device(device) if device is not None else "cpu"), dtype,
           not compiling and _fake_mode_active())
    if compiling:
        # traced by Dynamo: no lock, no dispatch-mode query (both would break the graph); a cached
        # tensor becomes a guarded constant of the graph, a new one is traced from ``make``
        hit = _CACHE.get(key)
        return hit if hit is not None else make(*args).to(device=device, dtype=dtype)
    with _LOCK:
        hit = _CACHE.get(key)
        if hit is not None:
            _CACHE.move_to_end(key)
            return hit
    with torch.inference_mode(False), torch.no_grad():
        value = make(*args).to(device=device, dtype=dtype)
        if value.requires_grad:
            value = value.detach()
    with _LOCK:
        _CACHE[key] = value
        while len(_CACHE) > MAX_ENTRIES:
            _CACHE.popitem(last=False)
    return value


def clear() -> None:
    """Drop every cached constant (frees their device memory)."""
    with _LOCK:
        _CACHE.clear()
