"""Dataset layouts (SUN-SEG, the authors' names, MICCAI VPS, image sets, generic) and validation."""
from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from lgrnet.data.datasets import DatasetError, SPLIT_ALIASES, find_videos, resolve_split, validate_split, validate_videos
from lgrnet.io.images import read_mask
from lgrnet.errors import UserError


def _img(path: Path, size=(40, 30), value=None, mode="RGB", ext=None):
    path.parent.mkdir(parents=True, exist_ok=True)
    w, h = size
    if mode == "L":
        arr = np.zeros((h, w), np.uint8) if value is None else np.full((h, w), value, np.uint8)
        if value is None:
            arr[5:15, 10:20] = 255
    else:
        arr = np.random.default_rng(len(str(path))).integers(0, 256, (h, w, 3), dtype=np.uint8)
    Image.fromarray(arr).save(path)
    return path


def _video(base: Path, name: str, frames, frame_ext=".jpg", size=(40, 30), masks=True):
    for f in frames:
        _img(base / "Frame" / name / f"{f}{frame_ext}", size)
        if masks:
            _img(base / "GT" / name / f"{f}.png", size, mode="L")


# ---------------------------------------------------------------------------------------- layouts

def test_frame_folders_natural_order_and_stem_matching(tmp_path):
    _video(tmp_path / "Test", "10", [1, 2, 10, 9])
    _video(tmp_path / "Test", "2", [3])
    vids = find_videos(tmp_path, "Test", require_masks=True)
    assert [v.name for v in vids] == ["2", "10"]
    assert [p.stem for p in vids[1].frames] == ["1", "2", "9", "10"]
    assert [p.name for p in vids[1].masks] == ["1.png", "2.png", "9.png", "10.png"]
    assert all(p.suffix == ".jpg" for p in vids[1].frames)
    assert resolve_split(tmp_path, "Test").layout == "frame-folders"


def test_real_data_is_ordered_by_number(data_dir):
    vids = find_videos(data_dir, "CVC-ClinicDB-612/Test", require_masks=True)
    assert [v.name for v in vids] == ["0", "6", "7", "16", "24"]
    for v in vids:
        nums = [int(p.stem) for p in v.frames]
        assert nums == sorted(nums) and len(nums) == len(set(nums))
        assert [m.stem for m in v.masks] == [f.stem for f in v.frames]
    # the authors' name for this set resolves to the same folder
    assert resolve_split(data_dir, "612-test").path == data_dir / "CVC-ClinicDB-612" / "Test"


def test_sunseg_as_released_and_combined(tmp_path):
    ann = tmp_path / "SUN-SEG-Annotation"
    _video(ann / "TrainDataset", "case1_1", [1, 2, 3])
    _video(ann / "TestHardDataset" / "Seen", "case2", ["case2_1-a1_image9", "case2_1-a1_image10"])
    _video(ann / "TestHardDataset" / "Unseen", "case5_3", ["x1", "x2"])
    # a split path under the annotation root, or under the folder above it
    assert [v.name for v in find_videos(ann, "TestHardDataset/Seen")] == ["case2"]
    seen = find_videos(tmp_path, "TestHardDataset/Seen")
    assert [p.stem for p in seen[0].frames] == ["case2_1-a1_image9", "case2_1-a1_image10"]
    # Seen + Unseen when the test set is named without them, and the authors' combined names
    for split in ("TestHardDataset", "polyp_hard_validate"):
        info = resolve_split(ann, split)
        assert info.layout == "seen-unseen"
        assert [v.name for v in find_videos(ann, split)] == ["case2", "case5_3"]
    assert [v.name for v in find_videos(ann, "polyp_hard_unseen_validate")] == ["case5_3"]
    assert [v.name for v in find_videos(ann, "polyp_train")] == ["case1_1"]


