"""`lgrnet dataset import / export`: COCO, CVAT for video 1.1 and segmentation-mask exports.

Round trips on the real masks of ../shared/data (our layout -> file -> import): RLE and CVAT masks
pixel for pixel; polygons equal to the mask with its holes filled (the stated tolerance,
lgrnet.annotations.masks.POLYGON_TOLERANCE). Hand-written files check the formats' semantics
against masks drawn independently, and every malformed file gives one error line and exit 2.
"""
import io
import json
import shutil
import zipfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from scipy.ndimage import binary_fill_holes

from lgrnet.annotations.masks import (coco_rle_decode, coco_rle_encode, cvat_rle_decode, cvat_rle_encode,
                                      mask_to_polygons, polygons_to_mask)
from lgrnet.cli import main
from lgrnet.io.images import list_images, read_mask
from tests.helpers.media import encode_video

# Real videos: CVC-ColonDB-300 (574x500, binary masks) and a CVC-ClinicDB-612 video whose masks
# have holes and grey edge levels (384x288).
REAL = [("CVC-ColonDB-300/Train", "9"), ("CVC-ColonDB-300/Train", "11"), ("CVC-ClinicDB-612/Test", "0")]


def run_cli(capsys, *args):
    rc = main(["dataset", *map(str, args)])
    err = capsys.readouterr().err
    return rc, err


def gt_masks(split: Path, video: str):
    """{file stem: bool mask} of a real video, GT > 0 as training reads it."""
    return {p.stem: read_mask(p, 0) for p in list_images(split / "GT" / video)}


def imported_masks(out: Path, video: str):
    return {p.stem: read_mask(p, 127) for p in list_images(out / "GT" / video)}


# ----------------------------------------------------------------------------------------- encodings


def test_encodings_exact_on_random_masks():
    rng = np.random.default_rng(0)
    for _ in range(50):
        h, w = rng.integers(1, 30, size=2)
        m = rng.random((h, w)) < rng.uniform(0, 1)
        for compressed in (False, True):
            assert np.array_equal(coco_rle_decode(coco_rle_encode(m, compressed)), m)
        enc = cvat_rle_encode(m)
        if not m.any():
            assert enc is None
            continue
        counts, box = enc
        assert np.array_equal(cvat_rle_decode(counts, *box, h, w), m)
        # polygons: exact up to holes, which come back filled
        assert np.array_equal(polygons_to_mask(mask_to_polygons(m), h, w), binary_fill_holes(m))


def test_cvat_rle_matches_the_format():
    # 3x4 box, row-major, first run background: rows "0110", "0011", "1000"
    m = np.zeros((5, 6), bool)
    m[1, 2:4] = True
    m[2, 3:5] = True
    m[3, 1] = True
    counts, box = cvat_rle_encode(m)
    assert box == (1, 1, 4, 3)
    assert counts == [1, 2, 3, 3, 3]  # "0110" "0011" "1000" read as one row-major run list


def test_coco_rle_matches_pycocotools_uncompressed_form():
    # column-major runs starting with background: column 0 = [1, 0], column 1 = [1, 1]
    m = np.array([[1, 1], [0, 1]], bool)
    assert coco_rle_encode(m)["counts"] == [0, 1, 1, 2]


# ----------------------------------------------------------------------------------------- round trips


@pytest.mark.parametrize("split,video", REAL)
def test_coco_rle_round_trip_real_masks(tmp_path, capsys, data_dir, split, video):
    split = data_dir / split
    coco = tmp_path / "instances.json"
    rc, err = run_cli(capsys, "export", "--format", "coco", split, "--video", video, "--out", coco)
    assert rc == 0, err
    doc = json.loads(coco.read_text())
    assert all(a["iscrowd"] == 1 and isinstance(a["segmentation"]["counts"], list) for a in doc["annotations"])
    rc, err = run_cli(capsys, "import", "--format", "coco", coco, "--frames", split / "Frame" / video, "--out", tmp_path / "ds")
    assert rc == 0, err
    want, got = gt_masks(split, video), imported_masks(tmp_path / "ds", video)
    assert want.keys() == got.keys() and len(want) > 0
    for k in want:
        assert np.array_equal(got[k], want[k]), k
    # frames of a folder are copied byte for byte
    for f in list_images(split / "Frame" / video):
        assert (tmp_path / "ds" / "Frame" / video / f.name).read_bytes() == f.read_bytes()


