"""The LGRNet authors' UFUV (uterine fibroid) evaluator: their ``fibroid_other_medi``.

Their evaluator scores, per frame, the binary mask of the best-scoring query against the GT
(``convert('L') > 0``) with the confusion-matrix metrics they copied from segmentation_models.pytorch
(``get_stats(mode="binary")``: one image, one class per frame). With, per frame f, TP_f, FP_f, FN_f
counted over its pixels:

    dice        = mean_f  2 TP_f / (2 TP_f + FP_f + FN_f)     per-frame Dice, reduction "micro"
    mean_iou    = mean_f  TP_f / (TP_f + FP_f + FN_f)         per-frame IoU, reduction "micro"
    overall_iou = sum TP / (sum TP + sum FP + sum FN)         every pixel of every frame pooled ("J")
    recall      = mean_f  TP_f / (TP_f + FN_f)                reduction "micro-imagewise"
    precision   = mean_f  TP_f / (TP_f + FP_f)                reduction "micro-imagewise"
    F           = 2 precision recall / (precision + recall)   of the two means

Means run over all frames of all videos pooled (long videos weigh more). Zero divisions follow the
library exactly: the "micro" reduction does not replace them, so a frame whose prediction and GT are
both empty has an undefined (NaN) Dice and IoU, and ``dice`` and ``mean_iou`` are then NaN for the whole
set (the authors' ``torch.tensor(...).mean()``); "micro-imagewise" replaces 0/0 by 1 (``zero_division=1``),
so a frame with an empty GT has recall 1 and one with an empty prediction has precision 1; ``F`` is NaN
when precision and recall are both 0. Unlike the authors' (float32, all masks stacked in memory, which
needs every frame to have one size), this module keeps only the counts and computes in float64.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Dict, Iterable

import numpy as np

#: The keys of the authors' result dict, in the order they list them after ``mean_iou``.
METRICS = ("dice", "mean_iou", "overall_iou", "recall", "precision", "F")


@dataclass
class Counts:
    """Per-frame confusion counts, int64 arrays of shape (N,) in frame order: tp, fp, fn, tn."""

    tp: np.ndarray
    fp: np.ndarray
    fn: np.ndarray
    tn: np.ndarray

    @property
    def frames(self) -> int:
        return int(self.tp.shape[0])

    @staticmethod
    def concat(parts: Iterable["Counts"]) -> "Counts":
        parts = list(parts)
        if not parts:
            return Counts(*(np.zeros(0, np.int64) for _ in range(4)))
        return Counts(*(np.concatenate([getattr(p, k) for p in parts]) for k in ("tp", "fp", "fn", "tn")))


def confusion(pred: np.ndarray, gt: np.ndarray) -> Counts:
    """Counts of binary masks. ``pred``, ``gt``: bool (H, W) for one frame or (N, H, W) for N frames
    of one size (``get_stats(mode="binary")`` on (N, 1, H, W))."""
    if pred.shape != gt.shape:
        raise ValueError(f"prediction {pred.shape} and GT {gt.shape} differ in size")
    pred, gt = pred.astype(bool, copy=False), gt.astype(bool, copy=False)
    if pred.ndim == 2:
        pred, gt = pred[None], gt[None]
    n = pred.shape[0]
    p, g = pred.reshape(n, -1), gt.reshape(n, -1)
    tp = np.count_nonzero(p & g, axis=1).astype(np.int64)
    fp = np.count_nonzero(p, axis=1).astype(np.int64) - tp
    fn = np.count_nonzero(g, axis=1).astype(np.int64) - tp
    tn = np.int64(p.shape[1]) - tp - fp - fn
    return Counts(tp, fp, fn, tn)


def _ratio(num: np.ndarray, den: np.ndarray, zero_division: float = np.nan) -> np.ndarray:
    """num / den in float64, ``zero_division`` where den == 0 (NaN: left undefined, as "micro" does)."""
    num, den = np.asarray(num, np.float64), np.asarray(den, np.float64)
    out = np.full(np.broadcast(num, den).shape, zero_division, np.float64)
    np.divide(num, den, out=out, where=den != 0)
    return out


def per_frame(c: Counts) -> Dict[str, np.ndarray]:
    """Each frame's Dice and IoU (NaN when prediction and GT are both empty) and recall and
    precision (1 where undefined), float64 (N,)."""
    return {"dice": _ratio(2 * c.tp, 2 * c.tp + c.fp + c.fn),
            "iou": _ratio(c.tp, c.tp + c.fp + c.fn),
            "recall": _ratio(c.tp, c.tp + c.fn, 1.0),
            "precision": _ratio(c.tp, c.tp + c.fp, 1.0)}


def summarize(c: Counts) -> Dict[str, float]:
    """The authors' six values (:data:`METRICS`) over the frames of ``c``."""
    if c.frames == 0:
        raise ValueError("no frames to summarize")
    f = per_frame(c)
    recall, precision = float(f["recall"].mean()), float(f["precision"].mean())
    overall = _ratio(c.tp.sum(), c.tp.sum() + c.fp.sum() + c.fn.sum())
    return {"dice": float(f["dice"].mean()), "mean_iou": float(f["iou"].mean()),
            "overall_iou": float(overall), "recall": recall, "precision": precision,
            "F": float(_ratio(2 * precision * recall, precision + recall))}
