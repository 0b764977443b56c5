"""The box-supervised mask loss of BoxInst (Tian et al., "BoxInst: High-Performance Instance
Segmentation with Box Annotations", CVPR 2021), the objective WeakPolyp (Wei et al., MICCAI 2023)
builds on for polyps; written to be read, checked against naive loops in tests/test_box_loss.py.

A frame annotated with a box says two things about the mask, and the loss uses both:

* **projection**: the mask's max-projection onto the x axis (does any pixel of column c belong to
  the lesion?) is the box's, and so is its projection onto the y axis. With the predicted mask
  probabilities ``p = sigmoid(logits)``::

      L_proj = Dice(max_y p, max_y b) + Dice(max_x p, max_x b),
      Dice(u, v) = 1 - 2 <u, v> / (|u|^2 + |v|^2 + eps)       (BoxInst's form, eps = 1e-5)

  where ``b`` is the filled box (the union of a frame's boxes). For the box of each 8-connected
  component of a mask (:func:`lgrnet.data.boxes.mask_to_box`), ``max b`` equals the mask's own
  projections, so a perfect mask has zero projection loss.
* **pairwise colour affinity**: two neighbouring pixels i, j (the 8 neighbours at distance
  ``dilation``) whose colours are close in CIE LAB, ``s_ij = exp(-||lab_i - lab_j|| / theta) >=
  tau``, likely have the same label. The loss is -log P(same label) = -log(p_i p_j + (1-p_i)(1-p_j)),
  averaged over the similar pairs whose pixel i lies inside the box (theta = 2, tau = 0.3: BoxInst's).

Both terms work at 1/``stride`` of the input (logits, box and image are average-pooled), as BoxInst
does on its 1/4-resolution masks. Functions take (R, H, W) stacks, one row per (object, frame).

A third, optional term is WeakPolyp's **scale consistency**: the same clip at two input sizes must
give the same foreground map inside the boxes. With ``p`` and ``p'`` the two foreground maps
(:func:`foreground_probability`) resized to one grid and ``b`` the filled box::

    L_sc = sum_i b_i |p_i - p'_i| / sum_i b_i

It counters what the projection term alone allows: any mask that touches the box's four sides,
the box itself included, scores zero there, so a box-trained model tends to fill the box's corners.

A fourth, optional term is a **shape prior**: inside the box, the mask should look like the ellipse
inscribed in it (``e``, :func:`lgrnet.data.boxes.box_to_ellipse_mask`; Khoreva et al.'s "filled
ellipse" of "Simple Does It", CVPR 2017, there a training target of its own). With ``b`` the filled
box and ``z`` the mask logits::

    L_ell = sum_i b_i BCE(z_i, e_i) / sum_i b_i

Weighed below the projection term, it decides what the box leaves open (the corners) without
overriding it; outside the box the projection term already asks for background.

A fifth, optional term is a **mean teacher** (BoxTeacher, Cheng et al., CVPR 2023): the weight EMA
of the model being trained predicts each box frame's lesion map ``q`` (:func:`foreground_probability`,
no gradient); cut to each object's box it becomes that object's pseudo-mask
``m = [q >= threshold] * b``, used only where it fits its box (:func:`teacher_pseudo_masks`: the
projection Dice of ``m`` against the box at least ``min_fit``), with the mask terms' BCE (mean over
the frame) and dice::

    L_teach = mean_i BCE(z_i, m_i) + 1 - (2 <s, m> + 1) / (sum s + sum m + 1),   s = sigmoid(z)

The teacher has learnt from the boxes and the colour affinities of every earlier step, so its masks
follow the lesion's edges where the box's projections and the ellipse can only guess.
"""
from __future__ import annotations

from typing import List, Tuple

import torch
import torch.nn.functional as F

DICE_EPS = 1e-5

# sRGB D65 -> XYZ (IEC 61966-2-1) and the D65 white point, as skimage.color.rgb2lab uses.
_RGB_TO_XYZ = ((0.412453, 0.357580, 0.180423),
               (0.212671, 0.715160, 0.072169),
               (0.019334, 0.119193, 0.950227))
_WHITE_D65 = (0.95047, 1.0, 1.08883)


