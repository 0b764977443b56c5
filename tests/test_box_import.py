"""lgrnet dataset import of boxes: COCO boxes alone and CVAT rectangle tracks, round trips that give
back the same boxes exactly, CVAT's interpolation, and malformed boxes (one line, nothing written);
lgrnet dataset check reports box files."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from lgrnet.annotations.coco import write_coco
from lgrnet.annotations.cvat_video import write_cvat_video
from lgrnet.annotations.frames import VideoMasks
from lgrnet.cli import main
from lgrnet.data.boxes import read_box_file

H, W = 20, 24


def run_cli(capsys, *args):
    rc = main(["dataset", *map(str, args)])
    cap = capsys.readouterr()
    return rc, cap.err, cap.out


def frames_folder(root: Path, n: int = 6) -> Path:
    root.mkdir(parents=True)
    rng = np.random.default_rng(1)
    for i in range(n):
        Image.fromarray((rng.random((H, W, 3)) * 255).astype(np.uint8)).save(root / f"frame_{i:06d}.png")
    return root


def imported_boxes(out: Path, video: str):
    return {p.stem: read_box_file(p, (H, W)) for p in sorted((out / "Box" / video).glob("*.json"))}


# float32 values, some not whole; frame 2 annotated without a lesion, frame 4 not annotated
BOXES = {0: np.array([[1, 2, 5, 6]], np.float32),
         1: np.array([[1.5, 2.25, 5.1, 6.3], [10, 11, 3.75, 0.5]], np.float32),
         2: np.zeros((0, 4), np.float32),
         3: np.array([[0, 0, 24, 20]], np.float32),
         5: np.array([[22.9, 18.1, 1.1, 1.9]], np.float32)}


def _video():
    return VideoMasks("clip", [(f"frame_{i:06d}.png", (H, W), BOXES.get(i)) for i in range(6)])


@pytest.mark.parametrize("fmt", ["coco", "cvat-video"])
def test_export_import_round_trip_is_exact(tmp_path, capsys, fmt):
    frames = frames_folder(tmp_path / "clip")
    path = tmp_path / ("boxes.json" if fmt == "coco" else "annotations.xml")
    if fmt == "coco":
        write_coco([_video()], path, "polyp", shape="box")
    else:
        write_cvat_video(_video(), path, "polyp", shape="box")
    rc, err, _ = run_cli(capsys, "import", "--format", fmt, path, "--frames", frames, "--out", tmp_path / "ds")
    assert rc == 0, err
    assert "annotated with boxes" in err
    got = imported_boxes(tmp_path / "ds", "clip")
    # COCO lists the annotated frames; CVAT annotates every frame of the task (frame 4: no box)
    want = dict(BOXES) if fmt == "coco" else {**BOXES, 4: np.zeros((0, 4), np.float32)}
    assert sorted(got) == [f"frame_{i:06d}" for i in sorted(want)]
    for i, b in want.items():
        np.testing.assert_array_equal(got[f"frame_{i:06d}"], b)  # exact
    assert not list((tmp_path / "ds" / "GT" / "clip").iterdir())  # no masks
    # lgrnet dataset check counts them
    rc, err, out = run_cli(capsys, "check", tmp_path / "ds")
    assert rc == 0, err
    n_box = sum(len(b) for b in want.values())
    assert f"{len(want)} frame(s) with a box file ({n_box} box(es); {len(want)} frame(s) with boxes and no mask)" in out
    assert f"clip: 6 frames, 0 with a mask, {len(want)} with boxes" in out
    # lgrnet dataset export --shape box of that dataset, imported again: the same boxes
    again = tmp_path / ("again.json" if fmt == "coco" else "again.xml")
    rc, err, _ = run_cli(capsys, "export", "--format", fmt, "--shape", "box", tmp_path / "ds", "--out", again)
    assert rc == 0 and f"{len(want)} annotated frames (boxes" in err, err
    rc, err, _ = run_cli(capsys, "import", "--format", fmt, again, "--frames", frames, "--out", tmp_path / "ds2")
    assert rc == 0, err
    got2 = imported_boxes(tmp_path / "ds2", "clip")
    assert sorted(got2) == sorted(got) and all(np.array_equal(got2[k], got[k]) for k in got)


CVAT_TRACKS = """<?xml version="1.0" encoding="utf-8"?>
<annotations>
  <version>1.1</version>
  <meta><task><size>8</size><mode>interpolation</mode><start_frame>0</start_frame><stop_frame>7</stop_frame>
    <labels><label><name>polyp</name></label></labels>
    <original_size><width>24</width><height>20</height></original_size></task></meta>
  <track id="0" label="polyp" source="manual">
    <box frame="0" outside="0" occluded="0" keyframe="1" xtl="0" ytl="0" xbr="4" ybr="2" z_order="0"/>
    <box frame="4" outside="0" occluded="0" keyframe="1" xtl="8" ytl="4" xbr="16" ybr="10" z_order="0"/>
    <box frame="5" outside="1" occluded="0" keyframe="1" xtl="8" ytl="4" xbr="16" ybr="10" z_order="0"/>
    <box frame="6" outside="0" occluded="0" keyframe="1" xtl="1" ytl="1" xbr="3" ybr="3" z_order="0"/>
  </track>
  <track id="1" label="polyp" source="manual">
    <box frame="2" outside="0" occluded="0" keyframe="1" xtl="20" ytl="15" xbr="22" ybr="19" z_order="0"/>
    <box frame="3" outside="1" occluded="0" keyframe="1" xtl="20" ytl="15" xbr="22" ybr="19" z_order="0"/>
  </track>
