"""Helpers to build models with the authors' deterministic fixture weights."""
from __future__ import annotations

import importlib.util
import json
from functools import lru_cache
from pathlib import Path
from typing import Dict

import torch

PRESET_KW = {
    "sunseg_pvt": {},
    "sunseg_res2net": {},
    "fibroid_pvt": {"dilation": 2, "attn_mask": True},
}


def make_state_dict_module(shared: Path):
    spec = importlib.util.spec_from_file_location("make_weights", shared / "official" / "make_weights.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def authors_state_dict(shared: Path, preset: str) -> Dict[str, torch.Tensor]:
    """The fixtures' weights, in the authors' key layout (including their loss buffers)."""
    return _authors_state_dict(str(shared), preset)


@lru_cache(maxsize=4)
def _authors_state_dict(shared: str, preset: str) -> Dict[str, torch.Tensor]:
    shared = Path(shared)
    manifest = json.loads((shared / "official" / preset / "state_dict_manifest.json").read_text())
    return make_state_dict_module(shared).make_state_dict(manifest)


def load_case(shared: Path, preset: str, case: str) -> dict:
    return torch.load(shared / "official" / preset / f"case_{case}.pt", weights_only=True)
