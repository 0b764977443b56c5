"""A plain, slow transcription of the SUN-SEG toolbox's definitions (github GewelsJI/VPS, eval/), used
as the reference in the metric tests. It shares no code with ``lgrnet.metrics``: every threshold is a
separate pass over the full image, the E-measure is built as a per-pixel matrix, and the grouping is
written as loops.

Degenerate cases where the toolbox divides by zero are NOT guarded here (they give NaN, as in the
toolbox); the tests that need them check lgrnet's documented finite values separately.
"""
from __future__ import annotations

import numpy as np
from scipy import ndimage

EPS = np.spacing(1)


def prepare(pred_u8: np.ndarray, gt_u8: np.ndarray):
    gt = gt_u8 > 128
    pred = pred_u8 / 255
    if pred.max() != pred.min():
        pred = (pred - pred.min()) / (pred.max() - pred.min())
    return pred, gt


def s_measure(pred, gt, alpha=0.5):
    y = np.mean(gt)
    if y == 0:
        return 1 - np.mean(pred)
    if y == 1:
        return np.mean(pred)

    def s_object(values):
        m = np.mean(values)
        s = np.std(values, ddof=1)
        return 2 * m / (m ** 2 + 1 + s + EPS)

    obj = y * s_object(pred[gt]) + (1 - y) * s_object(1 - pred[~gt])

    rows, cols = np.nonzero(gt)
    cy = int(np.round(np.mean(rows))) + 1
    cx = int(np.round(np.mean(cols))) + 1
    h, w = gt.shape
    area = h * w
    g = gt.astype(np.float64)

    def ssim(p, t):
        n = p.size
        x, yv = np.mean(p), np.mean(t)
        sx = np.sum((p - x) ** 2) / (n - 1)
        sy = np.sum((t - yv) ** 2) / (n - 1)
        sxy = np.sum((p - x) * (t - yv)) / (n - 1)
        a = 4 * x * yv * sxy
        b = (x ** 2 + yv ** 2) * (sx + sy)
        if a != 0:
            return a / (b + EPS)
        if b == 0:
            return 1.0
        return 0.0

    w1 = cx * cy / area
    w2 = cy * (w - cx) / area
    w3 = (h - cy) * cx / area
    w4 = 1 - w1 - w2 - w3
    region = (w1 * ssim(pred[:cy, :cx], g[:cy, :cx]) + w2 * ssim(pred[:cy, cx:], g[:cy, cx:])
              + w3 * ssim(pred[cy:, :cx], g[cy:, :cx]) + w4 * ssim(pred[cy:, cx:], g[cy:, cx:]))
    return max(0.0, alpha * obj + (1 - alpha) * region)


def enhanced_measure(binary, gt):
    """E-measure of a binary map, as a per-pixel enhanced-alignment matrix."""
    n = gt.size
    fm = binary.astype(np.float64)
    g = gt.astype(np.float64)
    if g.sum() == 0:
        enhanced = 1.0 - fm
    elif g.sum() == n:
        enhanced = fm
    else:
        dfm = fm - fm.mean()
        dgt = g - g.mean()
        align = 2 * dgt * dfm / (dgt * dgt + dfm * dfm + EPS)
        enhanced = (align + 1) ** 2 / 4
    return np.sum(enhanced) / (n - 1 + EPS)


def f_of(binary, gt, beta2=0.3):
    tp = np.sum(binary & gt)
    npred = np.sum(binary)
    precision = tp / npred if npred else 0.0
    recall = tp / max(np.sum(gt), 1)
    num = (1 + beta2) * precision * recall
    return num / (beta2 * precision + recall) if num != 0 else 0.0


def curves_e_f(pred, gt):
    q = (pred * 255).astype(np.uint8)
    e, f = [], []
    for t in range(255, -1, -1):
        binary = q >= t
        e.append(enhanced_measure(binary, gt))
        f.append(f_of(binary, gt))
    return np.array(e), np.array(f)


