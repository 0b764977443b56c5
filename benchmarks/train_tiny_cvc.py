"""Benchmark (not a CI test): train the ``tiny`` preset from scratch on CVC-ClinicDB-612/Train and
report the held-out validation Dice (CVC-ClinicDB-612/Valid) against wall time.

Target: Dice >= 0.5 within 30 minutes on a 2-core CPU. Everything goes through the product's own
training entry point (:func:`lgrnet.training.trainer.train`), with these CPU settings on top of the tiny
preset (why: see docs/training.md, "CPU benchmark"):

    train.image_size=192 train.multiscale_sizes=[160,192,224] train.clip_len=4 train.batch_size=2
    train.reference_stride=1 train.max_iters=3000 train.lr_milestones=[2000,2600]
    train.eval_every=150 train.checkpoint_every=500 train.num_workers=0

usage:
    python benchmarks/train_tiny_cvc.py [--data /work/shared/data] [--minutes 30] [--out DIR]
                                        [--threads 2] [key=value ...]

It prints the Dice-vs-wall-time curve and writes it to ``<out>/curve.csv`` and ``<out>/curve.json``
(wall time counts everything since training started, validation included). ``--resume`` continues
a stopped run (the time limit then applies to the new session only).
"""
from __future__ import annotations

import argparse
import csv
import json
import os
import sys
import time
from pathlib import Path

import torch

from lgrnet.config import get_preset, override
from lgrnet.training.trainer import TrainOptions, train

CPU_SETTINGS = [
    "train.image_size=192",
    "train.multiscale_sizes=[160,192,224]",
    "train.clip_len=4",
    "train.batch_size=2",
    "train.reference_stride=1",
    "train.max_iters=3000",
    "train.lr_milestones=[2000,2600]",
    "train.eval_every=150",
    "train.checkpoint_every=500",
    "train.num_workers=0",
]
TARGET = 0.5


def find_data(arg: str | None) -> Path:
    for c in [arg, os.environ.get("LGRNET_SHARED") and os.path.join(os.environ["LGRNET_SHARED"], "data"),
              "/work/shared/data"]:
        if c and (Path(c) / "CVC-ClinicDB-612" / "Train").is_dir():
            return Path(c)
    sys.exit("CVC-ClinicDB-612 not found: pass --data DIR (the folder holding CVC-ClinicDB-612/)")


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--data", help="folder holding CVC-ClinicDB-612/{Train,Valid}")
    p.add_argument("--minutes", type=float, default=30.0, help="wall-time budget (default 30)")
    p.add_argument("--out", default=f"runs/bench-tiny-cvc-{time.strftime('%Y%m%d-%H%M%S')}")
    p.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    p.add_argument("--resume", action="store_true")
    p.add_argument("overrides", nargs="*", help="extra config overrides (key=value)")
    args = p.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    data = find_data(args.data)
    cfg = override(get_preset("tiny"), CPU_SETTINGS + list(args.overrides))
    opts = TrainOptions(data=[str(data / "CVC-ClinicDB-612" / "Train")], val=[str(data / "CVC-ClinicDB-612" / "Valid")],
                        out_dir=args.out, resume=args.resume, time_limit_s=args.minutes * 60.0, tensorboard=False,
                        progress=None, command=sys.argv)
    print(f"tiny preset from scratch, {torch.get_num_threads()} threads, budget {args.minutes:g} min, run folder {args.out}",
          file=sys.stderr)
    summary = train(cfg, opts)

    records = [json.loads(line) for line in open(os.path.join(args.out, "log.jsonl"), encoding="utf-8") if line.strip()]
    vals = [r for r in records if r["event"] == "val"]
    steps = [r for r in records if r["event"] == "train"]
    curve = [{"minutes": round(r["elapsed"] / 60, 2), "step": r["step"], "val_dice": round(r["val_dice"], 4)} for r in vals]
    with open(os.path.join(args.out, "curve.csv"), "w", newline="", encoding="utf-8") as f:
        w = csv.DictWriter(f, fieldnames=["minutes", "step", "val_dice"])
        w.writeheader()
        w.writerows(curve)
    reached = next((c for c in curve if c["val_dice"] >= TARGET), None)
    result = {"curve": curve, "best": summary["best"], "steps": summary["step"], "minutes": round(summary["seconds"] / 60, 2),
              "sec_per_step_median": sorted(s["sec_per_step"] for s in steps)[len(steps) // 2] if steps else None,
              "target": TARGET, "reached_target_at": reached, "threads": torch.get_num_threads(),
              "settings": CPU_SETTINGS + list(args.overrides), "load_average_end": os.getloadavg()}
    with open(os.path.join(args.out, "curve.json"), "w", encoding="utf-8") as f:
        json.dump(result, f, indent=2)
    print("\n minutes   step   val Dice")
    for c in curve:
        print(f"{c['minutes']:8.2f} {c['step']:6d}   {c['val_dice']:.4f}")
    best = summary["best"]
    print(f"\nbest Dice {best['val_dice']:.4f} at step {best['step']}" if best else "\nno validation ran")
    print(f"target Dice >= {TARGET}: " + (f"reached after {reached['minutes']} min (step {reached['step']})" if reached
                                         else "not reached"))
    print(f"load average at the end: {', '.join(f'{x:.2f}' for x in os.getloadavg())}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
