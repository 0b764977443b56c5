"""The set-matching loss for clips whose frames have masks, boxes, or both (docs/training.md,
"Training from boxes").

A clip's annotated frames are mask frames or box frames (:attr:`ClipTarget.box_frames`; a box
frame's ``masks`` entry is the filled box). Per decoder head:

1. matching (one Hungarian assignment per clip): the published cost on the mask frames (class,
   point BCE and dice, :func:`lgrnet.losses.matching.clip_matching_cost`) plus ``match_weight`` x
   the projection Dice of the box frames (:func:`lgrnet.losses.box.pairwise_projection_cost`); a
   clip with box frames only: class + projection Dice;
2. the mask frames' point-sampled BCE and dice, exactly as :class:`SetCriterion` computes them;
3. the box frames' BoxInst terms on the matched queries: projection loss and pairwise colour
   affinity (:mod:`lgrnet.losses.box`), each summed over (object, box frame) and divided by the
   number of objects, like the mask terms;
   With ``ellipse_weight`` > 0 also the shape prior (the target's ``box_priors``: the ellipse
   inscribed in each box, :func:`lgrnet.losses.box.ellipse_prior_loss`), summed likewise; with
   ``teacher_maps`` given (the trainer's weight EMA on the same clips) also the mean-teacher term
   on the pseudo-masks that fit their boxes (:func:`lgrnet.losses.box.teacher_loss`), likewise;
4. the class cross-entropy, as published.

Total: ``sum_heads w_head * (w_bce bce + w_dice dice + w_class class + w_proj proj + r w_pair pair
+ w_ell ell + w_teach teach)``
with ``r`` the pairwise warm-up ramp (0 -> 1 over ``pairwise_warmup_iters`` steps, as BoxInst).
With ``scale_consistency_weight`` > 0 the trainer runs each step twice (two input sizes), averages
the two totals and adds the weight x :meth:`BoxSupervisedCriterion.scale_consistency`.
A batch without any box frame is handed to :class:`SetCriterion` unchanged: mask-only training is
the published loss, bit for bit.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Dict, List, Optional, Sequence, Tuple

import torch

from ..config import BoxLossConfig, LossConfig
from .box import (color_similarity, ellipse_prior_loss, foreground_probability, pairwise_loss,
                  pairwise_projection_cost, pool_to, projection_loss, rgb_to_lab, scale_consistency_loss,
                  teacher_loss, teacher_pseudo_masks)
from .criterion import ClipTarget, SetCriterion
from .matching import assign, clip_matching_cost


def has_box_frames(target: ClipTarget) -> bool:
    return target.box_frames is not None and bool(target.box_frames.any())


def mask_frames_view(target: ClipTarget) -> ClipTarget:
    """The clip's mask frames only (box frames no longer annotated), for the published loss."""
    if target.box_frames is None:
        return target
    keep = ~target.box_frames.to(target.masks.device)
    has_ann = target.has_ann.clone()
    ann_idx = torch.nonzero(has_ann).flatten()
    has_ann[ann_idx[target.box_frames.to(ann_idx.device)]] = False
    return ClipTarget(target.masks[:, keep], target.classes, has_ann)


@dataclass
class _BoxClip:
    """A clip's box frames at the loss resolution: frame indices (in the clip's T), boxes (n, Tb,
    h, w) in [0, 1], colour similarity (Tb, 8, h, w), the boxes' ellipses (n, Tb, h, w) or None, the
    teacher's pseudo-masks (n, Tb, h, w) and which of them fit their boxes (n, Tb) bool, or None."""

    frames: torch.Tensor
    boxes: torch.Tensor
    similarity: torch.Tensor
    ellipses: Optional[torch.Tensor] = None
    pseudo: Optional[torch.Tensor] = None
    pseudo_fits: Optional[torch.Tensor] = None


