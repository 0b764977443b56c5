"""The SUN-SEG evaluation protocol, as the toolbox of Ji et al. computes it (github GewelsJI/VPS, eval/).

Per frame (``score_frame``), with the prediction already at the GT's size (:func:`resize_to`):

* ``gt = gt_grey > 128``; ``pred = pred_grey / 255``, min-max normalised when not constant.
* S-measure (alpha = 0.5), MAE, weighted F (beta = 1, Margolin et al.), and the adaptive E and F
  (threshold ``min(2 * mean(pred), 1)``, ``pred >= threshold``; F with beta^2 = 0.3).
* Curves over 256 thresholds:
  - E-measure and F-measure on ``q = uint8(pred * 255)`` (truncation), index i = threshold ``q >= 255 - i``;
  - Dice, IoU, sensitivity and specificity (the toolbox's "Medical" scores) at the float thresholds
    ``linspace(1, 0, 256)``, ``pred >= t``; all four are 0 at a threshold where TP = 0.

Grouping (``summarize_videos``): the first and last frame of every video are dropped; scalars and
curves are averaged over the frames of a video, then over videos (unweighted); a ``*_max`` metric is
the maximum over thresholds of that mean curve, a ``*_mean`` metric its mean over thresholds.

Degenerate frames are scored as the toolbox scores them, NaN included: where its S-measure divides
0 by 0 (a GT foreground or background of one pixel, or a quadrant of at most one pixel when the GT
centroid lies on the last row or column) the NaN meets Python's ``max(0, nan)``, which is 0, so the
frame's S-measure is 0; the specificity of a frame whose GT covers every pixel is 0/0 = NaN (there are
no negatives), and it makes ``Spe_*`` NaN for its video and the data set, as in the toolbox.

The per-frame math is computed once per frame from two 256-bin histograms (the prediction is uint8, so
a frame has at most 256 distinct normalised values): no per-threshold pass over the image. It is
checked against a plain transcription of the toolbox and against pysodmetrics in the tests. It needs
only numpy, scipy and OpenCV; pysodmetrics is not needed at run time.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Dict, Mapping, Sequence, Tuple

import cv2
import numpy as np
from scipy.ndimage import distance_transform_edt

EPS = np.spacing(1)  # MATLAB's eps, as the toolbox uses
NUM_THRESHOLDS = 256
GT_THRESHOLD = 128  # gt > 128
F_BETA2 = 0.3  # beta^2 of the F-measure
WF_BETA = 1.0  # beta of the weighted F-measure
S_ALPHA = 0.5

#: Scalars per frame, in the order of ``FrameScores.scalars``.
SCALARS = ("S_alpha", "F_w", "MAE", "E_phi_adp", "F_adp")
#: Curves per frame, in the order of ``FrameScores.curves`` (each over 256 thresholds).
CURVES = ("E_phi", "F", "Dice", "IoU", "Sen", "Spe")
#: The reported metrics, in table order.
METRICS = ("S_alpha", "E_phi_mean", "E_phi_max", "E_phi_adp", "F_w", "F_mean", "F_max", "F_adp",
           "Dice_mean", "Dice_max", "IoU_mean", "IoU_max", "Sen_mean", "Sen_max", "Spe_mean", "Spe_max", "MAE")

_LEVELS = np.arange(256) / 255  # uint8 level -> float, exactly as ``pred / 255``
_MEDICAL_THRESHOLDS = np.linspace(1, 0, NUM_THRESHOLDS)
_MEDICAL_ASC = _MEDICAL_THRESHOLDS[::-1].copy()


def _gauss_kernel(size: int = 7, sigma: float = 5.0) -> np.ndarray:
    """MATLAB's ``fspecial('gaussian', size, sigma)``."""
    m = (size - 1) / 2
    y, x = np.ogrid[-m:m + 1, -m:m + 1]
    h = np.exp(-(x * x + y * y) / (2 * sigma * sigma))
    h[h < np.finfo(h.dtype).eps * h.max()] = 0
    return h / h.sum()


_WF_KERNEL = _gauss_kernel()


@dataclass
class FrameScores:
    """One frame's scores: ``scalars`` (5,) in :data:`SCALARS` order, ``curves`` (6, 256) in
    :data:`CURVES` order (threshold index 0 = the highest threshold)."""

    scalars: np.ndarray
    curves: np.ndarray


