"""Loading a model for inference: the weights, their device, and the input size they record.

A checkpoint written by ``lgrnet train`` (and the shipped demo model) records the input size the
model was trained at (``input_size`` in the safetensors metadata; the demo model: 192). Running a
model at another size costs accuracy (the demo model on CVC-ClinicDB-612 Test: Dice 0.706 at 192,
0.584 at 352), so every command runs a model at its recorded size unless ``--size`` says
otherwise; weights that record none (the authors' .pth files) run at the published 352.
"""
from __future__ import annotations

import os
from typing import Optional, Tuple, Union

import torch

from ..errors import UserError
from ..models.lgrnet import LGRNet
from .device import resolve_device
from .inference import DEFAULT_INPUT_SIZE, check_input_size

INPUT_SIZE_KEY = "input_size"  # safetensors metadata key written by training


def recorded_input_size(weights: Union[str, os.PathLike]) -> Optional[Tuple[int, int]]:
    """The (h, w) input size a .safetensors checkpoint records, or None (other formats, no record,
    or a record that is not a valid size)."""
    path = os.fspath(weights)
    if not path.endswith(".safetensors") or not os.path.isfile(path):
        return None
    from safetensors import SafetensorError, safe_open

    try:
        with safe_open(path, framework="pt") as f:
            value = (f.metadata() or {}).get(INPUT_SIZE_KEY)
    except (OSError, SafetensorError):  # unreadable: the loader reports it
        return None
    if value is None:
        return None
    try:
        parts = [int(p) for p in str(value).replace("x", ",").split(",")]
        return check_input_size(parts[0] if len(parts) == 1 else parts)
    except (ValueError, UserError):
        return None


def inference_size(weights: Optional[Union[str, os.PathLike]], size: Union[None, int, Tuple[int, int]] = None,
                   what: str = "--size") -> Tuple[int, int]:
    """``size`` when given (checked), else what ``weights`` record, else the published 352."""
    if size is not None:
        return check_input_size(size, what)
    recorded = recorded_input_size(weights) if weights is not None else None
    return recorded or (DEFAULT_INPUT_SIZE, DEFAULT_INPUT_SIZE)


def load_model(weights: Union[str, os.PathLike], preset: Optional[str] = None,
               device: Union[str, torch.device, None] = "auto") -> LGRNet:
    """``LGRNet.from_pretrained`` (eval mode) moved to ``device`` ("auto": CUDA when available);
    loading problems become a :class:`~lgrnet.errors.UserError` naming the file."""
    dev = resolve_device(device)
    path = os.fspath(weights)
    try:
        model = LGRNet.from_pretrained(path, preset=preset, map_location="cpu")
    except (FileNotFoundError, ValueError, KeyError) as exc:
        raise UserError(str(exc)) from None
    return model.to(dev).eval()
