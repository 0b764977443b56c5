"""Each recipe option's effect on CVC-ClinicDB-612 Valid Dice at the same short budget.

    python scripts/ablate_recipe.py DATA_ROOT [--steps 600] [--out runs/ablation] [--only NAME ...]

Every variant trains the `tiny` preset from scratch with the settings of scripts/train_best_model.sh
but for the option(s) it names, for ``--steps`` steps (the schedule spans those steps), on
CVC-ClinicDB-612 Train + CVC-ColonDB-300 Train, validating on CVC-ClinicDB-612 Valid at the end and
every ``steps // 3``. It prints (and writes to OUT/ablation.md) a table: variant, best Valid Dice,
the step of the best, wall time. A variant whose run folder exists is resumed, so the script can be
stopped and restarted.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time

COMMON = ["train.seed=2024", "train.image_size=192", "train.multiscale_sizes=[160,192,224]", "train.clip_len=4",
          "train.batch_size=2", "train.reference_stride=1", "train.num_workers=0"]
PHOTO = ["train.aug_brightness=0.2", "train.aug_contrast=0.2", "train.aug_saturation=0.2", "train.aug_hue=0.02",
         "train.aug_blur_prob=0.2", "train.aug_noise_std=0.02", "train.aug_prob=0.8"]
GEOM = ["train.aug_scale=0.15", "train.aug_rotate=15", "train.aug_translate=0.08", "train.aug_prob=0.8"]


def variants(steps: int) -> dict:
    cosine = ["train.lr_schedule=cosine", f"train.warmup_iters={max(1, steps // 20)}", "train.min_lr_ratio=0.01"]
    multistep = [f"train.lr_milestones=[{int(steps * 0.66)},{int(steps * 0.86)}]"]
    ema = ["train.ema_decay=0.99" if steps < 2000 else "train.ema_decay=0.998"]
    return {
        "published (multistep, flips only)": multistep,
        "+ photometric": multistep + PHOTO,
        "+ geometric": multistep + GEOM,
        "+ cosine + warm-up": cosine,
        "+ weight EMA": multistep + ema,
        "all (train_best_model.sh)": cosine + ema + PHOTO + GEOM,
    }


def best_of(run: str):
    best, last = None, None
    with open(os.path.join(run, "log.jsonl"), encoding="utf-8") as f:
        for line in f:
            rec = json.loads(line)
            if rec.get("event") == "val":
                last = rec
                if best is None or rec["val_dice"] > best["val_dice"]:
                    best = rec
    return best, last


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("data")
    ap.add_argument("--steps", type=int, default=600)
    ap.add_argument("--out", default="runs/ablation")
    ap.add_argument("--only", nargs="+", help="run only the variants whose name contains one of these words")
    args = ap.parse_args()
    env = dict(os.environ, OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")
    rows = []
    for i, (name, extra) in enumerate(variants(args.steps).items()):
        if args.only and not any(w in name for w in args.only):
            continue
        run = os.path.join(args.out, f"v{i}")
        cmd = [sys.executable, "-m", "lgrnet.cli", "train", "--preset", "tiny",
               "--data", os.path.join(args.data, "CVC-ClinicDB-612", "Train"),
               "--data", os.path.join(args.data, "CVC-ColonDB-300", "Train"),
               "--val", os.path.join(args.data, "CVC-ClinicDB-612", "Valid"), "--out", run, "--progress", "off",
               "--no-tensorboard", *COMMON, f"train.max_iters={args.steps}", f"train.eval_every={max(1, args.steps // 3)}",
               f"train.checkpoint_every={max(1, args.steps // 3)}", *extra]
        if os.path.isfile(os.path.join(run, "last.pt")):
            cmd.insert(cmd.index("--out"), "--resume")
        t0 = time.time()
        subprocess.run(cmd, env=env, check=True)
        best, last = best_of(run)
        rows.append((name, best["val_dice"], best["step"], last["val_dice"], time.time() - t0))
        print(f"{name}: best Valid Dice {best['val_dice']:.4f} at step {best['step']}", flush=True)
    lines = [f"| variant ({args.steps} steps) | best Valid Dice | at step | last Valid Dice | wall time (s) |",
             "|---|---|---|---|---|"]
    lines += [f"| {n} | {b:.4f} | {s} | {la:.4f} | {t:.0f} |" for n, b, s, la, t in rows]
    os.makedirs(args.out, exist_ok=True)
    with open(os.path.join(args.out, "ablation.md"), "w", encoding="utf-8") as f:
        f.write("\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