def test_coco_compressed_rle_and_multi_video_file(tmp_path, capsys, data_dir):
    split = data_dir / "CVC-ColonDB-300/Train"
    coco = tmp_path / "all.json"
    assert run_cli(capsys, "export", "--format", "coco", split, "--video", "9", "--video", "11", "--out", coco)[0] == 0
    doc = json.loads(coco.read_text())
    assert {im["file_name"].split("/")[0] for im in doc["images"]} == {"9", "11"}
    for a in doc["annotations"]:  # detectors write compressed counts; the reader takes both
        im = next(i for i in doc["images"] if i["id"] == a["image_id"])
        a["segmentation"] = coco_rle_encode(coco_rle_decode(a["segmentation"]), compressed=True)
        assert a["segmentation"]["size"] == [im["height"], im["width"]]
    coco.write_text(json.dumps(doc))
    rc, err = run_cli(capsys, "import", "--format", "coco", coco, "--frames", split / "Frame" / "11", "--out", tmp_path / "ds")
    assert rc == 0, err
    want, got = gt_masks(split, "11"), imported_masks(tmp_path / "ds", "11")
    assert want.keys() == got.keys() and all(np.array_equal(got[k], want[k]) for k in want)


@pytest.mark.parametrize("fmt", ["coco", "cvat-video"])
def test_polygon_round_trip_within_tolerance(tmp_path, capsys, data_dir, fmt):
    split = data_dir / "CVC-ClinicDB-612/Test"  # video 0: masks with holes
    out = tmp_path / ("p.json" if fmt == "coco" else "p.xml")
    assert run_cli(capsys, "export", "--format", fmt, "--shape", "polygon", split, "--video", "0", "--out", out)[0] == 0
    rc, err = run_cli(capsys, "import", "--format", fmt, out, "--frames", split / "Frame" / "0", "--out", tmp_path / "ds")
    assert rc == 0, err
    want, got = gt_masks(split, "0"), imported_masks(tmp_path / "ds", "0")
    holes = 0
    for k in want:
        filled = binary_fill_holes(want[k])
        holes += int((filled != want[k]).any())
        assert np.array_equal(got[k], filled), k  # exact except holes
    assert holes > 0  # the tolerance was exercised


@pytest.mark.parametrize("split,video", REAL[1:])
def test_cvat_video_mask_round_trip_real_masks(tmp_path, capsys, data_dir, split, video):
    split = data_dir / split
    xml = tmp_path / "annotations.xml"
    assert run_cli(capsys, "export", "--format", "cvat-video", split, "--video", video, "--out", xml)[0] == 0
    text = xml.read_text()
    assert "<mask " in text and "<version>1.1</version>" in text and "<mode>interpolation</mode>" in text
    # the zip CVAT downloads holds annotations.xml
    with zipfile.ZipFile(tmp_path / "task.zip", "w") as z:
        z.write(xml, "annotations.xml")
    rc, err = run_cli(capsys, "import", "--format", "cvat-video", tmp_path / "task.zip", "--frames",
                      split / "Frame" / video, "--out", tmp_path / "ds")
    assert rc == 0, err
    want, got = gt_masks(split, video), imported_masks(tmp_path / "ds", video)
    assert want.keys() == got.keys() and all(np.array_equal(got[k], want[k]) for k in want)


# ----------------------------------------------------------------------------------------- semantics


def frames_folder(root: Path, n: int = 6, size=(20, 24)) -> Path:
    root.mkdir(parents=True)
    rng = np.random.default_rng(1)
    for i in range(n):
        Image.fromarray((rng.random((*size, 3)) * 255).astype(np.uint8)).save(root / f"frame_{i:06d}.png")
    return root


def rect(h, w, x0, y0, x1, y1):
    """The pixels a polygon with integer corners (x0, y0)-(x1, y1) covers: columns x0..x1-1, rows y0..y1-1."""
    m = np.zeros((h, w), bool)
    m[y0:y1, x0:x1] = True
    return m


