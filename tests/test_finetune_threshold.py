"""Weights a training run writes keep a low-confidence threshold (issue 29, item 9): the one its
validation derives (the same as `lgrnet evaluate`'s flag_threshold on those videos), else, for
`lgrnet train --init`, the init weights' threshold with a note that it was carried over."""
import json
import shutil

import pytest
import torch

from lgrnet.cli import main
from lgrnet.data.datasets import find_videos
from lgrnet.evaluation.evaluate import evaluate_split
from lgrnet.models.lgrnet import LGRNet
from lgrnet.models.weight_metadata import WeightMetadata, read_weight_metadata
from lgrnet.training import trainer as trainer_module
from lgrnet.training.finetune import run_weight_metadata
from lgrnet.training.validation import validate
from test_train import FAST, make_dataset

STEPS = [o for o in FAST if not o.startswith(("train.image_size", "train.multiscale_sizes"))]


@pytest.fixture
def init_weights(tmp_path):
    torch.manual_seed(3)
    meta = WeightMetadata(input_size=(64, 64), confidence_threshold=0.62, confidence_threshold_source="Valid")
    return LGRNet.from_preset("tiny").save_pretrained(str(tmp_path / "init.safetensors"), metadata=meta)


def test_validation_derives_the_threshold_evaluate_reports(tmp_path, shared_path):
    """The shipped model on 6 frames of two Valid videos at 160 px has failed and good frames."""
    valid = shared_path("data/CVC-ClinicDB-612/Valid")
    for v in ("2", "3"):
        for sub in ("Frame", "GT"):
            (tmp_path / "d" / sub / v).mkdir(parents=True)
            for p in sorted((valid / sub / v).iterdir(), key=lambda p: int(p.stem))[:6]:
                shutil.copy(p, tmp_path / "d" / sub / v / p.name)
    from lgrnet.commands.demo import demo_weights

    model = LGRNet.from_pretrained(str(demo_weights())).eval()
    videos = find_videos(tmp_path / "d", require_masks=True)
    got = validate(model, videos, 160)
    evaluate_split(model, videos, tmp_path / "eval", size=160, progress=False)
    want = json.loads((tmp_path / "eval" / "confidence.json").read_text())["flag_threshold"]
    assert want is not None and got["flag_threshold"] == want["threshold"]


def test_run_metadata_carries_or_takes_the_validated_threshold(init_weights):
    carried = run_weight_metadata(64, 5, init_weights=init_weights)
    assert carried.confidence_threshold == pytest.approx(0.62) and carried.input_size == (64, 64)
    assert "carried over from the init weights init.safetensors" in carried.confidence_threshold_source
    assert carried.init_weights == init_weights and carried.step == 5
    validated = run_weight_metadata(64, 5, val_dice=0.5, init_weights=init_weights, validated=(0.7, "on Valid"))
    assert (validated.confidence_threshold, validated.confidence_threshold_source) == (0.7, "on Valid")
    assert run_weight_metadata(64, 5).confidence_threshold is None  # from scratch, nothing validated


def test_train_init_without_validation_keeps_the_init_threshold(tmp_path, init_weights):
    data = make_dataset(tmp_path / "d", videos=2, frames=4)
    out = tmp_path / "run"
    assert main(["train", "--init", init_weights, "--data", str(data), "--out", str(out), "--max-steps", "2",
                 "--no-tensorboard", "--progress", "off", *STEPS]) == 0
    meta = read_weight_metadata(out / "model.safetensors")
    assert meta.confidence_threshold == pytest.approx(0.62) and "carried over" in meta.confidence_threshold_source
    assert meta.input_size == (64, 64) and meta.step == 2 and meta.init_weights == init_weights


def test_train_records_the_threshold_its_validation_derives(tmp_path, init_weights, monkeypatch):
    def fake_validate(model, videos, size, clip_len=0):
        return {"dice": 0.5, "frames": 4.0, "flag_threshold": 0.55}

    monkeypatch.setattr(trainer_module, "validate", fake_validate)
    data = make_dataset(tmp_path / "d", videos=2, frames=4)
    out = tmp_path / "run"
    assert main(["train", "--init", init_weights, "--data", str(data), "--val", str(data), "--out", str(out),
                 "--max-steps", "2", "--no-tensorboard", "--progress", "off", *STEPS]) == 0
    for name in ("best.safetensors", "model.safetensors"):
        meta = read_weight_metadata(out / name)
        assert meta.confidence_threshold == pytest.approx(0.55), name
        assert meta.confidence_threshold_source.startswith("flag_threshold (Youden's J) on the validation videos")
    assert read_weight_metadata(out / "best.safetensors").val_dice == 0.5
