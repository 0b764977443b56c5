"""A/B of lgrnet.runtime.tune_cpu_allocator: glibc malloc's defaults vs the tuned settings.

Each setting runs in its own process (the settings are process-wide): ``--reps`` forwards of a
6-frame clip, then one forward of a ``--long``-frame clip, of ``--preset`` at ``--size``; printed:
wall ms/frame, kernel (system) ms/frame, minor page faults per frame and peak RSS.

    python benchmarks/allocator.py                      # sunseg_pvt, 352 px, 2 threads (~2 min)
"""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

CHILD = r'''
import resource, sys, time, torch
from lgrnet.runtime import tune_cpu_allocator
tuned = tune_cpu_allocator() if sys.argv[1] == "1" else False
preset, size, reps, long_T, threads = sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5]), int(sys.argv[6])
from lgrnet import LGRNet
torch.set_num_threads(threads)
torch.manual_seed(0)
model = LGRNet.from_preset(preset).eval()
def usage():
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_stime, r.ru_minflt
rows = []
for T, n in ((6, 1), (6, reps), (long_T, 1)):
    video = torch.rand(1, T, 3, size, size)
    s0, f0 = usage()
    t = time.perf_counter()
    with torch.inference_mode():
        for _ in range(n):
            model(video)
    wall = time.perf_counter() - t
    s1, f1 = usage()
    frames = T * n
    rows.append((T, n, 1000 * wall / frames, 1000 * (s1 - s0) / frames, (f1 - f0) / frames,
                 resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024))
label = "tuned" if tuned else "glibc defaults"
for T, n, ms, sys_ms, faults, rss in rows[1:]:  # rows[0] is the warm-up
    print(f"{label:15s} T={T:<4d} x{n:<2d} {ms:7.1f} ms/frame  kernel {sys_ms:5.1f} ms/frame  "
          f"faults {faults:8.0f}/frame  peak RSS {rss:6.0f} MB", flush=True)
'''


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--preset", default="sunseg_pvt")
    ap.add_argument("--size", type=int, default=352)
    ap.add_argument("--reps", type=int, default=6)
    ap.add_argument("--long", type=int, default=120)
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    env = dict(os.environ, PYTHONPATH=str(REPO / "src") + os.pathsep + os.environ.get("PYTHONPATH", ""))
    for tune in ("0", "1"):
        subprocess.run([sys.executable, "-c", CHILD, tune, args.preset, str(args.size), str(args.reps),
                        str(args.long), str(args.threads)], env=env, check=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
