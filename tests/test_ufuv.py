"""UFUV as the authors lay it out: a synthetic tree (uterus_myoma/Dataset/temp8/{train,test}/Frame|GT),
the set names as --split, a tiny model trained and evaluated end to end with the fibroid table, bad
trees rejected with one line and exit 2, and the fibroid_pvt preset against the authors' config."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from lgrnet.cli import main
from lgrnet.config import get_preset
from lgrnet.data import ufuv
from lgrnet.data.datasets import find_videos, resolve_split
from lgrnet.errors import UserError

FAST = ["train.clip_len=2", "train.image_size=64", "train.multiscale_sizes=[64]", "train.batch_size=2",
        "train.loss.num_points=64", "train.num_workers=0", "train.reference_stride=2", "train.log_every=1",
        "train.eval_every=0", "train.checkpoint_every=100", "train.max_iters=2"]
DATASET = Path("uterus_myoma") / "Dataset"


def make_ufuv(root: Path, splits=("temp8/train", "temp8/test"), videos: int = 2, frames: int = 4,
              size=(40, 48), seed: int = 0) -> Path:
    """``root/uterus_myoma/Dataset/<split>/{Frame,GT}/<video>/<frame>.png``: grey speckle frames
    (ultrasound-like, stored as RGB as the authors read them) with a brighter ellipse, its mask {0, 255}."""
    rng = np.random.default_rng(seed)
    h, w = size
    yy, xx = np.mgrid[:h, :w]
    for split in splits:
        for v in range(videos):
            name = f"{split.replace('/', '_')}_{v:02d}"
            for kind in ("Frame", "GT"):
                (root / DATASET / split / kind / name).mkdir(parents=True, exist_ok=True)
            for t in range(frames):
                cy, cx = h / 2 + 2 * t - 3, w / 3 + 5 * v + t
                mask = ((yy - cy) / 9) ** 2 + ((xx - cx) / 12) ** 2 <= 1
                grey = (rng.random((h, w)) * 90 + 60 * mask).astype(np.uint8)
                Image.fromarray(np.repeat(grey[..., None], 3, axis=2)).save(root / DATASET / split / "Frame" / name / f"{t:05d}.png")
                Image.fromarray(mask.astype(np.uint8) * 255).save(root / DATASET / split / "GT" / name / f"{t:05d}.png")
    return root


def test_set_names_resolve_under_the_authors_root(tmp_path):
    root = make_ufuv(tmp_path / "ufuv", splits=("temp/train", "temp/test", "temp8/train", "temp8/test"))
    for name, folder in ufuv.UFUV_SPLITS.items():
        if not folder.startswith(("temp/", "temp8/")):
            continue
        for base in (root, root / "uterus_myoma", root / DATASET):  # the authors' root or a folder above it
            info = resolve_split(base, name)
            assert info.path == root / DATASET / folder and info.layout == "frame-folders"
        assert ufuv.ufuv_folder(name) == folder
    with pytest.raises(UserError, match=r"no split 'fibroid_validate_temp7' \(looked for .*ufuv/uterus_myoma/Dataset/temp7/test"):
        resolve_split(root, "fibroid_validate_temp7")
    with pytest.raises(UserError, match=r"looks like a UFUV root: name a split, e.g. --split fibroid_train_temp8"):
        find_videos(root)  # --data UFUV without --split
    videos = find_videos(root / DATASET, "temp8/test", require_masks=True)
    assert [v.name for v in videos] == ["temp8_test_00", "temp8_test_01"]
    assert all(len(v) == 4 and all(m is not None for m in v.masks) for v in videos)
    assert ufuv.ufuv_folder("temp8/test", root / DATASET / "temp8" / "test") == "temp8/test"
    assert ufuv.ufuv_folder("CVC-ClinicDB-612/Test", "/d/CVC-ClinicDB-612/Test") is None
    assert "holds 2 video(s); the authors' holds 17" in ufuv.count_note("temp8/test", 2)
    assert ufuv.count_note("temp8/test", 17) is None


def test_train_then_evaluate_end_to_end(tmp_path, capsys):
    """``train --data ROOT --split fibroid_train_temp8 --val ROOT --val-split fibroid_validate_temp8``
    then ``evaluate --split fibroid_validate_temp8``: fibroid.json/.csv are written next to the other
    tables, and equal a re-score of the written masks with segmentation_models.pytorch."""
    smp = pytest.importorskip("segmentation_models_pytorch")  # noqa: F841
    from tests.helpers.fibroid_reference import smp_reference

    root = make_ufuv(tmp_path / "ufuv")
    run = tmp_path / "run"
    rc = main(["train", "--preset", "tiny", "--data", str(root), "--split", "fibroid_train_temp8",
               "--val", str(root), "--val-split", "fibroid_validate_temp8", "--out", str(run),
               "--no-tensorboard", "--progress", "off", "--device", "cpu", *FAST])
    assert rc == 0, capsys.readouterr().err
    saved = json.loads((run / "run.json").read_text())
    assert saved["data"] == [str((root / DATASET / "temp8" / "train").resolve())]
    assert saved["val"] == [str((root / DATASET / "temp8" / "test").resolve())]
    assert any(json.loads(line).get("event") == "val" for line in (run / "log.jsonl").read_text().splitlines())
    out = tmp_path / "eval"
    rc = main(["evaluate", "--weights", str(run / "model.safetensors"), "--data", str(root),
               "--split", "fibroid_validate_temp8", "--size", "64", "--out", str(out), "--device", "cpu"])
    captured = capsys.readouterr()
    assert rc == 0, captured.err
    assert "UFUV split temp8/test holds 2 video(s); the authors' holds 17" in captured.err
    assert "LGRNet authors' UFUV (fibroid) protocol: 2 video(s), 8 frame(s) scored" in captured.out
    for name in ("sunseg", "authors", "fibroid"):
        assert (out / f"{name}.json").is_file() and (out / f"{name}.csv").is_file()
    res = json.loads((out / "fibroid.json").read_text())
    config = json.loads((out / "config.json").read_text())
    assert config["protocols"] == ["sunseg", "authors", "fibroid"] and config["ufuv_split"] == "temp8/test"
    assert res["protocol"] == "fibroid" and res["frames"] == 8 and sorted(res["per_video"]) == ["temp8_test_00", "temp8_test_01"]
    gt_dir = root / DATASET / "temp8" / "test" / "GT"
    preds, gts = [], []
    for video in sorted(res["per_video"]):
        for gt in sorted((gt_dir / video).iterdir()):
            gts.append(np.asarray(Image.open(gt).convert("L")) > 0)
            preds.append(np.asarray(Image.open(out / "masks" / video / gt.name).convert("L")) > 127)
    ref = smp_reference(preds, gts)
    for key, value in ref.items():
        got = res["metrics"][key]
        assert (got is None and np.isnan(value)) or abs(got - value) <= 1e-6, (key, got, value)
    rows = (out / "fibroid.csv").read_text().splitlines()
    assert rows[0] == "video,frames,dice,mean_iou,overall_iou,recall,precision,F" and rows[-1].startswith("ALL,8,")


def test_evaluate_protocol_option(tmp_path, capsys):
    root = make_ufuv(tmp_path / "ufuv", splits=("temp8/test",), videos=1, frames=3)
    out = tmp_path / "eval"
    rc = main(["evaluate", "--preset", "tiny", "--random-init", "--data", str(root / DATASET), "--split", "temp8/test",
               "--protocol", "fibroid", "--size", "64", "--out", str(out), "--quiet", "--device", "cpu"])
    assert rc == 0, capsys.readouterr().err
    assert sorted(p.name for p in out.glob("*.json")) == ["confidence.json", "config.json", "fibroid.json"]


@pytest.mark.parametrize("problem", ["missing mask", "size mismatch"])
def test_bad_trees_give_one_clear_error(tmp_path, capsys, problem):
    root = make_ufuv(tmp_path / "ufuv", splits=("temp8/train", "temp8/test"), videos=1, frames=3)
    test_gt = root / DATASET / "temp8" / "test" / "GT" / "temp8_test_00" / "00001.png"
    train_gt = root / DATASET / "temp8" / "train" / "GT" / "temp8_train_00" / "00001.png"
    if problem == "missing mask":
        test_gt.unlink()
        expected = r"1 frames without a mask: \S*/temp8/test/Frame/temp8_test_00/00001\.png"
    else:
        for gt in (test_gt, train_gt):
            Image.fromarray(np.zeros((20, 24), np.uint8)).save(gt)
        expected = r"masks whose size differs from their frame's: \S*/GT/temp8_\w+_00/00001\.png \(24x20, frame 48x40\)"
    rc = main(["evaluate", "--preset", "tiny", "--random-init", "--data", str(root), "--split", "fibroid_validate_temp8",
               "--size", "64", "--out", str(tmp_path / "eval"), "--quiet", "--device", "cpu"])
    err = capsys.readouterr().err.strip()
    assert rc == 2 and len(err.splitlines()) == 1 and "Traceback" not in err
    assert __import__("re").search(expected, err), err
    assert not (tmp_path / "eval" / "config.json").exists()
    if problem == "size mismatch":  # training checks the same way before step 1
        rc = main(["train", "--preset", "tiny", "--data", str(root), "--split", "fibroid_train_temp8",
                   "--out", str(tmp_path / "run"), "--no-tensorboard", "--progress", "off", "--device", "cpu", *FAST])
        err = capsys.readouterr().err.strip().splitlines()
        assert rc == 2 and "masks whose size differs from their frame's" in err[-1] and "temp8_train_00/00001.png" in err[-1]
    rc = main(["train", "--preset", "tiny", "--split", "fibroid_train_temp8", "--out", str(tmp_path / "run2")])
    assert rc == 2 and "--split fibroid_train_temp8 needs --data ROOT" in capsys.readouterr().err


def test_fibroid_preset_is_the_authors_fibroid_config():
    """Each training setting of fibroid_pvt against output/VIS/fibroid/pvt.py (transcribed here with
    the authors' key names): what differs from SUN-SEG is dilation 2, the attention mask, mask_ce 2 and
    the 186-iteration period of checkpoints, evaluations and LR milestones."""
    authors = {  # output/VIS/fibroid/pvt.py
        "batch_sizes": 4, "ckpted_iters": 186, "milestones": [186 * 3, 186 * 6, 186 * 9, 186 * 12], "gamma": 0.5,
        "base_lr": 1e-3, "backbone_lr_multiplier": 0.1, "weight_decay": 1e-4, "weight_decay_embed": 0.0,
        "weight_decay_norm": 0.0, "clip_value": 0.01, "clip_sizes": 6, "step": 6, "seed": 2024,
        "frame_query_number": 20, "kernel_size": 5, "dilation": 2, "add_attn_mask": True, "d_model": 64,
        "num_points": 12544, "oversample_ratio": 3.0, "importance_sample_ratio": 0.75,
        "match": (2, 2, 2), "background_cls_eos": 0.1, "aux_layer_weights": 1.0,
        "loss_weight": {"mask_dice": 5, "mask_ce": 2, "class_ce": 2},
    }
    cfg = get_preset("fibroid_pvt")
    t, m = cfg.train, cfg.model
    assert t.batch_size == authors["batch_sizes"]
    assert t.lr_milestones == authors["milestones"] and t.lr_gamma == authors["gamma"]
    assert t.checkpoint_every == t.eval_every == t.iters_per_epoch == authors["ckpted_iters"]
    assert t.max_iters == 12 * authors["ckpted_iters"]  # the config has no length: through the last milestone
    assert (t.lr, t.backbone_lr_mult, t.weight_decay) == (authors["base_lr"], authors["backbone_lr_multiplier"], authors["weight_decay"])
    assert (t.weight_decay_embed, t.weight_decay_norm, t.clip_grad_norm) == (0.0, 0.0, authors["clip_value"])
    assert (t.clip_len, t.reference_stride, t.seed) == (authors["clip_sizes"], authors["step"], authors["seed"])
    assert m.d_model == authors["d_model"] and m.encoder.global_.num_frame_queries == authors["frame_query_number"]
    assert (m.encoder.local.kernel_size, m.encoder.local.dilation) == (authors["kernel_size"], authors["dilation"])
    assert m.encoder.global_.attn_mask is authors["add_attn_mask"]
    lc = t.loss
    assert (lc.num_points, lc.oversample_ratio, lc.importance_sample_ratio) == (12544, 3.0, 0.75)
    assert (lc.match_class_weight, lc.match_bce_weight, lc.match_dice_weight) == authors["match"]
    assert lc.no_object_weight == authors["background_cls_eos"] and lc.aux_weight == authors["aux_layer_weights"]
    w = authors["loss_weight"]
    assert (lc.dice_weight, lc.bce_weight, lc.class_weight) == (w["mask_dice"], w["mask_ce"], w["class_ce"])
    assert lc.authors_swapped_point_losses
    # Everything else is the SUN-SEG PVT config (the two files differ only in the lines above).
    sun = get_preset("sunseg_pvt")
    for key in ("clip_len", "num_local", "local_max_gap", "image_size", "multiscale_sizes", "hflip", "vflip", "rot90"):
        assert getattr(t, key) == getattr(sun.train, key), key
