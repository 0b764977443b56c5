"""Hungarian matching: optimal (brute force), invariant to query order, costs as published."""
from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
import torch

from lgrnet.losses.matching import assign, clip_matching_cost, pairwise_dice, pairwise_sigmoid_bce
from lgrnet.losses.point_sampling import point_sample, uncertain_point_coords_with_randomness


def brute_force_min(cost: np.ndarray) -> float:
    nq, n = cost.shape
    return min(sum(cost[q, j] for j, q in enumerate(perm)) for perm in itertools.permutations(range(nq), n))


def bilinear_reference(img: np.ndarray, x: float, y: float) -> float:
    """grid_sample(align_corners=False, zero padding) at normalised (x, y) in [0, 1], by hand."""
    h, w = img.shape
    px, py = x * w - 0.5, y * h - 0.5  # pixel centres at i + 0.5
    x0, y0 = math.floor(px), math.floor(py)
    total = 0.0
    for yy, wy in ((y0, 1 - (py - y0)), (y0 + 1, py - y0)):
        for xx, wx in ((x0, 1 - (px - x0)), (x0 + 1, px - x0)):
            if 0 <= yy < h and 0 <= xx < w:
                total += wy * wx * float(img[yy, xx])
    return total


@pytest.mark.parametrize("shape", [(3, 1), (4, 2), (5, 3), (5, 5), (6, 2)])
def test_assignment_is_optimal(shape):
    rng = np.random.default_rng(sum(shape))
    for _ in range(20):
        cost = rng.normal(size=shape)
        rows, cols = assign(torch.from_numpy(cost))
        assert len(rows) == shape[1] and len(set(rows.tolist())) == shape[1]
        assert sorted(cols.tolist()) == list(range(shape[1]))
        assert cost[rows.numpy(), cols.numpy()].sum() == pytest.approx(brute_force_min(cost), abs=1e-12)


def test_assign_no_objects_and_bad_costs():
    rows, cols = assign(torch.zeros(4, 0))
    assert rows.numel() == 0 and cols.numel() == 0
    with pytest.raises(ValueError, match="NaN"):
        assign(torch.tensor([[0.0, float("nan")], [1.0, 2.0]]))


def test_point_sample_matches_hand_bilinear():
    g = torch.Generator().manual_seed(0)
    img = torch.rand(1, 1, 5, 7, generator=g, dtype=torch.float64)
    coords = torch.rand(1, 40, 2, generator=g, dtype=torch.float64)
    coords[0, :4] = torch.tensor([[0.0, 0.0], [1.0, 1.0], [0.5, 0.02], [0.999, 0.3]], dtype=torch.float64)
    got = point_sample(img, coords)[0, 0]
    ref = [bilinear_reference(img[0, 0].numpy(), float(x), float(y)) for x, y in coords[0]]
    np.testing.assert_allclose(got.numpy(), ref, atol=1e-12)


def _clip(seed, nq=4, n=2, t=3, h=6, w=5, H=12, W=10):
    g = torch.Generator().manual_seed(seed)
    cls = torch.randn(nq, 2, generator=g, dtype=torch.float64)
    masks = torch.randn(nq, t, h, w, generator=g, dtype=torch.float64) * 3
    tgt = (torch.rand(n, t, H, W, generator=g) > 0.6).double()
    classes = torch.zeros(n, dtype=torch.int64)
    return cls, masks, tgt, classes


def test_matching_cost_equals_direct_computation():
    cls, masks, tgt, classes = _clip(1)
    g = torch.Generator().manual_seed(5)
    coords = torch.rand(30, 2, generator=g, dtype=torch.float64)
    cost = clip_matching_cost(cls, masks, classes, tgt, num_points=30, class_weight=2, bce_weight=2, dice_weight=2,
                              point_coords=coords)
    nq, t = masks.shape[:2]
    probs = torch.softmax(cls, -1).numpy()
    for i in range(nq):
        for j in range(tgt.shape[0]):
            x = np.array([bilinear_reference(masks[i, f].numpy(), *map(float, p)) for f in range(t) for p in coords])
            y = np.array([bilinear_reference(tgt[j, f].numpy(), *map(float, p)) for f in range(t) for p in coords])
            s = 1 / (1 + np.exp(-x))
            bce = np.mean(-(y * np.log(s) + (1 - y) * np.log(1 - s)))
            dice = 1 - (2 * (s * y).sum() + 1) / (s.sum() + y.sum() + 1)
            expected = -2 * probs[i, classes[j]] + 2 * bce + 2 * dice
            assert float(cost[i, j]) == pytest.approx(expected, abs=1e-5)


def test_pairwise_costs_direct():
    g = torch.Generator().manual_seed(3)
    x = torch.randn(3, 11, generator=g, dtype=torch.float64)
    y = (torch.rand(2, 11, generator=g) > 0.5).double()
    bce = pairwise_sigmoid_bce(x, y)
    dice = pairwise_dice(x, y)
    for i in range(3):
        for j in range(2):
            ref = torch.nn.functional.binary_cross_entropy_with_logits(x[i], y[j])
            assert float(bce[i, j]) == pytest.approx(float(ref), abs=1e-12)
            s = x[i].sigmoid()
            assert float(dice[i, j]) == pytest.approx(float(1 - (2 * (s * y[j]).sum() + 1) / (s.sum() + y[j].sum() + 1)),
                                                      abs=1e-12)


@pytest.mark.parametrize("seed", range(5))
def test_matching_invariant_to_query_order(seed):
    cls, masks, tgt, classes = _clip(seed, nq=5, n=3)
    coords = torch.rand(50, 2, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)
    cost = clip_matching_cost(cls, masks, classes, tgt, 50, point_coords=coords)
    rows, cols = assign(cost)
    perm = torch.randperm(5, generator=torch.Generator().manual_seed(100 + seed))
    cost_p = clip_matching_cost(cls[perm], masks[perm], classes, tgt, 50, point_coords=coords)
    torch.testing.assert_close(cost_p, cost[perm])
    rows_p, cols_p = assign(cost_p)
    # Query perm[r] of the permuted order is query r of the original: the same pairs are matched.
    assert sorted(zip(perm[rows_p].tolist(), cols_p.tolist())) == sorted(zip(rows.tolist(), cols.tolist()))
    assert float(cost_p[rows_p, cols_p].sum()) == pytest.approx(float(cost[rows, cols].sum()), abs=1e-5)  # float32 costs


def test_uncertain_points_pick_the_most_uncertain_candidates():
    logits = torch.randn(3, 1, 9, 9, generator=torch.Generator().manual_seed(0)) * 4
    num_points, over, ratio = 20, 3.0, 0.75
    coords = uncertain_point_coords_with_randomness(logits, num_points, over, ratio,
                                                    generator=torch.Generator().manual_seed(7))
    assert coords.shape == (3, 20, 2) and float(coords.min()) >= 0 and float(coords.max()) <= 1
    # The same draws by hand: 60 candidates, keep the 15 with the smallest |logit|, add 5 uniform points.
    g = torch.Generator().manual_seed(7)
    cand = torch.rand(3, 60, 2, generator=g)
    extra = torch.rand(3, 5, 2, generator=g)
    for r in range(3):
        vals = np.array([bilinear_reference(logits[r, 0].numpy(), float(x), float(y)) for x, y in cand[r]])
        keep = np.argsort(np.abs(vals), kind="stable")[:15]
        assert {tuple(np.round(c, 6)) for c in cand[r, keep].numpy()} == \
               {tuple(np.round(c, 6)) for c in coords[r, :15].numpy()}
        torch.testing.assert_close(coords[r, 15:], extra[r])
