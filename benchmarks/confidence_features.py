"""More per-frame confidence candidates, and their AUROC for failed frames (frame Dice < 0.5).

    PYTHONPATH=src python benchmarks/confidence_features.py WEIGHTS OUT.json SPLIT [SPLIT ...]

Each video runs as one clip at the weights' size, one thread, without and with TTA (four flips), all
queries kept. Per frame: class score (cs), expected Dice (ed), mean prob inside (mp), neighbour
agreement (temp), mask area (area) and area over the video's median (area_rel), probability mass
outside the mask (out_mass), peak probability (pmax), the best other query's score whose mask
overlaps the chosen one by IoU < 0.3 (rival), the second-best class score (cs2), IoU with the
class-weighted mean of all queries' masks (consensus), TTA view agreement (tta) and the TTA mean's
expected Dice (tta_ed). Writes every frame's features and Dice to OUT.json, then prints the AUROC
of each (and of a few products) per split. Results: docs/inference.md, "The per-frame score".
"""
import json
import sys

import numpy as np
import torch

from lgrnet.data.datasets import find_videos, read_frame, read_mask
from lgrnet.engine import confidence as C
from lgrnet.engine.inference import frames_to_tensor
from lgrnet.engine.postprocess import clip_maps
from lgrnet.engine.predictor import VideoPredictor
from lgrnet.metrics.reliability import failure_auroc, frame_dice
torch.set_num_threads(1)
weights, out_path = sys.argv[1], sys.argv[2]
splits = sys.argv[3:]
pred = VideoPredictor.from_pretrained(weights, device="cpu")
rows = []
for split in splits:
    for vi, v in enumerate(find_videos(split, require_masks=True)):
        frames = [read_frame(f) for f in v.frames]
        x = frames_to_tensor(np.stack(frames), pred.size)[0]
        feats = {}
        for tta in (False, True):
            pred.runner.tta = tta
            pred.runner.keep_views = True
            pred.runner.all_queries = True
            out = pred.runner(x)
            lg = out.logits
            if not tta:
                maps = clip_maps(out.logits, out.class_score, out.query, frames[0].shape[:2])
                dice = np.array([frame_dice(m, read_mask(g)) for m, g in zip(maps.masks, v.masks)])
                T = lg.shape[0]
                m = lg > 0
                area = m.flatten(1).float().mean(1)
                feats["cs"] = np.full(T, out.class_score)
                feats["ed"] = C.expected_dice(lg).numpy()
                feats["mp"] = C.mean_prob_inside(lg).numpy()
                feats["temp"] = C.temporal_agreement(lg).numpy()
                feats["area"] = area.numpy()
                med = area.median().item()
                feats["area_rel"] = (area / max(med, 1e-6)).numpy()
                p = lg.sigmoid()
                feats["out_mass"] = ((p * (~m)).flatten(1).sum(1) / (p.flatten(1).sum(1) + 1e-6)).numpy()
                feats["pmax"] = p.flatten(1).max(1).values.numpy()
                # rivals: other queries
                al = out.all_logits  # (T, Nq, h, w)
                acs = torch.as_tensor(out.all_class_scores)
                am = al > 0
                inter = (am & m[:, None]).flatten(2).sum(2).float()
                union = (am | m[:, None]).flatten(2).sum(2).float()
                iou = inter / union.clamp(min=1)
                amp = (al.sigmoid() * am).flatten(2).sum(2) / am.flatten(2).sum(2).clamp(min=1)
                sc = acs[None] * amp
                sc[:, out.query] = 0
                rival = (sc * (iou < 0.3)).max(1).values
                feats["rival"] = rival.numpy()
                feats["cs2"] = np.full(T, float(np.sort(out.all_class_scores)[-2]))
                # weighted query consensus: IoU of chosen with class-weighted mean of all masks
                w = acs / acs.sum()
                cons = (al.sigmoid() * w[None, :, None, None]).sum(1) > 0.5
                feats["consensus"] = C._iou(m, cons).numpy()
            else:
                feats["tta"] = C.view_agreement(out.view_logits).numpy()
                feats["tta_ed"] = C.expected_dice(lg).numpy()
        for t in range(len(dice)):
            rows.append({"split": split, "video": vi, "t": t, "dice": dice[t], **{k: float(f[t]) for k, f in feats.items()}})
        print(split, vi, len(dice), round(dice.mean(), 3), flush=True)
with open(out_path, "w") as f:
    json.dump(rows, f)


# AUROC per split
splits = sorted({r["split"] for r in rows})
keys = [k for k in rows[0] if k not in ("split", "video", "t", "dice")]
def arr(split, k): return np.array([r[k] for r in rows if r["split"] == split])
derived = {"cs*ed": lambda s: arr(s,"cs")*arr(s,"ed"), "cs*ed*tta": lambda s: arr(s,"cs")*arr(s,"ed")*arr(s,"tta"),
           "ed*(1-rival)": lambda s: arr(s,"ed")*(1-arr(s,"rival")), "cs*ed*consensus": lambda s: arr(s,"cs")*arr(s,"ed")*arr(s,"consensus"),
           "cs*tta_ed": lambda s: arr(s,"cs")*arr(s,"tta_ed"), "neg_area_rel_dev": lambda s: -np.abs(np.log(arr(s,"area_rel")+1e-3))}
for s in splits:
    d = arr(s, "dice")
    print(s.split("/")[-2:], "frames", len(d), "failed", int((d<0.5).sum()))
    res = {k: round(failure_auroc(arr(s,k), d), 3) for k in keys}
    res.update({k: round(failure_auroc(f(s), d), 3) for k, f in derived.items()})
    print(res)
