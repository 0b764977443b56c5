"""`lgrnet score` never replaces an existing --json / --csv file unless asked, and warns about
predictions it does not score; `lgrnet train`'s data check says how many frames have no mask
(issue 13 items 6 and 8)."""
from __future__ import annotations

import json
import logging
from pathlib import Path

import cv2
import numpy as np

from lgrnet.cli import main


def _disc(h: int, w: int, cx: int, cy: int, r: int) -> np.ndarray:
    yy, xx = np.mgrid[:h, :w]
    return (((xx - cx) ** 2 + (yy - cy) ** 2 <= r * r) * 255).astype(np.uint8)


def _folders(root: Path, extra_video: bool = False, extra_frame: bool = False):
    gt, pred = root / "GT", root / "pred"
    for v in ("a", "b"):
        for i in range(4):
            for d, shift in ((gt, 0), (pred, 3)):
                (d / v).mkdir(parents=True, exist_ok=True)
                assert cv2.imwrite(str(d / v / f"{i}.png"), _disc(40, 50, 20 + i + shift, 18, 9))
    if extra_video:
        (pred / "c").mkdir()
        assert cv2.imwrite(str(pred / "c" / "0.png"), _disc(40, 50, 10, 10, 5))
    if extra_frame:
        assert cv2.imwrite(str(pred / "a" / "99.png"), _disc(40, 50, 10, 10, 5))
    return pred, gt


def test_existing_outputs_are_refused_unless_overwrite(tmp_path, capsys):
    pred, gt = _folders(tmp_path)
    out_json, out_csv = tmp_path / "r.json", tmp_path / "r.csv"
    out_json.write_text("mine\n")
    out_csv.write_text("also mine\n")
    assert main(["score", str(pred), str(gt), "--json", str(out_json), "--csv", str(out_csv), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert "r.json: exists; pass --overwrite to replace it" in err and "Traceback" not in err
    assert out_json.read_text() == "mine\n" and out_csv.read_text() == "also mine\n"
    out_json.unlink()  # only the CSV exists: still refused, and nothing written
    assert main(["score", str(pred), str(gt), "--json", str(out_json), "--csv", str(out_csv), "--quiet"]) == 2
    assert "r.csv: exists" in capsys.readouterr().err and not out_json.exists()
    assert main(["score", str(pred), str(gt), "--json", str(out_json), "--csv", str(out_csv), "--quiet",
                 "--overwrite"]) == 0
    assert json.loads(out_json.read_text())["videos"] == 2
    assert out_csv.read_text().splitlines()[0].startswith("video")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["GT", "pred", "r.csv", "r.json"]  # no temporary files
    assert main(["score", str(pred), str(gt), "--json", str(out_json), "--csv", str(out_json), "--overwrite"]) == 2
    assert "name the same file" in capsys.readouterr().err


def test_unscored_predictions_are_named(tmp_path, capsys):
    pred, gt = _folders(tmp_path / "clean")
    assert main(["score", str(pred), str(gt), "--json", str(tmp_path / "clean.json"), "--quiet"]) == 0
    assert "warning" not in capsys.readouterr().err
    pred2, gt2 = _folders(tmp_path / "extra", extra_video=True, extra_frame=True)
    assert main(["score", str(pred2), str(gt2), "--json", str(tmp_path / "extra.json"), "--quiet"]) == 0
    err = capsys.readouterr().err
    assert "1 prediction video(s) have no ground truth and are not scored: c" in err, err
    assert "1 prediction frame(s) have no ground-truth frame and are not scored: a/99.png" in err, err
    clean = json.loads((tmp_path / "clean.json").read_text())
    extra = json.loads((tmp_path / "extra.json").read_text())
    assert clean["metrics"] == extra["metrics"] and extra["videos"] == 2  # the extras changed nothing
    assert main(["score", str(pred2), str(gt2), "--videos", "b", "--quiet"]) == 0
    assert "warning" not in capsys.readouterr().err  # only the chosen video is looked at


def test_training_data_check_counts_frames_without_mask(tmp_path, caplog):
    from lgrnet.data.datasets import find_videos
    from lgrnet.training.dataset import check_videos

    rng = np.random.default_rng(0)
    for v, masked in (("v1", (0, 2)), ("v2", (0, 1, 2))):
        (tmp_path / "Frame" / v).mkdir(parents=True)
        (tmp_path / "GT" / v).mkdir(parents=True)
        for i in range(4):
            assert cv2.imwrite(str(tmp_path / "Frame" / v / f"{i}.jpg"), rng.integers(0, 256, (24, 32, 3), dtype=np.uint8))
            if i in masked:
                assert cv2.imwrite(str(tmp_path / "GT" / v / f"{i}.png"), _disc(24, 32, 16, 12, 5))
    with caplog.at_level(logging.WARNING):
        videos = check_videos(find_videos(tmp_path, require_masks=True), str(tmp_path), need_masks=True)
    assert len(videos) == 2
    assert any("3 of 8 frames have no mask" in r.getMessage() for r in caplog.records), caplog.text
