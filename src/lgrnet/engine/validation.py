"""Validation during training: the authors' per-frame Dice on held-out videos.

Each video is segmented as one clip (or in clips of ``clip_len`` frames) with
:func:`lgrnet.engine.inference.segment_clip` at ``size``; every annotated frame is scored with
the authors' Dice, (2 |P & G| + 1) / (|P| + |G| + 1) at the frame's original size
(:func:`lgrnet.metrics.authors.dice_iou`, GT pixels > 0 as in their evaluator and in the training
targets), and the scores are averaged over all frames of all videos (the authors' "mask_dice"
aggregation, as in :func:`lgrnet.metrics.authors.summarize_videos`).
"""
from __future__ import annotations

from typing import Dict, List, Sequence

import numpy as np
import torch

from ..data.datasets import VideoRecord, read_frame, read_mask
from ..metrics.authors import GT_THRESHOLD, dice_iou
from .inference import segment_clip


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
                        scores.append(dice_iou(pred.masks[k], read_mask(v.masks[i], GT_THRESHOLD))[0])
    finally:
        model.train(was_training)
    return {"dice": float(np.mean(scores)) if scores else float("nan"), "frames": float(len(scores))}
