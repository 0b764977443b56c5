"""Time ``VideoPredictor.predict`` on a 60-frame clip (a preset's random model, the tiny one by default)
for two source trees (e.g. before and after a refactor), interleaved so that machine drift hits both alike.

    python benchmarks/predictor_overhead.py --a /path/to/old/src --b src --rounds 4
    python benchmarks/predictor_overhead.py --a /path/to/old/src --b src --preset sunseg_pvt --size 352 --window 6

Each round runs one child process per tree (A then B, B then A on alternate rounds); a child
builds the same seeded model and clip, warms up once, and reports the best of ``--reps`` timed
calls. Printed: per-tree medians over rounds and the ratio B / A.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys

CHILD = r"""
import json, sys, time
import numpy as np, torch
from lgrnet import LGRNet, VideoPredictor
torch.manual_seed(0); torch.set_num_threads(1)
model = LGRNet.from_preset("PRESET").eval()
rng = np.random.default_rng(0)
frames = rng.integers(0, 256, (60, 96, 128, 3), dtype=np.uint8)
p = VideoPredictor(model, size=SIZE, window=WINDOW)
p.predict(frames[:8])
best = float("inf")
for _ in range(REPS):
    t = time.perf_counter(); p.predict(frames); best = min(best, time.perf_counter() - t)
print(json.dumps({"file": __import__("lgrnet").__file__, "seconds": best}))
"""


def child(src: str, preset: str, size: int, window: int, reps: int) -> float:
    code = CHILD.replace("PRESET", preset).replace("SIZE", str(size)).replace("WINDOW", str(window)).replace("REPS", str(reps))
    env = dict(os.environ, PYTHONPATH=os.path.abspath(src), OMP_NUM_THREADS="1")
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])["seconds"]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--a", required=True, help="the baseline's src folder")
    ap.add_argument("--b", required=True, help="the candidate's src folder")
    ap.add_argument("--rounds", type=int, default=4)
    ap.add_argument("--reps", type=int, default=2)
    ap.add_argument("--preset", default="tiny")
    ap.add_argument("--size", type=int, default=64)
    ap.add_argument("--window", type=int, default=16, help="frames per window (60 frames: 5 windows)")
    args = ap.parse_args()
    times = {"a": [], "b": []}
    for r in range(args.rounds):
        for key in (("a", "b") if r % 2 == 0 else ("b", "a")):
            times[key].append(child(getattr(args, key), args.preset, args.size, args.window, args.reps))
    a, b = statistics.median(times["a"]), statistics.median(times["b"])
    print(json.dumps({"a_seconds": times["a"], "b_seconds": times["b"], "a_median": a, "b_median": b,
                      "ratio_b_over_a": b / a}, indent=1))


if __name__ == "__main__":
    main()
