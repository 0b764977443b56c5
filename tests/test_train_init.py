"""`lgrnet train --init WEIGHTS`: the run starts from the model's exact weights (strict load), takes
its preset and input size, and the short fine-tuning schedule (tiny preset, 64 px, a few steps)."""
import json

import pytest
import torch
from safetensors.torch import load_file

from lgrnet.cli import main
from lgrnet.config import get_preset
from lgrnet.training.finetune import FINETUNE_LR_SCALE, FINETUNE_MILESTONES, FINETUNE_STEPS, init_config
from lgrnet.training.trainer import Trainer, TrainOptions
from lgrnet.errors import InputError
from lgrnet.models.lgrnet import LGRNet
from test_train import FAST, make_dataset

# FAST without the size settings: --init brings the input size
STEPS = [o for o in FAST if not o.startswith(("train.image_size", "train.multiscale_sizes"))]


@pytest.fixture
def weights(tmp_path):
    torch.manual_seed(3)
    model = LGRNet.from_preset("tiny")
    return model.save_pretrained(str(tmp_path / "init.safetensors"), metadata={"input_size": 64})


def test_init_config_takes_preset_size_and_short_schedule(weights):
    cfg, size = init_config(weights, None, ["train.max_iters=50"])
    tiny = get_preset("tiny")
    assert size == 64 and cfg.model == LGRNet.from_pretrained(weights).config and cfg.model.preset == "tiny"
    t = cfg.train
    assert t.image_size == 64 and t.multiscale_sizes == [64, 96]  # input size +- 32 (>= 64)
    assert t.lr == pytest.approx(tiny.train.lr * FINETUNE_LR_SCALE)
    assert t.lr_milestones == list(FINETUNE_MILESTONES) and t.reference_stride == 1
    assert t.max_iters == 50 and FINETUNE_STEPS == 600  # overrides win over the schedule
    assert t.clip_len == tiny.train.clip_len and t.batch_size == tiny.train.batch_size  # the rest is the preset's
    cfg, _ = init_config(weights, None, [], schedule="preset")
    assert cfg.train.max_iters == tiny.train.max_iters and cfg.train.image_size == 64


def test_trainer_starts_from_the_weights_and_trains(tmp_path, weights):
    data = make_dataset(tmp_path / "d", videos=2, frames=4)
    cfg, _ = init_config(weights, None, STEPS)
    opts = TrainOptions(data=[str(data)], out_dir=str(tmp_path / "run"), tensorboard=False, progress=False,
                        init_weights=weights, max_steps=2)
    tr = Trainer(cfg, opts)
    saved = load_file(weights)
    own = tr.model.state_dict()
    assert set(own) == set(saved)
    assert all(torch.equal(own[k], saved[k]) for k in saved)  # exactly the file's weights at step 0
    summary = tr.fit()
    assert summary["step"] == 2
    after = load_file(str(tmp_path / "run" / "model.safetensors"))
    assert any(not torch.equal(after[k], saved[k]) for k in saved)  # and it trained
    assert json.loads((tmp_path / "run" / "run.json").read_text())["init_weights"] == weights


def test_init_is_strict(tmp_path, weights):
    data = make_dataset(tmp_path / "d", videos=1, frames=3)
    cfg, _ = init_config(weights, None, STEPS + ["model.decoder.num_queries=3"])
    with pytest.raises(InputError, match=r"init\.safetensors: does not fit the run's model config"):
        Trainer(cfg, TrainOptions(data=[str(data)], out_dir=str(tmp_path / "run"), tensorboard=False,
                                  progress=False, init_weights=weights))
    # --preset with --init picks that preset's recipe for the file's own architecture (issue 29 item 7;
    # tests/test_help_and_names.py::test_init_with_another_presets_recipe), no longer an error
    cfg, _ = init_config(weights, "sunseg_pvt", [])
    assert cfg.model.preset == "tiny"


def test_cli_train_init(tmp_path, weights, capsys):
    data = make_dataset(tmp_path / "d", videos=2, frames=4)
    out = tmp_path / "run"
    rc = main(["train", "--init", weights, "--data", str(data), "--val", str(data), "--out", str(out), "--max-steps", "2",
               "--no-tensorboard", "--progress", "off", *STEPS])
    assert rc == 0
    cfg = json.loads((out / "config.json").read_text())
    assert cfg["train"]["image_size"] == 64 and cfg["train"]["max_iters"] == FINETUNE_STEPS
    assert cfg["model"]["preset"] == "tiny"
    assert (out / "best.safetensors").is_file()
    capsys.readouterr()
    assert main(["train", "--preset", "tiny", "--schedule", "finetune", "--data", str(data), "--out", str(tmp_path / "x")]) == 2
    assert "--schedule goes with --init" in capsys.readouterr().err
    assert main(["train", "--init", str(tmp_path / "missing.safetensors"), "--data", str(data), "--out", str(tmp_path / "y")]) == 2
    err = capsys.readouterr().err
    assert "missing.safetensors: no such weight file" in err and len(err.strip().splitlines()) == 1
    torch.save(LGRNet.from_preset("tiny").state_dict(), tmp_path / "bare.pth")
    assert main(["train", "--init", str(tmp_path / "bare.pth"), "--data", str(data), "--out", str(tmp_path / "z")]) == 2
    assert "a PyTorch state dict without a config; pass --preset NAME" in capsys.readouterr().err
