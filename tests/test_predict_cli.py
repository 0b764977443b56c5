"""`lgrnet predict` end to end: a real colonoscopy video turned into mp4 and its frame folder,
several inputs per call, bad inputs (message, exit status, nothing left behind), overwrite, all
queries and windows."""
import csv
import json
import re

import av
import numpy as np
import pytest
import torch
from PIL import Image

from lgrnet import LGRNet, VideoPredictor
from lgrnet.cli import main
from lgrnet.io.images import natural_sorted
from tests.helpers.media import encode_video

SIZE = "64"
FRAME_KEYS = {"index", "name", "file", "score", "class_score", "mask_score", "clip_mask_score", "area", "bbox", "query",
              "time"}


@pytest.fixture(scope="module")
def weights(tmp_path_factory):
    torch.manual_seed(0)
    return LGRNet.from_preset("tiny").save_pretrained(str(tmp_path_factory.mktemp("w") / "tiny.safetensors"))


@pytest.fixture(scope="module")
def real_folder(shared_path):
    folder = shared_path("data/CVC-ClinicDB-612/Test/Frame/16")
    return folder


@pytest.fixture(scope="module")
def real_mp4(real_folder, tmp_path_factory):
    frames = [np.asarray(Image.open(real_folder / n).convert("RGB")) for n in natural_sorted(p.name for p in real_folder.iterdir())]
    return encode_video(tmp_path_factory.mktemp("v") / "clip16.mp4", frames, fps=25)


def predict(*args):
    return main(["predict", *map(str, args), "--size", SIZE, "--no-progress"])


