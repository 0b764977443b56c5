"""Test-time augmentation (flips) and the per-frame confidence's failure AUROC.

TTA: off is the plain forward bit for bit; on equals the mean of four independent forward passes
of flipped frames (flipped back); and since the four flips form a group, TTA's prediction of a
flipped video is the flipped prediction (for any model, here an untrained one).
AUROC: the rank formula against sklearn (when installed) and a naive pairwise loop, ties included.
"""
import numpy as np
import pytest
import torch

from lgrnet import LGRNet, VideoPredictor
from lgrnet.inference.clip_runner import TTA_FLIPS, ClipRunner
from lgrnet.inference.clip import forward_clip, frames_to_tensor
from lgrnet.inference.postprocess import choose_query
from lgrnet.metrics.reliability import auroc, failure_auroc, flag_threshold, frame_dice, reliability_table
from test_predict_api import video as smooth_video

SIZE = 64
HW = (SIZE, SIZE)


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    return LGRNet.from_preset("tiny").eval()


def video(T, H=48, W=64, seed=0):
    return smooth_video(T, H, W, seed)


def test_tta_off_is_the_plain_forward_bit_for_bit(model):
    x = frames_to_tensor(video(5), HW)[0]
    out = ClipRunner(model, tta=False, all_queries=True)(x)
    with torch.inference_mode():
        ref = forward_clip(model, x[None])
    q = choose_query(ref)
    assert out.query == q and out.view_logits is None
    assert torch.equal(out.logits, ref.mask_logits[0, :, q].float())
    assert torch.equal(out.all_logits, ref.mask_logits[0].float())
    assert out.class_score == float(ref.class_probs[0, q, 0])


def test_tta_is_the_mean_of_four_flipped_forwards(model):
    frames = video(4, seed=1)
    runner = ClipRunner(model, tta=True, all_queries=True)
    runner.keep_views = True
    out = runner(frames_to_tensor(frames, HW)[0])
    probs, logits = [], []
    np_axes = {(): None, (-1,): 2, (-2,): 1, (-2, -1): (1, 2)}  # frames are (T, H, W, 3)
    with torch.inference_mode():
        for dims in TTA_FLIPS:
            f = frames if not dims else np.ascontiguousarray(np.flip(frames, np_axes[dims]))
            o = forward_clip(model, frames_to_tensor(f, HW))
            lg = o.mask_logits[0].float()
            logits.append(lg.flip(dims) if dims else lg)
            probs.append(o.class_probs[0, :, 0].float())
    mean_probs = torch.stack(probs).mean(0)
    q = int(mean_probs.argmax())
    assert out.query == q
    assert out.class_score == pytest.approx(float(mean_probs[q]), abs=1e-6)
    torch.testing.assert_close(out.logits, torch.stack(logits).mean(0)[:, q], atol=1e-5, rtol=0)
    assert out.view_logits.shape == (4, 4, SIZE, SIZE)
    torch.testing.assert_close(out.view_logits[1], logits[1][:, q], atol=1e-6, rtol=0)


@pytest.mark.parametrize("axis", [1, 2], ids=["vertical", "horizontal"])
def test_tta_prediction_is_flip_equivariant(model, axis):
    frames = video(5, H=SIZE, W=SIZE, seed=2)  # at the model's size: nearest resizing is not flip-symmetric
    pred = VideoPredictor(model, size=SIZE, tta=True)
    a = pred.predict(frames)
    b = pred.predict(np.ascontiguousarray(np.flip(frames, axis)))
    np.testing.assert_allclose(np.flip(b.probs, axis), a.probs, atol=1e-5, rtol=0)
    np.testing.assert_allclose(b.score, a.score, atol=1e-5)
    assert (b.query == a.query).all()
    # without TTA an untrained model is not equivariant: the test above can fail
    plain = VideoPredictor(model, size=SIZE, tta=False)
    pa, pb = plain.predict(frames), plain.predict(np.ascontiguousarray(np.flip(frames, axis)))
    assert np.abs(np.flip(pb.probs, axis) - pa.probs).max() > 1e-3
    assert pred.settings()["tta"] == "flips" and plain.settings()["tta"] == "off"


