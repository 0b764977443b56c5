"""One schema for what a weight file records (lgrnet.models.weight_metadata): round trip, lenient
reading, the shipped file read the same as safetensors reads it, and the readers that use it."""
import dataclasses

import pytest
import torch
from safetensors import safe_open
from safetensors.torch import save_file

from lgrnet.commands.demo import demo_weights
from lgrnet.errors import InputError
from lgrnet.inference.loading import inference_size, recorded_metadata
from lgrnet.models.lgrnet import LGRNet
from lgrnet.models.weight_metadata import RESERVED_KEYS, WeightMetadata, read_weight_metadata
from lgrnet.training.finetune import weights_input_size

FULL = WeightMetadata(input_size=(224, 288), confidence_threshold=0.8096, confidence_threshold_source="Valid",
                      recipe="scripts/x.sh", trained_on="A + B", init_weights="/w/init.safetensors", step=600,
                      val_dice=0.8072782241020778, backbone_init={"kind": "imagenet", "sha256": "ab"},
                      converted_from="a.pth", converted_from_sha256="cd", extra={"note": "kept as is"})


def raw_metadata(path):
    with safe_open(str(path), framework="pt") as f:
        return dict(f.metadata())


def test_round_trip_through_a_file(tmp_path):
    torch.manual_seed(0)
    model = LGRNet.from_preset("tiny")
    path = model.save_pretrained(str(tmp_path / "m.safetensors"), metadata=FULL)
    raw = raw_metadata(path)
    assert raw["input_size"] == "224x288" and raw["confidence_threshold"] == "0.8096" and raw["step"] == "600"
    assert raw["note"] == "kept as is" and set(RESERVED_KEYS) <= set(raw)  # the config is still checkpoint's
    assert read_weight_metadata(path) == FULL
    assert LGRNet.from_pretrained(path).config == model.config
    square = dataclasses.replace(FULL, input_size=(224, 224)).to_metadata()
    assert square["input_size"] == "224"  # square sizes as older lgrnet versions wrote (and read) them


def test_the_shipped_weights_read_as_recorded():
    raw = raw_metadata(demo_weights())
    meta = read_weight_metadata(demo_weights())
    assert meta.input_size == (int(raw["input_size"]),) * 2
    assert meta.confidence_threshold == float(raw["confidence_threshold"])
    assert meta.recipe == raw["recipe"] and meta.step == int(raw["step"]) and not meta.invalid


def test_reading_is_lenient_and_says_what_did_not_parse(tmp_path):
    meta = WeightMetadata.from_metadata({"input_size": "100", "confidence_threshold": "1.5", "step": "six",
                                         "backbone_init": "[1]", "lgrnet_config": "{}", "mine": "x"})
    assert meta.input_size is None and meta.confidence_threshold is None and meta.step is None
    assert meta.backbone_init is None and meta.extra == {"mine": "x"}  # the config key is not "extra"
    assert meta.invalid == {"input_size": "100", "confidence_threshold": "1.5", "step": "six", "backbone_init": "[1]"}
    assert WeightMetadata.from_metadata({"input_size": "224,256"}).input_size == (224, 256)
    assert WeightMetadata.from_metadata({"confidence_threshold": "nan"}).confidence_threshold is None
    # a file with an invalid recorded size: inference ignores it (the published 352), fine-tuning refuses it
    path = str(tmp_path / "odd.safetensors")
    LGRNet.from_preset("tiny").save_pretrained(path, metadata={"input_size": "100"})
    assert inference_size(path) == (352, 352)
    with pytest.raises(InputError, match=r"odd\.safetensors: its recorded input size '100' is not a positive multiple of 32"):
        weights_input_size(path)


def test_an_unreadable_header(tmp_path):
    bad = tmp_path / "bad.safetensors"
    bad.write_bytes(b"\x10\x00\x00\x00\x00\x00\x00\x00{not json}......")
    with pytest.raises(InputError, match="bad.safetensors: not a readable safetensors file"):
        read_weight_metadata(bad)
    assert recorded_metadata(bad) == WeightMetadata()  # the loader says what is wrong, not this reader
    assert read_weight_metadata(tmp_path / "authors.pth") == WeightMetadata()  # other formats record nothing


def test_a_model_folder_records_its_card_size_unless_told(tmp_path):
    model = LGRNet.from_preset("tiny")
    folder = model.save_pretrained(str(tmp_path / "folder"))
    assert read_weight_metadata(folder).input_size == (224, 224)  # tiny's training size, from the card
    other = model.save_pretrained(str(tmp_path / "other"), metadata=WeightMetadata(input_size=(256, 256)))
    assert read_weight_metadata(other).input_size == (256, 256)
    plain = tmp_path / "plain.safetensors"
    save_file({"x": torch.zeros(1)}, str(plain), metadata={"input_size": "64"})
    assert read_weight_metadata(plain).input_size == (64, 64)
