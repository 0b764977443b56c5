"""Validation during training: the authors' per-frame Dice on held-out videos.

Each video is segmented by the same :class:`~lgrnet.inference.predictor.VideoPredictor` as ``lgrnet
evaluate`` at ``size``: as one clip (the published evaluation) when it fits the memory budget,
else, or with ``clip_len``, in overlapping windows of ``clip_len`` frames. Every annotated frame
is scored with the authors' Dice, (2 |P & G| + 1) / (|P| + |G| + 1) at the frame's original size
(:func:`lgrnet.metrics.authors.dice_iou`, GT pixels > 0 as in their evaluator and in the training
targets), and the scores are averaged over all frames of all videos (the authors' "mask_dice"
aggregation, as in :func:`lgrnet.metrics.authors.summarize_videos`).

The same pass gives the low-confidence threshold the run's weights record: the per-frame score
threshold that flags failed frames best (:func:`lgrnet.metrics.reliability.flag_threshold` over
each frame's score and its Dice against GT > 128, :func:`~lgrnet.metrics.reliability.frame_dice`),
exactly as ``lgrnet evaluate`` computes ``flag_threshold`` in confidence.json.
"""
from __future__ import annotations

from typing import Dict, List, Optional, Sequence

import numpy as np
import torch

from ..data.datasets import VideoRecord
from ..io.images import read_mask_gray
from ..metrics.authors import GT_THRESHOLD, dice_iou
from ..metrics.reliability import flag_threshold, frame_dice
from ..inference.predictor import VideoPredictor


@torch.no_grad()
def validate(model, videos: Sequence[VideoRecord], size: int, clip_len: int = 0) -> Dict[str, Optional[float]]:
    """{"dice": mean over annotated frames, "frames": how many, "flag_threshold": the threshold
    (None without both failed and good frames)} for ``videos``; ``clip_len`` > 1: windows of that
    many frames (0: whole videos when they fit the memory budget)."""
    from ..io.frame_folder import FrameFolderSource

    was_training = model.training
    scores: List[float] = []
    frame_scores: List[float] = []  # the model's per-frame confidence
    frame_dices: List[float] = []  # and the frame's Dice as lgrnet evaluate scores it
    try:
        predictor = VideoPredictor(model, size=size, window=clip_len if clip_len and clip_len > 1 else None)
        for v in videos:
            if all(m is None for m in v.masks):
                continue
            for fp in predictor.stream(FrameFolderSource.from_files(v.frames)):
                if v.masks[fp.index] is not None:
                    gt = read_mask_gray(v.masks[fp.index])
                    scores.append(dice_iou(fp.mask, gt > GT_THRESHOLD)[0])
                    frame_scores.append(round(fp.score, 6))  # rounded as confidence.json records them
                    frame_dices.append(round(frame_dice(fp.mask, gt > 128), 6))
    finally:
        model.train(was_training)
    flag = flag_threshold(frame_scores, frame_dices)
    return {"dice": float(np.mean(scores)) if scores else float("nan"), "frames": float(len(scores)),
            "flag_threshold": flag["threshold"] if flag else None}
