"""List the named presets; with a name, print that preset's full config as JSON.

examples:
  lgrnet presets
  lgrnet presets sunseg_pvt
"""
from __future__ import annotations

from ..config import PRESETS, get_preset, to_json
from ..errors import UserError


def add_arguments(p) -> None:
    p.add_argument("name", nargs="?", help="a preset to print in full")


def run(args) -> int:
    if args.name:
        if args.name not in PRESETS:
            raise UserError(f"unknown preset {args.name!r}; choose one of {', '.join(PRESETS)}")
        print(to_json(get_preset(args.name)))
        return 0
    for name in PRESETS:
        m = get_preset(name).model
        print(f"{name:16s} backbone={m.backbone.name:12s} d_model={m.d_model:<4d} "
              f"CNP k={m.encoder.local.kernel_size} dil={m.encoder.local.dilation} "
              f"frame_queries={m.encoder.global_.num_frame_queries} video_queries={m.decoder.num_queries}")
    return 0