def resize_to(pred: np.ndarray, shape: Tuple[int, int]) -> np.ndarray:
    """The toolbox's resize: ``cv2.resize`` (bilinear) of the uint8 prediction to ``shape`` (H, W)
    when it differs."""
    if pred.shape[:2] == tuple(shape):
        return pred
    return cv2.resize(pred, (int(shape[1]), int(shape[0])))


def normalized_levels(pred: np.ndarray) -> np.ndarray:
    """The toolbox's ``pred / 255`` then min-max normalisation, as a table over the 256 uint8 levels
    (entry u = the normalised value of a pixel of grey level u). ``pred``: uint8 (H, W)."""
    lo, hi = int(pred.min()), int(pred.max())
    if lo == hi:
        return _LEVELS.copy()
    pmin, pmax = np.float64(lo) / 255, np.float64(hi) / 255
    return (_LEVELS - pmin) / (pmax - pmin)


def _enhanced_alignment_sum(fg_fg, fg_bg, n_gt: int, size: int):
    """Sum of the enhanced-alignment matrix of a binarised prediction, from its counts
    (scalars or arrays): fg_fg = predicted fg on GT fg, fg_bg = predicted fg on GT bg."""
    pred_fg = fg_fg + fg_bg
    pred_bg = size - pred_fg
    if n_gt == 0:
        return pred_bg
    if n_gt == size:
        return pred_fg
    bg_fg = n_gt - fg_fg
    bg_bg = pred_bg - bg_fg
    mean_pred = pred_fg / size
    mean_gt = n_gt / size
    parts = ((fg_fg, 1 - mean_pred, 1 - mean_gt), (fg_bg, 1 - mean_pred, 0 - mean_gt),
             (bg_fg, 0 - mean_pred, 1 - mean_gt), (bg_bg, 0 - mean_pred, 0 - mean_gt))
    total = 0
    for numel, a, b in parts:
        align = 2 * (a * b) / (a ** 2 + b ** 2 + EPS)
        total = total + (align + 1) ** 2 / 4 * numel
    return total


def _f_measure(precision, recall, beta2: float = F_BETA2):
    numerator = (1 + beta2) * precision * recall
    denominator = np.where(numerator == 0, 1, beta2 * precision + recall)
    return numerator / denominator


def _s_object(mean: float, var: float) -> float:
    return 2 * mean / (mean ** 2 + 1 + np.sqrt(var) + EPS)


def _region_stats(hist: np.ndarray, values: np.ndarray) -> Tuple[float, float]:
    """Mean and sample variance (ddof=1) of a region of at least 2 pixels, given as a histogram over levels."""
    n = hist.sum()
    mean = float(hist @ values) / n
    var = float(hist @ (values - mean) ** 2) / (n - 1)
    return mean, var


def _ssim(pred: np.ndarray, gt: np.ndarray) -> float:
    """The S-measure's region similarity of one quadrant of at least 2 pixels (float pred, 0/1 gt)."""
    n = pred.size
    x, y = pred.mean(), gt.mean()
    dx, dy = pred - x, gt - y
    sigma_x = float(np.sum(dx * dx)) / (n - 1)
    sigma_y = float(np.sum(dy * dy)) / (n - 1)
    sigma_xy = float(np.sum(dx * dy)) / (n - 1)
    alpha = 4 * x * y * sigma_xy
    beta = (x ** 2 + y ** 2) * (sigma_x + sigma_y)
    if alpha != 0:
        return alpha / (beta + EPS)
    return 1.0 if beta == 0 else 0.0


