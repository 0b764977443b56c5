"""Run the shipped demo model on the shipped demo clip, on the CPU, and score it.

The demo model is the `tiny` preset trained from scratch with `lgrnet train` on CVC-ClinicDB-612
Train + CVC-ColonDB-300 Train and selected on CVC-ClinicDB-612 Valid (scripts/train_best_model.sh, then
scripts/continue_best_model.sh at 224);
the clip is CVC-ClinicDB test sequence 24 (25 frames, research use only: see
lgrnet/assets/demo_clip/README.md), which the model never saw.

It writes, under OUT/demo_clip/: masks/, probs/ (one PNG per frame), overlay.mp4,
predictions.json/.csv (per-frame confidence, area, box) and scores.json (the clip's masks against
the ground truth, with the authors' protocol and the SUN-SEG toolbox protocol).

examples:
  lgrnet demo
  lgrnet demo --out /tmp/demo
"""
from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Dict

from ..errors import UserError
from .arguments import add_precision_argument, check_output_folder

DEFAULT_OUT = "lgrnet-demo"


def assets_dir() -> Path:
    return Path(__file__).resolve().parents[1] / "assets"


def demo_weights() -> Path:
    """The shipped model (``--weights demo`` in every command: :mod:`lgrnet.models.shipped`)."""
    from ..models.shipped import shipped_weights

    return shipped_weights()


def demo_clip() -> Path:
    return assets_dir() / "demo_clip"


def add_arguments(p) -> None:
    p.add_argument("--out", default=None, metavar="DIR",
                   help=f"where to write the results (default: ./{DEFAULT_OUT}, or ./{DEFAULT_OUT}-2, ... if it exists)")
    p.add_argument("--device", default="cpu", help="cpu (default), cuda or auto")
    p.add_argument("--weights", default=None, help=argparse.SUPPRESS)  # for tests: another model
    add_precision_argument(p)
    p.add_argument("--no-overlay", action="store_true", help="do not write overlay.mp4")


def free_folder(base: str) -> Path:
    """``base`` if it does not exist, else ``base-2``, ``base-3``, ...: a demo never overwrites."""
    path = Path(base)
    n = 2
    while path.exists():
        path = Path(f"{base}-{n}")
        n += 1
    return path


def score_result(result: Path, clip: Path) -> Dict[str, object]:
    """Score the result folder's masks and probability maps against the clip's GT masks."""
    from ..io.images import natural_sorted
    from ..results.folder import load_result
    from ..evaluation.scoring import FramePair, VideoPairs, score

    res = load_result(result)
    gts = {p.stem: p for p in (clip / "masks").iterdir() if p.suffix == ".png"}
    names = natural_sorted(list(gts))
    by_name = {Path(f["name"]).stem: f["index"] for f in res.meta["frames"]}
    missing = [n for n in names if n not in by_name]
    if missing:
        raise UserError(f"{result}: no prediction for frames {missing[:5]}")
    masks = VideoPairs("demo_clip", [FramePair(n, gts[n], res.mask_path(by_name[n])) for n in names])
    probs = VideoPairs("demo_clip", [FramePair(n, gts[n], res.prob_path(by_name[n])) for n in names])
    authors = score([masks], protocol="authors")
    sunseg = score([probs], protocol="sunseg")
    return {"authors": authors.to_json(), "sunseg": sunseg.to_json()}


def run(args) -> int:
    from ..runs.predict_folder import predict_to_folder
    from ..inference.predictor import VideoPredictor
    from ..files import write_text_atomic

    t0 = time.perf_counter()
    weights = Path(args.weights) if args.weights else demo_weights()
    clip = demo_clip()
    if not weights.is_file():
        raise UserError(f"{weights}: the demo weights are missing from this installation")
    if not (clip / "frames").is_dir():
        raise UserError(f"{clip}: the demo clip is missing from this installation")
    out = Path(args.out) if args.out else free_folder(DEFAULT_OUT)
    if args.out and (out / "demo_clip").exists():
        raise UserError(f"{out / 'demo_clip'}: exists; choose another --out (a demo never overwrites results)")
    check_output_folder(out)  # before the model loads

    predictor = VideoPredictor.from_pretrained(weights, device=args.device, precision=args.precision)  # at the size the weights record
    model = predictor.model
    h, w = predictor.size
    print(f"lgrnet demo: {model.config.preset or 'custom'} model ({sum(p.numel() for p in model.parameters()) / 1e6:.1f} M "
          f"parameters) on {predictor.device}, input {w}x{h}; clip {clip / 'frames'}")
    result = predict_to_folder(predictor, clip / "frames", out, name="demo_clip",
                               overlay=not args.no_overlay).path
    t_pred = time.perf_counter() - t0
    scores = score_result(result, clip)
    write_text_atomic(result / "scores.json", json.dumps(scores, indent=2) + "\n")
    a, s = scores["authors"]["metrics"], scores["sunseg"]["metrics"]
    n = scores["authors"]["frames"]
    print(f"segmented {n} frames in {t_pred:.1f} s; written to {result}/")
    print(f"  masks/ probs/ {'overlay.mp4 ' if not args.no_overlay else ''}predictions.json predictions.csv scores.json")
    print(f"scores against the clip's ground truth (authors' protocol, {n} frames): "
          f"Dice {a['Dice']:.3f}  IoU {a['IoU']:.3f}")
    print(f"SUN-SEG toolbox protocol: S_alpha {s['S_alpha']:.3f}  E_phi_mean {s['E_phi_mean']:.3f}  "
          f"F_w {s['F_w']:.3f}  Dice_mean {s['Dice_mean']:.3f}")
    print(f"review it in the browser: lgrnet view {result}")
    return 0
