"""The numeric precision of a run: float32, or bfloat16 where the hardware computes it natively.

``resolve_precision("auto" | "fp32" | "bf16", device)`` -> :class:`Precision`:

* ``fp32``: float32 everywhere (the reference numerics);
* ``bf16``: bfloat16 on the hot path (matrix products, convolutions, attention, sampling), float32
  where the math needs it (see :mod:`lgrnet.models.bf16`). On CUDA it is autocast; on a CPU the
  model runs with bfloat16 weights. A CPU without native bfloat16 instructions would emulate
  them (slower than float32): asking for ``bf16`` there is a :class:`PrecisionError` (the command
  line prints one line and exits with status 2);
* ``auto``: ``bf16`` on CUDA and on CPUs with native bfloat16 (``avx512_bf16`` or ``amx_bf16``
  on x86, ``bf16`` on Arm, as the kernel reports the CPU's flags, and oneDNN's bfloat16 support in
  this PyTorch), ``fp32`` elsewhere.
"""
from __future__ import annotations

import dataclasses
import functools
import platform
from typing import FrozenSet, Tuple, Union

import torch

from .errors import UserError

CHOICES = ("auto", "fp32", "bf16")
NATIVE_BF16_FLAGS = frozenset({"avx512_bf16", "amx_bf16", "bf16"})  # x86 AVX-512 / AMX, Arm (FEAT_BF16)


class PrecisionError(UserError):
    """bfloat16 asked for on a device that cannot run it natively."""


@dataclasses.dataclass(frozen=True)
class Precision:
    """name: "fp32" or "bf16" (what runs); requested: what was asked ("auto", "fp32", "bf16");
    device_type: "cpu", "cuda", ...; reason: one line saying why."""

    name: str
    requested: str
    device_type: str
    reason: str

    @property
    def dtype(self) -> torch.dtype:
        return torch.bfloat16 if self.name == "bf16" else torch.float32

    @property
    def is_bf16(self) -> bool:
        return self.name == "bf16"

    def as_dict(self) -> dict:
        return {"precision": self.name, "requested": self.requested, "reason": self.reason}


@functools.lru_cache(maxsize=1)
def cpu_flags() -> FrozenSet[str]:
    """The CPU feature flags the kernel reports (Linux /proc/cpuinfo "flags" / "Features");
    empty where unknown."""
    flags = set()
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                key, _, value = line.partition(":")
                if key.strip() in ("flags", "Features"):
                    flags.update(value.split())
    except OSError:
        pass
    return frozenset(flags)


def _onednn_bf16() -> bool:
    """This PyTorch's oneDNN has bfloat16 kernels for this CPU."""
    try:
        return bool(torch.backends.mkldnn.is_available() and torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):
        return False


def cpu_bf16_support() -> Tuple[bool, str]:
    """(native bfloat16 on this CPU, a short description of why)."""
    native = sorted(NATIVE_BF16_FLAGS & cpu_flags())
    if platform.system() == "Darwin" and platform.machine() == "arm64":
        native = native or ["arm64 (Apple M2 or later has bf16)"]
    if not native:
        return False, f"this CPU has no native bfloat16 (no {'/'.join(sorted(NATIVE_BF16_FLAGS))} flag)"
    if not _onednn_bf16():
        return False, f"the CPU has {', '.join(native)} but this PyTorch's oneDNN has no bfloat16 kernels for it"
    return True, f"native bfloat16 on this CPU ({', '.join(native)})"


def resolve_precision(requested: str, device: Union[str, torch.device]) -> Precision:
    """The precision to run for ``requested`` ("auto", "fp32", "bf16") on ``device``."""
    if requested not in CHOICES:
        raise UserError(f"precision {requested!r}: choose one of {', '.join(CHOICES)}")
    dtype = torch.device(device).type
    if requested == "fp32":
        return Precision("fp32", requested, dtype, "float32 as asked")
    if dtype == "cuda":
        return Precision("bf16", requested, dtype, "bfloat16 autocast on CUDA")
    if dtype != "cpu":
        if requested == "bf16":
            raise PrecisionError(f"--precision bf16: not supported on {dtype}; use --precision fp32 or auto")
        return Precision("fp32", requested, dtype, f"float32 on {dtype}")
    ok, why = cpu_bf16_support()
    if ok:
        return Precision("bf16", requested, dtype, why)
    if requested == "bf16":
        raise PrecisionError(f"--precision bf16: {why}; it would be emulated and slower than float32. "
                             f"Use --precision fp32 (or auto, which picks fp32 here)")
    return Precision("fp32", requested, dtype, why)


# ----------------------------------------------------------------------------- CPU autocast islands
# bfloat16 training on a CPU is autocast around a float32 model. The bfloat16 backward passes of some
# memory-bound ops (depthwise convs, GroupNorm, masked attention) are slower than their float32 ones
# even on CPUs with native bf16 (docs/speed.md, "bf16 training"), and these ops do few
# multiplications, so they run in float32 under CPU autocast. CUDA autocast and bfloat16 inference
# are not affected.


def autocast_enabled(device_type: str) -> bool:
    """Autocast is on for ``device_type`` ("cpu", "cuda"). The fused kernels (lgrnet.ops) step aside
    under it: the references' products would run in autocast's dtype."""
    try:
        return torch.is_autocast_enabled(device_type)
    except TypeError:  # torch < 2.4
        return torch.is_autocast_cpu_enabled() if device_type == "cpu" else torch.is_autocast_enabled()


def cpu_autocast_enabled() -> bool:
    """Autocast is on for the CPU (a ``--precision bf16`` training step on a CPU)."""
    return autocast_enabled("cpu")


def float32_under_cpu_autocast(x: torch.Tensor) -> torch.Tensor:
    """``x`` as float32 when CPU autocast is on and ``x`` is a CPU tensor (so the op it feeds runs
    in float32), else ``x`` unchanged."""
    if x.device.type == "cpu" and x.dtype != torch.float32 and x.is_floating_point() and cpu_autocast_enabled():
        return x.float()
    return x
