"""``lgrnet evaluate`` end to end with a tiny random-weight model on real videos (the first frames of
two CVC-ClinicDB test videos, copied to a temporary dataset to keep the CPU run short)."""
from __future__ import annotations

import csv
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from lgrnet.cli import main
from lgrnet.data.datasets import find_videos
from lgrnet.io.images import read_frame
from tests.helpers.reference import segment_clip
from lgrnet.models.lgrnet import LGRNet

REPO = Path(__file__).resolve().parents[1]
VIDEOS = ["16", "24"]
SPLIT = "CVC-ClinicDB-612/Test"
SIZE = 128
FRAMES = 6  # per video


@pytest.fixture(scope="module")
def data_subset(data_dir, tmp_path_factory):
    """<root>/CVC-ClinicDB-612/Test/{Frame,GT}/<video>/: the first FRAMES frames of each of VIDEOS."""
    root = tmp_path_factory.mktemp("data")
    for rec in find_videos(data_dir, SPLIT, require_masks=True):
        if rec.name not in VIDEOS:
            continue
        for frame, mask in list(zip(rec.frames, rec.masks))[:FRAMES]:
            for src, kind in ((frame, "Frame"), (mask, "GT")):
                dst = root / SPLIT / kind / rec.name / src.name
                dst.parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(src, dst)
    return root


@pytest.fixture(scope="module")
def tiny_weights(tmp_path_factory):
    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("weights") / "tiny.safetensors"
    LGRNet.from_preset("tiny").save_pretrained(str(path))
    return path


@pytest.fixture(scope="module")
def run_dir(tiny_weights, data_subset, tmp_path_factory):
    out = tmp_path_factory.mktemp("eval") / "run"
    rc = main(["evaluate", "--weights", str(tiny_weights), "--data", str(data_subset), "--split", SPLIT,
               "--videos", *VIDEOS, "--size", str(SIZE), "--out", str(out), "--quiet", "--device", "cpu"])
    assert rc == 0
    return out


def test_writes_prediction_folders(run_dir, data_subset):
    videos = {v.name: v for v in find_videos(data_subset, SPLIT) if v.name in VIDEOS}
    for kind in ("probs", "masks"):
        assert sorted(p.name for p in (run_dir / kind).iterdir()) == sorted(VIDEOS)
        for name, rec in videos.items():
            written = sorted(p.stem for p in (run_dir / kind / name).glob("*.png"))
            assert written == sorted(f.stem for f in rec.frames)
    mask = cv2.imread(str(run_dir / "masks" / "16" / f"{videos['16'].frames[0].stem}.png"), cv2.IMREAD_UNCHANGED)
    assert mask.dtype == np.uint8 and mask.ndim == 2 and mask.shape == (288, 384)
    assert set(np.unique(mask).tolist()) <= {0, 255}


