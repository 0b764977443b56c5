"""What users meet: the input size a model records is every command's default (issue: the demo
model ran at 352 instead of its recorded size), from_pretrained gives eval mode, unwritable outputs fail before
the model runs with one line, frame-folder outputs are named after the frames (predict -> score),
inputs sharing a stem get distinct folders, and one broken result does not stop `lgrnet view`."""
import errno
import json
import shutil

import numpy as np
import pytest
import torch
from PIL import Image

from lgrnet import LGRNet, VideoPredictor
from lgrnet.cli import main
from lgrnet.commands.demo import demo_clip, demo_weights
from lgrnet.inference import clip_runner
from lgrnet.runs.predict_folder import result_names
from lgrnet.results.folder import find_results
from tests.helpers.media import encode_video


def demo_recorded_size() -> int:
    """The input size the shipped weights record (written by scripts/export_demo_weights.py), read with
    safetensors itself rather than through the code under test; not the published 352."""
    from safetensors import safe_open

    with safe_open(str(demo_weights()), framework="pt") as f:
        size = int(f.metadata()["input_size"])
    assert size != 352
    return size


def few_frames(src, dst, n=3):
    dst.mkdir(parents=True)
    for p in sorted(src.iterdir(), key=lambda p: int(p.stem))[:n]:
        shutil.copy(p, dst / p.name)
    return dst


@pytest.fixture(scope="module")
def clip3(tmp_path_factory):
    """Three frames of the demo clip (a frame folder) and their masks."""
    root = tmp_path_factory.mktemp("clip")
    few_frames(demo_clip() / "frames", root / "frames")
    few_frames(demo_clip() / "masks", root / "masks")
    return root


def test_predict_runs_the_demo_model_at_its_recorded_size(tmp_path, clip3, capsys):
    out = tmp_path / "out"
    assert main(["predict", str(clip3 / "frames"), "--weights", str(demo_weights()), "--out", str(out),
                 "--no-progress", "--no-overlay"]) == 0
    info = json.loads((out / "frames" / "predictions.json").read_text())
    size = demo_recorded_size()
    assert info["settings"]["size"] == [size, size]
    assert VideoPredictor.from_pretrained(demo_weights(), device="cpu").size == (size, size)
    other = size + 32
    assert VideoPredictor.from_pretrained(demo_weights(), device="cpu", size=other).size == (other, other)  # --size wins


def test_a_recorded_confidence_threshold_reaches_predictions_json(tmp_path, clip3):
    """The threshold the weights record (export_demo_weights.py --confidence) is what predictions.json's
    settings carry to the review page; weights without one (or with a value outside (0, 1)) give None."""
    torch.manual_seed(0)
    model = LGRNet.from_preset("tiny")
    plain = model.save_pretrained(str(tmp_path / "plain.safetensors"), metadata={"input_size": "64"})
    calibrated = model.save_pretrained(str(tmp_path / "cal.safetensors"), metadata={"input_size": "64", "confidence_threshold": "0.62"})
    odd = model.save_pretrained(str(tmp_path / "odd.safetensors"), metadata={"confidence_threshold": "1.5"})
    assert VideoPredictor.from_pretrained(plain, device="cpu").confidence_threshold is None
    assert VideoPredictor.from_pretrained(odd, device="cpu").confidence_threshold is None
    assert VideoPredictor.from_pretrained(calibrated, device="cpu").confidence_threshold == pytest.approx(0.62)
    out = tmp_path / "out"
    assert main(["predict", str(clip3 / "frames"), "--weights", str(calibrated), "--out", str(out),
                 "--no-progress", "--no-overlay"]) == 0
    settings = json.loads((out / "frames" / "predictions.json").read_text())["settings"]
    assert settings["confidence_threshold"] == pytest.approx(0.62) and settings["size"] == [64, 64]


def test_viewer_uploads_run_the_demo_model_at_its_recorded_size():
    from lgrnet.viewer.uploads import make_model_runner

    size = demo_recorded_size()
    assert make_model_runner(demo_weights(), device="cpu").predictor.size == (size, size)


def test_evaluate_runs_the_demo_model_at_its_recorded_size(tmp_path, shared_dir):
    split = shared_dir / "data" / "CVC-ClinicDB-612" / "Test"
    data = tmp_path / "data" / "S"
    few_frames(split / "Frame" / "6", data / "Frame" / "6")
    few_frames(split / "GT" / "6", data / "GT" / "6")
    out = tmp_path / "eval"
    assert main(["evaluate", "--weights", str(demo_weights()), "--data", str(tmp_path / "data"), "--split", "S",
                 "--out", str(out), "--device", "cpu", "--quiet"]) == 0
    assert json.loads((out / "config.json").read_text())["size"] == demo_recorded_size()