CVAT_XML = """<?xml version="1.0" encoding="utf-8"?>
<annotations>
  <version>1.1</version>
  <meta><task><size>6</size><mode>interpolation</mode><start_frame>0</start_frame><stop_frame>5</stop_frame>
    <labels><label><name>polyp</name></label><label><name>tool</name></label></labels>
    <original_size><width>24</width><height>20</height></original_size></task></meta>
  <track id="0" label="polyp" source="manual">
    <polygon frame="0" outside="0" occluded="0" keyframe="1" points="2.00,3.00;10.00,3.00;10.00,9.00;2.00,9.00" z_order="0"/>
    <polygon frame="1" outside="0" occluded="0" keyframe="0" points="3.00,3.00;11.00,3.00;11.00,9.00;3.00,9.00" z_order="0"/>
    <polygon frame="2" outside="1" occluded="0" keyframe="1" points="3.00,3.00;11.00,3.00;11.00,9.00;3.00,9.00" z_order="0"/>
  </track>
  <track id="1" label="polyp" source="manual">
    <mask frame="3" outside="0" occluded="0" keyframe="1" rle="{rle}" left="{left}" top="{top}" width="{width}" height="{height}" z_order="0"/>
    <mask frame="5" outside="1" occluded="0" keyframe="1" rle="{rle}" left="{left}" top="{top}" width="{width}" height="{height}" z_order="0"/>
  </track>
  <track id="2" label="tool" source="manual">
    <box frame="0" outside="0" occluded="0" keyframe="1" xtl="1" ytl="1" xbr="5" ybr="5" z_order="0"/>
  </track>
</annotations>
"""
BLOB = np.zeros((20, 24), bool)
BLOB[12:17, 14:20] = True
BLOB[13, 15] = False


def cvat_xml(**changes) -> str:
    counts, (x, y, w, h) = cvat_rle_encode(BLOB)
    fields = dict(rle=", ".join(map(str, counts)), left=x, top=y, width=w, height=h)
    fields.update(changes)
    return CVAT_XML.replace("{rle}", str(fields["rle"])).replace("{left}", str(fields["left"])) \
        .replace("{top}", str(fields["top"])).replace("{width}", str(fields["width"])).replace("{height}", str(fields["height"]))


def test_cvat_tracks_shapes_outside_and_labels(tmp_path, capsys):
    frames = frames_folder(tmp_path / "clip")
    xml = tmp_path / "annotations.xml"
    xml.write_text(cvat_xml())
    rc, err = run_cli(capsys, "import", "--format", "cvat-video", xml, "--frames", frames, "--out", tmp_path / "ds",
                      "--label", "polyp")
    assert rc == 0, err
    got = imported_masks(tmp_path / "ds", "clip")
    empty = np.zeros((20, 24), bool)
    want = {0: rect(20, 24, 2, 3, 10, 9), 1: rect(20, 24, 3, 3, 11, 9), 2: empty, 3: BLOB, 4: BLOB, 5: empty}
    assert sorted(got) == [f"frame_{i:06d}" for i in range(6)]  # every frame of the task is annotated
    for i, m in want.items():
        assert np.array_equal(got[f"frame_{i:06d}"], m), i
    # two labels defined: without --label the file is ambiguous; the box's label makes box files
    rc, err = run_cli(capsys, "import", "--format", "cvat-video", xml, "--frames", frames, "--out", tmp_path / "ds2")
    assert rc == 2 and "several labels ('polyp', 'tool'); pass --label" in err
    rc, err = run_cli(capsys, "import", "--format", "cvat-video", xml, "--frames", frames, "--out", tmp_path / "ds2",
                      "--label", "tool")
    assert rc == 0 and "6 annotated with boxes (6 boxes)" in err, err  # the box lasts to the end (tests/test_box_import.py)
    assert json.loads((tmp_path / "ds2" / "Box" / "clip" / "frame_000005.json").read_text())["boxes"] == [[1, 1, 4, 4]]
    rc, err = run_cli(capsys, "import", "--format", "cvat-video", xml, "--frames", frames, "--out", tmp_path / "ds3",
                      "--label", "tool", "--label", "polyp")
    assert rc == 2 and "mix boxes with polygons or masks" in err


