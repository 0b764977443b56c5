"""Forward time and peak memory of one model on this CPU (issue 2's benchmark).

Runs in a fresh process per measurement so that peak RSS belongs to that forward alone.

usage: python -m benchmarks.forward [--preset sunseg_pvt] [--frames 6] [--size 352] [--threads 2] [--repeat 3]
"""
from __future__ import annotations

import argparse
import json
import resource
import statistics
import sys
import time


from benchmarks.run import rss_mib  # one helper for both benchmark scripts


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--preset", default="sunseg_pvt")
    ap.add_argument("--frames", type=int, default=6)
    ap.add_argument("--size", type=int, default=352)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--json", default=None)
    args = ap.parse_args()

    import torch

    from lgrnet import LGRNet

    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    model = LGRNet.from_preset(args.preset).eval()
    video = torch.rand(1, args.frames, 3, args.size, args.size)
    base = rss_mib()
    times = []
    with torch.inference_mode():
        for i in range(args.repeat + 1):
            t = time.perf_counter()
            model(video)
            if i:  # the first run warms up
                times.append(time.perf_counter() - t)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    med = statistics.median(times)
    res = {"preset": args.preset, "frames": args.frames, "size": args.size, "threads": args.threads,
           "seconds_median": med, "seconds_all": times, "frames_per_s": args.frames / med,
           "peak_rss_mib": peak, "rss_before_forward_mib": base, "torch": torch.__version__}
    print(f"{args.preset} T={args.frames} {args.size}x{args.size} threads={args.threads}: "
          f"forward {med:.3f} s (median of {args.repeat}; {args.frames / med:.2f} frames/s), "
          f"peak RSS {peak:.0f} MiB (model + input before forward: {base:.0f} MiB)")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(res, f, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
