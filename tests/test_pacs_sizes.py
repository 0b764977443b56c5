"""Sizes in millimetres: the calibration read from a DICOM header (ultrasound regions, Pixel Spacing,
none), the mask measurements against a brute-force reference, and `lgrnet predict` on a calibrated
and an uncalibrated cine (predictions.json/csv, the TID 1500 measurement report beside the SEG)."""
import csv
import json
import shutil
import subprocess

import numpy as np
import pytest
import torch
from pydicom.dataset import Dataset
from pydicom.sequence import Sequence

from lgrnet import LGRNet
from lgrnet.cli import main
from lgrnet.io.calibration import dataset_calibration
from lgrnet.results.sizes import SizeTracker, measure_mask
from tests.helpers.pacs_server import make_cine


def region(dx_cm, dy_cm, units=(3, 3), spatial=1):
    r = Dataset()
    r.RegionSpatialFormat = spatial
    r.PhysicalUnitsXDirection, r.PhysicalUnitsYDirection = units
    r.PhysicalDeltaX, r.PhysicalDeltaY = dx_cm, dy_cm
    return r


def header(regions=None, spacing=None, shared_spacing=None):
    ds = Dataset()
    if regions is not None:
        ds.SequenceOfUltrasoundRegions = Sequence(regions)
    if spacing is not None:
        ds.PixelSpacing = spacing
    if shared_spacing is not None:
        measures = Dataset()
        measures.PixelSpacing = shared_spacing
        group = Dataset()
        group.PixelMeasuresSequence = Sequence([measures])
        ds.SharedFunctionalGroupsSequence = Sequence([group])
    return ds


def test_calibration_from_the_header():
    cal, why = dataset_calibration(header([region(0.02, 0.03)]))
    assert why is None and (cal.mm_x, cal.mm_y, cal.source) == (pytest.approx(0.2), pytest.approx(0.3), "ultrasound regions")
    # a Doppler strip (not 2-D) beside one 2-D region does not matter; two 2-D regions must agree
    cal, _ = dataset_calibration(header([region(0.02, 0.02), region(0.5, 1.0, units=(4, 7), spatial=3)]))
    assert cal.mm_x == pytest.approx(0.2)
    assert dataset_calibration(header([region(0.02, 0.02), region(0.02, 0.02)]))[0].mm_y == pytest.approx(0.2)
    cal, why = dataset_calibration(header([region(0.02, 0.02), region(0.04, 0.04)]))
    assert cal is None and "different scales" in why
    cal, why = dataset_calibration(header([region(0.02, 0.02, units=(0, 0))]))  # units "none"
    assert cal is None and "not calibrated in cm" in why
    # Pixel Spacing: row spacing (down) first, then column spacing (across)
    cal, _ = dataset_calibration(header(spacing=[0.5, 0.25]))
    assert (cal.mm_x, cal.mm_y, cal.source) == (0.25, 0.5, "pixel spacing")
    assert dataset_calibration(header(shared_spacing=[0.4, 0.4]))[0].mm_x == 0.4
    # regions win over Pixel Spacing; uncalibrated regions fall back to it
    assert dataset_calibration(header([region(0.01, 0.01)], spacing=[0.5, 0.5]))[0].mm_x == pytest.approx(0.1)
    assert dataset_calibration(header([region(0.01, 0.01, units=(0, 0))], spacing=[0.5, 0.5]))[0].mm_x == 0.5
    cal, why = dataset_calibration(header())
    assert cal is None and "no Sequence of Ultrasound Regions in cm and no Pixel Spacing" in why
    assert dataset_calibration(header(spacing=[0, 0.5]))[0] is None  # a zero spacing is no calibration


def brute_force(mask, mx, my):
    """Every corner of every mask pixel (no hull, no row extremes): max distance and the width across it."""
    ys, xs = np.nonzero(mask)
    pts = np.concatenate([np.stack([xs + dx, ys + dy], 1) for dx in (0, 1) for dy in (0, 1)]).astype(np.float64)
    pts *= [mx, my]
    best, pair = -1.0, None
    for i in range(len(pts)):
        d = np.sqrt(((pts - pts[i]) ** 2).sum(1))
        j = int(d.argmax())
        if d[j] > best:
            best, pair = float(d[j]), (i, j)
    u = (pts[pair[1]] - pts[pair[0]]) / best
    across = pts @ np.array([-u[1], u[0]])
    return mask.sum() * mx * my, best, float(across.max() - across.min())


@pytest.mark.parametrize("seed", range(6))
def test_measure_mask_matches_brute_force(seed):
    rng = np.random.default_rng(seed)
    mask = np.zeros((24, 30), bool)
    for _ in range(rng.integers(1, 4)):  # a few blobs, some touching the border
        y, x, r = rng.integers(0, 24), rng.integers(0, 30), rng.integers(1, 7)
        yy, xx = np.mgrid[:24, :30]
        mask |= (yy - y) ** 2 + ((xx - x) * rng.uniform(0.5, 1.5)) ** 2 < r ** 2
    mask[rng.integers(0, 24), rng.integers(0, 30)] = True
    mx, my = rng.uniform(0.05, 0.5), rng.uniform(0.05, 0.5)  # non-square pixels
    got = measure_mask(mask, mx, my)
    area, long_axis, short_axis = brute_force(mask, mx, my)
    assert got.area_mm2 == pytest.approx(area, rel=1e-12)
    assert got.long_axis_mm == pytest.approx(long_axis, rel=1e-9)
    assert got.short_axis_mm == pytest.approx(short_axis, rel=1e-9)


