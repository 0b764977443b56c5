"""`lgrnet dataset from-results / export / check` on real result folders of `lgrnet predict`
(a tiny random model at 64 px on a real colonoscopy clip, as a frame folder and as an mp4), with
corrections written by lgrnet.results.corrections' one writer (the one the review page uses)."""
import json
import shutil

import numpy as np
import pytest
import torch
from PIL import Image

from lgrnet import LGRNet
from lgrnet.annotations.masks import coco_rle_decode
from lgrnet.cli import main
from lgrnet.io.images import list_images, read_frame, read_mask
from lgrnet.results import corrections as corr
from lgrnet.io import open_source
from tests.helpers.media import encode_video


@pytest.fixture(scope="module")
def predicted(tmp_path_factory, data_dir):
    """Two result folders of the same 5-frame real clip: from its frame folder and from an mp4."""
    root = tmp_path_factory.mktemp("res")
    src = data_dir / "CVC-ColonDB-300/Train/Frame/9"
    frames = root / "clip9"
    shutil.copytree(src, frames)
    mp4 = encode_video(root / "exam9.mp4", [read_frame(p) for p in list_images(frames)], crf=0)
    torch.manual_seed(0)
    weights = LGRNet.from_preset("tiny").save_pretrained(str(root / "tiny.safetensors"))
    rc = main(["predict", str(frames), str(mp4), "--weights", weights, "--out", str(root / "out"), "--size", "64",
               "--no-progress", "--no-overlay", "--device", "cpu"])
    assert rc == 0
    return root


def fresh_results(predicted, tmp_path):
    out = tmp_path / "results"
    shutil.copytree(predicted / "out", out)
    return out / "clip9", out / "exam9"


def blob(shape, x0, y0, x1, y1):
    m = np.zeros(shape, bool)
    m[y0:y1, x0:x1] = True
    return m


def run(capsys, *args):
    rc = main(["dataset", *map(str, args)])
    return rc, capsys.readouterr().err


def test_from_results_only_checked_edited_all(tmp_path, capsys, predicted):
    folder_res, video_res = fresh_results(predicted, tmp_path)
    meta = json.loads((folder_res / "predictions.json").read_text())
    shape = (meta["height"], meta["width"])
    names = [f["name"] for f in meta["frames"]]
    fixes = {1: blob(shape, 10, 20, 200, 300), 3: blob(shape, 300, 100, 500, 400)}
    for res in (folder_res, video_res):
        corr.set_state(res, 0, "checked", expected_version=0)
        for i, m in fixes.items():
            corr.save_mask(res, i, m, expected_version=0)
    # frame-folder results name their masks after the frames (predictions.json's "file")
    model = {i: read_mask(folder_res / "masks" / f["file"], 127) for i, f in enumerate(meta["frames"])}
    model_v0 = read_mask(video_res / "masks" / "000000.png", 127)  # the mp4 is not lossless: its own masks
    source = open_source(predicted / "exam9.mp4")
    for only, want in (("checked", {0: model[0]}), ("edited", fixes), ("all", {0: model[0], **fixes})):
        out = tmp_path / f"ds-{only}"
        rc, err = run(capsys, "from-results", folder_res, video_res, "--out", out, "--only", only)
        assert rc == 0, err
        # frame folder input: frames copied by name, masks named by the frame's stem
        got = {p.stem: read_mask(p, 127) for p in list_images(out / "GT" / "clip9")}
        assert sorted(got) == sorted(names[i].rsplit(".", 1)[0] for i in want)
        for i, m in want.items():
            assert np.array_equal(got[names[i].rsplit(".", 1)[0]], m), (only, i)
        assert [p.name for p in list_images(out / "Frame" / "clip9")] == names  # every frame, as context
        for n in names:
            assert (out / "Frame" / "clip9" / n).read_bytes() == (predicted / "clip9" / n).read_bytes()
        # video input: frames decoded from the mp4, named by index
        got = {int(p.stem): read_mask(p, 127) for p in list_images(out / "GT" / "exam9")}
        assert sorted(got) == sorted(want)
        want_v = {**want, 0: model_v0} if 0 in want else want
        assert all(np.array_equal(got[i], want_v[i]) for i in want_v)
        frames = list_images(out / "Frame" / "exam9")
        assert [p.name for p in frames] == [f"{i}.png" for i in range(len(names))]
        for i, p in enumerate(frames):
            assert np.array_equal(read_frame(p), source.read(i))
        # what `lgrnet train` runs on it
        assert main(["dataset", "check", str(out)]) == 0
        report = capsys.readouterr().out
        assert f"2 video(s), {2 * len(names)} frame(s), {2 * len(want)} mask(s)" in report
        assert f"clip9: {len(names)} frames, {len(want)} with a mask" in report


