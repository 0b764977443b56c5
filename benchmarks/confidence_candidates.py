"""Per-frame mask-quality candidates that the shipped score was compared with (benchmarks/
confidence_auroc.py and confidence_features.py; docs/inference.md, "The per-frame score"). None of
them beat the score the predictor reports (:mod:`lgrnet.inference.postprocess`).

All take the chosen query's mask logits at the model's input size, (T, h, w), and return (T,)
float tensors in [0, 1]; the mask is ``logits > 0`` as in post-processing.

- :func:`expected_dice`: the Dice the probability map expects against its own mask,
  2 sum(p m) / (sum(p) + sum(m)) -- low when much probability mass lies outside the mask
  (a blurred or split prediction), 0 for an empty mask;
- :func:`temporal_agreement`: mean IoU of the frame's mask with its neighbours' (t-1, t+1) masks;
- :func:`view_agreement`: mean IoU of each test-time-augmentation view's mask with the averaged
  mask (needs the views' logits, (V, T, h, w)).

Mask2Former's mask score, the mean probability inside the mask, is the package's
(:func:`lgrnet.inference.postprocess.mean_prob_inside`).
"""
from __future__ import annotations

import torch


def _iou(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """IoU of bool masks (..., h, w) -> (...); 1 where both are empty."""
    inter = (a & b).flatten(-2).sum(-1).float()
    union = (a | b).flatten(-2).sum(-1).float()
    return torch.where(union > 0, inter / union.clamp(min=1), torch.ones_like(union))


def expected_dice(logits: torch.Tensor) -> torch.Tensor:
    p = logits.float().sigmoid()
    m = (logits > 0).float()
    num = 2.0 * (p * m).flatten(1).sum(1)
    den = p.flatten(1).sum(1) + m.flatten(1).sum(1)
    return torch.where(den > 0, num / den.clamp(min=1e-6), torch.zeros_like(den))


def temporal_agreement(logits: torch.Tensor) -> torch.Tensor:
    m = logits > 0
    T = m.shape[0]
    if T == 1:
        return torch.ones(1)
    fwd = _iou(m[1:], m[:-1])  # (T-1,): IoU(t, t-1) for t >= 1
    total = torch.zeros(T)
    count = torch.zeros(T)
    total[1:] += fwd
    count[1:] += 1
    total[:-1] += fwd
    count[:-1] += 1
    return total / count


def view_agreement(view_logits: torch.Tensor) -> torch.Tensor:
    """view_logits (V, T, h, w) -> (T,) mean IoU of each view's mask with the mean-logit mask."""
    mean = view_logits.float().mean(0) > 0
    return _iou(view_logits > 0, mean[None].expand_as(view_logits)).mean(0)
