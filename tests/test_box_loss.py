"""lgrnet.losses.box and box_criterion: the BoxInst terms against naive loops, and the mixed
criterion equal to the published one when no frame has a box."""
from __future__ import annotations

import math
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from lgrnet.config import BoxLossConfig, LossConfig
from lgrnet.losses.box import (axis_projections, color_similarity, ellipse_prior_loss, foreground_probability,
                               neighbour_offsets, pairwise_loss, pairwise_projection_cost, pool_to, projection_loss, rgb_to_lab,
                               scale_consistency_loss, teacher_loss, teacher_pseudo_masks)
from lgrnet.losses.box_criterion import BoxSupervisedCriterion, mask_frames_view
from lgrnet.losses.criterion import ClipTarget, SetCriterion


def _lab_naive(r, g, b):
    """CIE LAB of one sRGB colour in [0, 1], float64, straight from the formulas."""
    def lin(c):
        return ((c + 0.055) / 1.055) ** 2.4 if c > 0.04045 else c / 12.92
    rl, gl, bl = lin(r), lin(g), lin(b)
    x = (0.412453 * rl + 0.357580 * gl + 0.180423 * bl) / 0.95047
    y = (0.212671 * rl + 0.715160 * gl + 0.072169 * bl) / 1.0
    z = (0.019334 * rl + 0.119193 * gl + 0.950227 * bl) / 1.08883

    def f(t):
        return t ** (1 / 3) if t > 0.008856 else 7.787 * t + 16 / 116
    lum = 116 * f(y) - 16 if y > 0.008856 else 903.3 * y
    return lum, 500 * (f(x) - f(y)), 200 * (f(y) - f(z))


def test_rgb_to_lab_against_formula_and_known_colours():
    rng = np.random.default_rng(0)
    img = rng.random((3, 4, 5))
    lab = rgb_to_lab(torch.from_numpy(img)).double().numpy()
    for r in range(4):
        for c in range(5):
            np.testing.assert_allclose(lab[:, r, c], _lab_naive(*img[:, r, c]), atol=2e-3)
    known = torch.tensor([[1.0, 0.0, 1.0], [1.0, 0.0, 0.0], [1.0, 0.0, 0.0]])[:, None, :]  # R, G, B of white, black, red
    out = rgb_to_lab(known)[:, 0, :].T
    np.testing.assert_allclose(out[0].numpy(), [100.0, 0.0, 0.0], atol=0.02)
    np.testing.assert_allclose(out[1].numpy(), [0.0, 0.0, 0.0], atol=1e-4)
    np.testing.assert_allclose(out[2].numpy(), [53.24, 80.09, 67.20], atol=0.05)  # skimage's rgb2lab of red


def test_axis_projections_of_a_known_mask():
    m = torch.zeros(1, 5, 7)
    m[0, 1:3, 2:4] = 1.0
    m[0, 4, 6] = 0.5
    px, py = axis_projections(m)
    assert px.tolist() == [[0, 0, 1, 1, 0, 0, 0.5]]
    assert py.tolist() == [[0, 1, 1, 0, 0.5]]


def _dice(u, v):
    return 1 - 2 * sum(a * b for a, b in zip(u, v)) / (sum(a * a for a in u) + sum(b * b for b in v) + 1e-5)


def test_projection_loss_against_loops():
    torch.manual_seed(0)
    logits = torch.randn(3, 6, 8, dtype=torch.float64)
    boxes = torch.zeros(3, 6, 8, dtype=torch.float64)
    boxes[0, 1:4, 2:7] = 1
    boxes[1, 0:6, 0:1] = 1
    boxes[2, 2:3, 3:5] = 1
    got = projection_loss(logits, boxes)
    p = torch.sigmoid(logits)
    for r in range(3):
        px = [max(p[r, i, j].item() for i in range(6)) for j in range(8)]
        py = [max(p[r, i, j].item() for j in range(8)) for i in range(6)]
        bx = [max(boxes[r, i, j].item() for i in range(6)) for j in range(8)]
        by = [max(boxes[r, i, j].item() for j in range(8)) for i in range(6)]
        assert got[r].item() == pytest.approx(_dice(px, bx) + _dice(py, by), abs=1e-6)
    # a mask inside the box that touches all four sides has (nearly) zero loss, whatever its shape
    perfect = torch.full((1, 6, 8), -30.0)
    perfect[0, 1, 2:7] = 30.0
    perfect[0, 1:4, 4] = 30.0
    assert projection_loss(perfect, boxes[:1]).item() < 1e-5
    assert projection_loss(-perfect, boxes[:1]).item() > 0.5