def s_measure(pred_f: np.ndarray, gt: np.ndarray, levels: np.ndarray, hist_fg: np.ndarray, hist_bg: np.ndarray) -> float:
    """Structure measure (Fan et al. 2017) as the toolbox computes it. ``pred_f`` float (H, W),
    ``gt`` bool (H, W); ``levels``/``hist_*``: the prediction as level table and per-level counts."""
    h, w = gt.shape
    size = h * w
    n_gt = int(hist_fg.sum())
    if n_gt == 0:
        return 1 - float((hist_bg @ levels) / size)
    if n_gt == size:
        return float((hist_fg @ levels) / size)
    if n_gt == 1 or n_gt == size - 1:
        return 0.0  # a one-pixel region: the toolbox's std (ddof=1) is NaN, and max(0, NaN) is 0
    # object-aware part: foreground pred values and background (1 - pred) values
    u = n_gt / size
    fg_mean, fg_var = _region_stats(hist_fg, levels)
    bg_mean, bg_var = _region_stats(hist_bg, 1 - levels)
    obj = u * _s_object(fg_mean, fg_var) + (1 - u) * _s_object(bg_mean, bg_var)
    # region-aware part: four quadrants around the GT centroid (+1, MATLAB's 1-based ranges)
    rows = np.count_nonzero(gt, axis=1)
    cols = np.count_nonzero(gt, axis=0)
    cy = int(np.round(float(rows @ np.arange(h)) / n_gt)) + 1
    cx = int(np.round(float(cols @ np.arange(w)) / n_gt)) + 1
    gt_f = gt.astype(np.float64)
    weights = (cx * cy / size, cy * (w - cx) / size, (h - cy) * cx / size)
    weights = weights + (1 - weights[0] - weights[1] - weights[2],)
    blocks = ((slice(0, cy), slice(0, cx)), (slice(0, cy), slice(cx, w)),
              (slice(cy, h), slice(0, cx)), (slice(cy, h), slice(cx, w)))
    region = 0.0
    for wq, (rs, cs) in zip(weights, blocks):
        p = pred_f[rs, cs]
        if p.size <= 1:
            return 0.0  # the toolbox's quadrant statistics are NaN (0/0), and max(0, NaN) is 0
        region += wq * _ssim(p, gt_f[rs, cs])
    return max(0.0, S_ALPHA * obj + (1 - S_ALPHA) * region)


def weighted_f_measure(pred_f: np.ndarray, gt: np.ndarray, beta: float = WF_BETA) -> float:
    """Weighted F-measure (Margolin et al. 2014) as the toolbox computes it; 0 for an empty GT."""
    if not gt.any():
        return 0.0
    # distance to, and index of, the nearest GT pixel (a GT pixel is its own nearest)
    dist, idx = distance_transform_edt(~gt, return_indices=True)
    err = np.abs(pred_f - gt)
    h, w = gt.shape
    err_t = err.ravel()[(idx[0] * w + idx[1]).ravel()].reshape(h, w)
    err_a = cv2.filter2D(err_t, -1, _WF_KERNEL, borderType=cv2.BORDER_CONSTANT)
    min_e = np.where(gt & (err_a < err), err_a, err)
    bg = ~gt
    importance = np.ones_like(err)
    importance[bg] = 2 - np.exp(np.log(0.5) / 5 * dist[bg])
    ew = min_e * importance
    ew_fg = ew[gt]
    tp_w = np.count_nonzero(gt) - ew_fg.sum()
    fp_w = ew[bg].sum()
    recall = 1 - ew_fg.mean()
    precision = tp_w / (tp_w + fp_w + EPS)
    return float((1 + beta) * recall * precision / (recall + beta * precision + EPS))