class BoxSupervisedCriterion(SetCriterion):
    """:class:`SetCriterion` with box frames. ``forward(heads, targets, generators=None,
    num_objects=None, images=None, teacher_maps=None)``: ``images`` (b, T, 3, H, W) in [0, 1], the
    clips as the model saw them, needed when a target has box frames (the colour affinities);
    ``teacher_maps`` (b, T, H', W') the teacher's lesion maps of the same clips, or None. Returns the
    :class:`SetCriterion` keys plus "loss_box_proj", "loss_box_pair", "loss_box_ellipse" and
    "loss_box_teacher" (unweighted sums over heads; zero without box frames, the last two zero
    without box priors / teacher maps)."""

    def __init__(self, cfg: LossConfig, box_cfg: BoxLossConfig, num_classes: int = 1):
        super().__init__(cfg, num_classes)
        self.box_cfg = box_cfg
        self.pairwise_ramp = 1.0

    def set_step(self, step: int) -> None:
        """The pairwise warm-up: weight x min(1, step / pairwise_warmup_iters)."""
        w = self.box_cfg.pairwise_warmup_iters
        self.pairwise_ramp = 1.0 if w <= 0 else min(1.0, step / w)

    def forward(self, heads: Sequence, targets: Sequence[ClipTarget],
                generators: Optional[Sequence[Optional[torch.Generator]]] = None,
                num_objects: Optional[float] = None, images: Optional[torch.Tensor] = None,
                teacher_maps: Optional[torch.Tensor] = None) -> Dict[str, torch.Tensor]:
        if not any(has_box_frames(t) for t in targets):
            out = super().forward(heads, targets, generators, num_objects)
            zero = torch.zeros((), device=out["loss"].device)
            return {**out, "loss_box_proj": zero, "loss_box_pair": zero, "loss_box_ellipse": zero,
                    "loss_box_teacher": zero}
        if images is None:
            raise ValueError("box-supervised frames need the clips' images (images=)")
        generators, num_objects = self.batch_settings(heads, targets, generators, num_objects)
        size = heads[0].mask_logits.shape[-2:]
        low = (-(-size[0] // self.box_cfg.stride), -(-size[1] // self.box_cfg.stride))
        box_clips = [self._box_clip(t, images[i], low, None if teacher_maps is None else teacher_maps[i])
                     if has_box_frames(t) else None for i, t in enumerate(targets)]
        views = [mask_frames_view(t) for t in targets]
        w_bce, w_dice, w_class = self.term_weights
        bc = self.box_cfg
        zero = heads[0].class_logits.new_zeros((), dtype=torch.float32)
        total = sum_bce = sum_dice = sum_class = sum_proj = sum_pair = sum_ell = sum_teach = zero
        for w_head, head in zip(self.head_weights(len(heads)), heads):
            if w_head == 0:
                continue
            indices = self.match_mixed(head, targets, views, box_clips, generators)
            mask_idx = [(qi, oi) if bool(v.has_ann.any()) else (qi[:0], oi[:0]) for v, (qi, oi) in zip(views, indices)]
            bce, dice = self.mask_losses(head, views, mask_idx, num_objects, generators)
            proj, pair, ell, teach = self.box_losses(head, box_clips, indices, num_objects, low)
            ce = self.class_loss(head, targets, indices)
            total = total + w_head * (w_bce * bce + w_dice * dice + w_class * ce + bc.projection_weight * proj
                                      + self.pairwise_ramp * bc.pairwise_weight * pair + bc.ellipse_weight * ell
                                      + bc.teacher_weight * teach)
            sum_bce, sum_dice, sum_class = sum_bce + bce, sum_dice + dice, sum_class + ce
            sum_proj, sum_pair, sum_ell, sum_teach = sum_proj + proj, sum_pair + pair, sum_ell + ell, sum_teach + teach
        return {"loss": total, "loss_bce": sum_bce.detach(), "loss_dice": sum_dice.detach(),
                "loss_class": sum_class.detach(), "num_objects": torch.tensor(num_objects),
                "loss_box_proj": sum_proj.detach(), "loss_box_pair": sum_pair.detach(),
                "loss_box_ellipse": sum_ell.detach(), "loss_box_teacher": sum_teach.detach()}

    def scale_consistency(self, out_a, out_b, targets: Sequence[ClipTarget]) -> torch.Tensor:
        """WeakPolyp's scale consistency of two forward passes of the same clips at two input sizes:
        ``out_a``/``out_b`` with ``mask_logits`` (b, T, Nq, H, W) and ``class_logits`` (b, Nq, C+1);
        the box frames' foreground maps (:func:`lgrnet.losses.box.foreground_probability`), both
        area-averaged onto 1/``stride`` of a's size and compared there inside each frame's boxes; the mean
        over the clips that have box frames (0 without any)."""
        size = out_a.mask_logits.shape[-2:]
        low = (-(-size[0] // self.box_cfg.stride), -(-size[1] // self.box_cfg.stride))
        # both maps straight onto a's loss grid (area averages; no full-size resize of b)
        fg_a = pool_to(foreground_probability(out_a.mask_logits, out_a.class_logits), low)  # (b, T, h, w)
        fg_b = pool_to(foreground_probability(out_b.mask_logits, out_b.class_logits), low)
        losses = []
        for i, t in enumerate(targets):
            if not has_box_frames(t) or t.masks.shape[0] == 0:
                continue
            bf = t.box_frames.to(t.masks.device)
            frames = torch.nonzero(t.has_ann.to(t.masks.device)).flatten()[bf].to(fg_a.device)
            region = pool_to(t.masks[:, bf].amax(0), low).to(fg_a.device)  # (Tb, h, w): any object's box
            losses.append(scale_consistency_loss(fg_a[i, frames], fg_b[i, frames], region).mean())
        if not losses:
            return out_a.mask_logits.float().sum() * 0.0
        return torch.stack(losses).mean()

    # ------------------------------------------------------------------ parts

    def _box_clip(self, target: ClipTarget, video: torch.Tensor, low: Tuple[int, int],
                  teacher_map: Optional[torch.Tensor] = None) -> _BoxClip:
        bf = target.box_frames.to(target.masks.device)
        ann_idx = torch.nonzero(target.has_ann.to(target.masks.device)).flatten()
        frames = ann_idx[bf]
        boxes = pool_to(target.masks[:, bf], low)  # (n, Tb, h, w)
        use_prior = self.box_cfg.ellipse_weight > 0 and target.box_priors is not None
        ellipses = pool_to(target.box_priors[:, bf.to(target.box_priors.device)], low) if use_prior else None
        with torch.no_grad():
            lab = rgb_to_lab(pool_to(video[frames.to(video.device)], low))  # (Tb, 3, h, w)
            sim = color_similarity(lab, self.box_cfg.pairwise_dilation, self.box_cfg.color_theta)
            pseudo = fits = None
            if teacher_map is not None and self.box_cfg.teacher_weight > 0:
                q = pool_to(teacher_map[frames.to(teacher_map.device)], low).to(boxes.device)  # (Tb, h, w)
                pseudo, fits = teacher_pseudo_masks(q, boxes, self.box_cfg.teacher_threshold, self.box_cfg.teacher_min_fit)
        return _BoxClip(frames, boxes, sim, ellipses, pseudo, fits)

    @torch.no_grad()
    def match_mixed(self, head, targets: Sequence[ClipTarget], views: Sequence[ClipTarget],
                    box_clips: Sequence[Optional[_BoxClip]], generators) -> List[Tuple[torch.Tensor, torch.Tensor]]:
        """(query_idx, object_idx) per clip: the published cost on mask frames + the box cost."""
        c = self.cfg
        out = []
        for i, (tgt, view, bx) in enumerate(zip(targets, views, box_clips)):
            if view.has_ann.any():
                masks = head.mask_logits[i][view.has_ann].transpose(0, 1)  # (Nq, T', h, w)
                cost = clip_matching_cost(head.class_logits[i], masks, view.classes, view.masks, c.num_points,
                                          c.match_class_weight, c.match_bce_weight, c.match_dice_weight,
                                          generator=generators[i])
            else:
                probs = head.class_logits[i].float().softmax(-1)
                cost = -c.match_class_weight * probs[:, tgt.classes.to(probs.device)]
            if bx is not None and tgt.masks.shape[0]:
                logits = pool_to(head.mask_logits[i][bx.frames.to(head.mask_logits.device)].transpose(0, 1),
                                 bx.boxes.shape[-2:])  # (Nq, Tb, h, w)
                cost = cost + self.box_cfg.match_weight * pairwise_projection_cost(logits, bx.boxes.to(logits.device))
            out.append(assign(cost))
        return out

    def box_losses(self, head, box_clips: Sequence[Optional[_BoxClip]], indices, num_objects: float,
                   low: Tuple[int, int]) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """Projection, pairwise, ellipse-prior and teacher terms over the matched (object, box frame)
        pairs / num_objects (the last two zero for clips without priors / fitting pseudo-masks)."""
        bc = self.box_cfg
        proj = pair = ell = teach = None
        for i, (bx, (qi, oi)) in enumerate(zip(box_clips, indices)):
            if bx is None or len(qi) == 0:
                continue
            dev = head.mask_logits.device
            src = head.mask_logits[i][bx.frames.to(dev)].transpose(0, 1)[qi.to(dev)]  # (n, Tb, H, W)
            src = pool_to(src, low).flatten(0, 1)  # (n*Tb, h, w)
            tgt = bx.boxes[oi.to(bx.boxes.device)].to(dev).flatten(0, 1)
            sim = bx.similarity.to(dev).repeat(len(qi), 1, 1, 1)  # (n*Tb, 8, h, w)
            p_i = projection_loss(src, tgt).sum()
            q_i = pairwise_loss(src, sim, tgt, bc.color_threshold, bc.pairwise_dilation).sum()
            proj = p_i if proj is None else proj + p_i
            pair = q_i if pair is None else pair + q_i
            if bx.ellipses is not None:
                e_i = ellipse_prior_loss(src, bx.ellipses[oi.to(bx.ellipses.device)].to(dev).flatten(0, 1), tgt).sum()
                ell = e_i if ell is None else ell + e_i
            if bx.pseudo is not None:
                fits = bx.pseudo_fits[oi.to(bx.pseudo_fits.device)].flatten().to(dev)  # (n*Tb,)
                if bool(fits.any()):
                    m = bx.pseudo[oi.to(bx.pseudo.device)].to(dev).flatten(0, 1)
                    t_i = teacher_loss(src[fits], m[fits]).sum()
                    teach = t_i if teach is None else teach + t_i
        if proj is None:
            z = head.mask_logits.float().sum() * 0.0
            return z, z, z, z
        return (proj / num_objects, pair / num_objects, proj * 0.0 if ell is None else ell / num_objects,
                proj * 0.0 if teach is None else teach / num_objects)
