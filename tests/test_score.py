"""``lgrnet score`` end to end on folders of real GT masks and perturbed predictions, against the plain
toolbox transcription (sunseg, 1e-6) and exact rational arithmetic (authors)."""
from __future__ import annotations

import csv
import json
from fractions import Fraction
from pathlib import Path

import cv2
import numpy as np
import pytest

from tests.helpers import sunseg_reference as ref
from lgrnet.cli import main

TOL = 1e-6


def _write(path: Path, img: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    assert cv2.imwrite(str(path), img)


@pytest.fixture(scope="module")
def folders(data_dir, tmp_path_factory):
    """GT/<video>/<frame>.png copied from real masks (numbered so that string order differs from
    frame order), and predictions perturbed from them, some at another size. Videos:
    v0 (5 frames, one with an empty GT), v6 (4 frames), single (1 frame), pair (2 frames)."""
    root = tmp_path_factory.mktemp("score")
    gt_dir, pred_dir = root / "GT", root / "pred"
    rng = np.random.default_rng(0)
    src = data_dir / "CVC-ClinicDB-612" / "Test" / "GT"
    layout = {"v0": ("0", [1, 2, 10, 11, 3]), "v6": ("6", [7, 20, 100, 9]), "single": ("7", [5]), "pair": ("16", [1, 2])}
    frames = {}
    for video, (real, names) in layout.items():
        real_files = sorted((src / real).iterdir(), key=lambda p: int(p.stem))
        for k, name in enumerate(names):
            gt = cv2.imread(str(real_files[k]), cv2.IMREAD_GRAYSCALE)
            if video == "v0" and name == 10:
                gt = np.zeros_like(gt)  # an empty GT frame
            g = (gt > 128).astype(np.float32)
            kind = (k + len(video)) % 6
            if kind == 0:
                pred = cv2.GaussianBlur(g, (0, 0), 5)
            elif kind == 1:
                pred = cv2.GaussianBlur(np.roll(g, (11, -15), axis=(0, 1)), (0, 0), 3)
            elif kind == 2:
                pred = np.clip(0.8 * g + rng.normal(0.1, 0.2, g.shape), 0, 1)
            elif kind == 3:
                pred = np.zeros_like(g)  # empty prediction
            elif kind == 4:
                pred = np.full_like(g, 0.4)  # constant
            else:
                pred = np.ones_like(g)  # full
            pred = np.round(pred * 255).astype(np.uint8)
            if video == "v6" and k == 1:
                pred = cv2.resize(pred, (200, 150))  # another size: resized as the toolbox does
            _write(gt_dir / video / f"{name}.png", gt)
            _write(pred_dir / video / f"{name}.png", pred)
            frames.setdefault(video, []).append((name, gt, pred))
    for video in frames:
        frames[video].sort(key=lambda t: t[0])  # frame order = numeric order
    return gt_dir, pred_dir, frames


def _at_gt_size(pred, gt):
    return pred if pred.shape == gt.shape else cv2.resize(pred, (gt.shape[1], gt.shape[0]))


def test_sunseg_matches_toolbox_definition(folders, tmp_path, capsys):
    gt_dir, pred_dir, frames = folders
    out_json, out_csv = tmp_path / "r.json", tmp_path / "r.csv"
    assert main(["score", str(pred_dir), str(gt_dir), "--json", str(out_json), "--csv", str(out_csv)]) == 0
    printed = capsys.readouterr().out
    assert "S_alpha" in printed and "skipped single" in printed
    res = json.loads(out_json.read_text())
    assert res["protocol"] == "sunseg"
    want = ref.dataset({v: [(_at_gt_size(p, g), g) for _, g, p in fr] for v, fr in frames.items()})
    for k, v in want.items():
        assert abs(res["metrics"][k] - v) <= TOL, (k, res["metrics"][k], v)
    assert set(res["metrics"]) == {
        "S_alpha", "E_phi_mean", "E_phi_max", "E_phi_adp", "F_w", "F_mean", "F_max", "F_adp", "Dice_mean",
        "Dice_max", "IoU_mean", "IoU_max", "Sen_mean", "Sen_max", "Spe_mean", "Spe_max", "MAE"}
    assert res["videos"] == 2 and res["frames"] == 3 + 2
    assert set(res["skipped_videos"]) == {"single", "pair"}
    # per video: the same definitions on that video alone
    one = ref.dataset({"v6": [(_at_gt_size(p, g), g) for _, g, p in frames["v6"]]})
    for k, v in one.items():
        assert abs(res["per_video"]["v6"][k] - v) <= TOL, k
    assert res["per_video"]["v0"]["frames"] == 3
    rows = list(csv.DictReader(out_csv.open()))
    assert [r["video"] for r in rows] == ["v0", "v6", "ALL"]
    assert abs(float(rows[-1]["S_alpha"]) - res["metrics"]["S_alpha"]) <= 1e-12


def test_frames_are_ordered_by_number(folders, tmp_path):
    """The first and last frames dropped are 1 and 11 of v0 (numeric order), not 1 and 3 (string order)."""
    gt_dir, pred_dir, frames = folders
    out = tmp_path / "r.json"
    assert main(["score", str(pred_dir), str(gt_dir), "--videos", "v0", "--json", str(out), "--quiet"]) == 0
    got = json.loads(out.read_text())["metrics"]
    numeric = ref.dataset({"v0": [(p, g) for _, g, p in frames["v0"]]})
    by_string = sorted(frames["v0"], key=lambda t: str(t[0]))
    stringy = ref.dataset({"v0": [(p, g) for _, g, p in by_string]})
    assert abs(got["S_alpha"] - numeric["S_alpha"]) <= TOL
    assert abs(numeric["S_alpha"] - stringy["S_alpha"]) > 1e-3  # the two orders are distinguishable


def test_keep_ends_scores_every_frame(folders, tmp_path):
    gt_dir, pred_dir, frames = folders
    out = tmp_path / "r.json"
    assert main(["score", str(pred_dir), str(gt_dir), "--videos", "single", "pair", "--keep-ends",
                 "--json", str(out), "--quiet"]) == 0
    res = json.loads(out.read_text())
    assert res["frames"] == 3 and res["videos"] == 2 and res["drop_ends"] is False
    # with no frame dropped, the reference on [x, frame..., x] padding equals keeping every frame
    pad = lambda fr: [fr[0]] + fr + [fr[-1]]  # noqa: E731
    want = ref.dataset({v: pad([(p, g) for _, g, p in frames[v]]) for v in ("single", "pair")})
    for k, v in want.items():
        assert abs(res["metrics"][k] - v) <= TOL, k


def test_nothing_left_after_dropping_ends(folders, capsys):
    gt_dir, pred_dir, _ = folders
    assert main(["score", str(pred_dir), str(gt_dir), "--videos", "single", "pair", "--quiet"]) == 2
    err = capsys.readouterr().err
    assert "nothing to score" in err and "first and last frame" in err and "--keep-ends" in err


def test_missing_prediction_is_named(folders, tmp_path, capsys):
    gt_dir, pred_dir, _ = folders
    partial = tmp_path / "pred"
    for f in pred_dir.rglob("*.png"):
        if f.name != "20.png":
            _write(partial / f.parent.name / f.name, cv2.imread(str(f), cv2.IMREAD_GRAYSCALE))
    assert main(["score", str(partial), str(gt_dir), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert "missing" in err and str(partial / "v6" / "20.png") in err


def test_unreadable_prediction_is_named(folders, tmp_path, capsys):
    gt_dir, pred_dir, _ = folders
    bad = tmp_path / "pred"
    for f in pred_dir.rglob("*.png"):
        (bad / f.parent.name).mkdir(parents=True, exist_ok=True)
        (bad / f.parent.name / f.name).write_bytes(f.read_bytes() if f.name != "9.png" else b"not a png")
    assert main(["score", str(bad), str(gt_dir), "--quiet"]) == 2
    assert str(bad / "v6" / "9.png") in capsys.readouterr().err


def _exact_authors(pred_u8, gt_u8):
    p = pred_u8 > 127
    g = gt_u8 > 0
    inter = int((p & g).sum())
    total = int(p.sum()) + int(g.sum())
    return Fraction(2 * inter + 1, total + 1), Fraction(inter + 1, total - inter + 1)


def test_authors_protocol_exact(folders, tmp_path):
    gt_dir, pred_dir, frames = folders
    out = tmp_path / "a.json"
    assert main(["score", str(pred_dir), str(gt_dir), "--protocol", "authors", "--json", str(out), "--quiet"]) == 0
    res = json.loads(out.read_text())
    assert res["protocol"] == "authors" and set(res["metrics"]) == {"Dice", "IoU"}
    dice, iou = [], []
    for video, fr in frames.items():
        vd, vi = [], []
        for _, g, p in fr:
            if p.shape != g.shape:
                p = cv2.resize(p, (g.shape[1], g.shape[0]), interpolation=cv2.INTER_NEAREST)
            d, i = _exact_authors(p, g)
            vd.append(d), vi.append(i)
        if len(fr) == 1:  # a one-frame video's value is that frame's: exactly the rational value
            assert res["per_video"][video]["Dice"] == float(vd[0])
            assert res["per_video"][video]["IoU"] == float(vi[0])
        dice += vd
        iou += vi
    assert res["frames"] == len(dice) == 12 and res["videos"] == 4
    # pooled mean of every frame; float summation of 12 values vs the exact rational mean
    assert abs(res["metrics"]["Dice"] - float(sum(dice) / len(dice))) <= 1e-15
    assert abs(res["metrics"]["IoU"] - float(sum(iou) / len(iou))) <= 1e-15


def test_authors_empty_prediction_on_empty_gt_is_one(tmp_path):
    gt = np.zeros((20, 30), np.uint8)
    _write(tmp_path / "gt" / "a" / "1.png", gt)
    _write(tmp_path / "pred" / "a" / "1.png", gt)
    out = tmp_path / "a.json"
    assert main(["score", str(tmp_path / "pred"), str(tmp_path / "gt"), "--protocol", "authors",
                 "--json", str(out), "--quiet"]) == 0
    assert json.loads(out.read_text())["metrics"] == {"Dice": 1.0, "IoU": 1.0}


def test_flat_image_folder_is_one_frame_videos(folders, tmp_path):
    """A Kvasir-like folder of masks (no video folders): every image is a one-frame video."""
    _, _, frames = folders
    for k, (_, g, p) in enumerate(frames["v0"][:3]):
        _write(tmp_path / "gt" / f"img{k}.png", g)
        _write(tmp_path / "pred" / f"img{k}.png", p)
    out = tmp_path / "r.json"
    assert main(["score", str(tmp_path / "pred"), str(tmp_path / "gt"), "--keep-ends", "--json", str(out), "--quiet"]) == 0
    res = json.loads(out.read_text())
    assert res["videos"] == 3 and res["frames"] == 3
    want = ref.dataset({f"img{k}": [(p, g)] * 3 for k, (_, g, p) in enumerate(frames["v0"][:3])})
    assert abs(res["metrics"]["F_w"] - want["F_w"]) <= TOL


def test_grey_gt_levels_follow_each_protocols_rule(tmp_path):
    """GT grey levels: the toolbox counts > 128 as foreground, the authors > 0; both are reported."""
    gt = np.zeros((40, 60), np.uint8)
    gt[8:32, 10:50] = 100  # a grey ring ...
    gt[12:28, 15:45] = 255  # ... around the object
    pred = np.where(gt == 255, 255, 0).astype(np.uint8)
    _write(tmp_path / "gt" / "a" / "1.png", gt)
    _write(tmp_path / "pred" / "a" / "1.png", pred)
    args = [str(tmp_path / "pred"), str(tmp_path / "gt"), "--keep-ends", "--quiet"]
    assert main(["score", *args, "--json", str(tmp_path / "s.json")]) == 0
    sun = json.loads((tmp_path / "s.json").read_text())
    assert sun["metrics"]["Dice_max"] == 1.0 and sun["metrics"]["IoU_max"] == 1.0
    assert any("> 128" in n for n in sun["notes"])
    assert main(["score", *args, "--protocol", "authors", "--json", str(tmp_path / "a.json")]) == 0
    auth = json.loads((tmp_path / "a.json").read_text())
    d, i = _exact_authors(pred, gt)
    assert auth["metrics"] == {"Dice": float(d), "IoU": float(i)} and d < 1
    assert any("> 0" in n for n in auth["notes"])