def test_coco_polygons_rle_union_and_frames_of_a_video(tmp_path, capsys):
    """COCO names a video's frames frame_000012.png (CVAT's naming); matched by number to an mp4."""
    rng = np.random.default_rng(2)
    clip = [(rng.random((32, 48, 3)) * 255).astype(np.uint8) for _ in range(5)]
    mp4 = encode_video(tmp_path / "exam.mp4", clip)
    blob = np.zeros((32, 48), bool)
    blob[20:30, 30:40] = True
    doc = {"images": [{"id": i + 1, "file_name": f"frame_{i:06d}.png", "width": 48, "height": 32} for i in (0, 2, 4)],
           "categories": [{"id": 1, "name": "polyp"}, {"id": 7, "name": "tool"}],
           "annotations": [
               {"id": 1, "image_id": 1, "category_id": 1, "segmentation": [[4, 4, 12, 4, 12, 10, 4, 10]], "iscrowd": 0},
               {"id": 2, "image_id": 1, "category_id": 1, "segmentation": coco_rle_encode(blob), "iscrowd": 1},
               {"id": 3, "image_id": 3, "category_id": 7, "segmentation": [[0, 0, 30, 0, 30, 30]], "iscrowd": 0}]}
    coco = tmp_path / "c.json"
    coco.write_text(json.dumps(doc))
    rc, err = run_cli(capsys, "import", "--format", "coco", coco, "--frames", mp4, "--out", tmp_path / "ds",
                      "--label", "polyp")
    assert rc == 0, err
    got = imported_masks(tmp_path / "ds", "exam")
    assert sorted(got) == ["0", "2", "4"]  # frames of a video are named by their index
    assert np.array_equal(got["0"], rect(32, 48, 4, 4, 12, 10) | blob)
    assert not got["2"].any() and not got["4"].any()  # listed images without a polyp: empty masks
    frames = list_images(tmp_path / "ds" / "Frame" / "exam")
    assert [f.name for f in frames] == [f"{i}.png" for i in range(5)]  # every frame is written, decoded
    from lgrnet.io import open_source

    src = open_source(mp4)
    for i, f in enumerate(frames):
        assert np.array_equal(np.asarray(Image.open(f).convert("RGB")), src.read(i))


def seg_export(root: Path, masks, labelmap="background:0,0,0::\npolyp:250,50,83::\ntool:0,0,250::\n") -> Path:
    (root / "SegmentationClass").mkdir(parents=True)
    (root / "labelmap.txt").write_text("# label:color_rgb:parts:actions\n" + labelmap)
    for name, rgb in masks.items():
        Image.fromarray(rgb).save(root / "SegmentationClass" / f"{name}.png")
    return root


def test_cvat_segmentation_mask_export(tmp_path, capsys):
    frames = frames_folder(tmp_path / "clip")
    polyp = np.zeros((20, 24), bool)
    polyp[5:12, 3:9] = True
    tool = np.zeros((20, 24), bool)
    tool[14:18, 10:20] = True
    rgb = np.zeros((20, 24, 3), np.uint8)
    rgb[polyp] = (250, 50, 83)
    rgb[tool] = (0, 0, 250)
    export = seg_export(tmp_path / "export", {"frame_000001": rgb, "frame_000004": np.zeros_like(rgb)})
    with zipfile.ZipFile(tmp_path / "export.zip", "w") as z:
        for p in export.rglob("*"):
            z.write(p, "task/" + p.relative_to(export).as_posix())
    for src in (export, tmp_path / "export.zip"):
        out = tmp_path / f"ds-{src.name}"
        rc, err = run_cli(capsys, "import", "--format", "cvat-masks", src, "--frames", frames, "--out", out,
                          "--label", "polyp")
        assert rc == 0, err
        got = imported_masks(out, "clip")
        assert sorted(got) == ["frame_000001", "frame_000004"]
        assert np.array_equal(got["frame_000001"], polyp) and not got["frame_000004"].any()
    rc, err = run_cli(capsys, "import", "--format", "cvat-masks", export, "--frames", frames, "--out", tmp_path / "x",
                      "--label", "polyp", "--label", "tool")
    assert rc == 0, err
    assert np.array_equal(imported_masks(tmp_path / "x", "clip")["frame_000001"], polyp | tool)


# ----------------------------------------------------------------------------------------- malformed


def _coco_doc():
    return {"images": [{"id": 1, "file_name": "frame_000000.png", "width": 24, "height": 20}],
            "categories": [{"id": 1, "name": "polyp"}],
            "annotations": [{"id": 1, "image_id": 1, "category_id": 1, "iscrowd": 0,
                             "segmentation": [[2, 2, 8, 2, 8, 8, 2, 8]]}]}


def _edit(**kw):
    def make(doc):
        for path, value in kw.items():
            target = doc
            keys = path.split("__")
            for k in keys[:-1]:
                target = target[int(k)] if k.isdigit() else target[k]
            last = keys[-1]
            if value is KeyError:
                del target[last]
            else:
                target[int(last) if last.isdigit() else last] = value
        return doc
    return make


