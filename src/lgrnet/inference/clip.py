"""One clip through the model: frames -> model input (:func:`frames_to_tensor`), the forward pass
(:func:`forward_clip`) and both with post-processing (:func:`segment_clip`).

The published evaluation resizes every frame to 352 x 352 and runs the whole video as one clip;
post-processing (the chosen query, masks, maps, scores) is :mod:`lgrnet.inference.postprocess`.
"""
from __future__ import annotations

from typing import Callable, Optional, Sequence, Tuple, Union

import numpy as np
import torch
import torch.nn.functional as F

from ..errors import UserError
from ..models.lgrnet import LGRNet, LGRNetOutput
from .postprocess import ClipPrediction, choose_query, maps_at_size, postprocess

# the post-processing names are re-exported for existing imports
__all__ = ["DEFAULT_INPUT_SIZE", "ClipPrediction", "check_input_size", "choose_query", "forward_clip", "frames_to_tensor",
           "maps_at_size", "postprocess", "segment_clip"]


DEFAULT_INPUT_SIZE = 352  # the published evaluation's; a model that records its own size runs at that


def check_input_size(size: Union[int, Sequence[int]], what: str = "model input size") -> Tuple[int, int]:
    """An input size (int or (h, w)) -> (h, w); :class:`~lgrnet.errors.UserError` unless both are
    positive multiples of 32 (the backbone's stride). The one place this rule is checked."""
    hw = (size, size) if isinstance(size, int) else tuple(int(s) for s in size)
    if len(hw) != 2 or hw[0] <= 0 or hw[1] <= 0 or hw[0] % 32 or hw[1] % 32:
        shown = size if isinstance(size, int) else "x".join(str(s) for s in size)
        raise UserError(f"{what} {shown}: must be a positive multiple of 32 (e.g. 352)")
    return hw


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


def forward_clip(model: LGRNet, x: torch.Tensor, autocast: bool = True,
                 module: Optional[Callable[[torch.Tensor], LGRNetOutput]] = None) -> LGRNetOutput:
    """Run one clip x (1, T, 3, h, w) in [0, 1] through ``model`` on its device (bf16 autocast on
    CUDA when ``autocast`` is true). ``module``: what to call instead of ``model`` (e.g. its
    ``torch.compile``'d version). Call under ``torch.inference_mode()``."""
    x = x.to(model.device)
    use_amp = autocast and model.device.type == "cuda"
    with torch.autocast(device_type=model.device.type, dtype=torch.bfloat16, enabled=use_amp):
        return (module or model)(x)
