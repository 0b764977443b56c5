"""The model's Python API, checkpoints, configs and backbone weights (tiny models, random weights)."""
from __future__ import annotations

import json
import pickle
import subprocess
import sys

import pytest
import torch

from lgrnet import LGRNet
from lgrnet.config import config_from_dict, get_preset, override, to_dict
from lgrnet.models.backbone import FrameBackbone

from tests.helpers.official_utils import authors_state_dict


@pytest.fixture(scope="module")
def tiny():
    torch.manual_seed(0)
    return LGRNet.from_preset("tiny").eval()


@pytest.mark.parametrize("T,H,W", [(1, 64, 64), (3, 96, 64), (4, 64, 128)])
def test_output_shapes(tiny, T, H, W):
    with torch.inference_mode():
        out = tiny(torch.rand(2, T, 3, H, W))
    nq = tiny.config.decoder.num_queries
    assert out.mask_logits.shape == (2, T, nq, H, W)
    assert out.class_logits.shape == (2, nq, 2)
    assert len(out.aux) == 1  # eval mode keeps only the last head unless asked
    with torch.inference_mode():
        full = tiny(torch.rand(2, T, 3, H, W), return_aux=True)
    assert len(full.aux) == tiny.config.decoder.num_layers + 1
    assert out.best_query().shape == (2,)
    assert torch.isfinite(out.mask_logits).all()


def test_bad_inputs_are_explained(tiny):
    with pytest.raises(ValueError, match="multiple of 32"):
        tiny(torch.rand(1, 2, 3, 70, 64))
    with pytest.raises(ValueError, match=r"\(b, T, 3, H, W\)"):
        tiny(torch.rand(2, 3, 64, 64))


def test_clip_frames_interact(tiny):
    """Frames of a clip are not independent: changing frame 1 changes frame 0's output."""
    video = torch.rand(1, 3, 3, 64, 64, generator=torch.Generator().manual_seed(1))
    with torch.inference_mode():
        a = tiny(video).mask_logits[0, 0]
        video2 = video.clone()
        video2[0, 1] = torch.rand(3, 64, 64, generator=torch.Generator().manual_seed(2))
        b = tiny(video2).mask_logits[0, 0]
    assert (a - b).abs().max() > 1e-4


def test_every_parameter_gets_a_gradient():
    torch.manual_seed(0)
    model = LGRNet.from_preset("tiny").train()
    out = model(torch.rand(1, 2, 3, 64, 64))
    loss = sum(h.mask_logits.square().mean() + h.class_logits.square().mean() for h in out.aux)
    loss.backward()
    missing = [n for n, p in model.named_parameters() if p.grad is None]
    assert not missing, missing


def test_save_and_load_roundtrip(tiny, tmp_path):
    path = tiny.save_pretrained(str(tmp_path / "tiny.safetensors"))
    loaded = LGRNet.from_pretrained(path).eval()
    assert to_dict(loaded.config) == to_dict(tiny.config)
    video = torch.rand(1, 2, 3, 64, 64)
    with torch.inference_mode():
        assert torch.equal(tiny(video).mask_logits, loaded(video).mask_logits)
    with pytest.raises(ValueError, match="holds a 'tiny' model"):
        LGRNet.from_pretrained(path, preset="sunseg_pvt")
    # half-precision file (the demo weights are stored so): loads back to float32
    half = tiny.save_pretrained(str(tmp_path / "half.safetensors"), dtype=torch.float16)
    assert next(LGRNet.from_pretrained(half).parameters()).dtype == torch.float32


def test_missing_file_and_garbage(tmp_path):
    with pytest.raises(FileNotFoundError, match="nope.safetensors"):
        LGRNet.from_pretrained(str(tmp_path / "nope.safetensors"))
    bad = tmp_path / "bad.safetensors"
    bad.write_bytes(b"not a safetensors file")
    with pytest.raises(ValueError, match="bad.safetensors"):
        LGRNet.from_pretrained(str(bad))


class _Evil:
    def __reduce__(self):
        return (print, ("this must never run",))