def axis_projections(prob: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
    """(R, H, W) -> (onto x: (R, W) max over rows, onto y: (R, H) max over columns)."""
    return prob.amax(dim=1), prob.amax(dim=2)


def projection_dice(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """(R, L), (R, L) -> (R,): 1 - 2 <p, t> / (sum p^2 + sum t^2 + eps) (BoxInst's dice_coefficient)."""
    inter = (pred * target).sum(-1)
    union = (pred * pred).sum(-1) + (target * target).sum(-1) + DICE_EPS
    return 1.0 - 2.0 * inter / union


def projection_loss_of_probabilities(prob: torch.Tensor, box_masks: torch.Tensor) -> torch.Tensor:
    """:func:`projection_loss` of (R, H, W) probabilities (not logits) -> (R,)."""
    px, py = axis_projections(prob.float())
    bx, by = axis_projections(box_masks.float())
    return projection_dice(px, bx) + projection_dice(py, by)


def projection_loss(mask_logits: torch.Tensor, box_masks: torch.Tensor) -> torch.Tensor:
    """(R, H, W) logits and (R, H, W) filled boxes in [0, 1] -> (R,) Dice on x plus Dice on y."""
    return projection_loss_of_probabilities(mask_logits.float().sigmoid(), box_masks)


def pairwise_projection_cost(mask_logits: torch.Tensor, box_masks: torch.Tensor) -> torch.Tensor:
    """Matching cost: (Nq, T, H, W) logits and (n, T, H, W) boxes -> (Nq, n), the projection loss
    of every query against every object, the x and y projections of all T frames joined."""
    px, py = axis_projections(mask_logits.float().sigmoid().flatten(0, 1))
    bx, by = axis_projections(box_masks.float().flatten(0, 1))
    nq, n = mask_logits.shape[0], box_masks.shape[0]
    p = torch.cat([px, py], -1).reshape(nq, -1)  # (Nq, T*(W+H)); x and y parts scored apart below
    b = torch.cat([bx, by], -1).reshape(n, -1)
    w = px.shape[-1]
    t = mask_logits.shape[1]
    is_x = torch.zeros(t, w + py.shape[-1], dtype=torch.bool, device=p.device)
    is_x[:, :w] = True
    is_x = is_x.flatten()

    def dice(sel: torch.Tensor) -> torch.Tensor:
        ps, bs = p[:, sel], b[:, sel]
        inter = ps @ bs.T
        union = (ps * ps).sum(-1)[:, None] + (bs * bs).sum(-1)[None, :] + DICE_EPS
        return 1.0 - 2.0 * inter / union

    return dice(is_x) + dice(~is_x)


def rgb_to_lab(rgb: torch.Tensor) -> torch.Tensor:
    """(..., 3, H, W) sRGB in [0, 1] -> CIE LAB (D65; L in [0, 100]), as ``skimage.color.rgb2lab``."""
    rgb = rgb.float().clamp(0, 1)
    lin = torch.where(rgb > 0.04045, ((rgb + 0.055) / 1.055) ** 2.4, rgb / 12.92)
    m = torch.tensor(_RGB_TO_XYZ, dtype=lin.dtype, device=lin.device)
    xyz = torch.einsum("ij,...jhw->...ihw", m, lin)
    white = torch.tensor(_WHITE_D65, dtype=lin.dtype, device=lin.device).view(3, 1, 1)
    xyz = xyz / white
    f = torch.where(xyz > 0.008856, xyz.clamp_min(1e-12) ** (1.0 / 3.0), 7.787 * xyz + 16.0 / 116.0)
    fx, fy, fz = f.unbind(-3)
    lum = torch.where(xyz[..., 1, :, :] > 0.008856, 116.0 * fy - 16.0, 903.3 * xyz[..., 1, :, :])
    return torch.stack([lum, 500.0 * (fx - fy), 200.0 * (fy - fz)], -3)


def neighbour_offsets(dilation: int) -> List[Tuple[int, int]]:
    """The 8 (dy, dx) offsets of a 3x3 kernel with ``dilation``, centre left out, in raster order."""
    return [(dy * dilation, dx * dilation) for dy in (-1, 0, 1) for dx in (-1, 0, 1) if (dy, dx) != (0, 0)]


def _shifted(x: torch.Tensor, dy: int, dx: int) -> Tuple[torch.Tensor, torch.Tensor]:
    """(R, C, H, W) -> (x at (r + dy, c + dx), (H, W) bool: that neighbour is inside the image)."""
    h, w = x.shape[-2:]
    out = torch.zeros_like(x)
    valid = torch.zeros(h, w, dtype=torch.bool, device=x.device)
    r0, r1 = max(0, -dy), min(h, h - dy)
    c0, c1 = max(0, -dx), min(w, w - dx)
    if r1 > r0 and c1 > c0:
        out[..., r0:r1, c0:c1] = x[..., r0 + dy:r1 + dy, c0 + dx:c1 + dx]
        valid[r0:r1, c0:c1] = True
    return out, valid


def color_similarity(lab: torch.Tensor, dilation: int = 2, theta: float = 2.0) -> torch.Tensor:
    """(R, 3, H, W) LAB -> (R, 8, H, W): exp(-||lab_i - lab_j|| / theta) for each pixel i and its
    neighbour j at :func:`neighbour_offsets`; 0 where j is outside the image."""
    sims = []
    for dy, dx in neighbour_offsets(dilation):
        other, valid = _shifted(lab, dy, dx)
        s = torch.exp(-torch.linalg.vector_norm(lab - other, dim=1) / theta)
        sims.append(s * valid)
    return torch.stack(sims, 1)


def pairwise_loss(mask_logits: torch.Tensor, similarity: torch.Tensor, box_masks: torch.Tensor,
                  threshold: float = 0.3, dilation: int = 2) -> torch.Tensor:
    """(R, H, W) logits, (R, 8, H, W) :func:`color_similarity`, (R, H, W) boxes in [0, 1] -> (R,):
    the mean of -log P(same label) over the pairs (i, j) with similarity >= ``threshold`` and i
    inside the box, weighted by the box's value at i (0 for a row without such pairs)."""
    logits = mask_logits.float()[:, None]
    log_fg, log_bg = F.logsigmoid(logits), F.logsigmoid(-logits)
    losses = []
    for dy, dx in neighbour_offsets(dilation):
        fg_j, _ = _shifted(log_fg, dy, dx)
        bg_j, _ = _shifted(log_bg, dy, dx)
        same = torch.logaddexp(log_fg + fg_j, log_bg + bg_j)  # log(p_i p_j + (1-p_i)(1-p_j))
        losses.append(-same[:, 0])
    loss = torch.stack(losses, 1)  # (R, 8, H, W)
    weight = (similarity >= threshold).float() * box_masks.float()[:, None]
    return (loss * weight).flatten(1).sum(-1) / weight.flatten(1).sum(-1).clamp_min(1.0)


def ellipse_prior_loss(mask_logits: torch.Tensor, ellipses: torch.Tensor, box_masks: torch.Tensor) -> torch.Tensor:
    """(R, h, w) logits, (R, h, w) ellipses in [0, 1] (area-averaged: soft edges) and (R, h, w) boxes
    in [0, 1] -> (R,): the box-weighted mean BCE of the mask against the ellipse (0 for an empty box)."""
    region = box_masks.float()
    bce = F.binary_cross_entropy_with_logits(mask_logits.float(), ellipses.float(), reduction="none")
    return (bce * region).flatten(1).sum(-1) / region.flatten(1).sum(-1).clamp_min(1e-6)


def foreground_probability(mask_logits: torch.Tensor, class_logits: torch.Tensor) -> torch.Tensor:
    """(b, T, Nq, H, W) mask logits and (b, Nq, C + 1) class logits -> (b, T, H, W): the lesion map
    ``min(1, sum_q P(q is a lesion) sigmoid(m_q))`` (Mask2Former's semantic inference, clamped),
    which needs no query correspondence between two forward passes."""
    weight = class_logits.float().softmax(-1)[..., :-1].sum(-1)  # (b, Nq): any lesion class
    return torch.einsum("bq,btqhw->bthw", weight, mask_logits.float().sigmoid()).clamp(max=1.0)


def scale_consistency_loss(prob_a: torch.Tensor, prob_b: torch.Tensor, region: torch.Tensor) -> torch.Tensor:
    """(R, h, w) foreground maps of one frame at two input sizes (on one grid) and (R, h, w) weights
    in [0, 1] (the filled boxes) -> (R,): the region-weighted mean of |p_a - p_b| (WeakPolyp's SC
    loss; 0 for a row with an empty region)."""
    region = region.float()
    diff = (prob_a.float() - prob_b.float()).abs() * region
    return diff.flatten(1).sum(-1) / region.flatten(1).sum(-1).clamp_min(1e-6) * (region.flatten(1).sum(-1) > 0)


def pool_to(x: torch.Tensor, size: Tuple[int, int]) -> torch.Tensor:
    """(..., H, W) -> (..., h, w) by averaging over each output cell's area (adaptive average
    pooling), any leading dims; float."""
    lead, (h, w) = x.shape[:-2], x.shape[-2:]
    if (h, w) == tuple(size):
        return x.float()
    y = F.adaptive_avg_pool2d(x.reshape(-1, 1, h, w).float(), tuple(size))
    return y.reshape(*lead, *y.shape[-2:])


def teacher_pseudo_masks(teacher_map: torch.Tensor, box_masks: torch.Tensor, threshold: float = 0.5,
                         min_fit: float = 0.8) -> Tuple[torch.Tensor, torch.Tensor]:
    """(Tb, h, w) the teacher's lesion map of the box frames and (n, Tb, h, w) boxes in [0, 1] ->
    ((n, Tb, h, w) pseudo-masks ``[q >= threshold] * [b > 0.5]``, (n, Tb) bool: the pseudo-mask fits
    its box, 1 - projection_loss / 2 >= ``min_fit``; a frame without box never fits)."""
    inside = box_masks.float() > 0.5
    pseudo = ((teacher_map.float() >= threshold)[None] & inside).float()
    n, tb = pseudo.shape[:2]
    fit = 1.0 - 0.5 * projection_loss_of_probabilities(pseudo.flatten(0, 1), inside.float().flatten(0, 1))
    has_box = inside.flatten(2).any(-1)
    return pseudo, (fit.view(n, tb) >= min_fit) & has_box


def teacher_loss(mask_logits: torch.Tensor, pseudo_masks: torch.Tensor) -> torch.Tensor:
    """(R, h, w) logits and (R, h, w) pseudo-masks in {0, 1} -> (R,): the mean BCE over the frame
    plus the mask terms' dice (+1 smoothing)."""
    z, m = mask_logits.float().flatten(1), pseudo_masks.float().flatten(1)
    bce = F.binary_cross_entropy_with_logits(z, m, reduction="none").mean(1)
    s = z.sigmoid()
    return bce + 1 - (2 * (s * m).sum(1) + 1) / (s.sum(1) + m.sum(1) + 1)