def test_authors_reorganised_combine_folder(tmp_path):
    _video(tmp_path / "TestEasyDataset" / "Combine", "case3", [1, 2])
    _video(tmp_path / "TestEasyDataset" / "Seen", "case3", [1, 2])
    info = resolve_split(tmp_path, "polyp_easy_validate")
    assert info.path == tmp_path / "TestEasyDataset" / "Combine" and info.layout == "frame-folders"


def test_miccai_vps_names(tmp_path):
    vps = tmp_path / "MICCAI-VPS-dataset"
    _video(vps / "VPS-TestSet" / "CVC-ClinicDB-612-Valid", "3", [1, 2])
    # the training sets as released: one folder per video holding Frame/ and GT/
    for vid in ("1", "12"):
        for f in (1, 2):
            _img(vps / "VPS-TrainSet" / "CVC-ColonDB-300" / "Train" / vid / "Frame" / f"{f}.png")
            _img(vps / "VPS-TrainSet" / "CVC-ColonDB-300" / "Train" / vid / "GT" / f"{f}.png", mode="L")
    assert [v.name for v in find_videos(tmp_path, "612-val")] == ["3"]
    info = resolve_split(tmp_path, "300-train")
    assert info.layout == "per-video"
    vids = find_videos(tmp_path, "300-train", require_masks=True)
    assert [v.name for v in vids] == ["1", "12"] and all(m is not None for v in vids for m in v.masks)
    assert set(SPLIT_ALIASES) >= {"612-test", "612-val", "300-tv", "polyp_hard_seen_validate", "Kvasir-train"}


def test_kvasir_images_are_one_frame_videos(tmp_path):
    kv = tmp_path / "Kvasir-SEG"
    for name in ("cju0qkwl35piu0993l0dewei2", "cju0s690hkp960855tjuaqvv0"):
        _img(kv / "images" / f"{name}.jpg")
        _img(kv / "masks" / f"{name}.jpg", mode="L")
    info = resolve_split(tmp_path, "Kvasir-SEG")
    assert info.layout == "images"
    vids = find_videos(tmp_path, "Kvasir-SEG", require_masks=True)
    assert len(vids) == 2 and all(len(v) == 1 and v.masks[0].suffix == ".jpg" for v in vids)
    assert vids[0].name == vids[0].frames[0].stem


def test_unknown_split_and_non_dataset(tmp_path):
    with pytest.raises(DatasetError, match="no split 'Nope'"):
        find_videos(tmp_path, "Nope")
    (tmp_path / "empty").mkdir()
    with pytest.raises(DatasetError, match="not a dataset split"):
        find_videos(tmp_path, "empty")
    with pytest.raises(UserError, match="no such dataset folder"):
        find_videos(tmp_path / "missing")


def test_read_mask_thresholds_at_128(tmp_path):
    arr = np.array([[0, 128, 129, 255]], np.uint8)
    p = tmp_path / "m.png"
    Image.fromarray(arr).save(p)
    assert read_mask(p).tolist() == [[False, False, True, True]]


# ---------------------------------------------------------------------------------------- validation

def test_validation_passes_and_reports_nonbinary(data_dir):
    vids, report = validate_split(data_dir, "CVC-ClinicDB-612/Test")
    assert report.videos == 5 and report.frames == report.masks == 122
    assert report.nonbinary_masks  # CVC-ClinicDB masks have a few grey edge levels
    assert "thresholded at 128" in report.summary()


def _fresh(tmp_path):
    base = tmp_path / "set"
    _video(base, "a", [1, 2, 3])
    _video(base, "b", [1, 2])
    return base


def test_missing_mask_named(tmp_path):
    base = _fresh(tmp_path)
    (base / "GT" / "a" / "2.png").unlink()
    with pytest.raises(DatasetError, match=r"1 frames without a mask: .*Frame/a/2\.jpg"):
        validate_split(tmp_path, "set")
    # without requiring masks the frame is simply unannotated
    vids = find_videos(tmp_path, "set")
    assert vids[0].masks[1] is None
    validate_videos(vids, require_masks=False)


