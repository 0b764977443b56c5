"""How well a per-frame confidence separates failed frames from good ones.

A frame *fails* when its Dice is below ``fail_below`` (0.5). :func:`auroc` is the probability that a
good frame scores higher than a failed one (ties count one half), computed from ranks (the
Mann-Whitney U statistic) in O(n log n); :func:`reliability_table` bins the scores and gives each
bin's mean Dice, so a user can read off which threshold flags which failures;
:func:`flag_threshold` picks the threshold that flags failures best on a set of scored frames (the
shipped model records the one its Valid videos give, and the review page starts from it).
"""
from __future__ import annotations

from typing import Dict, List, Optional, Sequence

import numpy as np
from scipy.stats import rankdata

FAIL_BELOW = 0.5


def auroc(scores: Sequence[float], positive: Sequence[bool]) -> float:
    """Area under the ROC curve of ``scores`` for the ``positive`` class (NaN without both classes).

    AUROC = (R+ - n+ (n+ + 1) / 2) / (n+ n-), R+ the sum of the positives' ranks (mid-ranks for ties)."""
    s = np.asarray(scores, dtype=np.float64)
    y = np.asarray(positive, dtype=bool)
    n_pos, n_neg = int(y.sum()), int((~y).sum())
    if n_pos == 0 or n_neg == 0:
        return float("nan")
    ranks = rankdata(s)  # average ranks: a tie between a positive and a negative counts 1/2
    return float((ranks[y].sum() - n_pos * (n_pos + 1) / 2.0) / (n_pos * n_neg))


def failure_auroc(scores: Sequence[float], dice: Sequence[float], fail_below: float = FAIL_BELOW) -> float:
    """AUROC of the score for telling good frames (Dice >= ``fail_below``) from failed ones."""
    return auroc(scores, np.asarray(dice, dtype=np.float64) >= fail_below)


def flag_threshold(scores: Sequence[float], dice: Sequence[float],
                   fail_below: float = FAIL_BELOW) -> Optional[Dict[str, float]]:
    """The score threshold t that best flags failed frames (flagged: score < t), by Youden's J:
    the fraction of failed frames flagged minus the fraction of good frames flagged, maximised over
    the midpoints between consecutive distinct scores (ties: the lowest t). Returns
    ``{"threshold", "flagged_failed", "flagged_good", "youden_j"}`` (fractions), or None without
    both failed and good frames."""
    s = np.asarray(scores, dtype=np.float64)
    failed = np.asarray(dice, dtype=np.float64) < fail_below
    n_fail, n_good = int(failed.sum()), int((~failed).sum())
    if n_fail == 0 or n_good == 0:
        return None
    order = np.argsort(s, kind="stable")
    s_sorted, f_sorted = s[order], failed[order]
    # a cut after position k (0-based) flags the k + 1 lowest scores; only cuts between distinct scores
    cuts = np.nonzero(np.diff(s_sorted) > 0)[0]
    if len(cuts) == 0:
        return None
    fail_flagged = np.cumsum(f_sorted)[cuts] / n_fail
    good_flagged = np.cumsum(~f_sorted)[cuts] / n_good
    j = fail_flagged - good_flagged
    best = int(np.argmax(j))  # the first maximum: the lowest threshold
    k = cuts[best]
    return {"threshold": round(float((s_sorted[k] + s_sorted[k + 1]) / 2.0), 4),
            "flagged_failed": round(float(fail_flagged[best]), 4), "flagged_good": round(float(good_flagged[best]), 4),
            "youden_j": round(float(j[best]), 4)}


def reliability_table(scores: Sequence[float], dice: Sequence[float], edges: Sequence[float] = (0.0, 0.2, 0.4, 0.5, 0.6, 0.8, 1.0),
                      fail_below: float = FAIL_BELOW) -> List[Dict[str, float]]:
    """Rows ``{"lo", "hi", "frames", "mean_dice", "failed"}`` for score bins [lo, hi) (the last bin
    includes ``hi``); ``mean_dice`` is None for an empty bin; ``failed``: frames of the bin with
    Dice < ``fail_below``."""
    s = np.asarray(scores, dtype=np.float64)
    d = np.asarray(dice, dtype=np.float64)
    rows = []
    for i, (lo, hi) in enumerate(zip(edges[:-1], edges[1:])):
        last = i == len(edges) - 2
        sel = (s >= lo) & ((s <= hi) if last else (s < hi))
        rows.append({"lo": float(lo), "hi": float(hi), "frames": int(sel.sum()),
                     "mean_dice": round(float(d[sel].mean()), 4) if sel.any() else None,
                     "failed": int((d[sel] < fail_below).sum())})
    return rows


def frame_dice(pred: np.ndarray, gt: np.ndarray) -> float:
    """Dice of two (H, W) bool masks; 1 when both are empty."""
    inter = float(np.logical_and(pred, gt).sum())
    total = float(pred.sum()) + float(gt.sum())
    return 1.0 if total == 0 else 2.0 * inter / total


def format_reliability(rows: List[Dict[str, float]], auc: Optional[float], fail_below: float = FAIL_BELOW,
                       flag: Optional[Dict[str, float]] = None) -> str:
    """The table as text, with the AUROC on top (None: not defined, one class only) and, given
    ``flag`` (:func:`flag_threshold`'s answer), the threshold that flags failures best at the end."""
    auc_text = "n/a (no failed or no good frame)" if auc is None or np.isnan(auc) else f"{auc:.3f}"
    lines = [f"per-frame score vs frame Dice: AUROC {auc_text} for failed frames (Dice < {fail_below})",
             "score bin      frames  mean Dice  failed"]
    for r in rows:
        md = "-" if r["mean_dice"] is None else f"{r['mean_dice']:.3f}"
        lines.append(f"[{r['lo']:.2f}, {r['hi']:.2f}{']' if r is rows[-1] else ')'}  {r['frames']:6d}  {md:>9}  {r['failed']:6d}")
    if flag is not None:
        lines.append(f"best flag threshold {flag['threshold']:.3f} (Youden's J): flags {100 * flag['flagged_failed']:.0f} % of "
                     f"the failed frames and {100 * flag['flagged_good']:.0f} % of the good ones")
    return "\n".join(lines)
