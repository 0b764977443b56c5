"""Core clip inference, shared by ``predict``, ``evaluate``, the demo and validation in training.

The published evaluation: resize every frame to 352 x 352, run the whole clip as one clip, take the
query with the highest foreground class probability, threshold its logits at 0, and resize the mask
back to the frame's size (nearest). Probability maps are the sigmoid of that query's logits resized
back bilinearly.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Optional, Sequence, Tuple, Union

import numpy as np
import torch
import torch.nn.functional as F

from ..models.lgrnet import LGRNet, LGRNetOutput


@dataclass
class ClipPrediction:
    """Per-frame results of one clip at the frames' original size.

    probs: (T, H, W) float32 foreground probability of the chosen query;
    masks: (T, H, W) bool, the chosen query's logits > 0 (nearest-resized, as published);
    class_score: (T,) foreground class probability of the chosen query (the same for all frames
        of a clip: the decoder's queries are per clip);
    mask_score: (T,) mean probability over the pixels of the mask (0 where the mask is empty);
    confidence: (T,) class_score * mask_score (Mask2Former's instance score), per frame;
    query: index of the chosen query;
    logits: (T, Nq, h, w) all queries' logits at the model's input size, only if asked for.
    """

    probs: np.ndarray
    masks: np.ndarray
    class_score: np.ndarray
    mask_score: np.ndarray
    confidence: np.ndarray
    query: int
    logits: Optional[torch.Tensor] = None


def frames_to_tensor(frames: Union[np.ndarray, Sequence[np.ndarray], torch.Tensor], size: Tuple[int, int]) -> torch.Tensor:
    """uint8 RGB frames (T, H, W, 3) -> float (1, T, 3, size_h, size_w) in [0, 1], bilinear
    (antialiased when shrinking, like PIL's resize that the published evaluation uses)."""
    if isinstance(frames, torch.Tensor):
        x = frames
    else:
        arr = np.ascontiguousarray(np.stack(list(frames)) if not isinstance(frames, np.ndarray) else frames)
        x = torch.from_numpy(arr if arr.flags.writeable else arr.copy())  # decoders may hand out read-only arrays
    if x.dim() != 4 or x.shape[-1] != 3:
        raise ValueError(f"expected RGB frames (T, H, W, 3), got shape {tuple(x.shape)}")
    x = x.permute(0, 3, 1, 2).float().div_(255.0)
    if tuple(x.shape[-2:]) != tuple(size):
        x = F.interpolate(x, size=size, mode="bilinear", align_corners=False, antialias=True).clamp_(0, 1)
    return x[None]


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


def postprocess(out: LGRNetOutput, orig_size: Tuple[int, int], keep_logits: bool = False) -> ClipPrediction:
    """Model output for one clip -> per-frame maps at ``orig_size`` (H, W)."""
    q = choose_query(out)
    logits = out.mask_logits[0, :, q].float()  # (T, h, w)
    probs, masks, mask_score = maps_at_size(logits, orig_size)
    class_score = out.class_probs[0, q, 0].float().expand(logits.shape[0])
    return ClipPrediction(
        probs=probs.cpu().numpy().astype(np.float32),
        masks=masks.cpu().numpy(),
        class_score=class_score.cpu().numpy().astype(np.float32),
        mask_score=mask_score.cpu().numpy().astype(np.float32),
        confidence=(class_score * mask_score).cpu().numpy().astype(np.float32),
        query=q,
        logits=out.mask_logits[0].float().cpu() if keep_logits else None,
    )


@torch.inference_mode()
def segment_clip(model: LGRNet, frames: Union[np.ndarray, Sequence[np.ndarray]], size: Union[int, Tuple[int, int]] = 352,
                 keep_logits: bool = False, autocast: bool = True) -> ClipPrediction:
    """Segment one clip of uint8 RGB frames (T, H, W, 3), all of one size, as one clip.

    ``size``: the model's input size (int or (h, w); multiples of 32). On CUDA, bf16 autocast is
    used when ``autocast`` is true.
    """
    size = (size, size) if isinstance(size, int) else tuple(size)
    if size[0] % 32 or size[1] % 32:
        raise ValueError(f"model input size {size} must be multiples of 32")
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
