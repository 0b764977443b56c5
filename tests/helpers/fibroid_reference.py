"""The authors' UFUV evaluator (``fibroid_other_medi``) written with segmentation_models.pytorch's
metrics, the library they copied theirs from: the independent reference of the fibroid protocol's tests."""
from __future__ import annotations

import numpy as np
import torch
from segmentation_models_pytorch import metrics as smp_metrics


def smp_reference(preds, gts):
    """The authors' ``fibroid_other_medi`` written with smp: per-frame get_stats(mode="binary") and
    "micro" IoU / Dice (smp's f1_score is their ``dice``: 2 TP / (2 TP + FP + FN)), averaged with
    torch's mean; then the stats of all frames stacked (N, 1, H, W) for overall_iou ("micro"), recall and
    precision ("micro-imagewise", zero_division 1), and F = 2PR / (P + R)."""
    iou, dice = [], []
    for p, g in zip(preds, gts):
        tp, fp, fn, tn = smp_metrics.get_stats(torch.from_numpy(p.astype(np.int64))[None, None],
                                               torch.from_numpy(g.astype(np.int64))[None, None], mode="binary")
        iou.append(smp_metrics.iou_score(tp, fp, fn, tn, reduction="micro"))
        dice.append(smp_metrics.f1_score(tp, fp, fn, tn, reduction="micro"))
    stacked = [torch.from_numpy(np.stack(x).astype(np.int64))[:, None] for x in (preds, gts)]
    tp, fp, fn, tn = smp_metrics.get_stats(*stacked, mode="binary")
    recall = smp_metrics.recall(tp, fp, fn, tn, reduction="micro-imagewise")
    precision = smp_metrics.precision(tp, fp, fn, tn, reduction="micro-imagewise")
    return {"dice": float(torch.tensor(dice).mean()), "mean_iou": float(torch.tensor(iou).mean()),
            "overall_iou": float(smp_metrics.iou_score(tp, fp, fn, tn, reduction="micro")),
            "recall": float(recall), "precision": float(precision),
            "F": float(2 * precision * recall / (precision + recall))}
