"""One clip through the model the plain way, the reference the streaming and windowed paths are
compared with: frames -> model input -> one forward pass -> post-processing, nothing else."""
from __future__ import annotations

from typing import Sequence, Tuple, Union

import numpy as np
import torch

from lgrnet.inference.clip import forward_clip, frames_to_tensor
from lgrnet.inference.postprocess import ClipPrediction, postprocess
from lgrnet.models.input_size import check_input_size
from lgrnet.models.lgrnet import LGRNet


@torch.inference_mode()
def segment_clip(model: LGRNet, frames: Union[np.ndarray, Sequence[np.ndarray]], size: Union[int, Tuple[int, int]] = 352,
                 keep_logits: bool = False, autocast: bool = True) -> ClipPrediction:
    """Segment one clip of uint8 RGB frames (T, H, W, 3), all of one size, as one clip.

    ``size``: the model's input size (int or (h, w); multiples of 32). On CUDA, bf16 autocast is
    used when ``autocast`` is true.
    """
    size = check_input_size(size)
    first = frames[0]
    orig = (int(first.shape[0]), int(first.shape[1]))
    x = frames_to_tensor(frames, size)
    return postprocess(forward_clip(model, x, autocast=autocast), orig, keep_logits=keep_logits)
