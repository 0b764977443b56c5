"""Loading a model for inference: the weights, their device, and the input size they record.

A checkpoint written by ``lgrnet train`` (and the shipped demo model) records the input size the
model was trained at (``input_size`` in the safetensors metadata; the demo model: 224). Running a
model at another size costs accuracy (the demo model shipped until 2026-12-06 on CVC-ClinicDB-612
Test: Dice 0.797 at its 192, 0.767 at 352), so every command runs a model at its recorded size unless ``--size`` says
otherwise; weights that record none (the authors' .pth files) run at the published 352. A checkpoint
can also record the threshold below which its per-frame score flags a frame for review
(``confidence_threshold``), which predictions.json carries to the review page.
"""
from __future__ import annotations

import os
from typing import Optional, Tuple, Union

import torch

from ..errors import UserError
from ..models.hub import WEIGHTS_NAME
from ..models.lgrnet import LGRNet
from .device import resolve_device
from .clip import DEFAULT_INPUT_SIZE, check_input_size

INPUT_SIZE_KEY = "input_size"  # safetensors metadata key written by training
# the score below which the review page lists a frame as low-confidence, calibrated on the model's
# Valid videos (lgrnet.metrics.reliability.flag_threshold; written by scripts/export_demo_weights.py)
CONFIDENCE_THRESHOLD_KEY = "confidence_threshold"


def recorded_metadata(weights: Union[str, os.PathLike], key: str) -> Optional[str]:
    """The value of metadata ``key`` in a .safetensors checkpoint (or a model folder's
    model.safetensors), or None (other formats, no such key, unreadable: the loader reports that)."""
    path = os.fspath(weights)
    if os.path.isdir(path):
        path = os.path.join(path, WEIGHTS_NAME)
    if not path.endswith(".safetensors") or not os.path.isfile(path):
        return None
    from safetensors import SafetensorError, safe_open

    try:
        with safe_open(path, framework="pt") as f:
            return (f.metadata() or {}).get(key)
    except (OSError, SafetensorError):
        return None


def recorded_input_size(weights: Union[str, os.PathLike]) -> Optional[Tuple[int, int]]:
    """The (h, w) input size a checkpoint records, or None (no record, or not a valid size)."""
    value = recorded_metadata(weights, INPUT_SIZE_KEY)
    if value is None:
        return None
    try:
        parts = [int(p) for p in str(value).replace("x", ",").split(",")]
        return check_input_size(parts[0] if len(parts) == 1 else parts)
    except (ValueError, UserError):
        return None


def recorded_confidence_threshold(weights: Union[str, os.PathLike]) -> Optional[float]:
    """The low-confidence threshold a checkpoint records (a number in (0, 1)), or None."""
    try:
        threshold = float(recorded_metadata(weights, CONFIDENCE_THRESHOLD_KEY))
    except (TypeError, ValueError):  # no record, or not a number
        return None
    return threshold if 0.0 < threshold < 1.0 else None


def inference_size(weights: Optional[Union[str, os.PathLike]], size: Union[None, int, Tuple[int, int]] = None,
                   what: str = "--size") -> Tuple[int, int]:
    """``size`` when given (checked), else what ``weights`` record, else the published 352."""
    if size is not None:
        return check_input_size(size, what)
    recorded = recorded_input_size(weights) if weights is not None else None
    return recorded or (DEFAULT_INPUT_SIZE, DEFAULT_INPUT_SIZE)


def resolve_weights(weights: Union[str, os.PathLike], revision: Optional[str] = None) -> str:
    """A local path for ``weights``: a file or folder as given, a hub id ``org/name`` as its folder in
    the huggingface_hub cache (fetched if needed; :mod:`lgrnet.models.hub`). Problems become a
    :class:`~lgrnet.errors.UserError` (one line: an id neither cached nor reachable, ...)."""
    from ..models.hub import resolve

    try:
        resolved = resolve(os.fspath(weights), revision=revision)
    except (FileNotFoundError, ValueError) as exc:
        raise UserError(str(exc)) from None
    return resolved.folder or resolved.path


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
