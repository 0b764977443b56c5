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
from dataclasses import dataclass
from typing import Dict, Mapping, MutableMapping, Optional

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


# ---- CPU threads and the OpenMP wait policy (docs/speed.md, "A busy machine") ----------------------

THREADS_ENV = "LGRNET_THREADS"
WAIT_POLICY = "PASSIVE"  # what the lgrnet command gives OpenMP unless the user chose (see prepare_openmp)

_openmp: Optional[Dict[str, str]] = None
_threads: Optional["ThreadChoice"] = None


@dataclass(frozen=True)
class ThreadChoice:
    """The CPU threads of PyTorch's intra-op pool: how many, who chose (``--threads``, ``LGRNET_THREADS``,
    ``OMP_NUM_THREADS`` or ``auto``), and why."""

    threads: int
    source: str
    reason: str

    def as_dict(self) -> Dict[str, object]:
        return {"threads": self.threads, "source": self.source, "reason": self.reason}


def usable_cores() -> int:
    """The cores this process may run on (its affinity mask: a container's or ``taskset``'s share)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # macOS, Windows
        return os.cpu_count() or 1


def prepare_openmp(environ: Optional[MutableMapping[str, str]] = None) -> Dict[str, str]:
    """Make OpenMP's idle threads sleep instead of spin: ``OMP_WAIT_POLICY=PASSIVE``, set before
    PyTorch loads its OpenMP runtime (libgomp reads it once, when it is loaded), unless the user set
    ``OMP_WAIT_POLICY`` or ``GOMP_SPINCOUNT``. libgomp's default keeps every idle worker spinning
    for 300,000 turns after each parallel region; with other programs on the cores the spinning
    takes the CPU time the lagging thread needs, so every op waits (issue 29: 5.2x the idle time
    with two other jobs on 2 cores). Returns what is in effect, for ``lgrnet info``; records
    "not applied" when PyTorch was imported first (a Python user: set the variable before
    ``import torch``)."""
    global _openmp
    env = os.environ if environ is None else environ
    user = {k: env[k] for k in ("OMP_WAIT_POLICY", "GOMP_SPINCOUNT") if env.get(k)}
    if user:
        state = {**user, "source": "environment"}
    elif "torch" in sys.modules and environ is None:
        state = {"OMP_WAIT_POLICY": "(libgomp default: spin, then sleep)",
                 "source": "not applied: PyTorch was imported before lgrnet set it"}
    else:
        env["OMP_WAIT_POLICY"] = WAIT_POLICY
        state = {"OMP_WAIT_POLICY": WAIT_POLICY, "source": "lgrnet default"}
    if environ is None:
        _openmp = state
    return state


def parse_threads(value: str, where: str) -> Optional[int]:
    """``auto`` -> None, ``N`` -> N (>= 1); anything else is a ValueError naming ``where``."""
    text = str(value).strip().lower()
    if text in ("", "auto"):
        return None
    try:
        n = int(text)
    except ValueError:
        n = 0
    if n < 1:
        raise ValueError(f"{where} {value!r}: a number of CPU threads (1, 2, ...) or auto")
    return n


def choose_threads(option: Optional[str] = None, environ: Optional[Mapping[str, str]] = None,
                   cores: Optional[int] = None) -> ThreadChoice:
    """The CPU thread count: ``--threads`` (``option``), else ``$LGRNET_THREADS``, else
    ``$OMP_NUM_THREADS`` (PyTorch's own setting, left to it), else auto: the cores this process may
    use. Auto does not shrink when other programs are busy: with idle OpenMP threads sleeping
    (:func:`prepare_openmp`) each of our threads gets its fair share of a busy core, which one thread
    would not (docs/speed.md, "A busy machine", measured with benchmarks/busy_machine.py)."""
    env = os.environ if environ is None else environ
    cores = usable_cores() if cores is None else cores
    for value, source in ((option, "--threads"), (env.get(THREADS_ENV), THREADS_ENV)):
        if value not in (None, ""):
            n = parse_threads(value, source)
            if n is not None:
                return ThreadChoice(n, source, f"{source} {n}")
    omp = env.get("OMP_NUM_THREADS", "").strip()
    if omp:
        try:
            return ThreadChoice(max(1, int(omp.split(",")[0])), "OMP_NUM_THREADS", f"OMP_NUM_THREADS={omp}")
        except ValueError:
            pass
    return ThreadChoice(cores, "auto", f"auto: the {cores} core(s) this process may use")


def configure_threads(option: Optional[str] = None) -> ThreadChoice:
    """Choose (:func:`choose_threads`) and apply the thread count to PyTorch's intra-op pool, before
    any compute. Raises ValueError for a bad ``--threads`` / ``LGRNET_THREADS``."""
    global _threads
    import torch

    choice = choose_threads(option)
    if torch.get_num_threads() != choice.threads:
        torch.set_num_threads(choice.threads)
    _threads = choice
    return choice


def thread_settings() -> Dict[str, object]:
    """What this process runs with, for ``lgrnet info`` and run records: the thread choice (or PyTorch's
    own count when :func:`configure_threads` did not run) and the OpenMP wait policy."""
    import torch

    threads = _threads.as_dict() if _threads else {"threads": torch.get_num_threads(), "source": "torch",
                                                   "reason": "PyTorch's default"}
    return {**threads, "usable_cores": usable_cores(),
            "openmp": dict(_openmp) if _openmp else {"OMP_WAIT_POLICY": os.environ.get("OMP_WAIT_POLICY", "(unset)"),
                                                     "source": "environment"},
            "load_average": _load_average()}


def _load_average() -> Optional[float]:
    try:
        return round(os.getloadavg()[0], 2)
    except (AttributeError, OSError):
        return None