def test_pairwise_projection_cost_is_projection_loss_of_each_pair():
    torch.manual_seed(1)
    logits = torch.randn(4, 2, 6, 7)  # (Nq, T, H, W)
    boxes = (torch.rand(3, 2, 6, 7) > 0.5).float()
    cost = pairwise_projection_cost(logits, boxes)
    for q in range(4):
        for j in range(3):
            px, py = axis_projections(logits[q].sigmoid())
            bx, by = axis_projections(boxes[j])
            want = _dice(px.flatten().tolist(), bx.flatten().tolist()) + _dice(py.flatten().tolist(), by.flatten().tolist())
            assert cost[q, j].item() == pytest.approx(want, abs=1e-5)


@pytest.mark.parametrize("dilation", [1, 2])
def test_color_similarity_and_pairwise_loss_against_double_loop(dilation):
    rng = np.random.default_rng(2)
    h, w = 5, 6
    lab = torch.from_numpy(rng.normal(0, 2, (1, 3, h, w)))
    lab[0, :, :2, :3] = 1.0  # a flat patch: similarity 1 inside it
    theta, tau = 2.0, 0.3
    sim = color_similarity(lab, dilation, theta)
    logits = torch.from_numpy(rng.normal(0, 2, (1, h, w)))
    box = torch.zeros(1, h, w, dtype=torch.float64)
    box[0, 1:4, 1:5] = 1
    loss = pairwise_loss(logits, sim, box, tau, dilation)
    total = count = 0.0
    for k, (dy, dx) in enumerate(neighbour_offsets(dilation)):
        for r in range(h):
            for c in range(w):
                rr, cc = r + dy, c + dx
                inside = 0 <= rr < h and 0 <= cc < w
                s = math.exp(-float(torch.linalg.vector_norm(lab[0, :, r, c] - lab[0, :, rr, cc])) / theta) if inside else 0.0
                assert sim[0, k, r, c].item() == pytest.approx(s, abs=1e-9)
                if inside and s >= tau and box[0, r, c] > 0:
                    pi = 1 / (1 + math.exp(-logits[0, r, c].item()))
                    pj = 1 / (1 + math.exp(-logits[0, rr, cc].item()))
                    total += -math.log(pi * pj + (1 - pi) * (1 - pj))
                    count += 1
    assert count > 0
    assert loss.item() == pytest.approx(total / count, rel=1e-6)  # the loss runs in float32


def test_pool_to_averages_cells():
    x = torch.arange(16.0).view(1, 4, 4)
    assert pool_to(x, (2, 2)).tolist() == [[[2.5, 4.5], [10.5, 12.5]]]


def _heads(b, t, nq, s, seed, requires_grad=False):
    g = torch.Generator().manual_seed(seed)
    heads = []
    for _ in range(2):
        heads.append(SimpleNamespace(class_logits=torch.randn(b, nq, 2, generator=g).requires_grad_(requires_grad),
                                     mask_logits=torch.randn(b, t, nq, s, s, generator=g).requires_grad_(requires_grad)))
    return heads


def _mask_target(t, s, seed):
    g = torch.Generator().manual_seed(seed)
    m = torch.zeros(1, t, s, s)
    m[0, :, 4:10, 5:12] = (torch.rand(t, 6, 7, generator=g) > 0.3).float()
    return ClipTarget(m, torch.zeros(1, dtype=torch.int64), torch.ones(t, dtype=torch.bool))


