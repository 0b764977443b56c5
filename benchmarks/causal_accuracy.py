"""Causal vs offline accuracy: `lgrnet evaluate` offline and `lgrnet evaluate --causal` for several
window/stride settings on one split, both protocols; prints a markdown table (docs/live.md).

    OMP_NUM_THREADS=1 nice -n 19 python benchmarks/causal_accuracy.py \
        --weights demo --data /work/shared/data \
        --split CVC-ClinicDB-612/Test --grid 2:1 4:1 4:2 8:1 8:4 --out /tmp/causal

Each run's folder is OUT/offline or OUT/causal-K<k>-S<s> (reused when its authors.json exists, so a
killed run continues). The figures: the authors' Dice on the binary masks, and the SUN-SEG
toolbox's mean Dice and S-alpha on the probability maps.
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path


def evaluate(args, out: Path, extra) -> dict:
    if not (out / "authors.json").is_file():
        cmd = [sys.executable, "-m", "lgrnet", "evaluate", "--weights", args.weights, "--data", args.data,
               "--split", args.split, "--out", str(out), "--force", "--quiet", *extra]
        if args.size:
            cmd += ["--size", str(args.size)]
        subprocess.run(cmd, check=True)
    authors = json.loads((out / "authors.json").read_text())["metrics"]
    sunseg = json.loads((out / "sunseg.json").read_text())["metrics"]
    return {"dice": authors["Dice"], "sunseg_dice": sunseg["Dice_mean"], "s_alpha": sunseg["S_alpha"]}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--weights", required=True)
    p.add_argument("--data", required=True)
    p.add_argument("--split", default="CVC-ClinicDB-612/Test")
    p.add_argument("--size", type=int, default=None, help="model input size (default: the size the weights record)")
    p.add_argument("--grid", nargs="+", default=["2:1", "4:1", "4:2", "8:1", "8:4"], metavar="K:S")
    p.add_argument("--out", required=True, type=Path)
    args = p.parse_args(argv)
    rows = [("offline (whole video)", "-", evaluate(args, args.out / "offline", []))]
    for item in args.grid:
        k, s = (int(v) for v in item.split(":"))
        rows.append((str(k), str(s), evaluate(args, args.out / f"causal-K{k}-S{s}",
                                              ["--causal", "--window", str(k), "--stride", str(s)])))
    base = rows[0][2]["dice"]
    print(f"{args.split}, {Path(args.weights).name}\n")
    print("| window K | stride S | authors' Dice | vs offline | SUN-SEG Dice | S-alpha |")
    print("|---|---|---|---|---|---|")
    for k, s, m in rows:
        delta = "" if k.startswith("offline") else f"{m['dice'] - base:+.4f}"
        print(f"| {k} | {s} | {m['dice']:.4f} | {delta} | {m['sunseg_dice']:.4f} | {m['s_alpha']:.4f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
