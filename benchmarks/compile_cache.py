"""What `--compile` costs on a first and on a later run (issue 34: "a one-time compile, cached and
reused across processes, the second run's start-up reported").

Runs the same small prediction in ``--runs`` fresh processes one after the other, all with one empty
lgrnet cache folder (``LGRNET_CACHE_DIR``, so Inductor's cache lands in ``<it>/inductor``, see
``lgrnet.inference.compile_cache``): ``VideoPredictor(compile=True)`` of ``--preset`` (random
weights) on a synthetic video of ``--frames`` frames in windows of ``--window``; each process
reports the seconds of its first compiled call (``settings()["compile_seconds"]``), whether it
found the cache warm, its wall time, and the compiled windows' frames/s after the first. One more
process runs the same prediction eagerly, for the wall time a run without ``--compile`` takes.

    python -m benchmarks.compile_cache [--preset tiny] [--size 64] [--window 4] [--frames 16] [--runs 2] [--threads 2]
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time


def child(args: argparse.Namespace) -> None:
    import numpy as np
    import torch

    from lgrnet import LGRNet, VideoPredictor

    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    model = LGRNet.from_preset(args.preset).eval()
    frames = (np.random.default_rng(0).random((args.frames, args.size, args.size, 3)) * 255).astype(np.uint8)
    p = VideoPredictor(model, size=args.size, window=args.window, overlap=0, compile=args.compile)
    t0 = time.perf_counter()
    p.predict(frames)
    first = time.perf_counter() - t0
    t0 = time.perf_counter()
    p.predict(frames)
    again = time.perf_counter() - t0
    s = p.settings()
    print(json.dumps({"first_predict_s": round(first, 2), "fps_after": round(args.frames / again, 2),
                      "compile_seconds": s.get("compile_seconds"), "compile_cache": s.get("compile_cache")}))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--preset", default="tiny")
    ap.add_argument("--size", type=int, default=64)
    ap.add_argument("--window", type=int, default=4)
    ap.add_argument("--frames", type=int, default=16)
    ap.add_argument("--runs", type=int, default=2)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--compile", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        return child(args)
    common = ["--preset", args.preset, "--size", str(args.size), "--window", str(args.window),
              "--frames", str(args.frames), "--threads", str(args.threads)]
    with tempfile.TemporaryDirectory() as cache:
        env = {**os.environ, "LGRNET_CACHE_DIR": cache, "OMP_NUM_THREADS": str(args.threads)}
        env.pop("TORCHINDUCTOR_CACHE_DIR", None)
        print(f"{args.preset} at {args.size}, windows of {args.window}, {args.frames} frames, {args.threads} thread(s); "
              f"cache {cache}")
        for run in ["eager"] + [f"compiled {i + 1}" for i in range(args.runs)]:
            t0 = time.perf_counter()
            out = subprocess.run([sys.executable, "-m", "benchmarks.compile_cache", "--child", *common]
                                 + ([] if run == "eager" else ["--compile"]),
                                 env=env, capture_output=True, text=True, check=True)
            wall = time.perf_counter() - t0
            rec = json.loads(out.stdout.strip().splitlines()[-1])
            print(f"{run:12s} process wall {wall:7.1f} s  first predict {rec['first_predict_s']:7.1f} s  "
                  f"compile {rec['compile_seconds']}  cache {rec['compile_cache']}  then {rec['fps_after']} frames/s")


if __name__ == "__main__":
    main()