def test_from_results_reads_keys_by_frame_name(tmp_path, capsys, predicted):
    folder_res, _ = fresh_results(predicted, tmp_path)
    meta = json.loads((folder_res / "predictions.json").read_text())
    name = meta["frames"][2]["name"]
    stem = name.rsplit(".", 1)[0]
    m = blob((meta["height"], meta["width"]), 5, 5, 50, 60)
    (folder_res / "corrections" / "masks").mkdir(parents=True)
    Image.fromarray(np.where(m, 255, 0).astype(np.uint8)).save(folder_res / "corrections" / "masks" / f"{stem}.png")
    (folder_res / "corrections" / "status.json").write_text(json.dumps(
        {"version": 1, "frames": {stem: {"state": "edited", "time": "2026-12-01T10:00:00Z", "version": 1}}}))
    rc, err = run(capsys, "from-results", folder_res, "--out", tmp_path / "ds")
    assert rc == 0, err
    assert np.array_equal(read_mask(tmp_path / "ds" / "GT" / "clip9" / f"{stem}.png", 127), m)


def test_from_results_errors(tmp_path, capsys, predicted):
    folder_res, video_res = fresh_results(predicted, tmp_path)
    rc, err = run(capsys, "from-results", folder_res, "--out", tmp_path / "ds")
    assert rc == 2 and "no frame is marked checked, edited or boxed (states found: none; nothing reviewed yet)" in err
    corr.save_mask(folder_res, 1, blob((500, 574), 1, 1, 9, 9), expected_version=0)
    (folder_res / "corrections" / "masks" / "000001.png").unlink()
    rc, err = run(capsys, "from-results", folder_res, "--out", tmp_path / "ds")
    assert rc == 2 and "frame '000001' is marked edited, but" in err and "000001.png does not exist" in err
    status = corr.status_path(video_res)
    status.parent.mkdir(parents=True)
    status.write_text('{"version": 1, "frames": {"000002": {"state": "fixed"}}}')
    rc, err = run(capsys, "from-results", video_res, "--out", tmp_path / "ds")
    assert rc == 2 and "status.json: frame '000002' must have \"state\": \"checked\", \"edited\" or \"boxed\"" in err
    status.write_text('{"version": 1, "frames": {"000099": {"state": "checked"}}}')
    rc, err = run(capsys, "from-results", video_res, "--out", tmp_path / "ds")
    assert rc == 2 and "frame '000099' is not a frame of" in err
    status.write_text('{"version": 1, "frames": {"000002": {"state": "checked"}}}')
    (tmp_path / "results" / "moved.mp4").write_bytes((predicted / "exam9.mp4").read_bytes())
    meta = json.loads((video_res / "predictions.json").read_text())
    meta["input"] = str(tmp_path / "gone.mp4")
    (video_res / "predictions.json").write_text(json.dumps(meta))
    rc, err = run(capsys, "from-results", video_res, "--out", tmp_path / "ds")
    assert rc == 2 and "gone.mp4: the input of" in err and "is missing" in err
    assert not (tmp_path / "ds").exists()  # every check runs before anything is written


def test_export_result_uses_corrections(tmp_path, capsys, predicted):
    folder_res, video_res = fresh_results(predicted, tmp_path)
    meta = json.loads((video_res / "predictions.json").read_text())
    fixed = blob((meta["height"], meta["width"]), 40, 50, 90, 120)
    corr.save_mask(video_res, 2, fixed, expected_version=0)
    for model_masks in (False, True):
        out = tmp_path / f"pre-{model_masks}.json"
        rc, err = run(capsys, "export", "--format", "coco", video_res, "--out", out, "--label", "polyp",
                      *(["--model-masks"] if model_masks else []))
        assert rc == 0, err
        doc = json.loads(out.read_text())
        assert [im["file_name"] for im in doc["images"]] == [f"frame_{i:06d}.png" for i in range(meta["num_frames"])]
        assert doc["categories"] == [{"id": 1, "name": "polyp", "supercategory": ""}]
        masks = {i: np.zeros((meta["height"], meta["width"]), bool) for i in range(meta["num_frames"])}
        for a in doc["annotations"]:
            masks[a["image_id"] - 1] |= coco_rle_decode(a["segmentation"])
        for i in range(meta["num_frames"]):
            want = read_mask(video_res / "masks" / f"{i:06d}.png", 127)
            if i == 2 and not model_masks:
                want = fixed
            assert np.array_equal(masks[i], want), (model_masks, i)
    rc, err = run(capsys, "export", "--format", "coco", video_res, "--out", out)
    assert rc == 2 and "already exists; pass --overwrite" in err
    rc, err = run(capsys, "export", "--format", "cvat-video", video_res, folder_res, "--out", tmp_path / "x.xml")
    assert rc == 2 and "a CVAT video task holds one video, but the inputs hold 2" in err
