"""Help and docs that do not mislead (issue 29, item 7): `python -m lgrnet` works (what `predict --help`
shows for torchrun); `demo` names the shipped model in every --weights (and --init, and from_pretrained);
`train --init W --preset P` takes P's recipe as training.md says; `export --size` defaults to the size the
weights record; `view --help` mentions corrections; `lgrnet info` lists the DICOM decoders and
pycocotools; docs/annotation.md passes neither --size nor the package's asset path."""
from __future__ import annotations

import re
import json
import subprocess
import sys
from pathlib import Path

import pytest

from lgrnet.cli import build_parser, main
from lgrnet.models.shipped import SHIPPED_NAME, resolve_shipped, shipped_weights

REPO = Path(__file__).resolve().parents[1]


def recorded(key: str) -> str:
    """The shipped file's raw metadata entry (read without lgrnet's reader)."""
    from safetensors import safe_open

    with safe_open(str(shipped_weights()), framework="pt") as f:
        return f.metadata()[key]


def recorded_size() -> int:
    return int(recorded("input_size"))


def test_python_m_lgrnet_runs_the_cli():
    r = subprocess.run([sys.executable, "-m", "lgrnet", "--help"], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0 and "usage: lgrnet" in r.stdout and "predict" in r.stdout, r.stderr
    r = subprocess.run([sys.executable, "-m", "lgrnet", "predict", "--help"], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0 and "-m lgrnet predict" in r.stdout


def test_demo_names_the_shipped_model_everywhere(tmp_path, monkeypatch):
    assert shipped_weights().is_file()
    assert resolve_shipped(SHIPPED_NAME) == str(shipped_weights())
    parser = build_parser()
    for argv in (["predict", "x.mp4", "--weights", "demo", "--out", "o"],
                 ["evaluate", "--weights", "demo", "--data", "d", "--out", "o"],
                 ["export", "--weights", "demo", "--frames", "2", "o.onnx"],
                 ["view", "r", "--weights", "demo"]):
        assert parser.parse_args(argv).weights == str(shipped_weights()), argv
    assert parser.parse_args(["train", "--init", "demo", "--out", "o"]).init == str(shipped_weights())
    from lgrnet import LGRNet, VideoPredictor

    assert LGRNet.from_pretrained("demo").config.preset == json.loads(recorded("lgrnet_config"))["preset"]
    assert VideoPredictor.from_pretrained("demo", device="cpu").size == (recorded_size(), recorded_size())
    monkeypatch.chdir(tmp_path)
    (tmp_path / "demo").mkdir()  # a folder of the user's called demo wins over the name
    assert resolve_shipped("demo") == "demo"
    assert build_parser().parse_args(["predict", "x", "--weights", "demo", "--out", "o"]).weights == "demo"


def test_init_with_another_presets_recipe():
    from lgrnet.config import get_preset
    from lgrnet.training.finetune import finetune_schedule, init_config

    cfg, size = init_config(str(shipped_weights()), "cvc_pvt", [])
    assert cfg.model.preset == json.loads(recorded("lgrnet_config"))["preset"] and size == recorded_size()  # the file's architecture and size
    want = finetune_schedule(get_preset("cvc_pvt").train, size)  # the other preset's recipe
    assert cfg.train == want and want != finetune_schedule(get_preset("tiny").train, size)


def test_export_size_defaults_to_the_recorded_one(tmp_path, monkeypatch):
    pytest.importorskip("onnxscript")
    from lgrnet.export import onnx

    class Stop(Exception):
        pass

    def fake_export(model, path, frames, size, **kw):
        raise Stop(size)

    monkeypatch.setattr(onnx, "export_onnx", fake_export)
    with pytest.raises(Stop) as got:
        main(["export", "--weights", "demo", "--frames", "2", str(tmp_path / "m.onnx")])
    assert got.value.args[0] == recorded_size() != 352
    with pytest.raises(Stop) as got:
        main(["export", "--weights", "demo", "--frames", "2", "--size", "64", str(tmp_path / "m.onnx")])
    assert got.value.args[0] == 64


def test_view_help_mentions_corrections(capsys):
    with pytest.raises(SystemExit):
        main(["view", "--help"])
    assert "corrections/" in capsys.readouterr().out


def test_info_lists_dicom_decoders_and_pycocotools():
    from lgrnet.commands.info import OPTIONAL_PACKAGES

    for name in ("pillow", "pylibjpeg", "pylibjpeg-libjpeg", "pylibjpeg-openjpeg", "pylibjpeg-rle", "pycocotools"):
        assert name in OPTIONAL_PACKAGES, name


def test_annotation_doc_commands_pass_no_size_and_no_asset_path():
    text = (REPO / "docs" / "annotation.md").read_text()
    commands = [line for line in text.splitlines() if line.lstrip().startswith(("lgrnet ", "--", "    --"))]
    assert commands
    for line in commands:
        assert not re.search(r"--size\b", line) and "src/lgrnet/assets" not in line, line
    assert "--weights demo" in text
