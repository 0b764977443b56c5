"""The fused CPU kernels of ``cpu_kernels.c``: built once per machine, loaded with ctypes.

``library()`` returns the loaded library, or None where it cannot be had (not Linux/macOS x86 or
Arm, no C compiler, the build failed, or ``LGRNET_NATIVE=0``). The build (``cc -O3 -march=native
-fopenmp -shared``, seconds) is cached under the user's cache folder
(``$LGRNET_CACHE_DIR`` or ``$XDG_CACHE_HOME/lgrnet`` or ``~/.cache/lgrnet``, then ``kernels/``), in a
file named after a hash of the source, the compiler's version and this CPU's flags, so a later
process (or a CPU with other instructions) never loads a stale or foreign build. Written
atomically (a temporary file renamed into place), so concurrent first runs are safe.

OpenMP: the library links ``libgomp.so.1``; PyTorch's wheels load their own ``libgomp.so.1``
first, so the kernels share PyTorch's thread pool (no second set of spinning threads). Each call
passes ``torch.get_num_threads()``.

The Python wrappers (:mod:`.ms_deform_attn_native`, :mod:`.neighborhood_attention_native`,
:mod:`.norm`) check shapes and dtypes and pass pointers and element strides.
"""
from __future__ import annotations

import ctypes
import functools
import hashlib
import os
import platform
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import Optional

import torch

SOURCE = Path(__file__).with_name("cpu_kernels.c")
# sums may be reassociated (tree reductions, as PyTorch's own vectorised kernels do); no -ffast-math:
# infinities and NaNs keep their meaning
FLAGS = ("-fassociative-math", "-fno-signed-zeros", "-fno-trapping-math")
_I64 = ctypes.c_int64
_P = ctypes.c_void_p
_SIGNATURES = {
    "lgr_ms_deform_attn": [_P, ctypes.c_int, _I64, _I64, _I64, _I64, _I64, _I64, _I64, _P, _P, _I64, _I64,
                           _P, _P, _I64, _P, ctypes.c_int, ctypes.c_int],
    "lgr_neighborhood_attention": [_P, _P, _P, ctypes.c_int, _I64, _I64, _I64, _I64, _I64, _P, _P, _P, _P, _P,
                                   ctypes.c_int, _P, _P, _I64, _I64, ctypes.c_float, ctypes.c_int],
    "lgr_softmax_rows": [_P, ctypes.c_int, _I64, _I64, _I64, ctypes.c_float, ctypes.c_int],
    "lgr_add_layer_norm": [_P, ctypes.c_int, _I64, _P, ctypes.c_int, _I64, _P, _P, ctypes.c_int, ctypes.c_float,
                           _I64, _I64, _P, ctypes.c_int, _I64, ctypes.c_int],
}


def cache_dir() -> Path:
    """The user's lgrnet cache folder (``$LGRNET_CACHE_DIR``, ``$XDG_CACHE_HOME/lgrnet``, ``~/.cache/lgrnet``)."""
    if os.environ.get("LGRNET_CACHE_DIR"):
        return Path(os.environ["LGRNET_CACHE_DIR"])
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "lgrnet"


def _compiler() -> Optional[str]:
    return os.environ.get("CC") or shutil.which("cc") or shutil.which("gcc") or shutil.which("clang")


def _build_key(cc: str) -> str:
    try:
        version = subprocess.run([cc, "--version"], capture_output=True, text=True, timeout=30).stdout
    except (OSError, subprocess.SubprocessError):
        version = ""
    try:
        with open("/proc/cpuinfo") as f:
            flags = next((line for line in f if line.startswith(("flags", "Features"))), "")
    except OSError:
        flags = platform.processor()
    h = hashlib.sha256()
    for part in (SOURCE.read_bytes(), " ".join(FLAGS).encode(), version.encode(), flags.encode(),
                 platform.machine().encode()):
        h.update(part)
        h.update(b"\0")
    return h.hexdigest()[:16]


def build(out: Path, cc: str) -> None:
    """Compile ``cpu_kernels.c`` into the shared library ``out`` (atomically)."""
    out.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=out.name, suffix=".tmp", dir=out.parent)
    os.close(fd)
    try:
        subprocess.run([cc, "-O3", "-march=native", "-fopenmp", "-fPIC", "-shared", "-std=gnu11", *FLAGS,
                        str(SOURCE), "-o", tmp, "-lm"], check=True, capture_output=True, timeout=300)
        os.replace(tmp, out)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


@functools.lru_cache(maxsize=1)
def library() -> Optional[ctypes.CDLL]:
    """The kernels, built on first use and cached per machine; None where unavailable."""
    if os.environ.get("LGRNET_NATIVE", "1") == "0" or platform.system() not in ("Linux", "Darwin"):
        return None
    cc = _compiler()
    if cc is None or not SOURCE.exists():
        return None
    path = cache_dir() / "kernels" / f"cpu_kernels-{_build_key(cc)}.so"
    try:
        if not path.exists():
            build(path, cc)
        lib = ctypes.CDLL(str(path))
    except (OSError, subprocess.SubprocessError):
        return None
    for name, argtypes in _SIGNATURES.items():
        fn = getattr(lib, name)
        fn.argtypes, fn.restype = argtypes, ctypes.c_int
    return lib


def available() -> bool:
    """The kernels can run here (building them on first call)."""
    return library() is not None


def ptr(t: Optional[torch.Tensor]) -> Optional[int]:
    """A tensor's data pointer for ctypes (None for None)."""
    return None if t is None else t.data_ptr()


def int64s(*values: int) -> ctypes.Array:
    """A ctypes int64 array."""
    return (_I64 * len(values))(*values)


def check(status: int, name: str) -> None:
    if status != 0:
        raise ValueError(f"{name}: a dimension exceeds the kernel's limits")


def threads() -> int:
    return max(1, torch.get_num_threads())