def naive_auroc(scores, positive):
    pos = [s for s, y in zip(scores, positive) if y]
    neg = [s for s, y in zip(scores, positive) if not y]
    wins = sum((p > n) + 0.5 * (p == n) for p in pos for n in neg)
    return wins / (len(pos) * len(neg))


@pytest.mark.parametrize("seed", range(4))
def test_auroc_rank_formula_matches_pairwise_and_sklearn(seed):
    rng = np.random.default_rng(seed)
    n = 60
    y = rng.random(n) < 0.4
    s = np.round(rng.random(n) + 0.5 * y, 1)  # rounded: many ties
    assert auroc(s, y) == pytest.approx(naive_auroc(s, y), abs=1e-12)
    metrics = pytest.importorskip("sklearn.metrics")
    assert auroc(s, y) == pytest.approx(metrics.roc_auc_score(y, s), abs=1e-12)


def test_failure_auroc_and_reliability_table():
    dice = np.array([0.9, 0.1, 0.8, 0.3, 0.55, 0.0])
    score = np.array([0.95, 0.2, 0.5, 0.45, 0.7, 1.0])
    assert failure_auroc(score, dice) == pytest.approx(naive_auroc(score, dice >= 0.5))
    assert np.isnan(failure_auroc(score, np.ones(6)))
    rows = reliability_table(score, dice, edges=(0.0, 0.5, 1.0))
    assert [r["frames"] for r in rows] == [2, 4]  # 0.5 falls in the upper bin, 1.0 in the last
    assert rows[0]["mean_dice"] == pytest.approx(np.mean([0.1, 0.3]), abs=1e-4)
    assert rows[1]["mean_dice"] == pytest.approx(np.mean([0.9, 0.8, 0.55, 0.0]), abs=1e-4)
    assert rows[1]["failed"] == 1 and rows[0]["failed"] == 2
    assert reliability_table([0.1], [1.0], edges=(0.0, 0.5, 1.0))[1]["mean_dice"] is None


def naive_flag_threshold(scores, dice):
    """Every midpoint between distinct scores tried in turn: (best J, lowest threshold reaching it)."""
    scores, failed = np.asarray(scores, float), np.asarray(dice, float) < 0.5
    u = np.unique(scores)
    best = None
    for t in (u[:-1] + u[1:]) / 2:
        flagged = scores < t
        j = flagged[failed].mean() - flagged[~failed].mean()
        if best is None or j > best[0] + 1e-12:
            best = (j, t)
    return best


@pytest.mark.parametrize("seed", range(5))
def test_flag_threshold_matches_a_naive_search(seed):
    rng = np.random.default_rng(seed)
    n = 60
    dice = rng.random(n)
    scores = np.round(0.6 * rng.random(n) + 0.4 * dice, 2)  # ties, and a score that carries some signal
    got = flag_threshold(scores, dice)
    j, t = naive_flag_threshold(scores, dice)
    assert got["threshold"] == pytest.approx(t, abs=1e-4) and got["youden_j"] == pytest.approx(j, abs=1e-4)
    flagged = scores < got["threshold"]
    assert got["flagged_failed"] == pytest.approx(flagged[dice < 0.5].mean(), abs=1e-4)
    assert got["flagged_good"] == pytest.approx(flagged[dice >= 0.5].mean(), abs=1e-4)


def test_flag_threshold_separates_and_needs_both_classes():
    dice = [0.9, 0.8, 0.1, 0.2, 0.7]
    got = flag_threshold([0.9, 0.7, 0.3, 0.5, 0.8], dice)  # failed frames score 0.3 and 0.5, good ones >= 0.7
    assert got == {"threshold": 0.6, "flagged_failed": 1.0, "flagged_good": 0.0, "youden_j": 1.0}
    assert flag_threshold([0.9, 0.2], [0.9, 0.8]) is None  # no failed frame
    assert flag_threshold([0.5, 0.5], [0.9, 0.1]) is None  # one distinct score: no cut


def test_frame_dice():
    a = np.zeros((4, 4), bool)
    b = np.zeros((4, 4), bool)
    assert frame_dice(a, b) == 1.0
    a[:2] = True
    b[1:3] = True
    assert frame_dice(a, b) == pytest.approx(2 * 4 / 16)
