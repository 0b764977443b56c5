"""Validation during training: the authors' per-frame Dice on held-out videos.

Each video is segmented by the same :class:`~lgrnet.inference.predictor.VideoPredictor` as ``lgrnet
evaluate`` at ``size``: as one clip (the published evaluation) when it fits the memory budget,
else, or with ``clip_len``, in overlapping windows of ``clip_len`` frames. Every annotated frame
is scored with the authors' Dice, (2 |P & G| + 1) / (|P| + |G| + 1) at the frame's original size
(:func:`lgrnet.metrics.authors.dice_iou`, GT pixels > 0 as in their evaluator and in the training
targets), and the scores are averaged over all frames of all videos (the authors' "mask_dice"
aggregation, as in :func:`lgrnet.metrics.authors.summarize_videos`).
"""
from __future__ import annotations

from typing import Dict, List, Sequence

import numpy as np
import torch

from ..data.datasets import VideoRecord
from ..io.images import read_mask
from ..metrics.authors import GT_THRESHOLD, dice_iou
from ..inference.predictor import VideoPredictor


@torch.no_grad()
def validate(model, videos: Sequence[VideoRecord], size: int, clip_len: int = 0) -> Dict[str, float]:
    """{"dice": mean over annotated frames, "frames": how many} for ``videos``; ``clip_len`` > 1:
    windows of that many frames (0: whole videos when they fit the memory budget)."""
    from ..io.frame_folder import FrameFolderSource

    was_training = model.training
    scores: List[float] = []
    try:
        predictor = VideoPredictor(model, size=size, window=clip_len if clip_len and clip_len > 1 else None)
        for v in videos:
            if all(m is None for m in v.masks):
                continue
            for fp in predictor.stream(FrameFolderSource.from_files(v.frames)):
                if v.masks[fp.index] is not None:
                    scores.append(dice_iou(fp.mask, read_mask(v.masks[fp.index], GT_THRESHOLD))[0])
    finally:
        model.train(was_training)
    return {"dice": float(np.mean(scores)) if scores else float("nan"), "frames": float(len(scores))}