def score_frame(pred: np.ndarray, gt: np.ndarray) -> FrameScores:
    """All SUN-SEG scores of one frame. ``pred``: uint8 grey (H, W) at the GT's size (see
    :func:`resize_to`); ``gt``: uint8 grey (H, W) (foreground = > 128)."""
    if pred.dtype != np.uint8 or gt.dtype != np.uint8:
        raise TypeError(f"expected uint8 grey images, got {pred.dtype} and {gt.dtype}")
    if pred.shape != gt.shape or pred.ndim != 2:
        raise ValueError(f"prediction {pred.shape} and GT {gt.shape} must be 2-D and of one size")
    g = gt > GT_THRESHOLD
    size = g.size
    levels = normalized_levels(pred)
    counts = np.bincount((pred.ravel().astype(np.intp) | (g.ravel().astype(np.intp) << 8)), minlength=512)
    hist_bg, hist_fg = counts[:256], counts[256:]
    hist_all = hist_bg + hist_fg
    n_gt = int(hist_fg.sum())
    pred_f = levels[pred]

    # E- and F-measure curves: thresholds on the truncated uint8 levels, q >= 255 - i
    q = (levels * 255).astype(np.uint8)
    fg_q = np.bincount(q, weights=hist_fg, minlength=256).astype(np.int64)
    bg_q = np.bincount(q, weights=hist_bg, minlength=256).astype(np.int64)
    tp = np.cumsum(fg_q[::-1])
    fp = np.cumsum(bg_q[::-1])
    positives = tp + fp
    precision = tp / np.where(positives == 0, 1, positives)
    recall = tp / max(n_gt, 1)
    f_curve = _f_measure(precision, recall)
    e_curve = np.asarray(_enhanced_alignment_sum(tp, fp, n_gt, size), dtype=np.float64) / (size - 1 + EPS)

    # adaptive threshold: min(2 * mean, 1) on the float prediction
    threshold = min(2 * pred_f.mean(), 1)
    above = levels >= threshold
    a_tp = int(hist_fg[above].sum())
    a_fp = int(hist_bg[above].sum())
    if a_tp == 0:
        f_adp = 0.0
    else:
        pre, rec = a_tp / (a_tp + a_fp), a_tp / n_gt
        f_adp = (1 + F_BETA2) * pre * rec / (F_BETA2 * pre + rec)
    e_adp = _enhanced_alignment_sum(a_tp, a_fp, n_gt, size) / (size - 1 + EPS)

    # medical scores at float thresholds linspace(1, 0, 256): a pixel counts from index 256 - c on,
    # c = the number of thresholds <= its value
    first = NUM_THRESHOLDS - np.searchsorted(_MEDICAL_ASC, levels, side="right")
    m_rec = np.cumsum(np.bincount(first, weights=hist_all, minlength=NUM_THRESHOLDS + 1)[:NUM_THRESHOLDS]).astype(np.int64)
    m_tp = np.cumsum(np.bincount(first, weights=hist_fg, minlength=NUM_THRESHOLDS + 1)[:NUM_THRESHOLDS]).astype(np.int64)
    m_fn = n_gt - m_tp
    m_tn = (size - m_rec) - m_fn
    ok = m_tp > 0
    safe = lambda d: np.where(d == 0, 1, d)  # noqa: E731  (nonzero wherever TP > 0)
    iou = np.where(ok, m_tp / safe(m_fn + m_rec), 0.0)
    sen = np.where(ok, m_tp / max(n_gt, 1), 0.0)
    negatives = size - n_gt  # = TN + FP; 0 when the GT covers the frame: specificity 0/0 = NaN
    spe = np.where(ok, m_tn / negatives if negatives else np.nan, 0.0)
    dice = np.where(ok, 2 * m_tp / safe(n_gt + m_rec), 0.0)

    mae = float((hist_bg @ levels + hist_fg @ (1 - levels)) / size)
    s = s_measure(pred_f, g, levels, hist_fg, hist_bg)
    wf = weighted_f_measure(pred_f, g)
    scalars = np.array([s, wf, mae, e_adp, f_adp], dtype=np.float64)
    curves = np.stack([e_curve, f_curve, dice, iou, sen, spe]).astype(np.float64)
    return FrameScores(scalars=scalars, curves=curves)


@dataclass
class VideoScores:
    """Frame scores averaged over one video: scalars (5,), curves (6, 256), and the frame count."""

    scalars: np.ndarray
    curves: np.ndarray
    frames: int


def mean_over_frames(frames: Sequence[FrameScores]) -> VideoScores:
    """Average the scores of a video's frames (the toolbox's per-video mean)."""
    if not frames:
        raise ValueError("a video needs at least one scored frame")
    return VideoScores(scalars=np.mean([f.scalars for f in frames], axis=0),
                       curves=np.mean([f.curves for f in frames], axis=0), frames=len(frames))


def summarize(scalars: np.ndarray, curves: np.ndarray) -> Dict[str, float]:
    """Scalars (5,) and mean curves (6, 256) -> the reported metrics (``*_max``: max over thresholds,
    ``*_mean``: mean over thresholds)."""
    out = dict(zip(SCALARS, map(float, scalars)))
    for name, curve in zip(CURVES, curves):
        out[f"{name}_mean"] = float(curve.mean())
        out[f"{name}_max"] = float(curve.max())
    return {k: out[k] for k in METRICS}


def summarize_videos(videos: Mapping[str, VideoScores]) -> Dict[str, float]:
    """The dataset's metrics: unweighted mean over videos of their mean scalars and curves, then
    max / mean over thresholds (the toolbox's sequence-level grouping)."""
    if not videos:
        raise ValueError("no videos to summarize")
    vs = list(videos.values())
    return summarize(np.mean([v.scalars for v in vs], axis=0), np.mean([v.curves for v in vs], axis=0))


def frames_kept(n: int, drop_ends: bool = True) -> slice:
    """Which of a video's n (ordered) frames the protocol scores: all but the first and last."""
    return slice(1, n - 1) if drop_ends else slice(0, n)