COCO_CASES = {
    "empty": (None, "empty file"),
    "not json": ("{images: [", "malformed: not valid JSON"),
    "no lists": ({"images": []}, "malformed: a COCO file is an object with lists"),
    "unknown category": (_edit(annotations__0__category_id=5), "unknown label: annotation 1 has category id 5"),
    "unknown image": (_edit(annotations__0__image_id=9), "annotation 1 refers to image id 9"),
    "frame missing": (_edit(images__0__file_name="frame_000099.png"), "frame missing: 'frame_000099.png'"),
    "size different": (_edit(images__0__width=30), "size different: 'frame_000000.png' is annotated at 30x20"),
    "rle size": (_edit(annotations__0__segmentation={"size": [10, 10], "counts": [100]}), "size different: annotation 1 has an RLE of size [10, 10]"),
    "rle counts": (_edit(annotations__0__segmentation={"size": [20, 24], "counts": [3, 4]}), "RLE counts add up to 7 pixels"),
    "short polygon": (_edit(annotations__0__segmentation=[[1, 1, 5, 5]]), "a polygon needs at least 3 (x, y) points"),
    "no segmentation": (_edit(annotations__0__segmentation=KeyError), "no 'segmentation'"),
    "unknown --label": ("label=lesion", "unknown label 'lesion'; the file defines 'polyp'"),
}


@pytest.mark.parametrize("case", list(COCO_CASES))
def test_malformed_coco_one_clear_error(tmp_path, capsys, case):
    frames = frames_folder(tmp_path / "clip", n=2)
    content, message = COCO_CASES[case]
    path = tmp_path / "bad.json"
    extra = []
    if content is None:
        path.write_bytes(b"")
    elif isinstance(content, str) and content.startswith("label="):
        path.write_text(json.dumps(_coco_doc()))
        extra = ["--label", content[6:]]
    elif isinstance(content, str):
        path.write_text(content)
    elif callable(content):
        path.write_text(json.dumps(content(_coco_doc())))
    else:
        path.write_text(json.dumps(content))
    rc, err = run_cli(capsys, "import", "--format", "coco", path, "--frames", frames, "--out", tmp_path / "ds", *extra)
    assert rc == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in err, err
    assert str(path) in lines[0] and message in lines[0], lines[0]
    assert not (tmp_path / "ds" / "Frame" / "clip").exists()  # nothing written


CVAT_CASES = {
    "empty": ("", "empty file"),
    "not xml": ("<annotations><track>", "malformed XML"),
    "wrong root": ("<dataset/>", "the root element is <dataset>"),
    "unknown label": (cvat_xml().replace('label="tool"', 'label="instrument"'), "unknown label 'instrument'"),
    "rle": (cvat_xml(rle="1, 2, 3"), "mask rle covers 6 pixels"),
    "box outside frame": (cvat_xml(left=22), "leaves the 24x20 frame"),
    "frame outside task": (cvat_xml().replace('<mask frame="3"', '<mask frame="9"'), "frame missing: track 1 <mask> at frame 9"),
    "size different": (cvat_xml().replace("<width>24</width>", "<width>32</width>"), "size different"),
    "polygon gap": (cvat_xml().replace('<polygon frame="1"', '<polygon frame="2"').replace('<polygon frame="2" outside="1"', '<polygon frame="4" outside="1"'),
                    "polygon key frames 0 and 2 without the frames between"),
    "bad number": (cvat_xml().replace('<mask frame="3"', '<mask frame="three"'), "frame='three' is not a number"),
}


@pytest.mark.parametrize("case", list(CVAT_CASES))
def test_malformed_cvat_one_clear_error(tmp_path, capsys, case):
    frames = frames_folder(tmp_path / "clip")
    text, message = CVAT_CASES[case]
    path = tmp_path / "annotations.xml"
    path.write_text(text)
    rc, err = run_cli(capsys, "import", "--format", "cvat-video", path, "--frames", frames, "--out", tmp_path / "ds",
                      "--label", "polyp")
    lines = err.strip().splitlines()
    assert rc == 2 and len(lines) == 1 and "Traceback" not in err, err
    assert str(path) in lines[0] and message in lines[0], lines[0]
    assert not (tmp_path / "ds" / "Frame" / "clip").exists()


