"""LGRNet.from_preset's overrides go through the same checks as ``key=value`` on the command line,
and a weight file's format version is checked on load (tiny models, random weights)."""
from __future__ import annotations

import pytest
import torch
from safetensors import safe_open
from safetensors.torch import save_file

from lgrnet import LGRNet
from lgrnet.config import get_preset, to_dict


def test_from_preset_overrides_are_checked():
    model = LGRNet.from_preset("tiny", d_model=96, **{"decoder.num_queries": 3, "encoder.local.kernel_size": 7})
    assert model.config.d_model == 96 and model.config.decoder.num_queries == 3 and model.num_queries == 3
    assert model.config.encoder.local.kernel_size == 7
    assert get_preset("tiny").model.encoder.local.kernel_size != 7  # the preset itself is untouched
    with pytest.raises(ValueError, match="unknown config key 'nope'"):
        LGRNet.from_preset("tiny", nope=1)
    with pytest.raises(ValueError, match="unknown config key 'encoder.nope'"):
        LGRNet.from_preset("tiny", **{"encoder.nope": 1})
    with pytest.raises(ValueError, match="config key 'd_model' takes a int, got 'big'"):
        LGRNet.from_preset("tiny", d_model="big")
    with pytest.raises(ValueError, match="takes true/false"):
        LGRNet.from_preset("tiny", **{"encoder.global.attn_mask": 1})
    with pytest.raises(ValueError, match="'encoder' is a group"):
        LGRNet.from_preset("tiny", encoder=3)
    # a whole group: only as the same config type, and copied
    enc = get_preset("fibroid_pvt").model.encoder
    model = LGRNet.from_preset("tiny", encoder=get_preset("tiny").model.encoder)
    assert to_dict(model.config.encoder) == to_dict(get_preset("tiny").model.encoder)
    with pytest.raises(ValueError, match="'encoder.local' is a group"):
        LGRNet.from_preset("tiny", **{"encoder.local": enc.global_})


def test_weight_file_format_version_is_checked(tmp_path):
    path = LGRNet.from_preset("tiny").save_pretrained(str(tmp_path / "tiny.safetensors"))
    with safe_open(path, framework="pt") as f:
        meta = f.metadata()
        state = {k: f.get_tensor(k) for k in f.keys()}
    assert meta["format_version"] == "1"
    assert LGRNet.from_pretrained(path).config.preset == "tiny"
    newer = str(tmp_path / "newer.safetensors")
    save_file(state, newer, metadata={**meta, "format_version": "2"})
    with pytest.raises(ValueError, match=r"newer.safetensors: weight-file format '2', this lgrnet reads format '1'"):
        LGRNet.from_pretrained(newer)
    # files written before the version was recorded load as format 1
    old = str(tmp_path / "old.safetensors")
    save_file(state, old, metadata={"lgrnet_config": meta["lgrnet_config"]})
    loaded = LGRNet.from_pretrained(old)
    assert loaded.config == LGRNet.from_pretrained(path).config
    assert all(torch.equal(v, loaded.state_dict()[k]) for k, v in state.items())