def test_pickles_are_loaded_with_weights_only(tmp_path):
    path = tmp_path / "evil.pth"
    with open(path, "wb") as f:
        pickle.dump({"model": _Evil()}, f)
    with pytest.raises(ValueError, match="evil.pth: a (Python )?pickle") as info:
        LGRNet.from_pretrained(str(path), preset="tiny")
    assert "weights_only" not in str(info.value)  # never the advice to turn the protection off


def test_config_roundtrip_and_overrides():
    cfg = get_preset("fibroid_pvt")
    assert cfg.model.encoder.local.dilation == 2 and cfg.model.encoder.global_.attn_mask
    assert config_from_dict(json.loads(json.dumps(to_dict(cfg)))) == cfg
    new = override(cfg, ["model.encoder.local.kernel_size=7", "train.lr=0.0005", "model.encoder.global.scan_order=zigzag"])
    assert new.model.encoder.local.kernel_size == 7 and new.train.lr == 5e-4
    assert new.model.encoder.global_.scan_order == "zigzag"
    assert cfg.model.encoder.local.kernel_size == 5  # the original is untouched
    with pytest.raises(ValueError, match="unknown config key"):
        override(cfg, ["model.nope=1"])
    with pytest.raises(ValueError, match="takes a int"):
        override(cfg, ["model.d_model=big"])
    with pytest.raises(ValueError, match="unknown preset"):
        get_preset("nope")


def test_zigzag_scan_option_runs():
    model = LGRNet(override(get_preset("tiny"), ["model.encoder.global.scan_order=zigzag"]).model).eval()
    with torch.inference_mode():
        assert model(torch.rand(1, 3, 3, 64, 64)).mask_logits.shape[1] == 3


def test_convert_command(shared_dir, tmp_path):
    src = tmp_path / "authors.pth"
    torch.save({"model": authors_state_dict(shared_dir, "sunseg_pvt")}, src)
    dst = tmp_path / "ours.safetensors"
    cmd = [sys.executable, "-m", "lgrnet.cli", "convert", str(src), str(dst), "--preset", "sunseg_pvt"]
    res = subprocess.run(cmd, capture_output=True, text=True)
    assert res.returncode == 0, res.stderr
    assert LGRNet.from_pretrained(str(dst)).config.preset == "sunseg_pvt"
    res = subprocess.run(cmd, capture_output=True, text=True)  # refuses to overwrite
    assert res.returncode == 2 and "exists" in res.stderr and "Traceback" not in res.stderr


def _imagenet_file(shared_dir, tmp_path, preset, prefix, extra):
    sd = authors_state_dict(shared_dir, preset)
    raw = {k[len(prefix):]: v for k, v in sd.items() if k.startswith(prefix)}
    raw.update(extra)
    path = tmp_path / f"{preset}_imagenet.pth"
    torch.save(raw, path)
    return path, raw


def test_load_authors_imagenet_pvt(shared_dir, tmp_path):
    path, raw = _imagenet_file(shared_dir, tmp_path, "sunseg_pvt", "video_backbone.image_homo.pvt_v2.",
                               {"head.weight": torch.zeros(1000, 512), "head.bias": torch.zeros(1000)})
    bb = FrameBackbone("pvt_v2_b2")
    bb.load_imagenet(str(path))
    assert torch.equal(bb.body.stages[2].blocks[1].attn.q.weight, raw["block3.1.attn.q.weight"])
    assert torch.equal(bb.body.stages[3].downsample.proj.weight, raw["patch_embed4.proj.weight"])
    raw.pop("block1.0.attn.q.weight")
    torch.save(raw, path)
    with pytest.raises(ValueError, match="missing"):
        FrameBackbone("pvt_v2_b2").load_imagenet(str(path))


def test_load_authors_imagenet_res2net(shared_dir, tmp_path):
    path, raw = _imagenet_file(shared_dir, tmp_path, "sunseg_res2net", "video_backbone.res2net.",
                               {"fc.weight": torch.zeros(1000, 2048), "fc.bias": torch.zeros(1000)})
    bb = FrameBackbone("res2net50d")
    bb.load_imagenet(str(path))
    assert torch.equal(bb.body.layer3[2].convs[1].weight, raw["layer3.2.convs.1.weight"])
