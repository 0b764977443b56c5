"""Training from boxes: Box/ files in the dataset layout, train.supervision's frame plans, the
training clips' targets, and a few steps of each supervision."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from lgrnet.config import get_preset, override
from lgrnet.data.boxes import box_file_path, box_to_mask, mask_to_box, write_box_file
from lgrnet.data.datasets import DatasetError, find_videos, validate_split
from lgrnet.errors import UserError
from lgrnet.training.dataset import TrainClipDataset, check_videos
from lgrnet.training.supervision import count_kinds, parse_supervision, plan_supervision

FAST = ["train.clip_len=2", "train.image_size=64", "train.multiscale_sizes=[64]", "train.batch_size=2",
        "train.loss.num_points=64", "train.num_workers=0", "train.reference_stride=1", "train.log_every=1",
        "train.eval_every=0", "train.hflip=false", "train.vflip=false", "train.rot90=false"]
H, W = 48, 64


def make_dataset(root: Path, videos: int = 2, frames: int = 4, seed: int = 0) -> Path:
    """Noise frames with two bright blobs (two components), masks in GT/."""
    rng = np.random.default_rng(seed)
    for v in range(videos):
        (root / "Frame" / str(v)).mkdir(parents=True, exist_ok=True)
        (root / "GT" / str(v)).mkdir(parents=True, exist_ok=True)
        for t in range(frames):
            img = (rng.random((H, W, 3)) * 100).astype(np.uint8)
            m = np.zeros((H, W), np.uint8)
            m[8 + t:20 + t, 6 + 3 * v:18 + 3 * v] = 255
            m[30:40, 40:44] = 255
            m[30, 44:50] = 255
            img[m > 0] += 120
            Image.fromarray(img).save(root / "Frame" / str(v) / f"{t}.png")
            Image.fromarray(m).save(root / "GT" / str(v) / f"{t}.png")
    return root


def test_parse_supervision():
    assert parse_supervision("masks") == ("masks", 1.0, "box")
    assert parse_supervision("fill_ellipses") == ("fill_ellipses", 0.0, "ellipse")
    assert parse_supervision("mixed:0.1") == ("mixed", 0.1, "box")
    assert parse_supervision("mixed:0.1:fill_ellipses") == ("mixed", 0.1, "ellipse")
    assert parse_supervision("mixed:0.1:fill_boxes") == ("mixed", 0.1, "fill")
    for bad in ("box", "mixed:0", "mixed:1.5", "mixed:x", "mixed:0.1:masks", "mixed:0.1:", "ellipses"):
        with pytest.raises(UserError, match="train.supervision"):
            parse_supervision(bad)


def test_dataset_reads_box_files_and_checks_them(tmp_path):
    root = make_dataset(tmp_path / "d")
    (root / "GT" / "1" / "2.png").unlink()
    (root / "GT" / "1" / "3.png").unlink()
    write_box_file(box_file_path(root, "1", "2"), [[4, 5, 10, 12]], (H, W))
    write_box_file(box_file_path(root, "1", "3"), [], (H, W))
    videos, report = validate_split(root, require_masks=False)  # training: boxes annotate frames too
    v = videos[1]
    assert v.box_file(2) == root / "Box" / "1" / "2.json" and v.box_file(0) is None and not videos[0].has_boxes
    assert (report.masks, report.box_frames, report.boxes, report.box_only_frames) == (6, 2, 1, 2)
    assert "2 frame(s) with a box file (1 box(es); 2 frame(s) with boxes and no mask)" in report.summary()
    # a box file for a frame that does not exist, a box outside the frame, a wrong frame size
    write_box_file(box_file_path(root, "1", "9"), [[0, 0, 2, 2]], (H, W))
    with pytest.raises(DatasetError, match=r"1 box files without a frame: \S+Box/1/9\.json"):
        validate_split(root)
    (root / "Box" / "1" / "9.json").unlink()
    (root / "Box" / "1" / "2.json").write_text(json.dumps({"boxes": [[60, 0, 10, 5]], "frame_size": [H, W]}))
    with pytest.raises(DatasetError, match=r"Box/1/2\.json: box 0 \[60, 0, 10, 5\] lies outside the 64x48 frame"):
        validate_split(root)
    write_box_file(box_file_path(root, "1", "2"), [[1, 1, 5, 5]], (H + 2, W))
    with pytest.raises(DatasetError, match=r"Box/1/2\.json: the boxes are for a 64x50 frame, but the frame is 64x48"):
        validate_split(root)


def test_box_only_videos_are_training_videos(tmp_path):
    import shutil

    root = make_dataset(tmp_path / "d", videos=1)
    for t in range(4):
        write_box_file(box_file_path(root, "0", str(t)), [[2, 2, 10, 10]], (H, W))
    shutil.rmtree(root / "GT")
    videos = find_videos(root, require_masks=True)
    assert check_videos(videos, str(root), allow_boxes=True) == videos
    with pytest.raises(DatasetError, match="no video has ground-truth masks"):
        check_videos(videos, str(root))  # validation needs masks


def test_plans(tmp_path):
    root = make_dataset(tmp_path / "d", videos=2, frames=5)
    (root / "GT" / "0" / "4.png").unlink()  # context frame
    (root / "GT" / "1" / "4.png").unlink()
    write_box_file(box_file_path(root, "1", "4"), [[1, 1, 4, 4]], (H, W))  # box-only frame
    videos = find_videos(root)
    assert count_kinds(plan_supervision(videos, "masks", 0)) == {"mask": 8, "box": 1, "fill": 0, "ellipse": 0, "context": 1}
    plan = plan_supervision(videos, "boxes", 0)
    assert count_kinds(plan) == {"mask": 0, "box": 9, "fill": 0, "ellipse": 0, "context": 1}
    assert plan[1][4].source == "box_file" and plan[0][0].source == "mask"
    assert count_kinds(plan_supervision(videos, "fill_boxes", 0)) == {"mask": 0, "box": 0, "fill": 9, "ellipse": 0, "context": 1}
    assert count_kinds(plan_supervision(videos, "fill_ellipses", 0)) == {"mask": 0, "box": 0, "fill": 0, "ellipse": 9,
                                                                         "context": 1}
    a = plan_supervision(videos, "mixed:0.25", 7)
    assert count_kinds(a) == {"mask": 2, "box": 7, "fill": 0, "ellipse": 0, "context": 1}  # round(0.25 * 8) masks
    assert a == plan_supervision(videos, "mixed:0.25", 7)  # chosen by the seed
    e = plan_supervision(videos, "mixed:0.25:fill_ellipses", 7)  # the same mask frames, ellipses elsewhere
    assert count_kinds(e) == {"mask": 2, "box": 0, "fill": 0, "ellipse": 7, "context": 1}
    assert [[t and t.kind == "mask" for t in row] for row in e] == [[t and t.kind == "mask" for t in row] for row in a]
    others = [plan_supervision(videos, "mixed:0.25", s) for s in range(8)]
    assert any(o != a for o in others)


def _all_items(ds, n=None):
    return [ds[(i, i)] for i in range(n or len(ds))]


def test_clip_targets_per_supervision(tmp_path):
    root = make_dataset(tmp_path / "d", videos=1, frames=4)
    videos = find_videos(root)
    base = override(get_preset("tiny"), FAST).train
    masks = TrainClipDataset(videos, base)
    boxes = TrainClipDataset(videos, override(get_preset("tiny"), FAST + ["train.supervision=boxes"]).train)
    fill = TrainClipDataset(videos, override(get_preset("tiny"), FAST + ["train.supervision=fill_boxes"]).train)
    for a, b, c in zip(_all_items(masks), _all_items(boxes), _all_items(fill)):
        assert torch.equal(a["video"], b["video"]) and a["frames"] == b["frames"] == c["frames"]
        assert a["target"].box_frames is None and c["target"].box_frames is None
        assert b["target"].box_frames.tolist() == [True, True]
        assert torch.equal(b["target"].masks, c["target"].masks)
        for k in range(2):  # the target is the filled boxes of the mask's components (64 / 48 x 64 resize)
            m = a["target"].masks[0, k].numpy() > 0
            filled = b["target"].masks[0, k].numpy() > 0
            assert (filled | ~m).all() and filled.sum() > m.sum()
            np.testing.assert_array_equal(filled, box_to_mask(mask_to_box(m), m.shape))


def test_ellipse_targets(tmp_path):
    """fill_ellipses: each frame's target is the ellipse inscribed in its mask's box, with the box's
    projections, inside the box and smaller than it; the clip is the one the other modes draw."""
    root = make_dataset(tmp_path / "d", videos=1, frames=4)
    videos = find_videos(root)
    boxes = TrainClipDataset(videos, override(get_preset("tiny"), FAST + ["train.supervision=boxes"]).train)
    ell = TrainClipDataset(videos, override(get_preset("tiny"), FAST + ["train.supervision=fill_ellipses"]).train)
    for b, e in zip(_all_items(boxes), _all_items(ell)):
        assert torch.equal(b["video"], e["video"]) and e["target"].box_frames is None
        for k in range(2):
            filled, oval = b["target"].masks[0, k].numpy() > 0, e["target"].masks[0, k].numpy() > 0
            assert (filled | ~oval).all() and 0 < oval.sum() < filled.sum()
            np.testing.assert_array_equal(oval.any(0), filled.any(0))
            np.testing.assert_array_equal(oval.any(1), filled.any(1))


def test_box_frames_carry_their_ellipses_through_augmentation(tmp_path):
    """train.box_loss.ellipse_weight > 0: box frames' targets carry the ellipse inscribed in each box,
    moved by the same flips, rotation and zoom as the box (the same clip, same draws); the masks
    (filled boxes) are the ones the run without the prior gets."""
    root = make_dataset(tmp_path / "d", videos=1, frames=4)
    videos = find_videos(root)
    recipe = ["train.aug_rotate=15", "train.aug_scale=0.15", "train.aug_prob=1.0", "train.hflip=true"]
    plain = TrainClipDataset(videos, override(get_preset("tiny"), FAST + recipe + ["train.supervision=mixed:0.5"]).train)
    prior = TrainClipDataset(videos, override(get_preset("tiny"), FAST + recipe + [
        "train.supervision=mixed:0.5", "train.box_loss.ellipse_weight=2"]).train)
    seen = 0
    for a, b in zip(_all_items(plain), _all_items(prior)):
        ta, tb = a["target"], b["target"]
        assert torch.equal(a["video"], b["video"]) and torch.equal(ta.masks, tb.masks) and ta.box_priors is None
        if ta.box_frames is None:
            assert tb.box_priors is None
            continue
        assert tb.box_priors.shape == tb.masks.shape
        for k, is_box in enumerate(ta.box_frames.tolist()):
            oval, filled = tb.box_priors[0, k] > 0, tb.masks[0, k] > 0
            if not is_box:
                assert not oval.any()
                continue
            seen += 1
            assert (filled | ~oval).all() and 0.6 < oval.sum() / filled.sum() < 0.9  # pi/4 of the box, less edges
    assert seen


def test_box_to_ellipse_mask_against_a_loop():
    """Each pixel centre tested against the ellipse equation one by one; a sliver box keeps its pixel."""
    from lgrnet.data.boxes import box_to_ellipse_mask

    boxes = np.array([[2.0, 3.0, 9.0, 5.0], [20.5, 1.25, 6.5, 11.0]], np.float32)
    got = box_to_ellipse_mask(boxes, (16, 30))
    want = np.zeros((16, 30), bool)
    for x, y, w, h in boxes.astype(np.float64):
        for r in range(16):
            for c in range(30):
                u, v = (c + 0.5 - x - w / 2) / (w / 2), (r + 0.5 - y - h / 2) / (h / 2)
                want[r, c] |= u * u + v * v <= 1.0
    # the loop's ellipse plus, where the ellipse misses a box's middle row/column pixels, those
    assert (got | ~want).all() and (got & ~want).sum() <= 4
    np.testing.assert_array_equal(mask_to_box(got)[:, 2:], [[7, 11], [9, 5]])  # raster order of first pixels
    assert box_to_ellipse_mask(np.array([[4.2, 5.0, 0.3, 0.2]]), (10, 10)).sum() == 1


def test_empty_box_frame_is_an_empty_mask_frame(tmp_path):
    root = make_dataset(tmp_path / "d", videos=1, frames=4)
    (root / "GT" / "0" / "1.png").unlink()
    write_box_file(box_file_path(root, "0", "1"), [], (H, W))  # annotated: no lesion
    ds = TrainClipDataset(find_videos(root), override(get_preset("tiny"), FAST + ["train.supervision=boxes"]).train)
    seen = False
    for pos in range(40):
        item = ds[(pos % len(ds), pos)]
        tgt = item["target"]
        if 1 in item["frames"] and tgt.masks.shape[0]:
            k = item["frames"].index(1)
            assert not tgt.masks[0, k].any() and not tgt.box_frames[k]
            seen = True
    assert seen


@pytest.mark.parametrize("supervision", ["boxes", "mixed:0.5", "fill_boxes", "fill_ellipses", "boxes+ellipse",
                                         "boxes+teacher"])
def test_a_few_steps_of_each_supervision(tmp_path, supervision):
    from lgrnet.training.trainer import Trainer, TrainOptions

    root = make_dataset(tmp_path / "d", videos=2, frames=4)
    prior, teacher = supervision.endswith("+ellipse"), supervision.endswith("+teacher")
    cfg = override(get_preset("tiny"), FAST + [f"train.supervision={supervision.split('+')[0]}", "train.max_iters=3",
                                               "train.box_loss.pairwise_warmup_iters=0"]
                   + (["train.box_loss.ellipse_weight=2"] if prior else [])
                   # the teacher from step 2 on, every pseudo-mask used (the tiny model's are poor)
                   + (["train.box_loss.teacher_weight=1", "train.box_loss.teacher_start=1",
                       "train.box_loss.teacher_min_fit=0", "train.box_loss.teacher_threshold=0.01",
                       "train.ema_decay=0.9"] if teacher else []))
    trainer = Trainer(cfg, TrainOptions(data=[str(root)], out_dir=str(tmp_path / "run"), device="cpu",
                                        tensorboard=False, progress=False, backbone_weights="none"))
    summary = trainer.fit()
    assert summary["step"] == 3
    log = [json.loads(line) for line in (tmp_path / "run" / "log.jsonl").read_text().splitlines()]
    train = [r for r in log if r.get("event") == "train"]
    assert len(train) == 3 and all(np.isfinite(r["loss"]) for r in train)
    if supervision.startswith("fill_"):
        assert "loss_box_proj" not in train[0]
    else:
        assert any(r["loss_box_proj"] > 0 for r in train) and any(r["loss_box_pair"] > 0 for r in train)
        assert ("loss_box_ellipse" in train[0]) == prior
        assert not prior or all(r["loss_box_ellipse"] > 0 for r in train)
        assert ("loss_box_teacher" in train[0]) == teacher
        assert not teacher or (train[0]["loss_box_teacher"] == 0 and all(r["loss_box_teacher"] > 0 for r in train[1:]))


def test_scale_consistency_runs_a_second_smaller_view(tmp_path, monkeypatch):
    from lgrnet.training.trainer import Trainer, TrainOptions, consistency_size

    assert consistency_size(256, 0.75) == 192 and consistency_size(288, 0.75) == 224
    assert consistency_size(64, 0.5) == 64
    root = make_dataset(tmp_path / "d", videos=2, frames=4)
    cfg = override(get_preset("tiny"), FAST + ["train.supervision=boxes", "train.max_iters=2", "train.image_size=128",
                                               "train.multiscale_sizes=[128]",
                                               "train.box_loss.scale_consistency_weight=5"])
    trainer = Trainer(cfg, TrainOptions(data=[str(root)], out_dir=str(tmp_path / "run"), device="cpu",
                                        tensorboard=False, progress=False, backbone_weights="none"))
    sizes = []
    forward = trainer.model.forward
    monkeypatch.setattr(trainer.model, "forward", lambda clips, *a, **k: (sizes.append(clips.shape[-1]),
                                                                          forward(clips, *a, **k))[1])
    trainer.fit()
    assert sizes == [128, 96, 128, 96], sizes  # two views per step
    log = [json.loads(line) for line in (tmp_path / "run" / "log.jsonl").read_text().splitlines()]
    train = [r for r in log if r.get("event") == "train"]
    assert all(np.isfinite(r["loss_box_sc"]) and r["loss_box_sc"] >= 0 for r in train)
    assert any(r["loss_box_sc"] > 0 for r in train)