def test_measure_mask_shapes():
    rect = np.zeros((20, 20), bool)
    rect[2:5, 3:15] = True  # 12 x 3 pixels of 0.5 x 2 mm: 6 x 6 mm, a square
    got = measure_mask(rect, 0.5, 2.0)
    assert got.area_mm2 == pytest.approx(36.0)
    assert got.long_axis_mm == pytest.approx(6 * np.sqrt(2))  # the square's diagonal
    assert got.short_axis_mm == pytest.approx(6 * np.sqrt(2))  # its width across the diagonal
    assert measure_mask(np.zeros((4, 4), bool), 1, 1) is None
    tracker = SizeTracker()
    assert tracker.row(rect) == {} and tracker.columns == []
    assert tracker.header()["calibration"] is None


@pytest.fixture(scope="module")
def weights(tmp_path_factory):
    torch.manual_seed(0)
    return LGRNet.from_preset("tiny").save_pretrained(str(tmp_path_factory.mktemp("w") / "tiny.safetensors"))


def test_predict_calibrated_and_uncalibrated_cines(tmp_path, weights):
    hd = pytest.importorskip("highdicom")
    cal = make_cine(tmp_path / "cal.dcm", mm_per_pixel=0.3, seed=5)["path"]
    plain = make_cine(tmp_path / "plain.dcm", rgb=False, seed=6)["path"]
    out = tmp_path / "out"
    assert main(["predict", str(cal), str(plain), "--weights", weights, "--out", str(out), "--size", "64",
                 "--no-progress", "--no-overlay"]) == 0
    meta = json.loads((out / "cal" / "predictions.json").read_text())
    assert meta["calibration"] == {"mm_per_pixel_x": 0.3, "mm_per_pixel_y": 0.3, "source": "ultrasound regions"}
    from PIL import Image

    for f in meta["frames"]:  # each row: the mask's measurement at 0.3 mm a pixel (rounded to 4 decimals)
        mask = np.asarray(Image.open(out / "cal" / "masks" / f["file"])) > 127
        size = measure_mask(mask, 0.3, 0.3)
        if size is None:
            assert f["area_mm2"] is None and f["long_axis_mm"] is None
        else:
            assert f["area_mm2"] == pytest.approx(f["area"] * 0.09, abs=1e-4)
            assert f["long_axis_mm"] == pytest.approx(size.long_axis_mm, abs=1e-4)
            assert f["short_axis_mm"] == pytest.approx(size.short_axis_mm, abs=1e-4)
    largest = meta["largest_lesion"]
    areas = [f["area_mm2"] or 0 for f in meta["frames"]]
    assert largest["area_mm2"] == {"value": max(areas), "frame": int(np.argmax(areas))}
    assert largest["long_axis_mm"]["value"] == max(f["long_axis_mm"] or 0 for f in meta["frames"])
    with open(out / "cal" / "predictions.csv") as fh:
        rows = list(csv.DictReader(fh))
    assert [float(r["area_mm2"] or 0) for r in rows] == areas

    # the measurement report: one planar ROI group per SEG frame, referencing it, with the JSON's numbers
    sr = hd.sr.srread(out / "cal" / "measurements.dcm")
    import pydicom

    seg = pydicom.dcmread(out / "cal" / "segmentation.dcm")
    groups = sr.content.get_planar_roi_measurement_groups()
    assert len(groups) == len([a for a in areas if a > 0]) == seg.NumberOfFrames
    for k, g in enumerate(groups, start=1):
        ref = g.referenced_segmentation_frame
        assert ref.referenced_sop_instance_uid == seg.SOPInstanceUID
        frame = int(seg.PerFrameFunctionalGroupsSequence[k - 1].DerivationImageSequence[0].SourceImageSequence[0]
                    .ReferencedFrameNumber)
        values = {m.name.meaning: m.value for m in g.get_measurements()}
        row = meta["frames"][frame - 1]
        assert values == {"Area": pytest.approx(row["area_mm2"]), "Long axis": pytest.approx(row["long_axis_mm"]),
                          "Short axis": pytest.approx(row["short_axis_mm"])}
    if shutil.which("dciodvfy"):
        run = subprocess.run(["dciodvfy", str(out / "cal" / "measurements.dcm")], capture_output=True, text=True)
        assert "Error" not in run.stdout + run.stderr, run.stdout + run.stderr

    meta = json.loads((out / "plain" / "predictions.json").read_text())
    assert meta["calibration"] is None and "no sizes in mm (never guessed)" in meta["calibration_note"]
    assert "area_mm2" not in meta["frames"][0] and "largest_lesion" not in meta
    assert not (out / "plain" / "measurements.dcm").exists() and (out / "plain" / "segmentation.dcm").exists()