def test_extra_mask_and_gt_only_video_named(tmp_path):
    base = _fresh(tmp_path)
    _img(base / "GT" / "a" / "7.png", mode="L")
    with pytest.raises(DatasetError, match=r"masks without a frame: .*GT/a/7\.png"):
        validate_split(tmp_path, "set")
    (base / "GT" / "a" / "7.png").unlink()
    _img(base / "GT" / "zz" / "1.png", mode="L")
    with pytest.raises(DatasetError, match=r"GT folders without frames: .*GT/zz"):
        validate_split(tmp_path, "set")


def test_size_mismatch_named(tmp_path):
    base = _fresh(tmp_path)
    _img(base / "GT" / "b" / "2.png", size=(41, 30), mode="L")
    with pytest.raises(DatasetError, match=r"size differs.*GT/b/2\.png \(41x30, frame 40x30\)"):
        validate_split(tmp_path, "set")


def test_mixed_frame_sizes_in_a_video(tmp_path):
    base = _fresh(tmp_path)
    _img(base / "Frame" / "b" / "2.jpg", size=(50, 30))
    _img(base / "GT" / "b" / "2.png", size=(50, 30), mode="L")
    with pytest.raises(DatasetError, match=r"videos whose frames differ in size: b: 40x30"):
        validate_split(tmp_path, "set")


def test_label_map_masks_rejected(tmp_path):
    base = _fresh(tmp_path)
    _img(base / "GT" / "a" / "1.png", value=1, mode="L")
    with pytest.raises(DatasetError, match=r"empty after thresholding at 128.*GT/a/1\.png"):
        validate_split(tmp_path, "set")


def test_unreadable_files_named_in_one_error(tmp_path):
    base = _fresh(tmp_path)
    (base / "Frame" / "a" / "3.jpg").write_bytes(b"garbage")
    (base / "GT" / "b" / "1.png").write_bytes(b"garbage")
    with pytest.raises(DatasetError) as exc:
        validate_split(tmp_path, "set")
    msg = str(exc.value)
    assert "unreadable frames" in msg and "Frame/a/3.jpg" in msg
    assert "unreadable masks" in msg and "GT/b/1.png" in msg


def test_16bit_and_alpha_frames_named(tmp_path):
    base = _fresh(tmp_path)
    (base / "Frame" / "a" / "2.jpg").unlink()
    Image.fromarray(np.zeros((30, 40, 4), np.uint8)).save(base / "Frame" / "a" / "2.png")
    Image.fromarray(np.zeros((30, 40), np.uint16)).save(base / "Frame" / "b" / "1.png")
    (base / "Frame" / "b" / "1.jpg").unlink()
    with pytest.raises(DatasetError, match=r"2 frames that are not 8-bit grey or RGB .*: \S*Frame/a/2\.png: RGBA frames "
                                           r"are not supported; \S*Frame/b/1\.png: I;16 frames are not supported"):
        validate_split(tmp_path, "set")


def test_many_problems_are_counted(tmp_path):
    base = tmp_path / "set"
    _video(base, "a", list(range(1, 10)), masks=False)
    (base / "GT" / "a").mkdir(parents=True)
    with pytest.raises(DatasetError, match=r"9 frames without a mask: .*and 4 more"):
        validate_split(tmp_path, "set")


def test_validation_does_not_modify_inputs(tmp_path, data_dir):
    src = data_dir / "CVC-ClinicDB-612" / "Test"
    dst = tmp_path / "Test"
    for sub in ("Frame/0", "GT/0"):
        shutil.copytree(src / sub, dst / sub)
    before = {p: p.read_bytes() for p in dst.rglob("*.png")}
    validate_split(tmp_path, "Test")
    assert {p: p.read_bytes() for p in dst.rglob("*.png")} == before
