"""Validation during training: the published per-frame Dice on held-out videos.

Each video is segmented as one clip (or in clips of ``clip_len`` frames) with
:func:`lgrnet.engine.inference.segment_clip` at ``size``; Dice per annotated frame is
(2 |P & G| + 1) / (|P| + |G| + 1) at the frame's original size, averaged over all frames of all
videos (the authors' "mask_dice" aggregation).
"""
from __future__ import annotations

from typing import Dict, List, Optional, Sequence

import numpy as np
import torch

from ..data.datasets import VideoRecord, read_frame, read_mask
from .inference import segment_clip


def frame_dice(pred: np.ndarray, gt: np.ndarray) -> float:
    """(2 |P & G| + 1) / (|P| + |G| + 1) for bool masks of one frame."""
    inter = np.logical_and(pred, gt).sum()
    return float((2.0 * inter + 1.0) / (pred.sum() + gt.sum() + 1.0))


@torch.no_grad()
def validate(model, videos: Sequence[VideoRecord], size: int, clip_len: int = 0) -> Dict[str, float]:
    """{"dice": mean over annotated frames, "frames": how many} for ``videos``."""
    was_training = model.training
    model.eval()
    scores: List[float] = []
    try:
        for v in videos:
            n = len(v)
            step = clip_len if clip_len and clip_len > 0 else n
            for start in range(0, n, step):
                idx = list(range(start, min(n, start + step)))
                if all(v.masks[i] is None for i in idx):
                    continue
                frames = np.stack([read_frame(v.frames[i]) for i in idx])
                pred = segment_clip(model, frames, size)
                for k, i in enumerate(idx):
                    if v.masks[i] is not None:
                        scores.append(frame_dice(pred.masks[k], read_mask(v.masks[i])))
    finally:
        model.train(was_training)
    return {"dice": float(np.mean(scores)) if scores else float("nan"), "frames": float(len(scores))}