def test_mask_only_batches_are_the_published_loss_bit_for_bit():
    cfg = LossConfig(num_points=200)
    heads_a = _heads(2, 3, 4, 16, 0, requires_grad=True)
    heads_b = [SimpleNamespace(class_logits=h.class_logits.detach().clone().requires_grad_(True),
                               mask_logits=h.mask_logits.detach().clone().requires_grad_(True)) for h in heads_a]
    targets = [_mask_target(3, 16, 1), _mask_target(3, 16, 2)]
    ref = SetCriterion(cfg)(heads_a, targets, [torch.Generator().manual_seed(s) for s in (5, 6)])
    new = BoxSupervisedCriterion(cfg, BoxLossConfig())(heads_b, targets, [torch.Generator().manual_seed(s) for s in (5, 6)],
                                                       images=None)
    for k in ("loss", "loss_bce", "loss_dice", "loss_class"):
        assert torch.equal(ref[k], new[k]), k
    ref["loss"].backward()
    new["loss"].backward()
    for ha, hb in zip(heads_a, heads_b):
        assert torch.equal(ha.mask_logits.grad, hb.mask_logits.grad)
        assert torch.equal(ha.class_logits.grad, hb.class_logits.grad)


def test_mask_frames_view():
    tgt = _mask_target(4, 16, 3)
    tgt.has_ann[1] = False
    tgt = ClipTarget(tgt.masks[:, [0, 2, 3]], tgt.classes, tgt.has_ann, torch.tensor([False, True, False]))
    view = mask_frames_view(tgt)
    assert view.has_ann.tolist() == [True, False, False, True]
    assert torch.equal(view.masks, tgt.masks[:, [0, 2]])
    assert view.box_frames is None


def test_box_frames_loss_prefers_the_right_mask_and_has_gradients():
    s, t = 32, 2
    box = torch.zeros(1, t, s, s)
    box[0, :, 8:24, 4:20] = 1.0
    target = ClipTarget(box, torch.zeros(1, dtype=torch.int64), torch.ones(t, dtype=torch.bool),
                        torch.tensor([True, True]))
    images = torch.full((1, t, 3, s, s), 0.2)
    images[..., 10:22, 6:18] = 0.8  # the lesion: a bright square inside the box
    crit = BoxSupervisedCriterion(LossConfig(num_points=64), BoxLossConfig(pairwise_warmup_iters=0))

    def loss_for(mask_logits):
        head = SimpleNamespace(class_logits=torch.tensor([[[4.0, -4.0], [-4.0, 4.0]]]), mask_logits=mask_logits)
        return crit([head], [target], images=images)

    good = torch.full((1, t, 2, s, s), -8.0)
    good[:, :, 0, 8:24, 4:20] = 8.0  # query 0 fills the box
    bad = torch.full((1, t, 2, s, s), -8.0)
    bad[:, :, 0, 0:6, 0:6] = 8.0
    lg, lb = loss_for(good), loss_for(bad)
    assert lg["loss_box_proj"].item() < 0.05 < lb["loss_box_proj"].item()
    assert lg["loss"].item() < lb["loss"].item()
    x = torch.zeros(1, t, 2, s, s, requires_grad=True)
    out = loss_for(x)
    out["loss"].backward()
    assert torch.isfinite(out["loss"]) and x.grad.abs().sum() > 0
    assert out["loss_box_pair"].item() > 0
    with pytest.raises(ValueError, match="images"):
        crit([SimpleNamespace(class_logits=torch.zeros(1, 2, 2), mask_logits=x)], [target])


def test_mixed_clip_matches_on_both_kinds():
    s, t = 16, 3
    masks = torch.zeros(1, t, s, s)
    masks[0, :, 4:12, 4:12] = 1.0
    target = ClipTarget(masks, torch.zeros(1, dtype=torch.int64), torch.ones(t, dtype=torch.bool),
                        torch.tensor([False, True, True]))
    crit = BoxSupervisedCriterion(LossConfig(num_points=64), BoxLossConfig())
    mask_logits = torch.full((1, t, 3, s, s), -8.0)
    mask_logits[:, :, 2, 4:12, 4:12] = 8.0  # query 2 is right on every frame
    head = SimpleNamespace(class_logits=torch.zeros(1, 3, 2), mask_logits=mask_logits)
    views = [mask_frames_view(target)]
    box_clip = crit._box_clip(target, torch.rand(t, 3, s, s), (4, 4))
    (qi, oi), = crit.match_mixed(head, [target], views, [box_clip], [torch.Generator().manual_seed(0)])
    assert qi.tolist() == [2] and oi.tolist() == [0]


