"""Where a long clip's time goes: milliseconds per frame of each module of the model at two clip
lengths (forward hooks on the modules down to --depth), interleaved short, long, short, long; the
second pair is printed. Random weights and frames: the cost, not the output.

usage: python -m benchmarks.clip_length_profile [--preset sunseg_pvt] [--size 352] [--lengths 6 60]
       [--threads 1] [--depth 2]
"""
from __future__ import annotations

import argparse
import time
from collections import defaultdict
from typing import Dict


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--preset", default="sunseg_pvt")
    ap.add_argument("--size", type=int, default=352)
    ap.add_argument("--lengths", type=int, nargs=2, default=[6, 60])
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--depth", type=int, default=2)
    args = ap.parse_args()

    import torch

    from lgrnet import LGRNet

    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    model = LGRNet.from_preset(args.preset).eval()
    spent: Dict[str, float] = defaultdict(float)

    def hook(module: torch.nn.Module, name: str, depth: int) -> None:
        for child_name, child in module.named_children():
            full = f"{name}.{child_name}" if name else child_name
            start: Dict[str, float] = {}
            child.register_forward_pre_hook(lambda m, a, st=start: st.__setitem__("t", time.perf_counter()))
            child.register_forward_hook(
                lambda m, a, o, st=start, key=full: spent.__setitem__(key, spent[key] + time.perf_counter() - st["t"]))
            if depth > 1:
                hook(child, full, depth - 1)

    hook(model, "", args.depth)
    short, long = args.lengths
    per_frame: Dict[int, Dict[str, float]] = {}
    for t in (short, long, short, long):
        spent.clear()
        video = torch.rand(1, t, 3, args.size, args.size)
        with torch.inference_mode():
            t0 = time.perf_counter()
            model(video)
            total = time.perf_counter() - t0
        per_frame[t] = {**{k: v / t * 1000 for k, v in spent.items()}, "(whole forward)": total / t * 1000}
    print(f"{args.preset} {args.size}px, {args.threads} thread(s): ms per frame")
    for key, a in per_frame[short].items():
        b = per_frame[long].get(key, 0.0)
        if max(a, b) >= 1.0:
            print(f"{key:48s} T={short} {a:8.1f}  T={long} {b:8.1f}  x{b / a:.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
