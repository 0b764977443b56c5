"""`lgrnet info`: the op implementations it reports are the dispatcher's choices (and follow
LGRNET_OPS), versions and devices are listed."""
import json

import torch

from lgrnet.cli import main
from lgrnet.ops import implementations, native
from lgrnet.ops.dispatch import _REGISTRY


def info_json(capsys):
    assert main(["info", "--json"]) == 0
    return json.loads(capsys.readouterr().out)


def test_reports_the_dispatchers_choices(capsys, monkeypatch):
    monkeypatch.delenv("LGRNET_OPS", raising=False)
    info = info_json(capsys)
    cpu = info["ops"]["cpu float32"]
    assert set(cpu) == set(_REGISTRY)  # every op the dispatcher knows, a new one included
    assert all(impl in implementations(op) for op, impl in cpu.items())
    # The fused C kernel wins where it compiles (ops/native.py); the shifted PyTorch path otherwise.
    window = "native" if native.available() else "shifted"
    assert cpu["selective_scan"] == "chunked" and cpu["neighborhood_attention"] == window
    assert info["torch"] == torch.__version__ and info["lgrnet"]
    assert (len(info["cuda_devices"]) > 0) == torch.cuda.is_available()
    assert ("cuda bfloat16" in info["ops"]) == torch.cuda.is_available()

    monkeypatch.setenv("LGRNET_OPS", "reference")
    forced = info_json(capsys)
    assert set(forced["ops"]["cpu float32"].values()) == {"reference"}
    monkeypatch.setenv("LGRNET_OPS", "auto")
    monkeypatch.setenv("LGRNET_OPS_SELECTIVE_SCAN", "reference")
    one = info_json(capsys)["ops"]["cpu float32"]
    assert one["selective_scan"] == "reference" and one["neighborhood_attention"] == window


def test_table(capsys):
    assert main(["info"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("lgrnet ") and "op implementations (inference):" in out and "selective_scan" in out
