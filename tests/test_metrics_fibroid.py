"""``lgrnet score --protocol fibroid`` (the authors' UFUV evaluator) against segmentation_models.pytorch's
metrics, the library the authors copied theirs from, on real GT masks with perturbed predictions:
every value within 1e-6."""
from __future__ import annotations

import json
import math
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from lgrnet.cli import main
from lgrnet.metrics import fibroid

smp_metrics = pytest.importorskip("segmentation_models_pytorch.metrics")

from tests.helpers.fibroid_reference import smp_reference  # noqa: E402  (after the skip: it imports smp)

TOL = 1e-6


def _close(ours, ref) -> bool:
    if ours is None or (isinstance(ours, float) and math.isnan(ours)):
        return math.isnan(ref)
    return abs(ours - ref) <= TOL


def _write(path: Path, img: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    assert cv2.imwrite(str(path), img)


PERTURB = ("same", "shift", "erode", "dilate", "empty", "full", "noise")


def _perturb(g: np.ndarray, kind: str, rng) -> np.ndarray:
    k = np.ones((9, 9), np.uint8)
    if kind == "same":
        return g.copy()
    if kind == "shift":
        return np.roll(g, (17, -23), axis=(0, 1))
    if kind == "erode":
        return cv2.erode(g.astype(np.uint8), k, iterations=2).astype(bool)
    if kind == "dilate":
        return cv2.dilate(g.astype(np.uint8), k, iterations=3).astype(bool)
    if kind == "empty":
        return np.zeros_like(g)
    if kind == "full":
        return np.ones_like(g)
    return g ^ (rng.random(g.shape) < 0.05)


def make_folders(data_dir: Path, root: Path, both_empty: bool = False):
    """GT/<video>/<frame>.png from real CVC-ClinicDB masks and pred/<video>/<frame>.png perturbed from
    them (shifted, eroded, dilated, empty, full, noisy, exact), {0, 255}; one GT frame emptied with a
    non-empty prediction (and, with ``both_empty``, one with an empty prediction too). Returns the
    folders and, per video, the boolean (pred, gt) pairs the evaluator must see."""
    rng = np.random.default_rng(0)
    src = data_dir / "CVC-ClinicDB-612" / "Test" / "GT"
    videos = {"0": 6, "6": 5, "24": 4}
    pairs = {}
    n = 0
    for video, count in videos.items():
        files = sorted((src / video).iterdir(), key=lambda p: int(p.stem))[:count]
        pairs[video] = []
        for k, f in enumerate(files):
            gt = cv2.imread(str(f), cv2.IMREAD_GRAYSCALE) > 0
            pred = _perturb(gt, PERTURB[n % len(PERTURB)], rng)
            n += 1
            if video == "6" and k == 2:
                gt = np.zeros_like(gt)  # a frame with an empty GT, a prediction where there is none
                pred = _perturb(cv2.imread(str(f), cv2.IMREAD_GRAYSCALE) > 0, "shift", rng)
            if both_empty and video == "24" and k == 1:
                gt, pred = np.zeros_like(gt), np.zeros_like(gt)
            _write(root / "GT" / video / f"{f.stem}.png", gt.astype(np.uint8) * 255)
            _write(root / "pred" / video / f"{f.stem}.png", pred.astype(np.uint8) * 255)
            pairs[video].append((pred, gt))
    return root / "pred", root / "GT", pairs


def _score(pred_dir, gt_dir, out: Path) -> dict:
    assert main(["score", str(pred_dir), str(gt_dir), "--protocol", "fibroid", "--json", str(out), "--quiet"]) == 0
    return json.loads(out.read_text())


def test_fibroid_protocol_matches_smp(data_dir, tmp_path):
    pred_dir, gt_dir, pairs = make_folders(data_dir, tmp_path)
    res = _score(pred_dir, gt_dir, tmp_path / "fibroid.json")
    assert res["protocol"] == "fibroid" and res["frames"] == 15 and res["videos"] == 3
    assert list(res["metrics"]) == ["dice", "mean_iou", "overall_iou", "recall", "precision", "F"]
    all_p = [p for v in pairs.values() for p, _ in v]
    all_g = [g for v in pairs.values() for _, g in v]
    ref = smp_reference(all_p, all_g)
    for key, value in ref.items():
        assert math.isfinite(value)
        assert abs(res["metrics"][key] - value) <= TOL, (key, res["metrics"][key], value)
    for video, vp in pairs.items():
        vref = smp_reference([p for p, _ in vp], [g for _, g in vp])
        got = res["per_video"][video]
        assert got["frames"] == len(vp)
        for key, value in vref.items():
            assert abs(got[key] - value) <= TOL, (video, key, got[key], value)
    # The perturbations matter: the set is far from perfect, and recall differs from precision.
    assert res["metrics"]["dice"] < 0.9 and abs(res["metrics"]["recall"] - res["metrics"]["precision"]) > 0.01
    assert res["metrics"]["overall_iou"] != pytest.approx(res["metrics"]["mean_iou"], abs=1e-3)


def test_empty_gt_and_empty_prediction_is_nan_as_in_the_authors(data_dir, tmp_path):
    """A frame where both are empty: smp's "micro" Dice / IoU are 0/0 = NaN, so are the authors' means
    (null in JSON, with a note naming the frame); overall_iou, recall, precision and F stay defined."""
    pred_dir, gt_dir, pairs = make_folders(data_dir, tmp_path, both_empty=True)
    res = _score(pred_dir, gt_dir, tmp_path / "fibroid.json")
    ref = smp_reference([p for v in pairs.values() for p, _ in v], [g for v in pairs.values() for _, g in v])
    assert math.isnan(ref["dice"]) and math.isnan(ref["mean_iou"])
    assert res["metrics"]["dice"] is None and res["metrics"]["mean_iou"] is None
    for key in ("overall_iou", "recall", "precision", "F"):
        assert _close(res["metrics"][key], ref[key]), key
    assert res["per_video"]["24"]["dice"] is None and res["per_video"]["0"]["dice"] is not None
    assert any("empty GT and an empty prediction" in n and "GT/24/" in n for n in res["notes"])


def test_confusion_counts_equal_smp_get_stats():
    rng = np.random.default_rng(1)
    pred = rng.random((7, 13, 11)) < 0.4
    gt = rng.random((7, 13, 11)) < 0.3
    pred[0], gt[1] = False, False
    ours = fibroid.confusion(pred, gt)
    ref = smp_metrics.get_stats(torch.from_numpy(pred.astype(np.int64))[:, None],
                                torch.from_numpy(gt.astype(np.int64))[:, None], mode="binary")
    for mine, theirs in zip((ours.tp, ours.fp, ours.fn, ours.tn), ref):
        assert np.array_equal(mine, theirs[:, 0].numpy())
    assert fibroid.summarize(ours) == pytest.approx(smp_reference(list(pred), list(gt)), abs=TOL)


def test_prediction_of_another_size_is_nearest_resized(data_dir, tmp_path):
    pred_dir, gt_dir, pairs = make_folders(data_dir, tmp_path)
    f = next((pred_dir / "0").iterdir())
    big = cv2.imread(str(f), cv2.IMREAD_GRAYSCALE)
    small = cv2.resize(big, (big.shape[1] // 2, big.shape[0] // 2), interpolation=cv2.INTER_NEAREST)
    _write(f, small)
    res = _score(pred_dir, gt_dir, tmp_path / "fibroid.json")
    k = sorted((gt_dir / "0").iterdir(), key=lambda p: int(p.stem)).index(gt_dir / "0" / f.name)
    back = cv2.resize(small, (big.shape[1], big.shape[0]), interpolation=cv2.INTER_NEAREST) > 127
    pairs["0"][k] = (back, pairs["0"][k][1])
    ref = smp_reference([p for p, _ in pairs["0"]], [g for _, g in pairs["0"]])
    assert res["per_video"]["0"] == pytest.approx({**ref, "frames": 6}, abs=TOL)
    assert any("resized" in n for n in res["notes"])
