"""Fine-tuning: start a run from a trained model (``lgrnet train --init WEIGHTS``).

The run takes the model's architecture from the weight file (our ``.safetensors`` carry their
config; an authors' ``.pth`` needs ``--preset``), the training recipe of the model's preset, and
the model's input size: the size the file records (:mod:`lgrnet.models.weight_metadata`), else
``train.image_size`` of the ``config.json`` beside it (a run folder's ``best.safetensors``), else
the preset's. The weights are loaded strictly (every tensor, same names and shapes) before step 1;
the optimizer, schedule and step start fresh.

What the run's weights record (:func:`run_weight_metadata`): its input size, step and validation
Dice, the backbone's start, the init weights, and a low-confidence threshold for the review page:
the one that flags failed frames best on the run's validation videos
(:func:`lgrnet.metrics.reliability.flag_threshold`, as ``lgrnet evaluate`` reports it), else the
init weights' threshold, carried over with a note saying so.

:func:`finetune_schedule` (``--schedule finetune``, the default with ``--init``) is a short
recipe for a few hundred corrected frames, where the published one (tens of thousands of clips)
would overfit or take hours. See docs/training.md, "Fine-tuning".
"""
from __future__ import annotations

import json
import os
from dataclasses import replace
from typing import List, Optional, Sequence, Tuple

from ..config import LGRNetConfig, TrainConfig, get_preset, to_dict
from ..errors import InputError, UserError
from ..models.weight_metadata import WeightMetadata, read_weight_metadata

SCHEDULES = ("finetune", "preset")

#: The short schedule: steps, LR drops (x lr_gamma), and the LR relative to the preset's.
FINETUNE_STEPS = 600
FINETUNE_MILESTONES = (400, 520)
FINETUNE_LR_SCALE = 0.1


def finetune_schedule(train: TrainConfig, input_size: int) -> TrainConfig:
    """The preset's recipe made short for a small corrected dataset (a few hundred frames):

    - 600 steps, LR x0.5 at steps 400 and 520 (the preset's ``lr_gamma``), LR = 0.1 x the preset's
      (the model is already trained; a from-scratch LR would undo it), backbone multiplier kept;
    - every annotated frame is a reference frame (``reference_stride=1``): there are few;
    - input size ``input_size`` (the model's), multi-scale over ``input_size`` +- 32;
    - validation and a checkpoint every 100 steps, so ``best.safetensors`` tracks the best point.

    Everything else (clip length, augmentation, loss, clipping, batch) is the preset's.
    """
    sizes = sorted({s for s in (input_size - 32, input_size, input_size + 32) if s >= 64})
    return replace(train, lr=train.lr * FINETUNE_LR_SCALE, max_iters=FINETUNE_STEPS,
                   lr_milestones=list(FINETUNE_MILESTONES), reference_stride=1, image_size=input_size,
                   multiscale_sizes=sizes, eval_every=100, checkpoint_every=100,
                   iters_per_epoch=FINETUNE_STEPS)


def weights_input_size(path: str) -> Optional[int]:
    """The input size a weight file was trained at: the size it records, else ``train.image_size``
    in the ``config.json`` beside it; None when neither says. :class:`InputError` naming the file
    when it is unreadable or records an invalid size, or the model is not square."""
    recorded = read_weight_metadata(path).input_size_or_error(path)
    if recorded is not None:
        if recorded[0] != recorded[1]:
            raise InputError(f"{path}: records the input size {recorded[0]}x{recorded[1]}; training runs at square sizes")
        return recorded[0]
    cfg = os.path.join(os.path.dirname(os.path.abspath(path)), "config.json")
    if os.path.isfile(cfg):
        try:
            with open(cfg, encoding="utf-8") as f:
                return int(json.load(f)["train"]["image_size"])
        except (OSError, ValueError, KeyError, TypeError):
            return None
    return None


def run_weight_metadata(image_size: int, step: int, val_dice: Optional[float] = None,
                        backbone_init: Optional[dict] = None, init_weights: Optional[str] = None,
                        validated: Optional[Tuple[float, str]] = None) -> WeightMetadata:
    """What a training run's weights record. ``validated``: (threshold, where it was derived) from
    the run's validation (:func:`lgrnet.training.validation.validate`'s ``flag_threshold``); without
    one, a fine-tuning run keeps the threshold ``init_weights`` record, noting where it came from."""
    threshold, source = validated if validated is not None else (None, None)
    if threshold is None and init_weights:
        threshold = read_weight_metadata(init_weights).confidence_threshold
        if threshold is not None:
            source = (f"carried over from the init weights {os.path.basename(init_weights)} (not re-derived: "
                      f"no validation run, or no failed and good frames there)")
    return WeightMetadata(input_size=(image_size, image_size), step=step, val_dice=val_dice,
                          backbone_init=backbone_init or None, confidence_threshold=threshold,
                          confidence_threshold_source=source,
                          init_weights=os.path.abspath(init_weights) if init_weights else None)


def load_init_model(path: str, preset: Optional[str] = None):
    """The model in ``path`` (strict load), as :class:`InputError` naming the file on any problem."""
    from ..models.lgrnet import LGRNet

    try:
        return LGRNet.from_pretrained(path, preset=preset)
    except (ValueError, FileNotFoundError) as exc:
        raise InputError(str(exc)) from None


def init_architecture(weights: str, preset: Optional[str] = None) -> LGRNetConfig:
    """The model config to fine-tune: the one ``weights`` record (our .safetensors, a model folder), so
    that ``preset`` then only picks the recipe (docs/training.md); else ``preset``'s (an authors' .pth)."""
    try:
        return load_init_model(weights).config
    except InputError:
        if preset is None:
            raise
        return load_init_model(weights, preset).config


def init_config(weights: str, preset: Optional[str], overrides: Sequence[str], schedule: str = "finetune"
                ) -> Tuple[LGRNetConfig, int]:
    """The config of a run started from ``weights``: the file's model config, the recipe of its
    preset (or ``preset``), the :func:`finetune_schedule` unless ``schedule="preset"``, then the
    ``key=value`` overrides. Returns (config, input size)."""
    from ..config import config_from_dict, override

    if schedule not in SCHEDULES:
        raise UserError(f"--schedule must be one of {', '.join(SCHEDULES)}, got {schedule!r}")
    model = init_architecture(weights, preset)
    name = preset or model.preset
    if not name:
        raise UserError(f"{weights}: its config names no preset; pass --preset NAME for the training recipe")
    try:
        recipe = get_preset(name).train
    except ValueError as exc:
        raise UserError(str(exc)) from None
    size = weights_input_size(weights) or recipe.image_size
    if size <= 0 or size % 32:
        raise InputError(f"{weights}: input size {size} is not a positive multiple of 32")
    train = finetune_schedule(recipe, size) if schedule == "finetune" else replace(recipe, image_size=size)
    cfg = config_from_dict({"model": to_dict(model), "train": to_dict(train)})
    try:
        return override(cfg, list(overrides)), size
    except ValueError as exc:
        raise UserError(f"{exc} (keys look like train.lr, train.max_iters)") from None


def overridden_keys(overrides: Sequence[str]) -> List[str]:
    return [o.split("=", 1)[0].strip() for o in overrides if "=" in o]
