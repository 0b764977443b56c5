"""One clip through the model: frames -> model input (:func:`frames_to_tensor`) and the forward
pass (:func:`forward_clip`).

The published evaluation resizes every frame to 352 x 352 and runs the whole video as one clip;
post-processing (the chosen query, masks, maps, scores) is :mod:`lgrnet.inference.postprocess`,
the input-size rule :mod:`lgrnet.models.input_size`. (Both steps and the post-processing on one
clip, the reference the tests compare the predictor with: ``tests/helpers/reference.py``.)
"""
from __future__ import annotations

from typing import Callable, Optional, Sequence, Tuple, Union

import numpy as np
import torch
import torch.nn.functional as F

from ..models.lgrnet import LGRNet, LGRNetOutput

__all__ = ["forward_clip", "frames_to_tensor"]


def frames_to_tensor(frames: Union[np.ndarray, Sequence[np.ndarray], torch.Tensor], size: Tuple[int, int]) -> torch.Tensor:
    """uint8 RGB frames (T, H, W, 3) -> float (1, T, 3, size_h, size_w) in [0, 1], resized as the
    published evaluation does: PIL's bilinear resize (antialiased when shrinking) to uint8, then / 255.

    uint8 frames are resized in uint8 by PyTorch's antialiased bilinear kernel, which follows PIL's
    (within one grey level of ``PIL.Image.resize(..., BILINEAR)``) and is ~7x faster on a CPU than
    resizing in float (1.0 against 7 ms a 574x500 frame to 352x352, one thread). Float frames
    (values 0..255) are resized in float."""
    if isinstance(frames, torch.Tensor):
        x = frames
    else:
        arr = np.ascontiguousarray(np.stack(list(frames)) if not isinstance(frames, np.ndarray) else frames)
        x = torch.from_numpy(arr if arr.flags.writeable else arr.copy())  # decoders may hand out read-only arrays
    if x.dim() != 4 or x.shape[-1] != 3:
        raise ValueError(f"expected RGB frames (T, H, W, 3), got shape {tuple(x.shape)}")
    x = x.permute(0, 3, 1, 2)  # a channels-last view: the layout the uint8 kernel is fast in
    resize = tuple(x.shape[-2:]) != tuple(size)
    if x.dtype == torch.uint8:  # uint8 in, uint8 out: rounded as PIL rounds
        if resize:
            x = F.interpolate(x, size=size, mode="bilinear", align_corners=False, antialias=True)
        return x.float().div_(255.0)[None]
    x = x.float().div(255.0)
    if resize:
        x = F.interpolate(x, size=size, mode="bilinear", align_corners=False, antialias=True).clamp_(0, 1)
    return x[None]


def forward_clip(model: LGRNet, x: torch.Tensor, autocast: bool = True,
                 module: Optional[Callable[[torch.Tensor], LGRNetOutput]] = None) -> LGRNetOutput:
    """Run one clip x (1, T, 3, h, w) in [0, 1] through ``model`` on its device (bf16 autocast on
    CUDA when ``autocast`` is true). ``module``: what to call instead of ``model`` (e.g. its
    ``torch.compile``'d version). Call under ``torch.inference_mode()``."""
    x = x.to(model.device)
    use_amp = autocast and model.device.type == "cuda"
    with torch.autocast(device_type=model.device.type, dtype=torch.bfloat16, enabled=use_amp):
        return (module or model)(x)
