"""lgrnet.metrics.sunseg against a plain transcription of the SUN-SEG toolbox (tests/helpers/sunseg_reference.py)
and against pysodmetrics, on real GT masks and perturbed probability maps; tolerance 1e-6."""
from __future__ import annotations

import warnings

import cv2
import numpy as np
import pytest

from tests.helpers import sunseg_reference as ref
from lgrnet.metrics import sunseg

TOL = 1e-6


def _gt(data_dir, rel):
    path = data_dir / rel
    img = cv2.imread(str(path), cv2.IMREAD_GRAYSCALE)
    assert img is not None, path
    return img


@pytest.fixture(scope="module")
def real_gts(data_dir):
    """Three real masks: CVC-ClinicDB (RGB PNG, some grey edges) and CVC-ColonDB (grey PNG)."""
    return {
        "clinic0": _gt(data_dir, "CVC-ClinicDB-612/Test/GT/0/1.png"),
        "clinic24": _gt(data_dir, "CVC-ClinicDB-612/Test/GT/24/" + sorted((data_dir / "CVC-ClinicDB-612/Test/GT/24").iterdir())[0].name),
        "colon": _gt(data_dir, "CVC-ColonDB-300/Train/GT/0/" + sorted((data_dir / "CVC-ColonDB-300/Train/GT/0").iterdir())[0].name),
    }


