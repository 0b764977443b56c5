"""AUROC of per-frame confidence candidates for failed frames (frame Dice < 0.5).

    python -m benchmarks.confidence_auroc --weights demo \\
        --split DATA/CVC-ClinicDB-612/Test --split DATA/CVC-ColonDB-300/Train

Each video runs as one clip at the size the weights record, without and with --tta; the candidates
(``benchmarks/confidence_candidates.py``) are computed from the chosen query's logits, the frame Dice from
the post-processed mask at the frame's size against the ground truth (> 128).
"""
from __future__ import annotations

import argparse
import json

import numpy as np
import torch

from lgrnet.data.datasets import find_videos
from lgrnet.io.images import read_frame, read_mask
from benchmarks import confidence_candidates as C
from lgrnet.inference.clip import frames_to_tensor
from lgrnet.inference.postprocess import clip_mask_score, clip_maps, clip_median, mean_prob_inside
from lgrnet.inference.predictor import VideoPredictor
from lgrnet.metrics.reliability import failure_auroc, frame_dice


def candidates(out) -> dict:
    lg, cs = out.logits, out.class_score
    ed, mp, tmp = C.expected_dice(lg), mean_prob_inside(lg), C.temporal_agreement(lg)
    has_mask = (lg > 0).flatten(1).any(1)
    c = {"class*mean_prob*clip_mask_score (reported score)": cs * mp * clip_mask_score(lg),
         "class*mean_prob (Mask2Former's score)": cs * mp, "mean_prob": mp, "clip_mask_score": clip_mask_score(lg).expand_as(mp),
         "expected_dice": ed, "class*expected_dice": cs * ed,
         "class*expected_dice*clip median": cs * ed * clip_median(ed, has_mask),
         "temporal": tmp, "class*expected_dice*temporal": cs * ed * tmp}
    if out.view_logits is not None:
        va = C.view_agreement(out.view_logits)
        c["tta_agreement"] = va
        c["class*expected_dice*tta_agreement"] = cs * ed * va
    return {k: v.numpy() for k, v in c.items()}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--weights", required=True)
    ap.add_argument("--split", action="append", required=True)
    ap.add_argument("--tta", choices=("off", "on", "both"), default="both")
    args = ap.parse_args()
    torch.set_num_threads(2)
    pred = VideoPredictor.from_pretrained(args.weights, device="cpu")
    report = {}
    for split in args.split:
        for tta in {"off": (False,), "on": (True,), "both": (False, True)}[args.tta]:
            pred.runner.tta = tta
            pred.runner.keep_views = True
            scores, dice = {}, []
            for v in find_videos(split, require_masks=True):
                frames = [read_frame(f) for f in v.frames]
                x = frames_to_tensor(np.stack(frames), pred.size)[0]
                out = pred.runner(x)
                maps = clip_maps(out.logits, out.class_score, out.query, frames[0].shape[:2])
                dice += [frame_dice(m, read_mask(g)) for m, g in zip(maps.masks, v.masks)]
                for k, s in candidates(out).items():
                    scores.setdefault(k, []).extend(s.tolist())
            d = np.array(dice)
            res = {"frames": len(d), "failed": int((d < 0.5).sum()), "mean_dice": round(float(d.mean()), 4),
                   "auroc": {k: round(failure_auroc(s, d), 4) for k, s in scores.items()}}
            report[f"{split} tta={tta}"] = res
            print(split, "tta" if tta else "no tta", json.dumps(res, indent=1), flush=True)


if __name__ == "__main__":
    main()
