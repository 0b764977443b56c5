"""Sizes in mm on the review page (issue 32): the sizes route (GET /api/results/<rid>/sizes/<i>.json)
answers predictions.json's numbers for the model's masks and lgrnet.results.sizes' for a reviewer's
corrected mask, from the calibration the result stores; the page shows them in the frame's details,
the largest lesion in the result's details, and "no calibration: sizes in pixels only" for a result
without a calibration.

The results are written by `lgrnet predict` (tiny model) on two DICOM cines of tests/helpers/pacs_server.py:
one with non-square Pixel Spacing (0.25 mm across, 0.4 mm down: an x/y swap changes every number),
one without any calibration."""
from __future__ import annotations

import io
import json

import numpy as np
import pytest
import torch
from PIL import Image

from lgrnet import LGRNet
from lgrnet.cli import main
from lgrnet.results.sizes import SIZE_KEYS, measure_mask
from lgrnet.viewer import ViewerApp, find_results
from tests.helpers.pacs_server import make_cine
from tests.helpers.viewer_results import Server, make_result

MM_X, MM_Y = 0.25, 0.4  # Pixel Spacing [row, column] = [0.4, 0.25]


@pytest.fixture(scope="module")
def results(tmp_path_factory):
    """OUT with cal/ (calibrated) and plain/ (uncalibrated), written by `lgrnet predict`."""
    import pydicom

    tmp = tmp_path_factory.mktemp("sizes")
    torch.manual_seed(0)
    weights = LGRNet.from_preset("tiny").save_pretrained(str(tmp / "tiny.safetensors"))
    cal = make_cine(tmp / "cal.dcm", frames=4, pixel_spacing=0.3, seed=5)["path"]
    ds = pydicom.dcmread(cal)
    ds.PixelSpacing = [MM_Y, MM_X]
    ds.save_as(cal)
    make_cine(tmp / "plain.dcm", frames=4, rgb=False, seed=6)
    out = tmp / "out"
    assert main(["predict", str(cal), str(tmp / "plain.dcm"), "--weights", weights, "--out", str(out),
                 "--size", "64", "--no-progress", "--no-overlay"]) == 0
    meta = json.loads((out / "cal" / "predictions.json").read_text())
    assert meta["calibration"] == {"mm_per_pixel_x": MM_X, "mm_per_pixel_y": MM_Y, "source": "pixel spacing"}
    assert any(f["area_mm2"] for f in meta["frames"]), "the tiny model found no lesion: nothing to compare"
    return out


@pytest.fixture
def server(results, tmp_path):
    """A viewer over a fresh copy of the results (corrections written by one test stay there)."""
    import shutil

    out = tmp_path / "out"
    shutil.copytree(results, out)
    s = Server(ViewerApp(find_results(out)))
    s.out = out
    s.ids = {r["name"]: r["id"] for r in s.get_json("/api/info")["results"]}
    yield s
    s.close()