def test_maps_are_the_models_output(run_dir, data_subset, tiny_weights):
    """The written maps equal segment_clip on the whole video, rounded to uint8."""
    rec = next(v for v in find_videos(data_subset, SPLIT) if v.name == "24")
    model = LGRNet.from_pretrained(str(tiny_weights)).eval()
    pred = segment_clip(model, np.stack([read_frame(f) for f in rec.frames]), SIZE)
    for k in (0, len(rec.frames) // 2, len(rec.frames) - 1):
        stem = rec.frames[k].stem
        prob = cv2.imread(str(run_dir / "probs" / "24" / f"{stem}.png"), cv2.IMREAD_GRAYSCALE)
        mask = cv2.imread(str(run_dir / "masks" / "24" / f"{stem}.png"), cv2.IMREAD_GRAYSCALE)
        assert np.abs(prob.astype(int) - np.round(pred.probs[k] * 255).astype(int)).max() <= 1
        assert np.array_equal(mask > 0, pred.masks[k])


def test_writes_both_tables_and_config(run_dir, tiny_weights, data_subset, tmp_path):
    sun = json.loads((run_dir / "sunseg.json").read_text())
    auth = json.loads((run_dir / "authors.json").read_text())
    assert sun["protocol"] == "sunseg" and len(sun["metrics"]) == 17 and sun["videos"] == 2
    assert sun["frames"] == 2 * (FRAMES - 2)  # first and last frame of each video dropped
    assert auth["protocol"] == "authors" and auth["frames"] == 2 * FRAMES and set(auth["metrics"]) == {"Dice", "IoU"}
    for name in ("sunseg.csv", "authors.csv"):
        rows = list(csv.DictReader((run_dir / name).open()))
        assert [r["video"] for r in rows] == VIDEOS + ["ALL"]
    cfg = json.loads((run_dir / "config.json").read_text())
    assert cfg["weights"] == str(tiny_weights) and cfg["size"] == SIZE and cfg["videos"] == VIDEOS
    assert cfg["model"]["d_model"] == LGRNet.from_preset("tiny").config.d_model
    assert cfg["layout"] == "frame-folders" and len(cfg["weights_sha256"]) == 64
    assert cfg["window"] is None and cfg["overlap"] is None  # default: whole video when it fits
    assert {v: r["mode"] for v, r in cfg["inference"].items()} == {v: "whole-clip" for v in VIDEOS}
    assert all(r["frames"] == FRAMES and r["window"] == FRAMES for r in cfg["inference"].values())
    # the tables are what `lgrnet score` gives on the written folders
    for protocol, folder in (("sunseg", "probs"), ("authors", "masks")):
        out = tmp_path / f"{protocol}.json"
        assert main(["score", str(run_dir / folder), str(data_subset / SPLIT / "GT"), "--protocol", protocol,
                     "--videos", *VIDEOS, "--json", str(out), "--quiet"]) == 0
        assert json.loads(out.read_text())["metrics"] == json.loads((run_dir / f"{protocol}.json").read_text())["metrics"]


def test_refuses_to_write_into_a_used_folder(run_dir, tiny_weights, data_subset, capsys):
    rc = main(["evaluate", "--weights", str(tiny_weights), "--data", str(data_subset), "--split", SPLIT,
               "--out", str(run_dir), "--quiet"])
    assert rc == 2 and "already holds files" in capsys.readouterr().err


def test_model_arguments(data_subset, tmp_path, capsys):
    base = ["evaluate", "--data", str(data_subset), "--split", SPLIT, "--out", str(tmp_path / "o"), "--quiet"]
    assert main(base + ["--preset", "tiny"]) == 2
    assert "--random-init" in capsys.readouterr().err
    assert main(base) == 2
    assert "--weights is required" in capsys.readouterr().err
    assert main(base + ["--weights", str(tmp_path / "nope.safetensors")]) == 2
    assert "nope.safetensors" in capsys.readouterr().err
    assert main(base + ["--preset", "tiny", "--random-init", "--size", "100"]) == 2
    assert "multiple of 32" in capsys.readouterr().err
    assert not (tmp_path / "o").exists()


def test_pth_with_preset_and_random_init(data_subset, tmp_path, tiny_weights):
    """A plain PyTorch state dict (.pth) loads with --preset; --random-init runs without weights."""
    torch.save(LGRNet.from_pretrained(str(tiny_weights)).state_dict(), tmp_path / "tiny.pth")
    common = ["--data", str(data_subset), "--split", "612-test", "--videos", "16", "--size", "64", "--quiet"]
    assert main(["evaluate", "--weights", str(tmp_path / "tiny.pth"), "--preset", "tiny",
                 "--out", str(tmp_path / "a")] + common) == 0
    assert main(["evaluate", "--preset", "tiny", "--random-init", "--out", str(tmp_path / "b")] + common) == 0
    cfg = json.loads((tmp_path / "b" / "config.json").read_text())
    assert cfg["random_init"] is True and cfg["weights"] is None
    assert json.loads((tmp_path / "a" / "authors.json").read_text())["frames"] == FRAMES


def test_windows_and_memory_budget(data_subset, tiny_weights, tmp_path, capsys):
    """--window/--overlap run long videos in windows (maps = the VideoPredictor's windowed output);
    a small --memory-budget picks the window itself; config.json says how each video ran."""
    from lgrnet.inference.memory import estimate_bytes_per_frame
    from lgrnet.inference.predictor import VideoPredictor

    rec = next(v for v in find_videos(data_subset, SPLIT) if v.name == "24")
    common = ["--weights", str(tiny_weights), "--data", str(data_subset), "--split", SPLIT, "--videos", "24",
              "--size", "64", "--quiet"]
    assert main(["evaluate", *common, "--window", "4", "--overlap", "2", "--out", str(tmp_path / "w")]) == 0
    assert "ran in overlapping windows" in capsys.readouterr().err
    run = json.loads((tmp_path / "w" / "config.json").read_text())["inference"]["24"]
    assert run == {"frames": FRAMES, "mode": "windowed", "window": 4, "overlap": 2, "num_windows": 2}
    model = LGRNet.from_pretrained(str(tiny_weights)).eval()
    ref = VideoPredictor(model, size=64, window=4, overlap=2).predict(np.stack([read_frame(f) for f in rec.frames]))
    assert ref.info["mode"] == "windowed"
    for k, f in enumerate(rec.frames):
        prob = cv2.imread(str(tmp_path / "w" / "probs" / "24" / f"{f.stem}.png"), cv2.IMREAD_GRAYSCALE)
        mask = cv2.imread(str(tmp_path / "w" / "masks" / "24" / f"{f.stem}.png"), cv2.IMREAD_GRAYSCALE)
        assert np.abs(prob.astype(int) - np.round(ref.probs[k] * 255).astype(int)).max() <= 1
        assert np.array_equal(mask > 0, ref.masks[k])

    bpf = estimate_bytes_per_frame(model, (64, 64), (288, 384))
    assert main(["evaluate", *common, "--memory-budget", str(5 * bpf), "--out", str(tmp_path / "b")]) == 0
    cfg = json.loads((tmp_path / "b" / "config.json").read_text())
    assert cfg["memory_budget"] == 5 * bpf
    assert cfg["inference"]["24"]["mode"] == "windowed" and cfg["inference"]["24"]["window"] == 5

    assert main(["evaluate", *common, "--window", "1", "--out", str(tmp_path / "x")]) == 2
    assert "window 1: must be at least 2 frames" in capsys.readouterr().err
    assert main(["evaluate", *common, "--memory-budget", "lots", "--out", str(tmp_path / "x")]) == 2
    assert "memory size 'lots'" in capsys.readouterr().err
    assert not (tmp_path / "x").exists()


def test_confidence_report_scores_the_written_masks(run_dir, data_subset):
    """confidence.json: one row per annotated frame, its Dice that of the written mask against the
    ground truth, the AUROC and reliability table those rows give."""
    from lgrnet.io.images import read_mask
    from lgrnet.metrics.reliability import failure_auroc, flag_threshold, frame_dice, reliability_table

    conf = json.loads((run_dir / "confidence.json").read_text())
    frames = conf["frames"]
    assert len(frames) == conf["frames_scored"] == 2 * FRAMES and {f["video"] for f in frames} == set(VIDEOS)
    gts = {(v.name, f.stem): m for v in find_videos(data_subset, SPLIT) for f, m in zip(v.frames, v.masks)}
    for f in frames[::3]:
        mask = cv2.imread(str(run_dir / "masks" / f["video"] / f"{f['frame']}.png"), cv2.IMREAD_GRAYSCALE) > 0
        assert f["dice"] == pytest.approx(frame_dice(mask, read_mask(gts[(f["video"], f["frame"])])), abs=1e-6)
    scores, dice = [f["score"] for f in frames], [f["dice"] for f in frames]
    auc = failure_auroc(scores, dice)
    assert conf["auroc"] is None if np.isnan(auc) else conf["auroc"] == pytest.approx(auc, abs=1e-4)
    assert conf["failed"] == sum(d < 0.5 for d in dice)
    assert conf["reliability"] == reliability_table(scores, dice)
    assert conf["flag_threshold"] == flag_threshold(scores, dice)


# Fields of the output files that legitimately differ between one process and torchrun: when the
# run started and finished (config.json), and the prediction folder each table names (its own OUT,
# compared relative to it). Everything else, every PNG, CSV and JSON, confidence.json included, is equal.
TIME_FIELDS = {"config.json": ("started", "finished")}
OUT_PATH_FIELDS = {"sunseg.json": "pred_dir", "authors.json": "pred_dir"}
RUN_STATE = ".lgrnet-run"  # the processes' records (markers, per-video records), not an output


def _outputs(out):
    return sorted(p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file()
                  and p.relative_to(out).parts[0] != RUN_STATE)


def _normalised_json(out, rel):
    data = json.loads((out / rel).read_text())
    for key in TIME_FIELDS.get(rel, ()):
        assert key in data, (rel, key)
        data.pop(key)
    if rel in OUT_PATH_FIELDS:
        data[OUT_PATH_FIELDS[rel]] = os.path.relpath(data[OUT_PATH_FIELDS[rel]], out)
    return data


def test_torchrun_writes_the_same_files_as_one_process(tiny_weights, data_subset, tmp_path):
    """`torchrun --nproc_per_node 2 -m lgrnet evaluate` (no process group: they share by files) writes
    every file one process writes, with the same content; confidence.json holds every frame."""
    args = ["evaluate", "--weights", str(tiny_weights), "--data", str(data_subset), "--split", SPLIT,
            "--size", "64", "--quiet", "--device", "cpu"]
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # as each of the two processes gets on this 2-core machine
    try:
        # --threads 1: the command would otherwise take the usable cores (lgrnet.runtime)
        assert main([*args, "--threads", "1", "--out", str(tmp_path / "one")]) == 0
    finally:
        torch.set_num_threads(threads)
    env = dict(os.environ, PYTHONPATH=str(REPO / "src"), OMP_NUM_THREADS="1")
    for k in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "LOCAL_WORLD_SIZE", "SLURM_STEP_NUM_TASKS"):
        env.pop(k, None)
    r = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
                        "-m", "lgrnet", *args, "--out", str(tmp_path / "two")], env=env, capture_output=True,
                       text=True, timeout=600)
    assert r.returncode == 0, r.stderr[-3000:]
    one, two = tmp_path / "one", tmp_path / "two"
    files = _outputs(one)
    assert files == _outputs(two)
    assert {"config.json", "confidence.json", "sunseg.json", "sunseg.csv", "authors.json", "authors.csv"} <= set(files)
    assert sum(f.endswith(".png") for f in files) == 2 * 2 * FRAMES  # probs and masks of every frame
    for rel in files:
        if rel.endswith(".json"):
            assert _normalised_json(one, rel) == _normalised_json(two, rel), rel
        else:
            assert (one / rel).read_bytes() == (two / rel).read_bytes(), rel
    conf = json.loads((two / "confidence.json").read_text())
    assert conf["frames_scored"] == len(conf["frames"]) == 2 * FRAMES  # was 0 under torchrun
    # both processes predicted: each video once, by one of them
    done = [s["name"] for m in (two / RUN_STATE).rglob("done-*-of-2.json") for s in json.loads(m.read_text())["statuses"]]
    assert sorted(done) == sorted(VIDEOS)