def adaptive(pred, gt, beta2=0.3):
    thr = min(2 * pred.mean(), 1)
    binary = pred >= thr
    inter = np.sum(binary & gt)
    if inter == 0:
        f = 0.0
    else:
        pre = inter / np.sum(binary)
        rec = inter / np.sum(gt)
        f = (1 + beta2) * pre * rec / (beta2 * pre + rec)
    return enhanced_measure(binary, gt), f


def medical_curves(pred, gt):
    dice, iou, sen, spe = [], [], [], []
    for t in np.linspace(1, 0, 256):
        binary = pred >= t
        tp = int(np.sum(binary & gt))
        n_obj = int(np.sum(gt))
        n_rec = int(np.sum(binary))
        fn = n_obj - tp
        fp = n_rec - tp
        tn = (gt.size - n_rec) - fn
        if tp == 0:
            dice.append(0.0), iou.append(0.0), sen.append(0.0), spe.append(0.0)
        else:
            iou.append(tp / (fn + n_rec))
            sen.append(tp / n_obj)
            spe.append(np.int64(tn) / np.int64(tn + fp))  # numpy: 0 / 0 = NaN, as in the toolbox
            dice.append(2 * tp / (n_obj + n_rec))
    return np.array(dice), np.array(iou), np.array(sen), np.array(spe)


def weighted_f(pred, gt, beta=1.0):
    if not gt.any():
        return 0.0
    dist, idx = ndimage.distance_transform_edt(gt == 0, return_indices=True)
    err = np.abs(pred - gt)
    et = err.copy()
    et[gt == 0] = et[idx[0][gt == 0], idx[1][gt == 0]]
    y, x = np.ogrid[-3:4, -3:4]
    k = np.exp(-(x * x + y * y) / (2 * 5.0 * 5.0))
    k[k < np.finfo(k.dtype).eps * k.max()] = 0
    k /= k.sum()
    ea = ndimage.convolve(et, k, mode="constant", cval=0)
    min_e = err.copy()
    sel = gt & (ea < err)
    min_e[sel] = ea[sel]
    b = np.ones_like(err)
    b[gt == 0] = 2 - np.exp(np.log(0.5) / 5 * dist[gt == 0])
    ew = min_e * b
    tpw = np.sum(gt) - np.sum(ew[gt])
    fpw = np.sum(ew[~gt])
    r = 1 - np.mean(ew[gt])
    p = tpw / (tpw + fpw + EPS)
    return (1 + beta) * r * p / (r + beta * p + EPS)


def frame(pred_u8, gt_u8):
    """Every per-frame quantity, by name: scalars and 256-long curves."""
    pred, gt = prepare(pred_u8, gt_u8)
    e, f = curves_e_f(pred, gt)
    e_adp, f_adp = adaptive(pred, gt)
    dice, iou, sen, spe = medical_curves(pred, gt)
    return {"S_alpha": s_measure(pred, gt), "F_w": weighted_f(pred, gt), "MAE": np.mean(np.abs(pred - gt)),
            "E_phi_adp": e_adp, "F_adp": f_adp, "E_phi": e, "F": f, "Dice": dice, "IoU": iou, "Sen": sen, "Spe": spe}


def dataset(videos):
    """videos: {name: [(pred_u8, gt_u8), ...]} in frame order (already at the GT's size) -> metrics,
    with the toolbox's grouping: drop each video's first and last frame, mean per video, mean over
    videos, then max / mean over the 256 thresholds."""
    scal = ("S_alpha", "F_w", "MAE", "E_phi_adp", "F_adp")
    curv = ("E_phi", "F", "Dice", "IoU", "Sen", "Spe")
    per_video = []
    for name, frames in videos.items():
        kept = frames[1:-1]
        if not kept:
            continue
        results = [frame(p, g) for p, g in kept]
        v = {}
        for k in scal:
            v[k] = np.mean([r[k] for r in results])
        for k in curv:
            v[k] = np.mean(np.array([r[k] for r in results]), axis=0)
        per_video.append(v)
    out = {}
    for k in scal:
        out[k] = np.mean([v[k] for v in per_video])
    for k in curv:
        c = np.mean(np.array([v[k] for v in per_video]), axis=0)
        out[k + "_mean"] = c.mean()
        out[k + "_max"] = c.max()
    return out