</annotations>
"""


def test_cvat_track_interpolation_and_outside(tmp_path, capsys):
    frames = frames_folder(tmp_path / "clip", n=8)
    xml = tmp_path / "annotations.xml"
    xml.write_text(CVAT_TRACKS)
    rc, err, _ = run_cli(capsys, "import", "--format", "cvat-video", xml, "--frames", frames, "--out", tmp_path / "ds")
    assert rc == 0, err
    got = {int(k.split("_")[1]): v.tolist() for k, v in imported_boxes(tmp_path / "ds", "clip").items()}
    # track 0: key frames 0 -> 4 interpolated linearly ((x0, y0, x1, y1) = (0,0,4,2) + k/4 * (8,4,12,8)),
    # outside at 5, a new key frame at 6 that lasts to the end; track 1: one frame (2)
    lin = [[2.0 * k, 1.0 * k, 4 + 3.0 * k - 2.0 * k, 2 + 2.0 * k - 1.0 * k] for k in range(5)]
    want = {0: [lin[0]], 1: [lin[1]], 2: [lin[2], [20, 15, 2, 4]], 3: [lin[3]], 4: [lin[4]], 5: [],
            6: [[1, 1, 2, 2]], 7: [[1, 1, 2, 2]]}
    assert got == want


def _coco_boxes_doc():
    return {"images": [{"id": 1, "file_name": "frame_000000.png", "width": W, "height": H},
                       {"id": 2, "file_name": "frame_000001.png", "width": W, "height": H}],
            "categories": [{"id": 1, "name": "polyp"}],
            "annotations": [{"id": 1, "image_id": 1, "category_id": 1, "bbox": [2, 3, 5, 6]},
                            {"id": 2, "image_id": 2, "category_id": 1, "bbox": [4, 4, 2, 2], "segmentation": []}]}


def _coco_case(**edit):
    doc = _coco_boxes_doc()
    for key, value in edit.items():
        i, field = key.split("__")
        doc["annotations"][int(i)][field] = value
    return json.dumps(doc)


MALFORMED = {
    "coco outside the frame": ("coco", _coco_case(**{"0__bbox": [20, 3, 5, 6]}),
                               "annotation 1 of 'frame_000000.png': box [20, 3, 5, 6] lies outside the 24x20 frame"),
    "coco negative size": ("coco", _coco_case(**{"1__bbox": [4, 4, -2, 2]}),
                           "annotation 2 of 'frame_000001.png': box [4, 4, -2, 2] has a non-positive size"),
    "coco not four numbers": ("coco", _coco_case(**{"0__bbox": [2, 3, 5]}), "box is [2, 3, 5], not [x, y, w, h]"),
    "coco frame that does not exist": ("coco", json.dumps({**_coco_boxes_doc(), "images": [
        {"id": 1, "file_name": "frame_000000.png", "width": W, "height": H},
        {"id": 2, "file_name": "frame_000042.png", "width": W, "height": H}]}), "frame missing: 'frame_000042.png'"),
    "coco mixed": ("coco", _coco_case(**{"1__segmentation": [[2, 2, 8, 2, 8, 8]]}), "mixes masks (segmentation) and boxes"),
    "cvat outside the frame": ("cvat-video", CVAT_TRACKS.replace('xbr="22"', 'xbr="25"'),
                               "track 1 <box> at frame 2: box [20, 15, 5, 4] lies outside the 24x20 frame"),
    "cvat negative size": ("cvat-video", CVAT_TRACKS.replace('xtl="1" ytl="1" xbr="3"', 'xtl="3" ytl="1" xbr="1"'),
                           "track 0 <box> at frame 6: box [3, 1, -2, 2] has a non-positive size"),
    "cvat frame that does not exist": ("cvat-video", CVAT_TRACKS.replace('<box frame="2"', '<box frame="9"').replace(
        '<box frame="3" outside="1"', '<box frame="10" outside="1"'), "frame missing: track 1 <box> at frame 9"),
    "cvat rotated": ("cvat-video", CVAT_TRACKS.replace('<box frame="2" ', '<box frame="2" rotation="30" '),
                     "a rotated box (rotation=30) is not supported"),
    "cvat mixed": ("cvat-video", CVAT_TRACKS.replace(
        '<track id="1" label="polyp" source="manual">',
        '<track id="7" label="polyp"><polygon frame="0" outside="0" keyframe="1" points="1,1;5,1;5,5"/></track>'
        '<track id="1" label="polyp" source="manual">'), "mix boxes with polygons or masks"),
}


@pytest.mark.parametrize("case", list(MALFORMED))
def test_malformed_boxes_one_line_nothing_written(tmp_path, capsys, case):
    fmt, text, message = MALFORMED[case]
    frames = frames_folder(tmp_path / "clip", n=8)
    path = tmp_path / ("bad.json" if fmt == "coco" else "annotations.xml")
    path.write_text(text)
    rc, err, _ = run_cli(capsys, "import", "--format", fmt, path, "--frames", frames, "--out", tmp_path / "ds")
    lines = err.strip().splitlines()
    assert rc == 2 and len(lines) == 1 and "Traceback" not in err, err
    assert str(path) in lines[0] and message in lines[0], lines[0]
    assert not (tmp_path / "ds").exists() or not any((tmp_path / "ds").rglob("*.json"))
    assert not (tmp_path / "ds" / "Frame" / "clip").exists()  # nothing written


def test_check_reports_a_bad_box_file_in_one_line(tmp_path, capsys):
    frames = frames_folder(tmp_path / "clip")
    path = tmp_path / "boxes.json"
    write_coco([_video()], path, "polyp", shape="box")
    rc, err, _ = run_cli(capsys, "import", "--format", "coco", path, "--frames", frames, "--out", tmp_path / "ds")
    assert rc == 0, err
    bad = tmp_path / "ds" / "Box" / "clip" / "frame_000001.json"
    bad.write_text(json.dumps({"boxes": [[1, 1, 30, 2]], "frame_size": [H, W]}))
    rc, err, out = run_cli(capsys, "check", tmp_path / "ds")
    lines = err.strip().splitlines()
    assert rc == 2 and len(lines) == 1 and "Traceback" not in err, err
    assert f"{bad}: box 0 [1, 1, 30, 2] lies outside the 24x20 frame" in lines[0]
