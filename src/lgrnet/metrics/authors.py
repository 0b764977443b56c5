"""The LGRNet authors' own evaluator (their README's Dice / IoU), which is NOT the SUN-SEG toolbox.

Per frame, on binary masks: I = |P & G|,

    Dice = (2 I + 1) / (|P| + |G| + 1)        IoU = (I + 1) / (|P| + |G| - I + 1)

(the +1 smoothing makes an empty prediction on an empty GT score 1). Every frame counts (no frame is
dropped) and the dataset's value is the plain mean over all frames of all videos pooled, so long videos
weigh more than in the SUN-SEG protocol.

Binarisation, as in the authors' code: a GT pixel is foreground when its grey level is > 0 (they read
masks with PIL's ``convert('L')`` and test ``> 0``; the SUN-SEG toolbox uses > 128, which differs on
masks with grey edges); a predicted pixel is foreground when its grey level is > 127 (their masks come
from the model as {0, 1}; saved as {0, 255} PNGs or as probability maps round(255 p), > 127 is
p >= 0.5). The authors computed in float32 torch tensors; this module uses float64 (they agree to ~1e-7).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Dict, Mapping, Sequence, Tuple

import numpy as np

GT_THRESHOLD = 0  # gt > 0
PRED_THRESHOLD = 127  # pred > 127
METRICS = ("Dice", "IoU")


def dice_iou(pred: np.ndarray, gt: np.ndarray) -> Tuple[float, float]:
    """The authors' smoothed Dice and IoU of one frame. ``pred``, ``gt``: bool (H, W) of one size."""
    if pred.shape != gt.shape:
        raise ValueError(f"prediction {pred.shape} and GT {gt.shape} differ in size")
    inter = int(np.count_nonzero(pred & gt))
    total = int(np.count_nonzero(pred)) + int(np.count_nonzero(gt))
    return (2 * inter + 1) / (total + 1), (inter + 1) / (total - inter + 1)


@dataclass
class AuthorsVideo:
    """Per-frame Dice and IoU of one video, in frame order."""

    dice: Sequence[float]
    iou: Sequence[float]

    @property
    def frames(self) -> int:
        return len(self.dice)

    def means(self) -> Dict[str, float]:
        return {"Dice": float(np.mean(self.dice)), "IoU": float(np.mean(self.iou))}


def summarize_videos(videos: Mapping[str, AuthorsVideo]) -> Dict[str, float]:
    """Mean Dice and IoU over all frames of all videos pooled (the authors' aggregation)."""
    dice = [d for v in videos.values() for d in v.dice]
    iou = [i for v in videos.values() for i in v.iou]
    if not dice:
        raise ValueError("no frames to summarize")
    return {"Dice": float(np.mean(dice)), "IoU": float(np.mean(iou))}
