"""Post-processing: one clip's model output -> per-frame masks, probability maps and scores at the
frames' original size. The one path used by the
:class:`~lgrnet.inference.predictor.VideoPredictor` (and so ``lgrnet predict``, ``lgrnet evaluate``,
the viewer and validation in training) and the streaming predictor.

As published: take the query with the highest foreground class probability, threshold its logits
at 0 and resize the mask back to the frame's size (nearest); the probability map is the sigmoid of
that query's logits resized back bilinearly.

The per-frame confidence that the result files, the viewer and the API report::

    score = class_score * mask_score * clip_mask_score

- ``class_score``: the chosen query's foreground class probability (one per clip: the decoder's
  queries are per clip);
- ``mask_score``: the frame's mean probability inside its mask (0 for an empty mask); with
  ``class_score`` it is Mask2Former's instance score;
- ``clip_mask_score``: the median of ``mask_score`` over the clip's frames that have a mask, at the
  model's input size (:func:`clip_mask_score`; 0 when no frame has one).

Why the clip factor: this model's failures are mostly whole videos whose polyp it does not know,
where every frame's mask is a little less sure but each frame alone looks like a good one; the
clip's median carries that evidence (docs/inference.md, "The per-frame score", has the AUROCs
measured with and without it). The masks and maps are the published post-processing's; only the
score differs from it.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional, Tuple

import numpy as np
import torch
import torch.nn.functional as F

from ..models.lgrnet import LGRNetOutput


def mean_prob_inside(logits: torch.Tensor) -> torch.Tensor:
    """Mask2Former's mask score: the mean probability inside the mask (logits > 0), 0 for an empty
    mask. (T, ..., h, w) -> (T, ...): one query's logits (T, h, w) or every query's (T, Nq, h, w)."""
    p = logits.float().sigmoid()
    m = logits > 0
    area = m.flatten(-2).sum(-1)
    return torch.where(area > 0, (p * m).flatten(-2).sum(-1) / area.clamp(min=1), torch.zeros_like(area, dtype=p.dtype))


@dataclass
class ClipPrediction:
    """Per-frame results of one clip at the frames' original size.

    probs: (T, H, W) float32 foreground probability of the chosen query;
    masks: (T, H, W) bool, the chosen query's logits > 0 (nearest-resized, as published);
    class_score: (T,) foreground class probability of the chosen query (the same for all frames
        of a clip: the decoder's queries are per clip);
    mask_score: (T,) mean probability over the pixels of the mask (0 where the mask is empty);
    clip_mask_score: the median mask score of the clip's frames with a mask (:func:`clip_mask_score`);
    score: (T,) class_score * mask_score * clip_mask_score, per frame;
    query: index of the chosen query;
    logits: (T, Nq, h, w) all queries' logits at the model's input size, only if asked for.
    """

    probs: np.ndarray
    masks: np.ndarray
    class_score: np.ndarray
    mask_score: np.ndarray
    score: np.ndarray
    query: int
    clip_mask_score: float
    logits: Optional[torch.Tensor] = None


def choose_query(out: LGRNetOutput) -> int:
    """Index of the query with the highest foreground probability (batch of one clip)."""
    return int(out.class_probs[0, :, 0].argmax())


def maps_at_size(logits: torch.Tensor, orig_size: Tuple[int, int]) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Mask logits (T, h, w) at the model's size -> (probs (T, H, W) float, masks (T, H, W) bool,
    mask_score (T,)) at ``orig_size`` (H, W): masks are ``logits > 0`` nearest-resized (as
    published), probs the sigmoid resized bilinearly, mask_score the mean prob inside the mask
    (0 for an empty mask). Frames are independent: slicing T gives the same per-frame results."""
    logits = logits.float()
    H, W = orig_size
    masks = F.interpolate((logits > 0).float()[:, None], size=(H, W), mode="nearest")[:, 0] > 0.5
    probs = F.interpolate(logits.sigmoid()[:, None], size=(H, W), mode="bilinear", align_corners=False)[:, 0]
    area = masks.flatten(1).sum(1)
    mask_score = torch.where(area > 0, (probs * masks).flatten(1).sum(1) / area.clamp(min=1), torch.zeros_like(area, dtype=probs.dtype))
    return probs, masks, mask_score


def clip_median(values: torch.Tensor, has_mask: torch.Tensor) -> torch.Tensor:
    """Per-frame ``values`` (T, ...) -> (...): their median over the frames where ``has_mask``
    (T, ...) is True, 0 where it is True for none; the median of an even count is the mean of the
    middle two."""
    masked = torch.where(has_mask, values, torch.full_like(values, float("nan")))
    return torch.nanquantile(masked, 0.5, dim=0).nan_to_num(0.0)


def clip_mask_score(logits: torch.Tensor) -> torch.Tensor:
    """Mask logits (T, ..., h, w) of one clip at the model's input size -> (...) float32: per
    query (or for the one chosen query, a 0-d tensor) the :func:`clip_median` of the mean
    probability inside the mask (``logits > 0``) over the frames whose mask is not empty."""
    return clip_median(mean_prob_inside(logits), (logits > 0).flatten(-2).any(-1))


def clip_maps(logits: torch.Tensor, class_score: float, query: int, orig_size: Tuple[int, int],
              clip_score: Optional[float] = None) -> ClipPrediction:
    """The chosen query's logits (T, h, w) and class probability -> :class:`ClipPrediction` at
    ``orig_size`` (H, W). ``clip_score``: the clip's :func:`clip_mask_score`; None: computed from
    ``logits``, which must then be the whole clip. Given it, frames are independent: a slice of T
    gives those frames' results."""
    if clip_score is None:
        clip_score = float(clip_mask_score(logits))
    probs, masks, mask_score = maps_at_size(logits, orig_size)
    mask_score = mask_score.cpu().numpy().astype(np.float32)
    class_scores = np.full(mask_score.shape, class_score, dtype=np.float32)
    return ClipPrediction(probs=probs.cpu().numpy().astype(np.float32, copy=False), masks=masks.cpu().numpy(),
                          class_score=class_scores, mask_score=mask_score,
                          score=class_scores * mask_score * np.float32(clip_score), query=int(query),
                          clip_mask_score=float(clip_score))


def postprocess(out: LGRNetOutput, orig_size: Tuple[int, int], keep_logits: bool = False) -> ClipPrediction:
    """Model output for one clip -> per-frame maps at ``orig_size`` (H, W)."""
    q = choose_query(out)
    pred = clip_maps(out.mask_logits[0, :, q], float(out.class_probs[0, q, 0]), q, orig_size)
    if keep_logits:
        pred.logits = out.mask_logits[0].float().cpu()
    return pred
