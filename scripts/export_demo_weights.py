"""Store a trained model as the shipped demo weights: float16 safetensors with its config and the
input size it was trained at.

usage: python scripts/export_demo_weights.py RUN/best.safetensors src/lgrnet/assets/demo_tiny.safetensors [RECIPE]
RECIPE: the script that trained it (default scripts/train_demo_weights.sh); the training and
validation folders come from RUN/run.json when it is there.
"""
from __future__ import annotations

import json
import os
import sys

import torch
from safetensors import safe_open

from lgrnet import LGRNet


def _split_name(path: str) -> str:
    return "/".join(os.path.normpath(path).split(os.sep)[-2:])


def main(src: str, dst: str, recipe: str = "scripts/train_demo_weights.sh") -> int:
    model = LGRNet.from_pretrained(src)
    with safe_open(src, framework="pt") as f:
        meta = dict(f.metadata() or {})
    run_dir = os.path.dirname(os.path.abspath(src))
    train_cfg = json.load(open(os.path.join(run_dir, "config.json")))["train"] if os.path.exists(os.path.join(run_dir, "config.json")) else {}
    extra = {k: v for k, v in meta.items() if k not in ("lgrnet_config", "format_version")}
    extra["input_size"] = str(train_cfg.get("image_size", 224))
    extra["trained_on"] = "CVC-ClinicDB-612/Train (MICCAI VPS split), selected on CVC-ClinicDB-612/Valid"
    run_json = os.path.join(run_dir, "run.json")
    if os.path.exists(run_json):
        run = json.load(open(run_json))
        extra["trained_on"] = (" + ".join(_split_name(p) for p in run.get("data", [])) + " (MICCAI VPS split), selected on "
                               + " + ".join(_split_name(p) for p in run.get("val", [])))
    extra["recipe"] = recipe
    model.save_pretrained(dst, dtype=torch.float16, metadata=extra)
    print(f"wrote {dst} ({os.path.getsize(dst) / 1e6:.2f} MB)")
    return 0


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:4]))