def corrected_mask(h: int, w: int) -> np.ndarray:
    """A tilted bar with a notch: long and short axes both depend on which way the pixels are longer."""
    yy, xx = np.mgrid[:h, :w]
    m = np.abs((yy - h / 2) - 0.6 * (xx - w / 2)) < 6
    m &= (xx > 8) & (xx < w - 5)
    m[h // 2 - 2:h // 2 + 2, w // 2:w // 2 + 6] = False
    return m


def put_mask(server, rid: str, i: int, mask: np.ndarray, version: int) -> dict:
    buf = io.BytesIO()
    Image.fromarray(mask.astype(np.uint8) * 255).save(buf, format="PNG")
    status, _, body = server.request("PUT", f"/api/results/{rid}/corrections/{i}.png", body=buf.getvalue(),
                                     headers={"Content-Type": "image/png", "X-Expected-Version": str(version)})
    assert status == 200, body
    return json.loads(body)


def expected(mask: np.ndarray, mm_x: float = MM_X, mm_y: float = MM_Y) -> dict:
    size = measure_mask(mask, mm_x, mm_y)
    return {k: round(getattr(size, k), 4) for k in SIZE_KEYS}


def test_the_sizes_route_answers_predictions_json_and_the_corrected_masks_sizes(server):
    rid = server.ids["cal"]
    meta = json.loads((server.out / "cal" / "predictions.json").read_text())
    for f in meta["frames"]:  # the model's masks: predictions.json's numbers, measured again
        got = server.get_json(f"/api/results/{rid}/sizes/{f['index']}.json")
        assert got["source"] == "model" and got["version"] == 0 and got["area_px"] == f["area"]
        assert got["calibration"] == meta["calibration"]
        assert {k: got[k] for k in SIZE_KEYS} == {k: f[k] for k in SIZE_KEYS}, (f["index"], got)

    # a reviewer's mask: lgrnet.results.sizes' numbers for it at 0.25 x 0.4 mm
    h, w = meta["height"], meta["width"]
    mask = corrected_mask(h, w)
    assert put_mask(server, rid, 2, mask, 0)["version"] == 1
    got = server.get_json(f"/api/results/{rid}/sizes/2.json")
    want = expected(mask)
    assert got["source"] == "corrected" and got["version"] == 1 and got["area_px"] == int(mask.sum())
    assert {k: got[k] for k in SIZE_KEYS} == want
    assert want["area_mm2"] == pytest.approx(mask.sum() * MM_X * MM_Y, abs=1e-4)
    swapped = expected(mask, MM_Y, MM_X)  # pixels the other way round: other axes, so the check can fail
    assert abs(swapped["long_axis_mm"] - want["long_axis_mm"]) > 0.5
    assert want != {k: meta["frames"][2][k] for k in SIZE_KEYS}
    # cleared: no lesion, null sizes
    put_mask(server, rid, 2, np.zeros((h, w), bool), 1)
    got = server.get_json(f"/api/results/{rid}/sizes/2.json")
    assert (got["version"], got["area_px"]) == (2, 0) and all(got[k] is None for k in SIZE_KEYS)

    # without a calibration: says so, and no mm field
    got = server.get_json(f"/api/results/{server.ids['plain']}/sizes/0.json")
    assert got["calibration"] is None and "no sizes in mm (never guessed)" in got["calibration_note"]
    assert got["area_px"] > 0 and not set(SIZE_KEYS) & set(got)
    status, _, body = server.get(f"/api/results/{rid}/sizes/{len(meta['frames'])}.json")
    assert status == 404 and b"out of range" in body


def test_a_result_written_before_sizes_in_mm_has_none(tmp_path):
    root = make_result(tmp_path / "old")  # predictions.json without a "calibration" key
    s = Server(ViewerApp(find_results(root)))
    try:
        got = s.get_json("/api/results/0/sizes/0.json")
        assert got["calibration"] is None and "records no calibration" in got["calibration_note"]
        assert "area_mm2" not in got
    finally:
        s.close()


def _rows(d, css) -> dict:
    """dt -> dd text of the frame's details (#frame-info) or the result's (#details), read at once (the
    page replaces the rows as answers arrive)."""
    return d.execute_script(
        "const o = {}, root = document.querySelector(arguments[0]);"
        "for (const dt of root.querySelectorAll('dt')) o[dt.textContent] = dt.nextElementSibling.textContent;"
        "return o;", css)


def _wait_rendered(d, tag):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    WebDriverWait(d, 20).until(lambda drv: drv.find_element(By.ID, "frame").get_attribute("data-rendered") == tag)


@pytest.mark.browser
def test_the_page_shows_sizes_in_mm_or_says_there_is_no_calibration(browser, server):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    wait = WebDriverWait(browser, 20)
    rid = server.ids["cal"]
    meta = json.loads((server.out / "cal" / "predictions.json").read_text())
    i = max(range(len(meta["frames"])), key=lambda k: meta["frames"][k]["area"])
    f, j = meta["frames"][i], (i + 1) % len(meta["frames"])
    mask = corrected_mask(meta["height"], meta["width"])
    put_mask(server, rid, j, mask, 0)  # frame j edited before the page opens

    d = browser
    d.get(server.url + f"#r={rid}&f={i}")
    _wait_rendered(d, f"{rid}:{i}:1")
    info = _rows(d, "#frame-info")
    assert info["area in mm²"] == f"{f['area_mm2']:.2f} mm²", info
    assert info["long axis"] == f"{f['long_axis_mm']:.2f} mm" and info["short axis"] == f"{f['short_axis_mm']:.2f} mm"
    summary = _rows(d, "#details")
    big = meta["largest_lesion"]
    assert summary["largest area"] == f"{big['area_mm2']['value']:.2f} mm² (frame {big['area_mm2']['frame']})", summary
    assert summary["largest long axis"] == f"{big['long_axis_mm']['value']:.2f} mm (frame {big['long_axis_mm']['frame']})"
    assert summary["calibration"] == "0.2500 × 0.4000 mm per pixel (pixel spacing)"
    assert "no calibration" not in d.find_element(By.TAG_NAME, "body").text

    # the edited frame: the corrected mask's sizes, from the server
    want = expected(mask)
    d.get(server.url + f"#r={rid}&f={j}")
    d.refresh()
    _wait_rendered(d, f"{rid}:{j}:1")
    wait.until(lambda drv: _rows(drv, "#frame-info").get("area in mm² (corrected)") == f"{want['area_mm2']:.2f} mm²")
    info = _rows(d, "#frame-info")
    assert info["long axis (corrected)"] == f"{want['long_axis_mm']:.2f} mm", info
    assert info["short axis (corrected)"] == f"{want['short_axis_mm']:.2f} mm"
    assert info["area (corrected)"] == str(int(mask.sum()))
    # cleared on the page: once saved, the sizes follow the saved mask (no lesion)
    wait.until(lambda drv: drv.find_element(By.ID, "frame").get_attribute("data-mask").startswith(f"{j}:1:"))
    d.find_element(By.ID, "clear-frame").click()
    wait.until(lambda drv: f"frame {j}: saved, version 2" in drv.find_element(By.ID, "save-status").text)
    wait.until(lambda drv: _rows(drv, "#frame-info").get("area in mm² (corrected)") == "–")

    # the uncalibrated result says so, in the frame's details and the result's
    plain = server.ids["plain"]
    d.get(server.url + f"#r={plain}&f=0")
    d.refresh()
    _wait_rendered(d, f"{plain}:0:1")
    info = _rows(d, "#frame-info")
    assert info["size"] == "no calibration: sizes in pixels only" and "area in mm²" not in info, info
    assert info["area"] == str(json.loads((server.out / "plain" / "predictions.json").read_text())["frames"][0]["area"])
    sizes = _rows(d, "#details")["sizes"]
    assert sizes.startswith("no calibration: sizes in pixels only (") and "Pixel Spacing" in sizes, sizes
    assert "mm²" not in d.find_element(By.TAG_NAME, "body").text
