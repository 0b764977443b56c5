"""lgrnet.runtime.tune_cpu_allocator: freed tensor memory is reused, not refaulted from the kernel."""
from __future__ import annotations

import os
import platform
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

SRC = str(Path(__file__).resolve().parents[1] / "src")

CHILD = textwrap.dedent("""
    import resource, sys, torch
    from lgrnet.runtime import tune_cpu_allocator
    tuned = tune_cpu_allocator() if sys.argv[1] == "1" else False
    def faults():
        return resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    def work():  # 10 tensors of 8 MB alive at once, then all freed: a forward pass in miniature
        xs = [torch.ones(2 << 20) for _ in range(10)]
        del xs
    for _ in range(3):
        work()
    f0 = faults()
    for _ in range(10):
        work()
    print(tuned, (faults() - f0) / 10)
""")

glibc_only = pytest.mark.skipif(not sys.platform.startswith("linux") or platform.libc_ver()[0] != "glibc",
                                reason="the tuning applies to glibc malloc only")


def _run(tune: str, **env):
    out = subprocess.run([sys.executable, "-c", CHILD, tune], capture_output=True, text=True, check=True,
                         env={**os.environ, "PYTHONPATH": SRC, **env}).stdout.split()
    return out[0] == "True", float(out[1])


@glibc_only
def test_tuned_allocator_reuses_freed_memory():
    tuned, faults = _run("1")
    assert tuned
    # 80 MB allocated per iteration = 20,480 pages of 4 kB; reused memory faults (almost) none of them
    assert faults < 200, faults
    plain_tuned, plain_faults = _run("0")
    assert not plain_tuned
    print(f"page faults per 80 MB of tensors: glibc defaults {plain_faults:.0f}, tuned {faults:.0f}")


@glibc_only
def test_tuning_can_be_switched_off():
    tuned, _ = _run("1", LGRNET_MALLOC_TUNING="0")
    assert not tuned
