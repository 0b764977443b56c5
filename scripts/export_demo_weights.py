"""Store a trained model as the shipped demo weights: float16 safetensors with its config and the
input size it was trained at.

usage: python scripts/export_demo_weights.py RUN/best.safetensors src/lgrnet/assets/demo_lite2.safetensors [RECIPE]
                                             [--confidence VALID/confidence.json]
RECIPE: the script that trained it (default scripts/train_demo_weights.sh); the training and
validation folders come from RUN/run.json when it is there. --confidence: the confidence.json of
`lgrnet evaluate` on the Valid videos; its ``flag_threshold`` (the score threshold that flags failed
frames best there) is recorded as the weights' confidence threshold, where the review page starts.
What is recorded follows lgrnet.models.weight_metadata.
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys

import torch

from lgrnet import LGRNet
from lgrnet.models.weight_metadata import read_weight_metadata


def _split_name(path: str) -> str:
    return "/".join(os.path.normpath(path).split(os.sep)[-2:])


def main(src: str, dst: str, recipe: str = "scripts/train_demo_weights.sh", confidence: str = None) -> int:
    model = LGRNet.from_pretrained(src)
    meta = read_weight_metadata(src)  # what the run recorded (step, val_dice, ...) is kept
    run_dir = os.path.dirname(os.path.abspath(src))
    train_cfg = json.load(open(os.path.join(run_dir, "config.json")))["train"] if os.path.exists(os.path.join(run_dir, "config.json")) else {}
    size = int(train_cfg.get("image_size", 224))
    trained_on = "CVC-ClinicDB-612/Train (MICCAI VPS split), selected on CVC-ClinicDB-612/Valid"
    run_json = os.path.join(run_dir, "run.json")
    if os.path.exists(run_json):
        run = json.load(open(run_json))
        trained_on = (" + ".join(_split_name(p) for p in run.get("data", [])) + " (MICCAI VPS split), selected on "
                      + " + ".join(_split_name(p) for p in run.get("val", [])))
    meta = dataclasses.replace(meta, input_size=(size, size), trained_on=trained_on, recipe=recipe)
    if confidence:
        flag = json.load(open(confidence)).get("flag_threshold")
        if flag is None:
            print(f"{confidence}: no flag_threshold (no failed or no good frame there); none recorded", file=sys.stderr)
        else:
            meta = dataclasses.replace(meta, confidence_threshold=float(flag["threshold"]),
                                       confidence_threshold_source="flag_threshold (Youden's J) of lgrnet evaluate on "
                                                                   "the validation videos it was selected on")
    model.save_pretrained(dst, dtype=torch.float16, metadata=meta)
    print(f"wrote {dst} ({os.path.getsize(dst) / 1e6:.2f} MB)")
    return 0


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("src")
    ap.add_argument("dst")
    ap.add_argument("recipe", nargs="?", default="scripts/train_demo_weights.sh")
    ap.add_argument("--confidence")
    a = ap.parse_args()
    sys.exit(main(a.src, a.dst, a.recipe, a.confidence))