def perturbations(gt: np.ndarray, seed: int = 0):
    """Probability maps (uint8) derived from a mask: realistic ones and the degenerate ones."""
    rng = np.random.default_rng(seed)
    h, w = gt.shape
    g = (gt > 128).astype(np.float32)
    blurred = cv2.GaussianBlur(g, (0, 0), 6)
    shifted = cv2.GaussianBlur(np.roll(g, (17, -23), axis=(0, 1)), (0, 0), 3)
    noisy = np.clip(0.7 * g + rng.normal(0.15, 0.2, g.shape), 0, 1)
    eroded = cv2.erode(g, np.ones((9, 9), np.uint8))
    small = cv2.resize(blurred, (w // 2 + 3, h // 2 - 5))
    u8 = lambda a: np.round(np.clip(a, 0, 1) * 255).astype(np.uint8)  # noqa: E731
    return {
        "blurred": u8(blurred),
        "shifted": u8(shifted),
        "noisy": u8(noisy),
        "binary_eroded": u8(eroded),
        "narrow_range": (100 + 20 * blurred).astype(np.uint8),  # min-max normalisation matters
        "uniform_random": rng.integers(0, 256, (h, w), dtype=np.uint8),
        "empty": np.zeros((h, w), np.uint8),
        "full": np.full((h, w), 255, np.uint8),
        "constant": np.full((h, w), 100, np.uint8),
        "smaller_size": u8(small),
    }


def _compare(pred: np.ndarray, gt: np.ndarray):
    pred = sunseg.resize_to(pred, gt.shape)
    got = sunseg.score_frame(pred, gt)
    want = ref.frame(pred, gt)
    for i, k in enumerate(sunseg.SCALARS):
        assert abs(got.scalars[i] - want[k]) <= TOL, (k, got.scalars[i], want[k])
    for i, k in enumerate(sunseg.CURVES):
        err = np.abs(got.curves[i] - want[k]).max()
        assert err <= TOL, (k, err, int(np.abs(got.curves[i] - want[k]).argmax()))


CASES = list(perturbations(np.zeros((64, 64), np.uint8)).keys())


@pytest.mark.parametrize("case", CASES)
def test_frame_matches_toolbox_definition(real_gts, case):
    gt = real_gts["clinic0"] if CASES.index(case) % 2 else real_gts["colon"]
    _compare(perturbations(gt)[case], gt)


def test_other_mask_and_grey_edges(real_gts):
    gt = real_gts["clinic24"]
    preds = perturbations(gt, seed=3)
    for case in ("blurred", "noisy", "shifted"):
        _compare(preds[case], gt)


@pytest.mark.parametrize("case", ["noisy", "blurred", "empty", "full", "constant"])
def test_empty_gt_frame(real_gts, case):
    gt = np.zeros_like(real_gts["clinic0"])
    pred = perturbations(real_gts["clinic0"])[case]
    _compare(pred, gt)


def test_resize_is_opencv_bilinear(real_gts):
    gt = real_gts["clinic0"]
    pred = perturbations(gt)["smaller_size"]
    out = sunseg.resize_to(pred, gt.shape)
    assert out.shape == gt.shape and out.dtype == np.uint8
    assert np.array_equal(out, cv2.resize(pred, (gt.shape[1], gt.shape[0]), interpolation=cv2.INTER_LINEAR))


def test_against_pysodmetrics(real_gts):
    sod = pytest.importorskip("py_sod_metrics")
    gt = real_gts["clinic0"]
    for case, pred in perturbations(gt, seed=5).items():
        pred = sunseg.resize_to(pred, gt.shape)
        got = sunseg.score_frame(pred, gt)
        s, wf, mae, em = sod.Smeasure(), sod.WeightedFmeasure(), sod.MAE(), sod.Emeasure()
        for m in (s, wf, mae, em):
            m.step(pred, gt)
        with pytest.warns(UserWarning):
            fm = sod.Fmeasure()
        fm.step(pred, gt)
        ok = {
            "S_alpha": s.get_results()["sm"], "F_w": wf.get_results()["wfm"], "MAE": mae.get_results()["mae"],
            "E_phi_adp": em.get_results()["em"]["adp"], "F_adp": fm.get_results()["fm"]["adp"],
        }
        for i, k in enumerate(sunseg.SCALARS):
            assert abs(got.scalars[i] - ok[k]) <= TOL, (case, k)
        assert np.abs(got.curves[0] - em.get_results()["em"]["curve"]).max() <= TOL, case
        assert np.abs(got.curves[1] - fm.get_results()["fm"]["curve"]).max() <= TOL, case


# ------------------------------------------------------------------ where the toolbox divides by zero

def _quiet(fn, *args):
    with np.errstate(all="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return fn(*args)


def _compare_nan(pred, gt):
    """As _compare, NaN where the toolbox's arithmetic gives NaN."""
    got = sunseg.score_frame(pred, gt)
    want = _quiet(ref.frame, pred, gt)
    for i, k in enumerate(sunseg.SCALARS):
        np.testing.assert_allclose(got.scalars[i], want[k], rtol=0, atol=TOL, equal_nan=False, err_msg=k)
    for i, k in enumerate(sunseg.CURVES):
        np.testing.assert_allclose(got.curves[i], want[k], rtol=0, atol=TOL, equal_nan=True, err_msg=k)
    return got


def test_single_pixel_gt_and_background():
    gt = np.zeros((40, 50), np.uint8)
    gt[10, 20] = 255
    pred = cv2.GaussianBlur(gt, (0, 0), 2)
    assert _compare_nan(pred, gt).scalars[0] == 0  # toolbox: std of one pixel = NaN, max(0, NaN) = 0
    assert _compare_nan(255 - pred, 255 - gt).scalars[0] == 0


def test_gt_centroid_on_last_column():
    gt = np.zeros((30, 40), np.uint8)
    gt[5:25, 39] = 255  # centroid column 39 (+1 = 40 = width): the right quadrants are empty
    pred = cv2.GaussianBlur(gt, (0, 0), 1.5)
    assert _compare_nan(pred, gt).scalars[0] == 0
    gt2 = np.zeros((30, 40), np.uint8)
    gt2[5:25, 37:39] = 255  # a normal frame near the edge stays positive
    assert _compare_nan(cv2.GaussianBlur(gt2, (0, 0), 1.5), gt2).scalars[0] > 0


def test_full_gt_frame():
    gt = np.full((32, 48), 255, np.uint8)
    pred = np.random.default_rng(1).integers(0, 256, gt.shape, dtype=np.uint8)
    got = _compare_nan(pred, gt)
    spe = got.curves[sunseg.CURVES.index("Spe")]
    assert np.all(np.isnan(spe))  # no negatives: TN / (TN + FP) = 0 / 0 (TP > 0 at every threshold here)


def test_medical_scores_zeroed_when_no_true_positive(real_gts):
    gt = real_gts["clinic0"]
    g = gt > 128
    half = np.zeros_like(g)
    half[:, : g.shape[1] // 2] = True
    pred = np.where(~g & half, 200, 0).astype(np.uint8)  # fires only on half of the background
    got = _compare_nan(pred, gt)
    for name in ("Dice", "IoU", "Sen", "Spe"):
        c = got.curves[sunseg.CURVES.index(name)]
        assert np.all(c[:-1] == 0), name  # TP = 0 at every threshold but 0: zeroed, Spe included
    assert got.curves[sunseg.CURVES.index("Spe")][-1] == 0  # threshold 0: everything fires, TN = 0
    assert got.curves[sunseg.CURVES.index("Dice")][-1] > 0


def test_rejects_bad_input():
    with pytest.raises(TypeError):
        sunseg.score_frame(np.zeros((4, 4), np.float32), np.zeros((4, 4), np.uint8))
    with pytest.raises(ValueError):
        sunseg.score_frame(np.zeros((4, 4), np.uint8), np.zeros((4, 5), np.uint8))
