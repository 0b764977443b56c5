"""Loading a model for inference: the weights, their device, and the settings they record.

What a weight file records is :class:`~lgrnet.models.weight_metadata.WeightMetadata`. Two of its
fields matter here: the input size the model was trained at (a model run at another size loses
accuracy; docs/model.md lists measured examples), which every command uses unless ``--size`` says
otherwise (weights that record none, the authors' .pth files, run at the published 352), and the
low-confidence threshold (``confidence_threshold``), which predictions.json carries to the review
page. Recorded values that do not parse are ignored here, as if not recorded.
"""
from __future__ import annotations

import os
from typing import Optional, Tuple, Union

import torch

from ..errors import InputError, UserError
from ..models.input_size import DEFAULT_INPUT_SIZE, check_input_size
from ..models.lgrnet import LGRNet
from ..models.weight_metadata import WeightMetadata, read_weight_metadata
from .device import resolve_device


def recorded_metadata(weights: Union[str, os.PathLike]) -> WeightMetadata:
    """What ``weights`` (a .safetensors file or model folder) record; empty for other formats and
    for a file whose header cannot be read (the loader reports that)."""
    try:
        return read_weight_metadata(weights)
    except InputError:
        return WeightMetadata()


def inference_size(weights: Optional[Union[str, os.PathLike]], size: Union[None, int, Tuple[int, int]] = None,
                   what: str = "--size") -> Tuple[int, int]:
    """``size`` when given (checked), else what ``weights`` record, else the published 352."""
    if size is not None:
        return check_input_size(size, what)
    recorded = recorded_metadata(weights).input_size if weights is not None else None
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
