"""Process-wide settings for fast CPU inference.

:func:`tune_cpu_allocator` asks glibc's ``malloc`` to keep freed memory for reuse instead of
returning it to the kernel after every large tensor. By default glibc serves allocations above a
(dynamic) threshold with fresh ``mmap`` pages and gives them back on free, and trims the heap top
beyond 128 kB, so each forward pass zero-fills tens of megabytes of new pages per frame in the
kernel. Two settings stop that: allocations up to 32 MB come from the heap, and up to 1 GB of free
heap top is kept. Measured on the 2-core development machine with ``python
benchmarks/allocator.py --long 30`` (``sunseg_pvt``, 352x352, 2 threads; each setting in a fresh
process: 6 forwards of T=6, then one of T=30; two alternating A/B rounds):

=================  ===============  ==========================  ================  ==============
glibc malloc       T=6 ms/frame     T=6 kernel time ms/frame    T=6 page faults   T=30 peak RSS
=================  ===============  ==========================  ================  ==============
defaults           170.2, 169.0     42.5, 42.4                  ~23,500 / frame   1,485-1,487 MB
tuned              142.9, 127.5     1.4, 1.0                    54-154 / frame    1,508-1,590 MB
=================  ===============  ==========================  ================  ==============

The ``lgrnet`` command line calls it once at start; Python users may call it themselves. It does
nothing outside glibc on Linux (macOS, Windows, musl) or when ``LGRNET_MALLOC_TUNING=0``. The
settings are the ones glibc's ``MALLOC_MMAP_THRESHOLD_=33554432`` and
``MALLOC_TRIM_THRESHOLD_=1073741824`` environment variables would give.
"""
from __future__ import annotations

import ctypes
import ctypes.util
import os
import sys

# glibc's mallopt parameter numbers (malloc.h)
_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3

MMAP_THRESHOLD = 32 << 20  # the largest glibc accepts on 64-bit (HEAP_MAX_SIZE / 2)
TRIM_THRESHOLD = 1 << 30

_done = None


def tune_cpu_allocator() -> bool:
    """Apply the settings once per process; True when they are in effect."""
    global _done
    if _done is not None:
        return _done
    _done = False
    if os.environ.get("LGRNET_MALLOC_TUNING", "1") == "0" or not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):  # not glibc
        return False
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    mallopt.restype = ctypes.c_int
    ok = all(mallopt(param, value) == 1 for param, value in (
        (_M_MMAP_THRESHOLD, MMAP_THRESHOLD), (_M_TRIM_THRESHOLD, TRIM_THRESHOLD)))
    _done = ok
    return ok
