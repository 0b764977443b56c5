"""Precision choice (lgrnet.precision): auto picks bf16 on CUDA and on CPUs with native bfloat16,
fp32 elsewhere (the CPU's capability is faked here); asking for bf16 on a CPU without it is one
clear error (exit status 2 on the command line); `lgrnet info` shows the choice; `lgrnet train
--precision` reaches the trainer's autocast dtype."""
from __future__ import annotations

import json

import pytest
import torch

from lgrnet import precision as prec
from lgrnet.cli import main
from lgrnet.training.trainer import training_autocast_dtype


@pytest.fixture
def fake_cpu(monkeypatch):
    """fake_cpu(flags, onednn=True): pretend the CPU reports ``flags`` and oneDNN has bf16 or not."""
    def fake(flags, onednn=True):
        monkeypatch.setattr(prec, "cpu_flags", lambda: frozenset(flags))
        monkeypatch.setattr(prec, "_onednn_bf16", lambda: onednn)
        monkeypatch.setattr(prec.platform, "system", lambda: "Linux")
    return fake


def test_auto_follows_the_cpu_capability(fake_cpu):
    fake_cpu({"avx2", "avx512f", "avx512_bf16"})
    p = prec.resolve_precision("auto", "cpu")
    assert p.name == "bf16" and p.dtype == torch.bfloat16 and "avx512_bf16" in p.reason
    fake_cpu({"amx_bf16", "amx_tile"})
    assert prec.resolve_precision("auto", torch.device("cpu")).is_bf16
    fake_cpu({"avx2", "avx512f", "avx512_vnni"})  # AVX-512 without BF16 (e.g. Skylake, Zen 3)
    p = prec.resolve_precision("auto", "cpu")
    assert p.name == "fp32" and p.dtype == torch.float32 and "no native bfloat16" in p.reason
    fake_cpu({"avx512_bf16"}, onednn=False)  # the CPU has it, this PyTorch's oneDNN does not
    assert prec.resolve_precision("auto", "cpu").name == "fp32"
    assert prec.resolve_precision("fp32", "cpu").name == "fp32"
    assert prec.resolve_precision("auto", "cuda").name == "bf16"  # no device needed to decide
    assert prec.resolve_precision("fp32", "cuda").name == "fp32"


def test_bf16_on_a_cpu_without_it_is_a_clear_error(fake_cpu):
    fake_cpu({"avx2"})
    with pytest.raises(prec.PrecisionError, match="no native bfloat16.*--precision fp32"):
        prec.resolve_precision("bf16", "cpu")
    with pytest.raises(prec.PrecisionError):
        training_autocast_dtype("bf16", torch.device("cpu"), amp=True)
    with pytest.raises(prec.UserError, match="choose one of auto, fp32, bf16"):
        prec.resolve_precision("fp16", "cpu")


def test_train_exits_2_with_one_line(fake_cpu, tmp_path, capsys):
    fake_cpu({"avx2"})
    rc = main(["train", "--preset", "tiny", "--data", str(tmp_path), "--out", str(tmp_path / "run"),
               "--device", "cpu", "--precision", "bf16", "--progress", "off", "--no-tensorboard"])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2 and len(err) == 1 and "no native bfloat16" in err[0], err


def test_training_autocast_dtype(fake_cpu):
    cpu = torch.device("cpu")
    fake_cpu({"avx512_bf16"})
    assert training_autocast_dtype("bf16", cpu, amp=True) == torch.bfloat16
    assert training_autocast_dtype("auto", cpu, amp=True) is None  # CPU training stays float32 unless asked
    assert training_autocast_dtype("fp32", cpu, amp=True) is None
    assert training_autocast_dtype("fp32", torch.device("cuda"), amp=True) is None


def test_info_shows_the_choice(fake_cpu, capsys):
    fake_cpu({"avx512_bf16"})
    assert main(["info", "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["precision"]["cpu"]["precision"] == "bf16"
    assert "cpu bfloat16" in info["ops"]
    fake_cpu({"avx2"})
    assert main(["info"]) == 0
    out = capsys.readouterr().out
    assert "precision auto on cpu: fp32 (this CPU has no native bfloat16" in out


def test_this_machine(capsys):
    """Whatever this CPU is, auto agrees with its flags (the machine this project measures on has
    avx512_bf16 and amx_bf16: bf16)."""
    native = bool(prec.NATIVE_BF16_FLAGS & prec.cpu_flags()) and prec._onednn_bf16()
    assert prec.resolve_precision("auto", "cpu").is_bf16 == native


def test_predict_bf16_without_native_support_exits_2_before_loading(fake_cpu, tmp_path, capsys):
    fake_cpu({"avx2"})
    rc = main(["predict", str(tmp_path), "--weights", str(tmp_path / "missing.safetensors"), "--out",
               str(tmp_path / "out"), "--device", "cpu", "--precision", "bf16", "--no-progress"])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2 and len(err) == 1 and "no native bfloat16" in err[0], err  # not the missing weights