def test_foreground_probability_against_a_loop():
    g = torch.Generator().manual_seed(3)
    mask_logits = torch.randn(2, 3, 4, 5, 6, generator=g) * 3
    class_logits = torch.randn(2, 4, 3, generator=g) * 2  # two lesion classes + "no object"
    got = foreground_probability(mask_logits, class_logits)
    want = torch.zeros(2, 3, 5, 6, dtype=torch.float64)
    for b in range(2):
        probs = class_logits[b].double().softmax(-1)
        for q in range(4):
            want[b] += (probs[q, 0] + probs[q, 1]) * mask_logits[b, :, q].double().sigmoid()
    assert torch.allclose(got.double(), want.clamp(max=1.0), atol=1e-6)
    assert got.max() <= 1.0


def _region_mean_loop(region, value):
    """Per row r of (R, H, W) ``region``: sum of region * value(r, y, x) / sum of region (0 if empty)."""
    out = []
    for r in range(region.shape[0]):
        num = den = 0.0
        for y in range(region.shape[1]):
            for x in range(region.shape[2]):
                num += float(region[r, y, x]) * value(r, y, x)
                den += float(region[r, y, x])
        out.append(num / den if den else 0.0)
    return out


def test_scale_consistency_loss_against_a_loop():
    g = torch.Generator().manual_seed(4)
    a, b = torch.rand(3, 6, 7, generator=g), torch.rand(3, 6, 7, generator=g)
    region = (torch.rand(3, 6, 7, generator=g) > 0.5).float() * torch.rand(3, 6, 7, generator=g)
    region[2] = 0  # an empty box: no loss
    got = scale_consistency_loss(a, b, region)
    want = _region_mean_loop(region, lambda r, y, x: abs(float(a[r, y, x]) - float(b[r, y, x])))
    for r in range(3):
        assert math.isclose(float(got[r]), want[r], rel_tol=1e-5, abs_tol=1e-7)
    assert torch.equal(scale_consistency_loss(a, a, region), torch.zeros(3))