def check_result(res, T, H, W, kind, fps):
    masks = [res / "masks" / n for n in natural_sorted([p.name for p in (res / "masks").iterdir()])]
    probs = [res / "probs" / n for n in natural_sorted([p.name for p in (res / "probs").iterdir()])]
    info = json.loads((res / "predictions.json").read_text())
    # frame folders: outputs named after the frames (predict -> score matches them); videos: by index
    expected = ([f["name"].rsplit(".", 1)[0] + ".png" for f in info["frames"]] if kind == "frames"
                else [f"{i:06d}.png" for i in range(T)])
    assert [m.name for m in masks] == expected == [p.name for p in probs] == [f["file"] for f in info["frames"]]
    for m in masks[:: max(1, T // 4)]:
        a = np.asarray(Image.open(m))
        assert a.shape == (H, W) and a.dtype == np.uint8 and set(np.unique(a)) <= {0, 255}
    assert np.asarray(Image.open(probs[-1])).shape == (H, W)
    info = json.loads((res / "predictions.json").read_text())
    assert info["kind"] == kind and info["num_frames"] == T and (info["height"], info["width"]) == (H, W)
    assert info["fps"] == pytest.approx(fps)
    assert {"weights", "preset", "size", "window", "overlap", "device", "dtype", "lgrnet_version", "mode"} <= set(info["settings"])
    assert [f["index"] for f in info["frames"]] == list(range(T))
    assert all(set(f) == FRAME_KEYS for f in info["frames"])
    for f in info["frames"]:
        assert f["score"] == pytest.approx(f["class_score"] * f["mask_score"] * f["clip_mask_score"], abs=2e-6)
    assert len({f["clip_mask_score"] for f in info["frames"]}) == 1  # one clip
    with open(res / "predictions.csv") as fh:
        rows = list(csv.DictReader(fh))
    assert [int(r["index"]) for r in rows] == list(range(T))
    assert [r["name"] for r in rows] == [f["name"] for f in info["frames"]]
    assert [float(r["score"]) for r in rows] == [f["score"] for f in info["frames"]]
    with av.open(str(res / "overlay.mp4")) as c:
        n = sum(1 for _ in c.decode(video=0))
        assert float(c.streams.video[0].average_rate) == pytest.approx(fps)
    assert n == T
    return info


def test_real_video_and_frame_folder(tmp_path, weights, real_mp4, real_folder, capsys):
    out = tmp_path / "out"
    assert predict(real_mp4, real_folder, "--weights", weights, "--out", out) == 0
    T = len(list(real_folder.iterdir()))
    info = check_result(out / "clip16", T, 288, 384, "video", 25.0)
    assert info["input"] == str(real_mp4.resolve()) and info["settings"]["mode"] == "whole-clip"
    folder_info = check_result(out / "16", T, 288, 384, "frames", 25.0)
    assert [f["name"] for f in folder_info["frames"]] == natural_sorted(p.name for p in real_folder.iterdir())
    # no temporary folders left; several inputs: the run's index and state beside the results
    assert sorted(p.name for p in out.iterdir()) == [".lgrnet-run", "16", "clip16", "index.csv", "index.json"]
    # the files hold exactly what the Python API returns for the same input
    ref = VideoPredictor.from_pretrained(weights, size=int(SIZE)).predict(real_folder)
    for i in (0, T // 2, T - 1):
        file = folder_info["frames"][i]["file"]
        assert np.array_equal(np.asarray(Image.open(out / "16" / "masks" / file)), ref.masks[i] * np.uint8(255))
        assert np.array_equal(np.asarray(Image.open(out / "16" / "probs" / file)),
                              np.rint(ref.probs[i].astype(np.float64) * 255).astype(np.uint8))
        assert folder_info["frames"][i]["score"] == pytest.approx(float(ref.score[i]), abs=1e-6)
    assert "clip16: 21 frames, one clip" in capsys.readouterr().out


def test_windows_and_all_queries(tmp_path, weights, real_mp4):
    out = tmp_path / "out"
    assert predict(real_mp4, "--weights", weights, "--out", out, "--window", "8", "--overlap", "2", "--all-queries",
                   "--no-overlay") == 0
    res = out / "clip16"
    info = json.loads((res / "predictions.json").read_text())
    s = info["settings"]
    # windows [0, 8), [6, 14), [12, 20), then the last one shifted back to [13, 21)
    assert s["mode"] == "windowed" and s["window"] == 8 and s["overlap"] == 2 and s["num_windows"] == 4
    assert s["cuda_graphs"] is False and s["compile"] is False and s["cuda_graph_windows"] == 0
    assert not (res / "overlay.mp4").exists()
    nq = LGRNet.from_pretrained(weights).num_queries
    assert sorted(p.name for p in (res / "queries").iterdir()) == [f"q{q:02d}" for q in range(nq)]
    assert len(list((res / "queries" / "q00").iterdir())) == 21
    f0 = info["frames"][0]
    assert [q["query"] for q in f0["queries"]] == list(range(nq))
    chosen = f0["queries"][f0["query"]]
    assert chosen["class_score"] == f0["class_score"] and chosen["area"] == f0["area"]
    assert chosen["clip_mask_score"] == pytest.approx(f0["clip_mask_score"], abs=2e-6)
    assert chosen["score"] == pytest.approx(f0["score"], abs=2e-6)
    with open(res / "queries.csv") as fh:
        assert len(list(csv.DictReader(fh))) == 21 * nq
    assert np.array_equal(np.asarray(Image.open(res / "queries" / f"q{f0['query']:02d}" / "000000.png")),
                          np.asarray(Image.open(res / "probs" / "000000.png")))


def test_existing_result_is_not_overwritten(tmp_path, weights, real_mp4, capsys):
    out = tmp_path / "out"
    assert predict(real_mp4, "--weights", weights, "--out", out, "--window", "6") == 0
    before = (out / "clip16" / "predictions.json").read_text()
    capsys.readouterr()
    assert predict(real_mp4, "--weights", weights, "--out", out) == 0  # complete: skipped, as a rerun of a killed run
    assert "clip16: already complete; skipped (--overwrite redoes it)" in capsys.readouterr().out
    assert (out / "clip16" / "predictions.json").read_text() == before
    assert predict(real_mp4, "--weights", weights, "--out", out, "--overwrite") == 0
    assert json.loads((out / "clip16" / "predictions.json").read_text())["settings"]["mode"] == "whole-clip"
    assert sorted(p.name for p in out.iterdir()) == ["clip16"]


# ------------------------------------------------------------------------------ bad inputs


def _frames_folder(path, frames):
    path.mkdir()
    for i, f in enumerate(frames):
        Image.fromarray(f).save(path / f"{i}.png")
    return path


def make_bad(kind, tmp):
    """(input path, expected message fragment) for each bad input the issue lists."""
    rgb = np.zeros((24, 32, 3), np.uint8)
    if kind == "missing":
        return tmp / "nowhere.mp4", "nowhere.mp4: no such file or folder"
    if kind == "unreadable":
        p = tmp / "garbage.avi"
        p.write_bytes(b"RIFF" + bytes(range(256)) * 20)
        return p, "garbage.avi: cannot open as a video"
    if kind == "truncated":  # opens, fails while streaming: results were already being written
        frames = [np.random.default_rng(i).integers(0, 256, (64, 64, 3), dtype=np.uint8) for i in range(24)]
        p = encode_video(tmp / "cut.mp4", frames, faststart=True)
        p.write_bytes(p.read_bytes()[: p.stat().st_size * 2 // 3])
        return p, "cut.mp4: truncated: decoded"
    if kind == "zero_frames":
        (tmp / "empty").mkdir()
        return tmp / "empty", "empty: the folder has no frames"
    if kind == "varying_size":
        return _frames_folder(tmp / "mixed", [rgb, rgb, np.zeros((24, 30, 3), np.uint8)]), "mixed: frames have different sizes"
    if kind == "16bit":
        p = _frames_folder(tmp / "deep", [rgb])
        Image.fromarray(np.zeros((24, 32), np.uint16)).save(p / "1.png")
        return p, "1.png: 16-bit frames are not supported"
    if kind == "rgba":
        return _frames_folder(tmp / "alpha", [np.zeros((24, 32, 4), np.uint8)]), "0.png: RGBA (alpha channel) frames are not supported"
    if kind == "file_for_folder":
        p = _frames_folder(tmp / "frames", [rgb])
        return p / "0.png", "0.png: is a single image file; pass the folder that holds the frames"
    raise ValueError(kind)


BAD = ["missing", "unreadable", "truncated", "zero_frames", "varying_size", "16bit", "rgba", "file_for_folder"]


@pytest.mark.parametrize("kind", BAD)
def test_bad_input(tmp_path, weights, kind, capsys):
    bad, message = make_bad(kind, tmp_path)
    out = tmp_path / "out"
    # small windows: a truncated video fails after some results were written
    assert predict(bad, "--weights", weights, "--out", out, "--window", "4") == 2
    err = capsys.readouterr().err
    assert f"lgrnet predict: error: {bad}" in err and message in err, err
    assert "Traceback" not in err
    if kind == "truncated":  # enough frames decoded for the first windows to have been written
        assert int(re.search(r"decoded (\d+) of", err).group(1)) > 4
    assert len([line for line in err.splitlines() if "error:" in line]) == 1
    assert not out.exists() or list(out.iterdir()) == []  # nothing half-written


def test_bad_inputs_do_not_stop_the_others(tmp_path, weights, real_mp4, capsys):
    (tmp_path / "bad").mkdir()
    bads = [make_bad(k, tmp_path / "bad") for k in ("missing", "truncated", "rgba")]
    out = tmp_path / "out"
    out.mkdir()
    rc = predict(bads[0][0], real_mp4, bads[1][0], bads[2][0], "--weights", weights, "--out", out)
    err = capsys.readouterr().err
    assert rc == 2 and "3 of 4 inputs failed" in err
    for _, message in bads:
        assert message in err
    assert sorted(p.name for p in out.iterdir()) == [".lgrnet-run", "clip16", "index.csv", "index.json"]
    assert len(list((out / "clip16" / "masks").iterdir())) == 21
    index = json.loads((out / "index.json").read_text())
    assert index["counts"] == {"done": 1, "error": 3, "missing": 0}
    for row, (_, message) in zip([r for r in index["inputs"] if r["status"] == "error"], bads):
        assert message in row["error"]


def test_out_is_a_file_and_bad_weights(tmp_path, weights, real_mp4, capsys):
    f = tmp_path / "results.txt"
    f.write_text("x")
    assert predict(real_mp4, "--weights", weights, "--out", f) == 2
    assert "results.txt: is a file, not a folder for the results" in capsys.readouterr().err
    assert predict(real_mp4, "--weights", tmp_path / "none.safetensors", "--out", tmp_path / "o") == 2
    assert "none.safetensors: no such weight file" in capsys.readouterr().err
    assert not (tmp_path / "o").exists()


def test_pth_weights_need_a_preset(tmp_path, weights, real_mp4, capsys):
    pth = tmp_path / "tiny.pth"
    torch.save(LGRNet.from_pretrained(weights).state_dict(), pth)
    assert predict(real_mp4, "--weights", pth, "--out", tmp_path / "o", "--window", "21") == 2
    assert "tiny.pth: a PyTorch state dict without a config; pass --preset NAME" in capsys.readouterr().err
    assert predict(real_mp4, "--weights", pth, "--preset", "tiny", "--out", tmp_path / "o") == 0
    info = json.loads((tmp_path / "o" / "clip16" / "predictions.json").read_text())
    assert info["settings"]["preset"] == "tiny" and info["settings"]["weights"] == str(pth)


def test_cuda_graphs_need_cuda_and_compile_is_recorded(tmp_path, weights, real_mp4, capsys):
    if torch.cuda.is_available():
        pytest.skip("checks the error on a machine without CUDA")
    assert predict(real_mp4, "--weights", weights, "--out", tmp_path / "o", "--device", "cpu", "--cuda-graphs") == 2
    assert "CUDA graphs need the model on a CUDA device; it is on cpu" in capsys.readouterr().err
    assert not (tmp_path / "o").exists()
    # a whole-clip video runs eagerly even with --compile (nothing to compile for one forward)
    assert predict(real_mp4, "--weights", weights, "--out", tmp_path / "o", "--compile", "--no-overlay") == 0
    s = json.loads((tmp_path / "o" / "clip16" / "predictions.json").read_text())["settings"]
    assert s["compile"] is True and s["mode"] == "whole-clip"
