"""Hungarian matching of video queries to ground-truth objects (one assignment per clip).

Cost of giving object j to query i (the published weights are 2 / 2 / 2)::

    C[i, j] = - w_class * p_i(class_j)                       (softmax probability)
              + w_bce   * mean_points BCE(sigmoid(m_i), g_j)
              + w_dice  * (1 - (2 <s_i, g_j> + 1) / (sum s_i + sum g_j + 1))

with the masks of all annotated frames of the clip concatenated, sampled at the same random
points for every query and object. The assignment minimising the total cost is
``scipy.optimize.linear_sum_assignment``'s.
"""
from __future__ import annotations

from typing import Optional, Tuple

import numpy as np
import torch
import torch.nn.functional as F
from scipy.optimize import linear_sum_assignment

from .point_sampling import point_sample


def pairwise_sigmoid_bce(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Mean binary cross-entropy between every prediction and every target.

    logits (N, P), targets (M, P) in [0, 1] -> (N, M): mean over P of BCE(sigmoid(logits_n), t_m).
    """
    p = logits.shape[1]
    pos = F.binary_cross_entropy_with_logits(logits, torch.ones_like(logits), reduction="none")
    neg = F.binary_cross_entropy_with_logits(logits, torch.zeros_like(logits), reduction="none")
    return (pos @ targets.T + neg @ (1 - targets).T) / p


def pairwise_dice(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Dice loss with +1 smoothing between every prediction and every target: (N, P), (M, P) -> (N, M)."""
    s = logits.sigmoid()
    num = 2 * s @ targets.T
    den = s.sum(-1)[:, None] + targets.sum(-1)[None, :]
    return 1 - (num + 1) / (den + 1)


def assign(cost: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
    """Optimal assignment for a (num_queries, num_objects) cost matrix.

    Returns (query_idx, object_idx), int64, sorted by query index (scipy's order); empty when
    there are no objects. Raises ``ValueError`` on NaN or infinite costs.
    """
    c = cost.detach().float().cpu().numpy()
    if c.size and not np.isfinite(c).all():
        raise ValueError("matching cost has NaN or infinite entries (the predictions diverged?)")
    rows, cols = linear_sum_assignment(c)
    return torch.as_tensor(rows, dtype=torch.int64), torch.as_tensor(cols, dtype=torch.int64)


@torch.no_grad()
def clip_matching_cost(
    class_logits: torch.Tensor,
    mask_logits: torch.Tensor,
    target_classes: torch.Tensor,
    target_masks: torch.Tensor,
    num_points: int,
    class_weight: float = 2.0,
    bce_weight: float = 2.0,
    dice_weight: float = 2.0,
    generator: Optional[torch.Generator] = None,
    point_coords: Optional[torch.Tensor] = None,
) -> torch.Tensor:
    """The cost matrix of one clip.

    class_logits (Nq, C+1); mask_logits (Nq, T', h, w) of the annotated frames; target_classes
    (n,); target_masks (n, T', H, W) in {0, 1}. ``num_points`` random points in [0, 1]^2 are
    shared by all masks and frames (or pass ``point_coords`` (P, 2)). Returns (Nq, n).
    """
    nq, t = mask_logits.shape[:2]
    n = target_masks.shape[0]
    probs = class_logits.float().softmax(-1)
    cost = -class_weight * probs[:, target_classes]
    if n == 0:
        return cost
    if point_coords is None:
        point_coords = torch.rand(num_points, 2, device=mask_logits.device, generator=generator)
    pts = point_coords[None]
    out = point_sample(mask_logits.float().flatten(0, 1)[:, None], pts.expand(nq * t, -1, -1))[:, 0]
    tgt = point_sample(target_masks.float().flatten(0, 1)[:, None], pts.expand(n * t, -1, -1))[:, 0]
    out = out.reshape(nq, -1)  # (Nq, T' * P)
    tgt = tgt.reshape(n, -1)
    return cost + bce_weight * pairwise_sigmoid_bce(out, tgt) + dice_weight * pairwise_dice(out, tgt)
