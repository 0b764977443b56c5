"""The set-matching loss: every term against a direct computation, the published weights, and the
behaviour of a perfect prediction."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from lgrnet.config import LossConfig, get_preset
from lgrnet.losses import ClipTarget, SetCriterion, assign
from lgrnet.models.decoder import HeadOutput

from test_matching import bilinear_reference


def _batch(seed=0, b=2, t=3, nq=4, h=8, w=8, H=16, W=16, objects=(2, 1), ann=None):
    g = torch.Generator().manual_seed(seed)
    heads = [HeadOutput(torch.randn(b, nq, 2, generator=g), torch.randn(b, t, nq, h, w, generator=g) * 3)
             for _ in range(3)]
    targets = []
    for i in range(b):
        has_ann = torch.ones(t, dtype=torch.bool) if ann is None else ann[i]
        n = objects[i]
        masks = (torch.rand(n, int(has_ann.sum()), H, W, generator=g) > 0.5).float()
        targets.append(ClipTarget(masks, torch.zeros(n, dtype=torch.int64), has_ann))
    return heads, targets


def _ref_mask_losses(head, targets, indices, num_objects, cfg, seeds):
    """Point selection, labels, BCE and dice by hand (float64)."""
    bce = dice = 0.0
    k = int(cfg.importance_sample_ratio * cfg.num_points)
    m = int(cfg.num_points * cfg.oversample_ratio)
    for i, (tgt, (qi, oi)) in enumerate(zip(targets, indices)):
        if len(qi) == 0:
            continue
        src = head.mask_logits[i][tgt.has_ann].transpose(0, 1)[qi].flatten(0, 1).double().numpy()
        gt = tgt.masks[oi].flatten(0, 1).double().numpy()
        g = torch.Generator().manual_seed(seeds[i])
        cand = torch.rand(len(src), m, 2, generator=g).double().numpy()
        extra = torch.rand(len(src), cfg.num_points - k, 2, generator=g).double().numpy()
        for r in range(len(src)):
            vals = np.array([bilinear_reference(src[r], x, y) for x, y in cand[r]])
            pts = np.concatenate([cand[r][np.argsort(np.abs(vals), kind="stable")[:k]], extra[r]])
            x = np.array([bilinear_reference(src[r], px, py) for px, py in pts])
            y = np.array([bilinear_reference(gt[r], px, py) for px, py in pts])
            s = 1 / (1 + np.exp(-x))
            bce += np.mean(-(y * np.log(s) + (1 - y) * np.log(1 - s)))
            dice += 1 - (2 * (s * y).sum() + 1) / (s.sum() + y.sum() + 1)
    return bce / num_objects, dice / num_objects


def test_mask_losses_equal_direct_computation():
    cfg = LossConfig(num_points=24)
    crit = SetCriterion(cfg)
    ann = [torch.tensor([True, False, True]), torch.tensor([True, True, True])]
    heads, targets = _batch(objects=(2, 1), ann=ann)
    indices = [(torch.tensor([0, 3]), torch.tensor([1, 0])), (torch.tensor([2]), torch.tensor([0]))]
    seeds = [11, 12]
    gens = [torch.Generator().manual_seed(s) for s in seeds]
    bce, dice = crit.mask_losses(heads[0], targets, indices, num_objects=3.0, generators=gens)
    ref_bce, ref_dice = _ref_mask_losses(heads[0], targets, indices, 3.0, cfg, seeds)
    assert float(bce) == pytest.approx(ref_bce, rel=1e-5)
    assert float(dice) == pytest.approx(ref_dice, rel=1e-5)


def test_class_loss_equals_direct_computation():
    crit = SetCriterion(LossConfig(no_object_weight=0.1))
    heads, targets = _batch(objects=(2, 0))
    indices = [(torch.tensor([1, 2]), torch.tensor([0, 1])), (torch.zeros(0, dtype=torch.long),) * 2]
    got = float(crit.class_loss(heads[0], targets, indices))
    logits = heads[0].class_logits.double()
    num, den = 0.0, 0.0
    for i in range(2):
        for q in range(4):
            label = 0 if (i == 0 and q in (1, 2)) else 1  # class 0 = lesion, 1 = no object
            w = 1.0 if label == 0 else 0.1
            num += -w * float(torch.log_softmax(logits[i, q], -1)[label])
            den += w
    assert got == pytest.approx(num / den, rel=1e-6)


def test_total_is_weighted_sum_over_heads_with_matching():
    cfg = LossConfig(num_points=16, aux_weight=0.5)
    crit = SetCriterion(cfg)
    heads, targets = _batch(seed=3, objects=(2, 1))
    seeds = [5, 6]
    out = crit(heads, targets, [torch.Generator().manual_seed(s) for s in seeds])
    # Recompute head by head with generators consumed in the same order (match, then mask points).
    gens = [torch.Generator().manual_seed(s) for s in seeds]
    w_bce, w_dice, w_cls = crit.term_weights
    total = sb = sd = sc = 0.0
    for w_head, head in zip([0.5, 0.5, 1.0], heads):
        idx = crit.match(head, targets, gens)
        b, d = crit.mask_losses(head, targets, idx, 3.0, gens)
        c = crit.class_loss(head, targets, idx)
        total += w_head * (w_bce * float(b) + w_dice * float(d) + w_cls * float(c))
        sb, sd, sc = sb + float(b), sd + float(d), sc + float(c)
    assert float(out["loss"]) == pytest.approx(total, rel=1e-6)
    assert (float(out["loss_bce"]), float(out["loss_dice"]), float(out["loss_class"])) == pytest.approx((sb, sd, sc), rel=1e-6)
    assert float(out["num_objects"]) == 3.0


def test_matching_in_criterion_is_optimal_for_the_published_cost():
    from lgrnet.losses import clip_matching_cost

    from test_matching import brute_force_min

    cfg = LossConfig(num_points=32)
    crit = SetCriterion(cfg)
    heads, targets = _batch(seed=4, objects=(3, 2))
    idx = crit.match(heads[1], targets, [torch.Generator().manual_seed(1), torch.Generator().manual_seed(2)])
    for i, (qi, oi) in enumerate(idx):
        # The same random points (same generator seed) -> the same cost matrix; brute force its optimum.
        cost = clip_matching_cost(heads[1].class_logits[i], heads[1].mask_logits[i].transpose(0, 1), targets[i].classes,
                                  targets[i].masks, 32, 2.0, 2.0, 2.0, generator=torch.Generator().manual_seed(i + 1))
        assert len(qi) == targets[i].masks.shape[0] and len(set(qi.tolist())) == len(qi)
        assert float(cost[qi, oi].sum()) == pytest.approx(brute_force_min(cost.double().numpy()), abs=1e-6)


def test_published_weights_swapped_by_default():
    sun = SetCriterion(get_preset("sunseg_pvt").train.loss)
    assert sun.term_weights == (5.0, 5.0, 2.0)
    cvc = get_preset("cvc_pvt").train.loss
    assert (cvc.dice_weight, cvc.bce_weight, cvc.authors_swapped_point_losses) == (5.0, 2.0, True)
    assert SetCriterion(cvc).term_weights == (5.0, 2.0, 2.0)  # applied: BCE x5, dice x2 (as trained)
    cvc.authors_swapped_point_losses = False
    assert SetCriterion(cvc).term_weights == (2.0, 5.0, 2.0)  # as named in the config


def _perfect(S, L=10.0, nq=3):
    gt = torch.zeros(1, 2, S, S)
    gt[0, :, S // 4:S // 4 + S // 2, S // 4:S // 4 + S // 2] = 1
    logits = torch.full((1, 2, nq, S, S), -L)
    logits[0, :, 1] = L * (2 * gt[0] - 1)
    cls = torch.full((1, nq, 2), 0.0)
    cls[0, :, 1] = L  # every query says "no object" ...
    cls[0, 1] = torch.tensor([L, -L])  # ... except the perfect one
    target = ClipTarget(gt, torch.zeros(1, dtype=torch.int64), torch.ones(2, dtype=torch.bool))
    return [HeadOutput(cls, logits)], [target]


@pytest.mark.parametrize("ratio", [0.0, 0.75])
def test_perfect_prediction_drives_losses_to_zero(ratio):
    """Bilinear point sampling blurs a hard mask over one pixel at its edge, so even a perfect
    binary prediction keeps a loss proportional to the edge's share of the points; it must fall
    towards 0 as the edge's share does (halving per doubling of resolution) and be far below the
    loss of a wrong prediction. The class loss is ~0 outright."""
    cfg = LossConfig(num_points=4096, importance_sample_ratio=ratio)
    crit = SetCriterion(cfg)
    res = {}
    for S in (64, 128, 256, 512):
        heads, targets = _perfect(S)
        res[S] = crit(heads, targets, [torch.Generator().manual_seed(0)])
    for key in ("loss_bce", "loss_dice"):
        vals = [float(res[S][key]) for S in (64, 128, 256, 512)]
        assert all(b < 0.65 * a for a, b in zip(vals, vals[1:])), (key, vals)
    assert float(res[512]["loss_dice"]) < 0.02 and float(res[512]["loss_bce"]) < 0.05
    assert float(res[512]["loss_class"]) < 1e-4  # logits +-10: CE ~ e^-10
    # A wrong prediction (the perfect query's mask inverted) for scale.
    heads, targets = _perfect(512)
    heads[0].mask_logits[0, :, 1] *= -1
    wrong = crit(heads, targets, [torch.Generator().manual_seed(0)])
    assert float(wrong["loss_dice"]) > 50 * float(res[512]["loss_dice"])
    assert float(wrong["loss_bce"]) > 50 * float(res[512]["loss_bce"])


def test_perfect_prediction_away_from_edges_has_zero_loss():
    """Where the sampled points see no mask edge, a perfect prediction's mask and class losses are ~0."""
    from lgrnet.losses import dice_per_mask, point_sample, sigmoid_bce_per_mask

    S = 32
    gt = torch.ones(1, 1, S, S)
    logits = torch.full((1, 1, 2, S, S), 30.0)
    logits[0, 0, 0] = -30
    coords = torch.rand(1, 500, 2, generator=torch.Generator().manual_seed(0)) * 0.8 + 0.1  # off the border
    x = point_sample(logits[0, :, 1][:, None], coords)[:, 0]
    y = point_sample(gt[:, 0][:, None], coords)[:, 0]
    assert float(sigmoid_bce_per_mask(x, y)) < 1e-6  # float32 labels of 1 - 6e-8
    assert float(dice_per_mask(x, y)) < 1e-3
    cls = torch.tensor([[[-30.0, 30.0], [30.0, -30.0]]])
    crit = SetCriterion(LossConfig())
    target = ClipTarget(gt, torch.zeros(1, dtype=torch.long), torch.ones(1, dtype=torch.bool))
    idx = [assign(torch.tensor([[1.0], [0.0]]))]  # query 1 <-> object 0
    assert float(crit.class_loss(HeadOutput(cls, logits), [target], idx)) < 1e-10


def test_no_objects_keeps_graph_and_only_class_loss():
    crit = SetCriterion(LossConfig(num_points=8))
    heads, targets = _batch(objects=(0, 0))
    for h in heads:
        h.mask_logits.requires_grad_(True)
    out = crit(heads, targets)
    assert float(out["loss_bce"]) == 0.0 and float(out["loss_dice"]) == 0.0
    out["loss"].backward()
    assert heads[0].mask_logits.grad is not None and float(heads[0].mask_logits.grad.abs().sum()) == 0.0