def test_from_pretrained_is_eval_mode(tmp_path):
    torch.manual_seed(0)
    path = LGRNet.from_preset("sunseg_res2net").save_pretrained(str(tmp_path / "r2n.safetensors"))
    model = LGRNet.from_pretrained(path)
    assert not model.training and not any(m.training for m in model.modules())
    bn = [m for m in model.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    before = [(m.running_mean.clone(), m.running_var.clone()) for m in bn]
    x = torch.rand(1, 2, 3, 64, 64)
    with torch.no_grad():
        got = model(x).mask_logits
        ref = LGRNet.from_pretrained(path).eval()(x).mask_logits
    torch.testing.assert_close(got, ref, rtol=0, atol=1e-5)
    assert all(torch.equal(m.running_mean, a) and torch.equal(m.running_var, b) for m, (a, b) in zip(bn, before))


def _no_forward(monkeypatch):
    def refuse(*a, **k):
        raise AssertionError("the model ran before the output was checked")

    monkeypatch.setattr(clip_runner.ClipRunner, "__call__", refuse)


def test_unwritable_output_fails_before_the_model_runs(tmp_path, clip3, capsys, monkeypatch):
    # a read-only folder, for every writing command: tests/test_readonly_outputs.py (runs as root too)
    out = "/proc/lgrnet-results"
    _no_forward(monkeypatch)
    code = main(["predict", str(clip3 / "frames"), "--weights", str(demo_weights()), "--out", out, "--no-progress"])
    err = capsys.readouterr().err
    assert code == 2 and "Traceback" not in err and len(err.strip().splitlines()) == 1, err
    assert f"{out}: cannot write the results" in err and ".lgrnet-write-check" not in err, err


def test_read_only_output_simulated(tmp_path, clip3, capsys, monkeypatch):
    from lgrnet.results import folder as results

    def read_only(folder):
        raise OSError(errno.EROFS, "Read-only file system", str(tmp_path))

    monkeypatch.setattr(results, "probe_writable", read_only)
    _no_forward(monkeypatch)
    code = main(["predict", str(clip3 / "frames"), "--weights", str(demo_weights()), "--out", str(tmp_path / "o"),
                 "--no-progress"])
    err = capsys.readouterr().err
    assert code == 2 and "Traceback" not in err and "Read-only file system" in err, err
    assert f"{tmp_path / 'o'}: cannot write the results" in err, err


def test_full_disk_while_writing_is_one_line_and_leaves_nothing(tmp_path, clip3, capsys, monkeypatch):
    from lgrnet.results import folder as results

    def full(path, mask):
        raise OSError(errno.ENOSPC, "No space left on device", str(path))

    monkeypatch.setattr(results, "write_mask_png", full)
    out = tmp_path / "o"
    code = main(["predict", str(clip3 / "frames"), "--weights", str(demo_weights()), "--out", str(out),
                 "--no-progress", "--no-overlay"])
    err = capsys.readouterr().err
    assert code == 2 and "Traceback" not in err and "unexpected" not in err, err
    assert "No space left on device" in err and "masks" in err
    assert not out.exists() or list(out.iterdir()) == []


def test_frame_folder_outputs_are_named_after_the_frames_so_score_matches(tmp_path, shared_dir, capsys):
    split = shared_dir / "data" / "CVC-ClinicDB-612" / "Test"
    frames = few_frames(split / "Frame" / "6", tmp_path / "in" / "6")
    gt = few_frames(split / "GT" / "6", tmp_path / "gt" / "6")
    out = tmp_path / "out"
    assert main(["predict", str(frames), "--weights", str(demo_weights()), "--out", str(out), "--no-progress",
                 "--no-overlay"]) == 0
    assert sorted(p.name for p in (out / "6" / "masks").iterdir()) == sorted(p.stem + ".png" for p in frames.iterdir())
    capsys.readouterr()
    assert main(["score", str(out / "6" / "masks"), str(gt), "--protocol", "authors", "--quiet",
                 "--json", str(tmp_path / "s.json")]) == 0, capsys.readouterr().err
    assert "missing" not in capsys.readouterr().err
    assert json.loads((tmp_path / "s.json").read_text())["frames"] == 3


def test_inputs_sharing_a_stem_get_distinct_folders(tmp_path, clip3):
    assert result_names(["a/exam.mp4", "b/exam.dcm", "c/other.mp4"]) == ["exam.mp4", "exam.dcm", "other"]
    assert result_names(["a/exam.mp4", "b/exam.mp4"]) == ["exam.mp4", "exam.mp4-2"]
    frames = [np.asarray(Image.open(p).convert("RGB")) for p in sorted((clip3 / "frames").iterdir())]
    video = encode_video(tmp_path / "exam.mp4", frames, fps=25)
    folder = tmp_path / "x" / "exam"
    shutil.copytree(clip3 / "frames", folder)
    out = tmp_path / "out"
    assert main(["predict", str(video), str(folder), "--weights", str(demo_weights()), "--out", str(out),
                 "--no-progress", "--no-overlay", "--size", "64"]) == 0
    assert sorted(p.name for p in out.iterdir()) == [".lgrnet-run", "exam", "exam.mp4", "index.csv", "index.json"]


def test_one_broken_result_does_not_hide_the_others(tmp_path, clip3):
    out = tmp_path / "runs"
    assert main(["predict", str(clip3 / "frames"), "--weights", str(demo_weights()), "--out", str(out / "a"),
                 "--no-progress", "--no-overlay", "--size", "64"]) == 0
    shutil.copytree(out / "a" / "frames", out / "b" / "frames")
    (out / "b" / "frames" / "predictions.json").write_text('{"num_frames": 3, "frames": [')  # truncated
    broken = []
    results = find_results(out, broken=broken)
    assert [r.name for r in results] == ["a/frames"]
    assert [name for name, _ in broken] == ["b/frames"] and "predictions.json: cannot read" in broken[0][1]
    with pytest.raises(Exception, match="cannot read"):
        find_results(out)  # without a list to report into, the problem is raised
