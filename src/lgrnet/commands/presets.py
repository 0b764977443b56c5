"""List the named presets, one line each (backbone, model width, training size, where the backbone's
ImageNet weights would come from here, what the preset is for); with a name, print that preset's
full config as JSON.

examples:
  lgrnet presets
  lgrnet presets ultrasound_lite2
"""
from __future__ import annotations

from ..config import PRESET_SUMMARIES, PRESETS, get_preset, to_json
from ..errors import UserError


def add_arguments(p) -> None:
    p.add_argument("name", nargs="?", help="a preset to print in full")


def imagenet_status(backbone: str) -> str:
    """Where ``lgrnet train`` would take the backbone's ImageNet weights from on this machine:
    "package", "hub cache", "not here" (registered, not installed or cached) or "none known"."""
    from ..models.imagenet import REGISTRY, find_local

    if backbone not in REGISTRY:
        return "none known"
    try:
        found = find_local(backbone)
    except FileNotFoundError:  # e.g. a package whose weight file was deleted
        found = None
    if found is None:
        return "not here"
    return {"package": "package", "hub": "hub cache"}.get(found.kind, found.kind)


def run(args) -> int:
    if args.name:
        if args.name not in PRESETS:
            raise UserError(f"unknown preset {args.name!r}; choose one of {', '.join(PRESETS)}")
        print(to_json(get_preset(args.name)))
        return 0
    print(f"{'preset':16s} {'backbone':18s} {'d_model':>7s} {'size':>4s}  {'ImageNet':10s}  use")
    for name in PRESETS:
        cfg = get_preset(name)
        backbone = cfg.model.backbone.name
        print(f"{name:16s} {backbone:18s} {cfg.model.d_model:7d} {cfg.train.image_size:4d}  "
              f"{imagenet_status(backbone):10s}  {PRESET_SUMMARIES.get(name, '')}")
    return 0
