"""The published set-matching loss with deep supervision (docs/training.md, "The recipe").

For every decoder head (the one before the first layer, and one after each layer):

1. match queries to the clip's objects (:mod:`.matching`, published cost weights 2 / 2 / 2);
2. mask losses on the matched pairs, per object and annotated frame, on ``num_points`` points
   chosen by uncertainty (``oversample_ratio`` x more uniform candidates, keep the
   ``importance_sample_ratio`` share with logits closest to 0, fill up with uniform points):
   BCE (mean over points) and dice (+1 smoothing); both summed and divided by the number of
   objects in the batch (averaged over processes when distributed, at least 1);
3. class cross-entropy over all queries (unmatched -> "no object", weighted ``no_object_weight``),
   the weighted mean over queries, as ``F.cross_entropy`` does.

The total is ``sum_heads w_head * (w_bce * bce + w_dice * dice + w_class * class)`` with
``w_head = aux_weight`` for all heads but the last (1). The authors' code returns the BCE under the
name "mask_dice" and the dice under "mask_ce", so their configured weights land on the other term:
``LossConfig.authors_swapped_point_losses=True`` (default) reproduces what they trained with
(BCE x ``dice_weight``, dice x ``bce_weight``); False applies the weights as named.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Dict, List, Optional, Sequence, Tuple

import torch
import torch.nn.functional as F
from torch import nn

from ..config import LossConfig
from .matching import assign, clip_matching_cost
from .point_sampling import point_sample, uncertain_point_coords_with_randomness


@dataclass
class ClipTarget:
    """Ground truth of one clip.

    masks: (n, T', H, W) float in {0, 1}, one channel per object, only the annotated frames;
    classes: (n,) int64 class of each object (0 = lesion for the binary datasets);
    has_ann: (T,) bool, which of the clip's T frames are annotated (T' of them);
    box_frames: None (every annotated frame has a mask: this loss), or (T',) bool marking the
    annotated frames whose ``masks`` entry is a filled box, supervised by
    :class:`lgrnet.losses.box_criterion.BoxSupervisedCriterion`'s box loss instead;
    box_priors: None, or (n, T', H, W) float in {0, 1}: on box frames, the ellipse inscribed in each
    box (the box loss's shape prior, ``train.box_loss.ellipse_weight``), zeros on the other frames.
    """

    masks: torch.Tensor
    classes: torch.Tensor
    has_ann: torch.Tensor
    box_frames: Optional[torch.Tensor] = None
    box_priors: Optional[torch.Tensor] = None

    def to(self, device) -> "ClipTarget":
        def move(x: Optional[torch.Tensor]) -> Optional[torch.Tensor]:
            return None if x is None else x.to(device, non_blocking=True)

        return ClipTarget(move(self.masks), move(self.classes), move(self.has_ann), move(self.box_frames),
                          move(self.box_priors))

    @property
    def num_objects(self) -> int:
        """Objects visible in at least one annotated frame."""
        if self.masks.shape[0] == 0:
            return 0
        return int((self.masks.flatten(1) > 0).any(-1).sum())


def sigmoid_bce_per_mask(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """(R, P) logits and labels -> (R,) mean BCE over the points of each mask."""
    return F.binary_cross_entropy_with_logits(logits, labels, reduction="none").mean(1)


def dice_per_mask(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """(R, P) logits and labels -> (R,) 1 - (2 <s, g> + 1) / (sum s + sum g + 1), s = sigmoid."""
    s = logits.sigmoid()
    return 1 - (2 * (s * labels).sum(1) + 1) / (s.sum(1) + labels.sum(1) + 1)


def global_num_objects(targets: Sequence[ClipTarget], device) -> float:
    """Objects in the batch, averaged over processes when distributed, at least 1 (as published)."""
    n = torch.tensor([float(sum(t.num_objects for t in targets))], device=device)
    world = 1
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        torch.distributed.all_reduce(n)
        world = torch.distributed.get_world_size()
    return max(float(n.item()) / world, 1.0)


class SetCriterion(nn.Module):
    """Matching + point-sampled mask BCE/dice + class CE, on every head.

    ``forward(heads, targets, generators=None)``: heads is the model's ``LGRNetOutput.aux`` (each
    with class_logits (b, Nq, C+1) and mask_logits (b, T, Nq, h, w)); targets one
    :class:`ClipTarget` per clip; ``generators`` optionally one ``torch.Generator`` per clip (on
    the logits' device) for the random points, so that a clip's loss does not depend on which
    process or batch it lands in. Returns {"loss": weighted total, "loss_bce", "loss_dice",
    "loss_class": unweighted sums over heads, "num_objects"}.
    """

    def __init__(self, cfg: LossConfig, num_classes: int = 1):
        super().__init__()
        self.cfg = cfg
        self.num_classes = num_classes
        weight = torch.ones(num_classes + 1)
        weight[-1] = cfg.no_object_weight
        self.register_buffer("class_weight", weight, persistent=False)

    @property
    def term_weights(self) -> Tuple[float, float, float]:
        """(BCE, dice, class) weights actually applied."""
        c = self.cfg
        if c.authors_swapped_point_losses:
            return c.dice_weight, c.bce_weight, c.class_weight
        return c.bce_weight, c.dice_weight, c.class_weight

    def head_weights(self, num_heads: int) -> List[float]:
        return [self.cfg.aux_weight] * (num_heads - 1) + [1.0]

    @staticmethod
    def batch_settings(heads: Sequence, targets: Sequence[ClipTarget],
                       generators: Optional[Sequence[Optional[torch.Generator]]], num_objects: Optional[float]):
        """Check the batch and fill the defaults: (one generator per clip, the normalising object count)."""
        if not heads:
            raise ValueError("no decoder heads to supervise")
        b = heads[0].class_logits.shape[0]
        if len(targets) != b:
            raise ValueError(f"{b} clips in the batch but {len(targets)} targets")
        if generators is None:
            generators = [None] * b
        if num_objects is None:
            num_objects = global_num_objects(targets, heads[0].class_logits.device)
        return generators, num_objects

    def forward(self, heads: Sequence, targets: Sequence[ClipTarget],
                generators: Optional[Sequence[Optional[torch.Generator]]] = None,
                num_objects: Optional[float] = None) -> Dict[str, torch.Tensor]:
        generators, num_objects = self.batch_settings(heads, targets, generators, num_objects)
        w_bce, w_dice, w_class = self.term_weights
        zero = heads[0].class_logits.new_zeros((), dtype=torch.float32)
        total, sum_bce, sum_dice, sum_class = zero, zero, zero, zero
        for w_head, head in zip(self.head_weights(len(heads)), heads):
            if w_head == 0:
                continue
            indices = self.match(head, targets, generators)
            bce, dice = self.mask_losses(head, targets, indices, num_objects, generators)
            ce = self.class_loss(head, targets, indices)
            total = total + w_head * (w_bce * bce + w_dice * dice + w_class * ce)
            sum_bce, sum_dice, sum_class = sum_bce + bce, sum_dice + dice, sum_class + ce
        return {"loss": total, "loss_bce": sum_bce.detach(), "loss_dice": sum_dice.detach(),
                "loss_class": sum_class.detach(), "num_objects": torch.tensor(num_objects)}

    # ------------------------------------------------------------------ parts

    @torch.no_grad()
    def match(self, head, targets: Sequence[ClipTarget], generators) -> List[Tuple[torch.Tensor, torch.Tensor]]:
        """(query_idx, object_idx) per clip."""
        c = self.cfg
        out = []
        for i, tgt in enumerate(targets):
            masks = head.mask_logits[i][tgt.has_ann].transpose(0, 1)  # (Nq, T', h, w)
            cost = clip_matching_cost(head.class_logits[i], masks, tgt.classes, tgt.masks, c.num_points,
                                      c.match_class_weight, c.match_bce_weight, c.match_dice_weight,
                                      generator=generators[i])
            out.append(assign(cost))
        return out

    def mask_losses(self, head, targets: Sequence[ClipTarget], indices, num_objects: float,
                    generators) -> Tuple[torch.Tensor, torch.Tensor]:
        """Point-sampled BCE and dice over all matched (object, annotated frame) masks / num_objects."""
        c = self.cfg
        bce = dice = None
        for i, (tgt, (qi, oi)) in enumerate(zip(targets, indices)):
            if len(qi) == 0:
                continue
            src = head.mask_logits[i][tgt.has_ann].transpose(0, 1)[qi.to(head.mask_logits.device)]  # (n, T', h, w)
            src = src.float().flatten(0, 1)[:, None]  # (n*T', 1, h, w)
            gt = tgt.masks[oi.to(tgt.masks.device)].float().flatten(0, 1)[:, None]
            with torch.no_grad():
                coords = uncertain_point_coords_with_randomness(
                    src.detach(), c.num_points, c.oversample_ratio, c.importance_sample_ratio,
                    generator=generators[i])
                labels = point_sample(gt, coords)[:, 0]
            logits = point_sample(src, coords)[:, 0]
            b_i = sigmoid_bce_per_mask(logits, labels).sum()
            d_i = dice_per_mask(logits, labels).sum()
            bce = b_i if bce is None else bce + b_i
            dice = d_i if dice is None else dice + d_i
        if bce is None:
            # No object anywhere: keep the mask branch in the graph (DDP needs every parameter
            # to receive a gradient) with a zero contribution.
            z = head.mask_logits.float().sum() * 0.0
            return z, z
        return bce / num_objects, dice / num_objects

    def class_loss(self, head, targets: Sequence[ClipTarget], indices) -> torch.Tensor:
        logits = head.class_logits.float()  # (b, Nq, C+1)
        classes = torch.full(logits.shape[:2], self.num_classes, dtype=torch.int64, device=logits.device)
        for i, (tgt, (qi, oi)) in enumerate(zip(targets, indices)):
            if len(qi):
                classes[i, qi.to(logits.device)] = tgt.classes[oi.to(tgt.classes.device)].to(logits.device)
        return F.cross_entropy(logits.transpose(1, 2), classes, self.class_weight.to(logits.device))
