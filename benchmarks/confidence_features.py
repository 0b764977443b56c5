"""More per-frame confidence candidates than benchmarks/confidence_auroc.py, scored against the
plain (no-TTA) prediction's frame Dice: AUROC for failed frames (Dice < 0.5).

    python -m benchmarks.confidence_features WEIGHTS OUT.json SPLIT [SPLIT ...]

Each video runs as one clip at the weights' size, one thread, all queries kept, once plainly and
once with TTA (four flips) used only as a probe. Besides confidence_auroc's candidates: mask area
(fraction of the frame), peak probability, the best other query's score (class x mean prob inside)
among those whose mask has IoU < 0.3 with the chosen one (rival), IoU with the class-weighted mean
of all queries' maps (consensus), the TTA views' agreement and the TTA mean's expected Dice (x class).
Writes every frame's scores and Dice to OUT.json and prints each score's AUROC per split.
Results: docs/inference.md, "The per-frame score".
"""
from __future__ import annotations

import json
import sys

import numpy as np
import torch

from benchmarks import confidence_candidates as C
from benchmarks.confidence_auroc import candidates
from lgrnet.data.datasets import find_videos
from lgrnet.io.images import read_frame, read_mask
from lgrnet.inference.clip import frames_to_tensor
from lgrnet.inference.postprocess import clip_maps
from lgrnet.inference.predictor import VideoPredictor
from lgrnet.metrics.reliability import failure_auroc, frame_dice


def mask_iou(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """IoU of bool masks (..., h, w) -> (...); 1 where both are empty."""
    inter = (a & b).flatten(-2).sum(-1).float()
    union = (a | b).flatten(-2).sum(-1).float()
    return torch.where(union > 0, inter / union.clamp(min=1), torch.ones_like(union))


def query_scores(out) -> dict:
    """rival and consensus (T,) from every query's logits (T, Nq, h, w)."""
    chosen = out.logits > 0                                     # (T, h, w)
    masks = out.all_logits > 0                                  # (T, Nq, h, w)
    iou = mask_iou(masks, chosen[:, None])                      # (T, Nq)
    class_scores = torch.as_tensor(out.all_class_scores)
    score = class_scores[None] * (out.all_logits.sigmoid() * masks).flatten(2).sum(2) / masks.flatten(2).sum(2).clamp(min=1)
    score[:, out.query] = 0
    weights = class_scores / class_scores.sum()
    consensus = (out.all_logits.sigmoid() * weights[None, :, None, None]).sum(1) > 0.5  # (T, h, w)
    return {"rival": (score * (iou < 0.3)).max(1).values, "consensus": mask_iou(chosen, consensus)}


def frame_scores(pred, x) -> dict:
    runner = pred.runner
    runner.all_queries, runner.keep_views, runner.tta = True, True, False
    out = runner(x)
    p = out.logits.sigmoid()
    scores = {k: torch.as_tensor(v) for k, v in candidates(out).items()}
    scores.update(query_scores(out), area=(out.logits > 0).flatten(1).float().mean(1), peak_prob=p.flatten(1).max(1).values)
    runner.tta = True
    probe = runner(x)
    scores.update({"tta_agreement": C.view_agreement(probe.view_logits),
                   "class*tta_expected_dice": probe.class_score * C.expected_dice(probe.logits)})
    return out, {k: v.float().numpy() for k, v in scores.items()}


def main() -> None:
    weights, out_path, splits = sys.argv[1], sys.argv[2], sys.argv[3:]
    torch.set_num_threads(1)
    pred = VideoPredictor.from_pretrained(weights, device="cpu")
    rows = []
    for split in splits:
        for vi, v in enumerate(find_videos(split, require_masks=True)):
            frames = [read_frame(f) for f in v.frames]
            out, scores = frame_scores(pred, frames_to_tensor(np.stack(frames), pred.size)[0])
            maps = clip_maps(out.logits, out.class_score, out.query, frames[0].shape[:2])
            dice = [frame_dice(m, read_mask(g)) for m, g in zip(maps.masks, v.masks)]
            rows += [{"split": split, "video": vi, "t": t, "dice": d, **{k: float(s[t]) for k, s in scores.items()}}
                     for t, d in enumerate(dice)]
    with open(out_path, "w") as f:
        json.dump(rows, f)
    for split in splits:
        sel = [r for r in rows if r["split"] == split]
        d = np.array([r["dice"] for r in sel])
        keys = [k for k in sel[0] if k not in ("split", "video", "t", "dice")]
        auroc = {k: round(failure_auroc(np.array([r[k] for r in sel]), d), 3) for k in keys}
        print(split, f"{len(d)} frames, {int((d < 0.5).sum())} failed", json.dumps(auroc), flush=True)


if __name__ == "__main__":
    main()