def test_malformed_segmentation_masks_one_clear_error(tmp_path, capsys):
    frames = frames_folder(tmp_path / "clip", n=3)
    good = np.zeros((20, 24, 3), np.uint8)
    good[2:5, 2:5] = (250, 50, 83)
    odd = good.copy()
    odd[7, 9] = (1, 2, 3)
    cases = {
        "no labelmap": (lambda r: (r / "labelmap.txt").unlink(), "no labelmap.txt"),
        "empty labelmap": (lambda r: (r / "labelmap.txt").write_text(""), "labelmap.txt: empty file"),
        "bad labelmap": (lambda r: (r / "labelmap.txt").write_text("polyp:red::\n"), "malformed line 1: 'polyp:red::'"),
        "empty png": (lambda r: (r / "SegmentationClass" / "frame_000000.png").write_bytes(b""), "frame_000000.png: empty file"),
        "broken png": (lambda r: (r / "SegmentationClass" / "frame_000000.png").write_bytes(b"\x89PNG broken"), "cannot read the PNG"),
        "unknown colour": (lambda r: Image.fromarray(odd).save(r / "SegmentationClass" / "frame_000000.png"),
                           "unknown label: colour (1, 2, 3) at x=9, y=7"),
        "frame missing": (lambda r: Image.fromarray(good).save(r / "SegmentationClass" / "frame_000007.png"),
                          "frame missing: 'frame_000007.png'"),
        "size different": (lambda r: Image.fromarray(good[:10]).save(r / "SegmentationClass" / "frame_000000.png"),
                           "size different: 'frame_000000.png' is annotated at 24x10"),
    }
    for case, (breaker, message) in cases.items():
        root = tmp_path / case.replace(" ", "_")
        seg_export(root, {"frame_000000": good, "frame_000002": good}, labelmap="background:0,0,0::\npolyp:250,50,83::\n")
        breaker(root)
        rc, err = run_cli(capsys, "import", "--format", "cvat-masks", root, "--frames", frames, "--out", tmp_path / "ds")
        lines = err.strip().splitlines()
        assert rc == 2 and len(lines) == 1 and "Traceback" not in err, (case, err)
        assert str(root) in lines[0] and message in lines[0], (case, lines[0])
    assert not (tmp_path / "ds").exists()


def test_import_refuses_to_overwrite_and_checks_inputs(tmp_path, capsys):
    frames = frames_folder(tmp_path / "clip", n=2)
    coco = tmp_path / "c.json"
    coco.write_text(json.dumps(_coco_doc()))
    out = tmp_path / "ds"
    assert run_cli(capsys, "import", "--format", "coco", coco, "--frames", frames, "--out", out)[0] == 0
    before = (out / "GT" / "clip" / "frame_000000.png").read_bytes()
    doc = _coco_doc()
    doc["annotations"] = []
    coco.write_text(json.dumps(doc))
    rc, err = run_cli(capsys, "import", "--format", "coco", coco, "--frames", frames, "--out", out)
    assert rc == 2 and "already holds video 'clip'; pass --overwrite" in err
    assert (out / "GT" / "clip" / "frame_000000.png").read_bytes() == before
    assert run_cli(capsys, "import", "--format", "coco", coco, "--frames", frames, "--out", out, "--overwrite")[0] == 0
    assert not read_mask(out / "GT" / "clip" / "frame_000000.png").any()
    assert not [p for p in out.iterdir() if p.name.startswith(".")]  # no temporary folders left
    rc, err = run_cli(capsys, "import", "--format", "coco", tmp_path / "missing.json", "--frames", frames, "--out", out, "--video", "v2")
    assert rc == 2 and "missing.json: no such file or folder" in err
    shutil.rmtree(frames)
    rc, err = run_cli(capsys, "import", "--format", "coco", coco, "--frames", frames, "--out", out, "--video", "v3")
    assert rc == 2 and "clip: no such file or folder" in err


def test_zip_of_coco_with_one_json_and_image_folder(tmp_path, capsys):
    frames = frames_folder(tmp_path / "clip", n=1)
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        doc = _coco_doc()
        doc["images"][0]["file_name"] = "images/frame_000000.png"  # one folder for all images: one video
        z.writestr("annotations/instances_default.json", json.dumps(doc))
    (tmp_path / "coco.zip").write_bytes(buf.getvalue())
    rc, err = run_cli(capsys, "import", "--format", "coco", tmp_path / "coco.zip", "--frames", frames, "--out", tmp_path / "ds")
    assert rc == 0, err
    assert np.array_equal(imported_masks(tmp_path / "ds", "clip")["frame_000000"], rect(20, 24, 2, 2, 8, 8))
