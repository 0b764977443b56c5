"""What a weight file records besides its tensors and model config: one schema, read and written here.

Our ``.safetensors`` files carry string metadata. :mod:`lgrnet.models.checkpoint` owns two keys,
the model config and the format version; everything else a file says about the model is a field
of :class:`WeightMetadata`:

==========================  ==============================================================
field (metadata key)        meaning
==========================  ==============================================================
input_size                  (h, w) the model was trained at; stored ``"224"`` (square) or
                            ``"224x288"``. Every command runs the model at it unless told
                            otherwise (:mod:`lgrnet.inference.loading`).
confidence_threshold        the per-frame score below which the review page flags a frame,
                            in (0, 1); Youden's J on validation videos
                            (:func:`lgrnet.metrics.reliability.flag_threshold`).
confidence_threshold_source where that threshold came from (the validation split it was
                            derived on, or the weights it was carried over from).
recipe                      how the weights were trained (a script, or ``lgrnet train ...``).
trained_on                  the training data, and the validation data they were selected on.
init_weights                the weights a fine-tuning run started from (``--init``).
step, val_dice              the training step written, and its validation Dice.
backbone_init               the backbone's starting weights (:mod:`lgrnet.models.imagenet`).
converted_from[_sha256]     the authors' file ``lgrnet convert`` read, and its digest.
==========================  ==============================================================

Any other key is kept in ``extra`` as it is. Reading is lenient, as a loader must be: a value that
does not parse (or a threshold outside (0, 1)) leaves its field None and is listed in ``invalid``,
so a caller that needs it can refuse the file with a message (fine-tuning does for the input size).
The preset, the backbone's normalisation and the rest of the architecture are in the model config.
"""
from __future__ import annotations

import json
import os
from dataclasses import dataclass, field, fields
from typing import Any, Dict, Mapping, Optional, Tuple, Union

from ..errors import InputError, UserError
from .input_size import check_input_size

PathLike = Union[str, os.PathLike]
#: the file of a model folder (the hub layout, :mod:`lgrnet.models.hub`) that holds the weights
WEIGHTS_NAME = "model.safetensors"
#: keys :mod:`lgrnet.models.checkpoint` writes itself (the model config, the format version)
RESERVED_KEYS = ("lgrnet_config", "format_version")


@dataclass(frozen=True)
class WeightMetadata:
    """The metadata of one weight file; every field optional (see the module docstring)."""

    input_size: Optional[Tuple[int, int]] = None
    confidence_threshold: Optional[float] = None
    confidence_threshold_source: Optional[str] = None
    recipe: Optional[str] = None
    trained_on: Optional[str] = None
    init_weights: Optional[str] = None
    step: Optional[int] = None
    val_dice: Optional[float] = None
    backbone_init: Optional[Dict[str, Any]] = None
    converted_from: Optional[str] = None
    converted_from_sha256: Optional[str] = None
    extra: Dict[str, str] = field(default_factory=dict)
    #: metadata key -> the recorded text, for values that did not parse (their fields are None)
    invalid: Dict[str, str] = field(default_factory=dict, compare=False)

    # -- writing

    def to_metadata(self) -> Dict[str, str]:
        """The safetensors metadata (str -> str) of the fields that are set, plus ``extra``."""
        out = {k: v for k, v in self.extra.items() if k not in RESERVED_KEYS}
        for f in _FIELDS:
            value = getattr(self, f)
            if value is not None:
                out[f] = _FORMAT.get(f, str)(value)
        return out

    # -- reading

    @classmethod
    def from_metadata(cls, meta: Mapping[str, str]) -> "WeightMetadata":
        """Parse a file's metadata (leniently: see the module docstring)."""
        values: Dict[str, Any] = {}
        invalid: Dict[str, str] = {}
        for f in _FIELDS:
            if f not in meta:
                continue
            try:
                values[f] = _PARSE.get(f, str)(meta[f])
            except (TypeError, ValueError, UserError):
                invalid[f] = str(meta[f])
        extra = {k: v for k, v in meta.items() if k not in _FIELDS and k not in RESERVED_KEYS}
        return cls(**values, extra=extra, invalid=invalid)

    def input_size_or_error(self, where: PathLike) -> Optional[Tuple[int, int]]:
        """``input_size``; :class:`InputError` naming ``where`` when one is recorded but invalid."""
        if "input_size" in self.invalid:
            raise InputError(f"{os.fspath(where)}: its recorded input size {self.invalid['input_size']!r} is not a "
                             f"positive multiple of 32")
        return self.input_size


def _format_size(hw: Tuple[int, int]) -> str:
    h, w = check_input_size(hw)
    return str(h) if h == w else f"{h}x{w}"


def _parse_size(text: str) -> Tuple[int, int]:
    parts = [int(p) for p in str(text).lower().replace("x", ",").split(",")]
    return check_input_size(parts[0] if len(parts) == 1 else parts)


def _parse_threshold(text: str) -> float:
    value = float(text)
    if not 0.0 < value < 1.0:  # also refuses nan
        raise ValueError(f"{value} is not in (0, 1)")
    return value


def _parse_json_object(text: str) -> Dict[str, Any]:
    value = json.loads(text)
    if not isinstance(value, dict):
        raise ValueError("not a JSON object")
    return value


_FIELDS = tuple(f.name for f in fields(WeightMetadata) if f.name not in ("extra", "invalid"))
_PARSE = {"input_size": _parse_size, "confidence_threshold": _parse_threshold, "step": int, "val_dice": float,
          "backbone_init": _parse_json_object}
_FORMAT = {"input_size": _format_size, "backbone_init": json.dumps, "confidence_threshold": repr, "val_dice": repr}


def metadata_strings(metadata: Union[WeightMetadata, Mapping[str, Any], None]) -> Dict[str, str]:
    """What to store for ``metadata``: a :class:`WeightMetadata`'s fields, or a mapping's items as
    given (str values as they are, others as JSON), e.g. a user's own notes."""
    if isinstance(metadata, WeightMetadata):
        return metadata.to_metadata()
    return {str(k): v if isinstance(v, str) else json.dumps(v) for k, v in (metadata or {}).items()}


def weight_file(weights: PathLike) -> str:
    """The .safetensors file of ``weights``: the path itself, or a model folder's model.safetensors."""
    path = os.fspath(weights)
    return os.path.join(path, WEIGHTS_NAME) if os.path.isdir(path) else path


def read_weight_metadata(weights: PathLike) -> WeightMetadata:
    """The metadata of a .safetensors file or model folder; empty for other formats (an authors'
    .pth records none). Raises :class:`InputError` naming the file when its header is unreadable."""
    path = weight_file(weights)
    if not path.endswith(".safetensors") or not os.path.isfile(path):
        return WeightMetadata()
    from safetensors import SafetensorError, safe_open

    try:
        with safe_open(path, framework="pt") as f:
            meta = f.metadata() or {}
    except (OSError, SafetensorError, ValueError) as exc:
        raise InputError(f"{path}: not a readable safetensors file ({exc})") from None
    return WeightMetadata.from_metadata(meta)