def test_criterion_scale_consistency_compares_inside_the_boxes_across_sizes():
    s, t = 32, 2
    box = torch.zeros(1, t, s, s)
    box[0, :, 8:24, 8:24] = 1.0
    target = ClipTarget(box, torch.zeros(1, dtype=torch.int64), torch.ones(t, dtype=torch.bool),
                        torch.tensor([False, True]))  # frame 0 has a mask, frame 1 a box
    crit = BoxSupervisedCriterion(LossConfig(num_points=64), BoxLossConfig(stride=4))
    classes = torch.tensor([[[8.0, -8.0]]])  # one query, surely a lesion

    def out(mask_logits):
        return SimpleNamespace(mask_logits=mask_logits, class_logits=classes)

    a = torch.full((1, t, 1, s, s), -8.0)
    a[..., 8:24, 8:24] = 8.0
    b = torch.full((1, t, 1, s // 2, s // 2), -8.0)
    b[..., 4:12, 4:12] = 8.0  # the same lesion at half the size
    same = crit.scale_consistency(out(a), out(b), [target])
    assert same.item() < 1e-3  # the same lesion on both grids
    b_wrong = b.clone()
    b_wrong[:, 1] = -8.0  # the box frame's second view finds nothing: |1 - 0| inside the box
    assert crit.scale_consistency(out(a), out(b_wrong), [target]).item() > 0.95
    b_other = b.clone()
    b_other[:, 0] = -8.0  # only the mask frame differs: not a box frame, not compared
    assert torch.equal(crit.scale_consistency(out(a), out(b_other), [target]), same)
    x = a.clone().requires_grad_(True)
    crit.scale_consistency(out(x), out(b_wrong), [target]).backward()
    assert x.grad[:, 1].abs().sum() > 0 and x.grad[:, 0].abs().sum() == 0
    no_boxes = ClipTarget(box, torch.zeros(1, dtype=torch.int64), torch.ones(t, dtype=torch.bool))
    assert crit.scale_consistency(out(a), out(b_wrong), [no_boxes]).item() == 0.0


def test_ellipse_prior_loss_against_a_loop():
    g = torch.Generator().manual_seed(5)
    logits = torch.randn(3, 5, 6, generator=g) * 4
    ellipses = torch.rand(3, 5, 6, generator=g)
    boxes = (torch.rand(3, 5, 6, generator=g) > 0.4).float()
    boxes[2] = 0  # an empty box: no loss
    got = ellipse_prior_loss(logits, ellipses, boxes)

    def bce(r, y, x):
        p, e = 1 / (1 + math.exp(-float(logits[r, y, x]))), float(ellipses[r, y, x])
        return -(e * math.log(p) + (1 - e) * math.log(1 - p))

    want = _region_mean_loop(boxes, bce)
    for r in range(3):
        assert math.isclose(float(got[r]), want[r], rel_tol=1e-5, abs_tol=1e-6)


def test_criterion_ellipse_prior_prefers_the_ellipse_to_the_box():
    """Both a filled box and its inscribed ellipse satisfy the projection term; with the prior on, the
    ellipse scores lower, and the term is off (zero) without priors or at weight 0."""
    from lgrnet.data.boxes import box_to_ellipse_mask, box_to_mask

    s, t = 32, 2
    box_np = np.array([[4, 8, 16, 16]], np.float32)
    box = torch.from_numpy(box_to_mask(box_np, (s, s))).float()[None, None].repeat(1, t, 1, 1)
    oval = torch.from_numpy(box_to_ellipse_mask(box_np, (s, s))).float()[None, None].repeat(1, t, 1, 1)
    images = torch.full((1, t, 3, s, s), 0.5)

    def losses(box_loss, priors, logits):
        target = ClipTarget(box, torch.zeros(1, dtype=torch.int64), torch.ones(t, dtype=torch.bool),
                            torch.tensor([True, True]), priors)
        crit = BoxSupervisedCriterion(LossConfig(num_points=64), box_loss)
        head = SimpleNamespace(class_logits=torch.tensor([[[4.0, -4.0]]]), mask_logits=logits)
        return crit([head], [target], images=images)

    as_box = (box * 16 - 8)[:, :, None]  # (1, T, 1, S, S) logits
    as_oval = (oval * 16 - 8)[:, :, None]
    on = BoxLossConfig(pairwise_warmup_iters=0, pairwise_weight=0.0, ellipse_weight=2.0)
    lb, lo = losses(on, oval, as_box), losses(on, oval, as_oval)
    assert lo["loss_box_ellipse"].item() < lb["loss_box_ellipse"].item()
    assert lo["loss"].item() < lb["loss"].item()
    assert abs(lo["loss_box_proj"].item() - lb["loss_box_proj"].item()) < 0.05  # the same projections (4x4 cells)
    assert losses(BoxLossConfig(pairwise_warmup_iters=0), oval, as_box)["loss_box_ellipse"].item() == 0.0
    assert losses(on, None, as_box)["loss_box_ellipse"].item() == 0.0


def test_teacher_pseudo_masks_and_loss_against_loops():
    """Pseudo-mask = teacher map >= threshold inside the box; it fits when its projections' Dice
    against the box (mean of x and y) reaches min_fit; the loss is the mean BCE plus +1 dice, each
    pixel by hand."""
    rng = np.random.default_rng(3)
    q = torch.from_numpy(rng.random((2, 10, 12))).float()  # (Tb, h, w)
    boxes = torch.zeros(2, 2, 10, 12)  # (n, Tb, h, w)
    boxes[0, :, 2:8, 3:9] = 1
    boxes[1, 0, 0:3, 0:12] = 1  # the second object: a box on frame 0 only
    q[:, 2:8, 3:9] = q[:, 2:8, 3:9] * 0.3 + 0.6  # object 0: confident everywhere in its box
    pseudo, fits = teacher_pseudo_masks(q, boxes, threshold=0.5, min_fit=0.9)
    for o in range(2):
        for f in range(2):
            want = np.array([[float(q[f, y, x] >= 0.5 and boxes[o, f, y, x] > 0.5) for x in range(12)] for y in range(10)])
            np.testing.assert_array_equal(pseudo[o, f].numpy(), want)
            bx, by = boxes[o, f].numpy().max(0), boxes[o, f].numpy().max(1)
            px, py = want.max(0), want.max(1)
            if bx.sum() == 0:
                assert not fits[o, f]
                continue
            dice = [2 * (a * b).sum() / ((a * a).sum() + (b * b).sum() + 1e-5) for a, b in ((px, bx), (py, by))]
            assert bool(fits[o, f]) == (sum(dice) / 2 >= 0.9)
    assert fits[0].all() and not fits[1, 1]  # a frame without the object's box never fits

    logits = torch.from_numpy(rng.normal(size=(2, 10, 12))).float()
    m = pseudo[0]
    got = teacher_loss(logits, m)
    for r in range(2):
        bce, inter, ssum = 0.0, 0.0, 0.0
        for y in range(10):
            for x in range(12):
                p, t = 1 / (1 + math.exp(-float(logits[r, y, x]))), float(m[r, y, x])
                bce += -(t * math.log(p) + (1 - t) * math.log(1 - p))
                inter, ssum = inter + p * t, ssum + p
        want = bce / 120 + 1 - (2 * inter + 1) / (ssum + float(m[r].sum()) + 1)
        assert math.isclose(float(got[r]), want, rel_tol=1e-5)


def test_criterion_teacher_term_uses_only_fitting_pseudo_masks():
    """With the teacher's map equal to a mask inside the box the term is the teacher loss of the
    matched query against it, over num_objects; a teacher map that misses the box (no fit) or no
    map at all gives zero; weight 0 gives zero too."""
    s, t = 32, 2
    box = torch.zeros(1, t, s, s)
    box[:, :, 8:24, 4:20] = 1
    lesion = torch.zeros(t, s, s)
    lesion[:, 9:23, 5:19] = 1
    images = torch.full((1, t, 3, s, s), 0.5)
    logits = torch.from_numpy(np.random.default_rng(0).normal(size=(1, t, 1, s, s))).float()
    target = ClipTarget(box, torch.zeros(1, dtype=torch.int64), torch.ones(t, dtype=torch.bool), torch.tensor([True, True]))

    def run(box_loss, maps):
        crit = BoxSupervisedCriterion(LossConfig(num_points=64), box_loss)
        head = SimpleNamespace(class_logits=torch.tensor([[[4.0, -4.0]]]), mask_logits=logits)
        return crit([head], [target], images=images, teacher_maps=maps)

    on = BoxLossConfig(pairwise_warmup_iters=0, teacher_weight=1.0, stride=4)
    got = run(on, lesion[None])["loss_box_teacher"].item()
    want = teacher_loss(pool_to(logits[0, :, 0], (8, 8)), (pool_to(lesion, (8, 8)) >= 0.5).float()).sum().item()
    assert got > 0 and math.isclose(got, want, rel_tol=1e-5)
    missing = torch.zeros(1, t, s, s)
    missing[:, :, 0:4, 0:4] = 1  # all outside the box: an empty pseudo-mask, no fit
    assert run(on, missing)["loss_box_teacher"].item() == 0.0
    assert run(on, None)["loss_box_teacher"].item() == 0.0
    off = BoxLossConfig(pairwise_warmup_iters=0, stride=4)
    assert run(off, lesion[None])["loss_box_teacher"].item() == 0.0
    assert math.isclose(run(on, lesion[None])["loss"].item() - run(off, lesion[None])["loss"].item(), got, rel_tol=1e-4)
