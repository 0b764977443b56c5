"""ONNX export of the tiny model through `lgrnet export`, run in onnxruntime, against PyTorch."""
import numpy as np
import pytest
import torch

pytest.importorskip("onnxscript")
ort = pytest.importorskip("onnxruntime")

from lgrnet import LGRNet  # noqa: E402
from lgrnet.cli import main  # noqa: E402

T, S = 2, 64


@pytest.mark.slow
@pytest.mark.timeout(1800)  # exporting takes minutes on a busy 2-core CPU (torch.export + onnxscript's optimiser)
def test_export_tiny_matches_pytorch(tmp_path, capsys):
    torch.manual_seed(0)
    model = LGRNet.from_preset("tiny").eval()
    weights = model.save_pretrained(str(tmp_path / "tiny.safetensors"))
    out = tmp_path / "tiny.onnx"
    assert main(["export", "--format", "onnx", "--frames", str(T), "--size", str(S), "--weights", weights, str(out)]) == 0
    printed = capsys.readouterr().out
    assert f"T={T}, {S}x{S}" in printed and "onnxruntime vs PyTorch" in printed

    session = ort.InferenceSession(str(out), providers=["CPUExecutionProvider"])
    assert [i.name for i in session.get_inputs()] == ["video"]
    assert session.get_inputs()[0].shape == [1, T, 3, S, S]
    meta = session.get_modelmeta().custom_metadata_map
    assert meta["preset"] == "tiny" and meta["frames"] == str(T) and meta["size"] == str(S)
    video = torch.rand(1, T, 3, S, S, generator=torch.Generator().manual_seed(7))  # not the clip of the check
    mask_logits, class_logits = session.run(["mask_logits", "class_logits"], {"video": video.numpy()})
    with torch.no_grad():
        ref = model(video)
    assert mask_logits.shape == tuple(ref.mask_logits.shape) and class_logits.shape == tuple(ref.class_logits.shape)
    # float32 both; the file runs the backbone on all frames at once, eager PyTorch one frame at a time
    assert np.abs(mask_logits - ref.mask_logits.numpy()).max() < 1e-4
    assert np.abs(class_logits - ref.class_logits.numpy()).max() < 1e-5
    sure = np.abs(ref.mask_logits.numpy()) > 1e-3
    assert np.array_equal((mask_logits > 0)[sure], (ref.mask_logits.numpy() > 0)[sure])

    assert main(["export", "--frames", str(T), "--size", str(S), "--weights", weights, str(out)]) == 2  # no overwrite
    assert "exists; pass --force" in capsys.readouterr().err


def test_export_refuses_bad_shapes(tmp_path, capsys):
    assert main(["export", "--frames", "4", "--size", "100", "--weights", "x.safetensors", str(tmp_path / "a.onnx")]) == 2
    assert "--size 100: must be a positive multiple of 32" in capsys.readouterr().err
    assert main(["export", "--frames", "0", "--size", "64", "--weights", "x.safetensors", str(tmp_path / "a.onnx")]) == 2
    assert "--frames 0: a clip has at least one frame" in capsys.readouterr().err
    assert main(["export", "--frames", "2", "--size", "64", "--weights", "x.safetensors", str(tmp_path / "a.txt")]) == 2
    assert "a.txt: output must end with .onnx" in capsys.readouterr().err
