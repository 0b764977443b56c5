"""Corrections in `lgrnet view`: the status.json schema, the HTTP API (no browser) and the page's
correction tools in headless Chromium, driven with real mouse events.

The result folder is the synthetic one of tests/helpers/viewer_results.py: 12 frames of 96 x 72 with a disc moving left to right.
"""
from __future__ import annotations

import io
import json
import os
import shutil
import threading
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from lgrnet.errors import InputError
from lgrnet.results.corrections import FrameStatus, frame_key, mask_path, read_status, status_path, write_status
from lgrnet.viewer import ViewerApp, find_results
from lgrnet.viewer.corrections import corrected_mask_path
from tests.helpers.viewer_results import H, N, SCORES, W, Server, disc_mask, make_result

JSON = {"Content-Type": "application/json"}


def png(arr: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, format="PNG")
    return buf.getvalue()


def mask_png(mask: np.ndarray) -> bytes:
    return png(mask.astype(np.uint8) * 255)


def read_png_mask(path: Path) -> np.ndarray:
    with Image.open(path) as im:
        arr = np.asarray(im)
    assert arr.dtype == np.uint8 and arr.ndim == 2 and set(np.unique(arr)) <= {0, 255}, (arr.dtype, arr.shape)
    return arr == 255


def put(server, i: int, body: bytes, version, headers=None):
    h = {"Content-Type": "image/png", **({} if version is None else {"X-Expected-Version": str(version)}), **(headers or {})}
    status, _, out = server.request("PUT", f"/api/results/0/corrections/{i}.png", body=body, headers=h)
    return status, json.loads(out)


def post_state(server, i: int, state: str, version: int, headers=None):
    status, _, out = server.request("POST", f"/api/results/0/corrections/{i}/status",
                                    body=json.dumps({"state": state, "version": version}).encode(),
                                    headers={**JSON, **(headers or {})})
    return status, json.loads(out)


# ---- the schema (lgrnet.results.corrections, shared with `lgrnet dataset`) -------------------------

def test_status_json_round_trip_and_schema(tmp_path):
    frames = {frame_key(12): FrameStatus("checked", "2026-12-01T21:47:14Z", 1),
              frame_key(3): FrameStatus("edited", "2026-12-01T21:50:00Z", 4)}
    path = write_status(tmp_path, frames)
    assert path == status_path(tmp_path) == tmp_path / "corrections" / "status.json"
    assert json.loads(path.read_text()) == {"version": 1, "frames": {
        "000003": {"state": "edited", "time": "2026-12-01T21:50:00Z", "version": 4},
        "000012": {"state": "checked", "time": "2026-12-01T21:47:14Z", "version": 1}}}
    assert list(json.loads(path.read_text())["frames"]) == ["000003", "000012"]  # frame order
    assert read_status(tmp_path) == frames
    assert read_status(tmp_path / "elsewhere") == {}
    assert frame_key(3) == "000003" and frame_key(1234567) == "1234567"
    assert mask_path(tmp_path, "000003") == corrected_mask_path(tmp_path, 3) == tmp_path / "corrections" / "masks" / "000003.png"
    for bad in ("..", "a/b", "x\\y", ""):
        with pytest.raises(ValueError):
            mask_path(tmp_path, bad)


@pytest.mark.parametrize("text", [
    "{nope", "[]", '{"version": 2, "frames": {}}', '{"version": 1, "frames": []}',
    '{"version": 1, "frames": {"000003": {"state": "done", "time": "2026-12-01T00:00:00Z", "version": 1}}}',
    '{"version": 1, "frames": {"000003": {"state": "edited", "time": "2026-12-01T00:00:00Z", "version": -1}}}',
    '{"version": 1, "frames": {"000003": {"state": "edited", "time": "2026-12-01T00:00:00Z", "version": true}}}',
])
def test_a_malformed_status_file_is_an_input_error_naming_it(tmp_path, text):
    status_path(tmp_path).parent.mkdir()
    status_path(tmp_path).write_text(text)
    with pytest.raises(InputError, match=r"corrections/status.json: "):
        read_status(tmp_path)


# ---- the API, over HTTP ---------------------------------------------------------------------

def test_put_saves_a_corrected_mask_beside_the_model_masks(server, result_dir):
    model_bytes = {p.name: p.read_bytes() for p in (result_dir / "masks").iterdir()}
    state = server.get_json("/api/results/0/corrections")
    assert state == {"version": 1, "frames": {}, "writable": True}
    status, headers, body = server.get("/api/results/0/corrections/3.png")  # nothing saved: the model's mask
    assert status == 200 and headers["X-Mask-Source"] == "model" and headers["X-Mask-Version"] == "0"
    assert headers["X-Mask-State"] == "unchecked" and body == model_bytes["000003.png"]

    mask = disc_mask(3).copy()
    mask[5:9, 10:60] = True
    mask[30:40, :] = False
    status, out = put(server, 3, mask_png(mask), 0)
    assert status == 200, out
    assert (out["frame"], out["index"], out["state"], out["version"]) == ("000003", 3, "edited", 1)
    saved = corrected_mask_path(result_dir, 3)
    assert np.array_equal(read_png_mask(saved), mask)
    assert {p.name: p.read_bytes() for p in (result_dir / "masks").iterdir()} == model_bytes  # never written
    status, headers, body = server.get("/api/results/0/corrections/3.png")
    assert headers["X-Mask-Source"] == "corrected" and headers["X-Mask-Version"] == "1" and headers["X-Mask-State"] == "edited"
    assert np.array_equal(np.asarray(Image.open(io.BytesIO(body))) == 255, mask)

    status_file = json.loads((result_dir / "corrections" / "status.json").read_text())
    assert set(status_file) == {"version", "frames"} and status_file["version"] == 1
    entry = status_file["frames"]["000003"]
    assert set(entry) == {"state", "time", "version"} and entry["state"] == "edited" and entry["version"] == 1
    when = datetime.fromisoformat(entry["time"])
    assert when.utcoffset().total_seconds() == 0 and abs((datetime.now(timezone.utc) - when).total_seconds()) < 60
    assert server.get_json("/api/results/0/corrections")["frames"] == status_file["frames"]

    status, out = put(server, 3, mask_png(disc_mask(3)), 1)  # the next version
    assert status == 200 and out["version"] == 2
    assert np.array_equal(read_png_mask(saved), disc_mask(3))
    # the page's canvas encodes RGBA (opaque, grey); 1-bit PNGs are taken too
    rgba = np.dstack([mask.astype(np.uint8) * 255] * 3 + [np.full((H, W), 255, np.uint8)])
    assert put(server, 3, png(rgba), 2)[0] == 200 and np.array_equal(read_png_mask(saved), mask)
    assert put(server, 3, _one_bit(~mask), 3)[0] == 200
    assert np.array_equal(read_png_mask(saved), ~mask)
    assert not any(p.name.startswith(".tmp-") for p in saved.parent.iterdir())  # written atomically, nothing left


def _one_bit(mask: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(mask.astype(np.uint8) * 255).convert("1").save(buf, format="PNG")
    return buf.getvalue()


def test_a_stale_write_is_refused_with_409(server, result_dir):
    first, second = disc_mask(4), np.zeros((H, W), bool)
    assert put(server, 4, mask_png(first), 0)[0] == 200
    status, out = put(server, 4, mask_png(second), 0)  # a second tab that read version 0
    assert status == 409 and "changed elsewhere" in out["error"] and out["current"]["version"] == 1
    assert np.array_equal(read_png_mask(corrected_mask_path(result_dir, 4)), first)  # not overwritten
    status, out = post_state(server, 4, "unchecked", 0)
    assert status == 409 and corrected_mask_path(result_dir, 4).is_file()
    assert read_status(result_dir)["000004"].version == 1

    # a second server (another `lgrnet view` session) on the same folder sees the same versions
    other = Server(ViewerApp(find_results(result_dir)))
    try:
        assert other.get_json("/api/results/0/corrections")["frames"]["000004"]["version"] == 1
        assert put(other, 4, mask_png(second), 1)[0] == 200
        status, out = put(server, 4, mask_png(first), 1)
        assert status == 409 and out["current"]["version"] == 2
        assert np.array_equal(read_png_mask(corrected_mask_path(result_dir, 4)), second)
    finally:
        other.close()


def test_concurrent_writes_of_one_version_let_exactly_one_through(server, result_dir):
    masks = [np.roll(disc_mask(5), 3 * k, axis=1) for k in range(6)]
    results = [None] * len(masks)
    start = threading.Barrier(len(masks))

    def write(k):
        start.wait()
        results[k] = put(server, 5, mask_png(masks[k]), 0)

    threads = [threading.Thread(target=write, args=(k,)) for k in range(len(masks))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    codes = [r[0] for r in results]
    assert sorted(codes) == [200] + [409] * (len(masks) - 1), codes
    winner = codes.index(200)
    assert np.array_equal(read_png_mask(corrected_mask_path(result_dir, 5)), masks[winner])
    assert read_status(result_dir)["000005"].version == 1


def test_frame_states_checked_edited_unchecked(server, result_dir):
    status, out = post_state(server, 6, "checked", 0)
    assert status == 200 and (out["state"], out["version"]) == ("checked", 1)
    assert not corrected_mask_path(result_dir, 6).exists()  # checked: the model's mask is the answer
    status, out = post_state(server, 7, "edited", 0)
    assert status == 400 and "no corrected mask" in out["error"]
    assert put(server, 6, mask_png(disc_mask(7)), 1)[1]["state"] == "edited"  # editing a checked frame
    status, out = post_state(server, 6, "checked", 2)
    assert status == 400 and "revert" in out["error"]
    status, out = post_state(server, 6, "unchecked", 2)  # revert: the reviewer's mask goes, the model's stays
    assert status == 200 and (out["state"], out["version"]) == ("unchecked", 0)
    assert not corrected_mask_path(result_dir, 6).exists() and (result_dir / "masks" / "000006.png").is_file()
    assert "000006" not in read_status(result_dir)
    assert server.get("/api/results/0/corrections/6.png")[1]["X-Mask-Source"] == "model"
    status, out = post_state(server, 6, "done", 0)
    assert status == 400 and "state 'done'" in out["error"]
    assert set(read_status(result_dir)) == set()


@pytest.mark.parametrize("case", ["size", "grey", "colour", "alpha", "jpeg", "text", "truncated"])
def test_mask_uploads_are_validated(server, result_dir, case):
    ok = disc_mask(2).astype(np.uint8) * 255
    if case == "size":
        body, code, words = png(ok[:, :-1]), 400, "95x72 pixels; the frame is 96x72"
    elif case == "grey":
        bad = ok.copy()
        bad[0, :7] = 128
        body, code, words = png(bad), 400, "7 pixels that are neither 0 nor 255"
    elif case == "colour":
        rgb = np.dstack([ok] * 3)
        rgb[3, 3] = (255, 0, 0)
        body, code, words = png(rgb), 400, "coloured pixels"
    elif case == "alpha":
        rgba = np.dstack([ok] * 3 + [np.full_like(ok, 255)])
        rgba[0, 0, 3] = 10
        body, code, words = png(rgba), 400, "not fully opaque"
    elif case == "jpeg":
        buf = io.BytesIO()
        Image.fromarray(ok).save(buf, format="JPEG")
        body, code, words = buf.getvalue(), 415, "must be a PNG"
    elif case == "text":
        body, code, words = b"hello", 415, "must be a PNG"
    else:
        body, code, words = png(ok)[:60], 400, "not a readable PNG"
    status, out = put(server, 2, body, 0)
    assert status == code and words in out["error"], out
    assert not (result_dir / "corrections" / "masks").exists() or not any((result_dir / "corrections" / "masks").iterdir())
    assert read_status(result_dir) == {}


def test_requests_are_bounded_and_checked(server, result_dir):
    good = mask_png(disc_mask(1))
    assert put(server, 1, good, None)[0] == 428  # no expected version
    assert put(server, 1, good, "x1")[0] == 428
    status, out = put(server, 1, good, 0, headers={"Content-Length": str(200 << 20)})
    assert status == 413 and "at most" in out["error"]
    assert put(server, N, good, 0)[0] == 404 and put(server, 10 ** 8, good, 0)[0] == 404
    assert put(server, 1, good, 0, headers={"Origin": "http://attacker.example"})[0] == 403
    assert put(server, 1, good, 0, headers={"Host": "attacker.example"})[0] == 403
    status, _, _ = server.request("POST", "/api/results/0/corrections/1/status", body=b'{"state": "checked", "version": 0}',
                                  headers={"Content-Type": "text/plain"})
    assert status == 415  # what a plain HTML form of another site could send
    for body in (b"{", b"[]", b'{"state": "checked"}', b'{"state": "checked", "version": "0"}', b"x" * 5000):
        status, _, _ = server.request("POST", "/api/results/0/corrections/1/status", body=body, headers=JSON)
        assert status in (400, 413), body[:20]
    assert post_state(server, 1, "checked", 0, headers={"Origin": "http://attacker.example"})[0] == 403
    for path in ("/api/results/0/corrections/..%2f..%2fmasks%2f000001.png", "/api/results/0/corrections/000001.jpg",
                 "/api/results/0/corrections/-1.png", "/api/results/0/corrections/1.png/x", "/api/results/9/corrections",
                 "/api/results/0/corrections/1/status", "/api/results/0/corrections/a.png"):
        status, _, body = server.get(path)
        assert status in (400, 404, 405), (path, status)
    for method in ("PUT", "POST"):
        status, _, _ = server.request(method, "/api/results/0/corrections", body=good, headers={"X-Expected-Version": "0"})
        assert status == 405
    assert not (result_dir / "corrections").exists() or read_status(result_dir) == {}
    assert put(server, 1, good, 0)[0] == 200  # and the same request, well formed, is taken


def test_an_unreadable_status_file_is_never_overwritten(server, result_dir):
    (result_dir / "corrections").mkdir()
    (result_dir / "corrections" / "status.json").write_text("{garbage")
    status, _, body = server.get("/api/results/0/corrections")
    assert status == 500 and b"status.json: cannot read" in body
    status, out = put(server, 1, mask_png(disc_mask(1)), 0)
    assert status == 500 and "read-only until this file is fixed" in out["error"]
    assert (result_dir / "corrections" / "status.json").read_text() == "{garbage"
    assert not corrected_mask_path(result_dir, 1).exists()


# ---- the page in a real browser -------------------------------------------------------------

def segment_pixels(x0: int, y0: int, x1: int, y1: int, r: float) -> np.ndarray:
    """The pixels a straight, axis-aligned brush stroke from the centre of pixel (x0, y0) to that of
    (x1, y1) with radius r covers: those whose centre lies within r of the segment (the nearest
    point of an axis-aligned segment is the pixel's own position clamped to it)."""
    assert x0 == x1 or y0 == y1
    yy, xx = np.mgrid[0:H, 0:W]
    nx = np.clip(xx, min(x0, x1), max(x0, x1))
    ny = np.clip(yy, min(y0, y1), max(y0, y1))
    return (xx - nx) ** 2 + (yy - ny) ** 2 <= r * r


@pytest.mark.browser
def test_correcting_a_frame_in_headless_chromium(browser, server, result_dir, tmp_path):
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys
    from selenium.webdriver.support.ui import WebDriverWait

    d = browser
    wait = WebDriverWait(d, 20)
    model = {i: disc_mask(i) for i in range(N)}
    model_bytes = (result_dir / "masks" / "000002.png").read_bytes()
    text = lambda el_id: d.find_element(By.ID, el_id).text  # noqa: E731

    def rendered(tag):
        wait.until(lambda drv: drv.find_element(By.ID, "frame").get_attribute("data-rendered") == tag)

    def saved(version, frame=2):
        wait.until(lambda drv: f"frame {frame}: saved, version {version}" in text("save-status"))

    def client_point(x, y):
        """The viewport position of the centre of frame pixel (x, y), from the canvas's place and the view."""
        rect = d.execute_script("const r = document.getElementById('frame').getBoundingClientRect();"
                                "return [r.left, r.top, r.width, r.height];")
        c = d.find_element(By.ID, "frame")
        k = float(c.get_attribute("data-scale"))  # canvas pixels per frame pixel; CSS pixels here (dpr 1)
        zoom, ox, oy = (float(v) for v in c.get_attribute("data-view").split(","))
        return rect, (rect[0] + (x + 0.5 - ox) * k, rect[1] + (y + 0.5 - oy) * k)

    def offset(x, y):  # for move_to_element_with_offset: from the canvas's centre
        rect, (cx, cy) = client_point(x, y)
        return int(round(cx - (rect[0] + rect[2] / 2))), int(round(cy - (rect[1] + rect[3] / 2)))

    def stroke(x0, y0, x1, y1):
        canvas = d.find_element(By.ID, "frame")
        a, b = offset(x0, y0), offset(x1, y1)
        ActionChains(d).move_to_element_with_offset(canvas, *a).click_and_hold() \
            .move_by_offset((b[0] - a[0]) // 2, (b[1] - a[1]) // 2) \
            .move_to_element_with_offset(canvas, *b).release().perform()

    def click_at(x, y):
        ActionChains(d).move_to_element_with_offset(d.find_element(By.ID, "frame"), *offset(x, y)).click().perform()

    def set_size(r):
        size = d.find_element(By.ID, "brush-size")
        size.send_keys(Keys.HOME, *[Keys.ARROW_RIGHT] * (r - 1))
        assert size.get_attribute("value") == str(r)

    def page_mask(i):
        m = d.execute_async_script("const done = arguments[arguments.length - 1];"
                                   f"window.lgrnetViewer.maskOf({i}).then(done);")
        return m["version"], np.array(m["data"], bool).reshape(m["h"], m["w"])

    d.get(server.url + "#r=0&f=2")
    rendered("0:2:1")
    assert text("frame-state") == "unchecked" and text("review-count") == f"0 checked, 0 edited, {N} to review"

    # brush, radius 3, across the top of the disc; eraser, radius 2, down through it
    d.find_element(By.ID, "tool-brush").click()
    set_size(3)
    b1 = segment_pixels(5, 30, 70, 30, 3)
    stroke(5, 30, 70, 30)
    saved(1)
    d.find_element(By.ID, "tool-eraser").click()
    set_size(2)
    e1 = segment_pixels(30, 35, 30, 62, 2)
    stroke(30, 35, 30, 62)
    saved(2)
    expected = (model[2] | b1) & ~e1
    assert (b1 & ~model[2]).sum() > 50 and (e1 & model[2]).sum() > 50  # both strokes changed pixels
    assert np.array_equal(read_png_mask(corrected_mask_path(result_dir, 2)), expected)

    # zoomed in, a third stroke; undo it, redo it, undo it again
    d.find_element(By.ID, "zoom-in").click()
    wait.until(lambda drv: drv.find_element(By.ID, "frame").get_attribute("data-view").startswith("1.5,"))
    d.find_element(By.ID, "tool-brush").click()
    set_size(3)
    b2 = segment_pixels(50, 58, 66, 58, 3)
    stroke(50, 58, 66, 58)
    saved(3)
    assert np.array_equal(read_png_mask(corrected_mask_path(result_dir, 2)), expected | b2)
    d.find_element(By.ID, "undo").click()
    saved(4)
    assert np.array_equal(read_png_mask(corrected_mask_path(result_dir, 2)), expected)
    ActionChains(d).key_down(Keys.CONTROL).key_down(Keys.SHIFT).send_keys("z").key_up(Keys.SHIFT) \
        .key_up(Keys.CONTROL).perform()  # redo from the keyboard
    saved(5)
    assert np.array_equal(read_png_mask(corrected_mask_path(result_dir, 2)), expected | b2)
    d.find_element(By.ID, "undo").click()
    saved(6)
    d.find_element(By.ID, "zoom-fit").click()

    # the saved PNG differs from the model's mask exactly in the stroked pixels
    saved_mask = read_png_mask(corrected_mask_path(result_dir, 2))
    assert np.array_equal(saved_mask, expected)
    assert np.array_equal(saved_mask ^ model[2], (b1 & ~model[2]) | (e1 & model[2]))
    assert (result_dir / "masks" / "000002.png").read_bytes() == model_bytes
    assert text("frame-state") == "edited"
    assert not d.find_element(By.ID, "mark-checked").is_enabled()  # edited: not "the model's mask is right"

    # frame 5: the model's mask is right
    d.find_element(By.ID, "tool-view").click()
    d.find_element(By.ID, "next-unchecked").click()
    rendered("0:3:1")
    slider = d.find_element(By.ID, "slider")
    slider.send_keys(*[Keys.ARROW_RIGHT] * 2)
    rendered("0:5:1")
    d.find_element(By.ID, "mark-checked").click()
    wait.until(lambda drv: "frame 5: checked, version 1" in text("save-status"))
    assert text("frame-state") == "checked"
    on_disk = json.loads((result_dir / "corrections" / "status.json").read_text())
    assert {k: (v["state"], v["version"]) for k, v in on_disk["frames"].items()} == \
        {"000002": ("edited", 6), "000005": ("checked", 1)}

    # reload: the same state
    d.refresh()
    rendered("0:5:1")
    assert text("frame-state") == "checked" and text("review-count") == f"1 checked, 1 edited, {N - 2} to review"
    slider = d.find_element(By.ID, "slider")
    slider.send_keys(*[Keys.ARROW_LEFT] * 3)
    rendered("0:2:1")
    assert text("frame-state") == "edited"
    version, shown = page_mask(2)
    assert version == 6 and np.array_equal(shown, expected)
    low = [i for i, s in enumerate(SCORES) if s < 0.5]
    d.find_element(By.ID, "next-low").click()  # the next unchecked frame below 0.5
    rendered(f"0:{low[0]}:1")

    # a second tab edits frame 2 and saves first; this tab's write, from version 6, is refused
    first = d.current_window_handle
    d.switch_to.new_window("tab")
    d.get(server.url + "#r=0&f=2")
    rendered("0:2:1")
    d.find_element(By.ID, "tool-brush").click()
    set_size(2)
    stroke(10, 66, 40, 66)
    saved(7)
    theirs = expected | segment_pixels(10, 66, 40, 66, 2)
    assert np.array_equal(read_png_mask(corrected_mask_path(result_dir, 2)), theirs)
    d.switch_to.window(first)
    slider = d.find_element(By.ID, "slider")
    slider.send_keys(Keys.HOME, Keys.ARROW_RIGHT, Keys.ARROW_RIGHT)
    rendered("0:2:1")
    d.find_element(By.ID, "tool-brush").click()
    stroke(60, 8, 80, 8)
    wait.until(lambda drv: "not saved: changed in another tab or session" in text("save-status"))
    assert "changed elsewhere" in text("banner") and d.find_element(By.ID, "reload-frame").is_displayed()
    assert np.array_equal(read_png_mask(corrected_mask_path(result_dir, 2)), theirs)  # not overwritten
    assert read_status(result_dir)["000002"].version == 7
    d.find_element(By.ID, "reload-frame").click()
    wait.until(lambda drv: drv.find_element(By.ID, "frame").get_attribute("data-mask").startswith("2:7:"))
    assert np.array_equal(page_mask(2)[1], theirs)

    # a correction in progress, for the screenshot: zoomed in, fill on, a polygon half drawn
    d.find_element(By.ID, "zoom-in").click()
    d.find_element(By.ID, "tool-polygon").click()
    for x, y in ((52, 20), (70, 28), (66, 50)):
        click_at(x, y)
    ActionChains(d).move_to_element_with_offset(d.find_element(By.ID, "frame"), *offset(50, 44)).perform()
    shot = tmp_path / "corrections.png"
    d.save_screenshot(str(shot))
    assert shot.stat().st_size > 10_000
    if os.environ.get("LGRNET_SCREENSHOT"):
        target = Path(os.environ["LGRNET_SCREENSHOT"])
        shutil.copy(shot, target.with_name(target.stem + "_corrections" + target.suffix))
    click_at(52, 20)  # back on the first corner: the polygon is filled and saved
    saved(8)
    assert read_png_mask(corrected_mask_path(result_dir, 2)).sum() > theirs.sum()

    severe = [e for e in d.get_log("browser") if e["level"] == "SEVERE" and "409" not in e["message"]]
    assert severe == [], severe


@pytest.mark.browser
def test_page_mask_operations_match_references(browser, server):
    """editor.js's brush, fill and polygon against independent references (NumPy distances, SciPy's
    connected components, OpenCV's point-in-polygon test) on random masks in the page's own JS."""
    import cv2
    from scipy import ndimage
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    d = browser
    d.get(server.url)
    WebDriverWait(d, 20).until(lambda drv: drv.find_element(By.ID, "frame").get_attribute("data-rendered") == "0:0:1")
    rng = np.random.default_rng(0)
    run = ("const [op, w, h, bits, args] = arguments; const M = window.lgrnetMask;"
           "const m = {w, h, data: Uint8Array.from(bits)};"
           "const n = op === 'stamp' ? M.stampSegment(m, ...args) : op === 'flood' ? M.floodFill(m, ...args)"
           " : M.fillPolygon(m, args, 1); return [n, Array.from(m.data)];")

    def page(op, mask, args):
        n, bits = d.execute_script(run, op, W, H, mask.astype(int).ravel().tolist(), args)
        return n, np.array(bits, bool).reshape(H, W)

    yy, xx = np.mgrid[0:H, 0:W].astype(float)
    for _ in range(6):  # brush and eraser along slanted segments
        base = rng.random((H, W)) < 0.3
        x0, x1 = rng.integers(0, W, 2)
        y0, y1 = rng.integers(0, H, 2)
        r, value = float(rng.integers(1, 9)), int(rng.integers(0, 2))
        d2 = np.array([x1 - x0, y1 - y0], float)
        t = np.clip(((xx - x0) * d2[0] + (yy - y0) * d2[1]) / max(d2 @ d2, 1e-12), 0, 1)
        near = (xx - x0 - t * d2[0]) ** 2 + (yy - y0 - t * d2[1]) ** 2 <= r * r
        want = np.where(near, bool(value), base)
        n, got = page("stamp", base, [int(x0), int(y0), int(x1), int(y1), r, value])
        assert np.array_equal(got, want) and n == int((want != base).sum()), (x0, y0, x1, y1, r)

    for _ in range(4):  # fill: the 4-connected region clicked in
        base = ndimage.binary_dilation(rng.random((H, W)) < 0.02, iterations=3) ^ \
            ndimage.binary_dilation(rng.random((H, W)) < 0.01, iterations=2)
        sx, sy = int(rng.integers(0, W)), int(rng.integers(0, H))
        seed_value = base[sy, sx]
        labels, _ = ndimage.label(base == seed_value, structure=ndimage.generate_binary_structure(2, 1))
        region = labels == labels[sy, sx]
        want = np.where(region, not seed_value, base)
        n, got = page("flood", base, [sx, sy, int(not seed_value)])
        assert np.array_equal(got, want) and n == int(region.sum())

    for k in range(5):  # polygon: pixels whose centre is inside
        m = int(rng.integers(3, 9))
        ang = np.sort(rng.uniform(0, 2 * np.pi, m))
        rad = rng.uniform(8, 30, m)
        pts = np.stack([W / 2 + rad * np.cos(ang) + rng.uniform(-5, 5), H / 2 + rad * np.sin(ang)], 1)
        if k == 4:
            pts[:, 0] += 40  # partly off the frame
        contour = pts.astype(np.float32).reshape(-1, 1, 2)
        inside = np.array([[cv2.pointPolygonTest(contour, (x + 0.5, y + 0.5), False) > 0 for x in range(W)]
                           for y in range(H)])
        n, got = page("poly", np.zeros((H, W), bool), pts.tolist())
        assert np.array_equal(got, inside) and n == int(inside.sum()), k


@pytest.mark.browser
def test_page_copy_previous_clear_fill_and_revert(browser, server, result_dir):
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys
    from selenium.webdriver.support.ui import WebDriverWait

    d = browser
    wait = WebDriverWait(d, 20)
    text = lambda el_id: d.find_element(By.ID, el_id).text  # noqa: E731
    saved_png = corrected_mask_path(result_dir, 7)

    def saved(version):
        wait.until(lambda drv: f"frame 7: saved, version {version}" in text("save-status"))
        return read_png_mask(saved_png)

    d.get(server.url + "#r=0&f=7")
    wait.until(lambda drv: drv.find_element(By.ID, "frame").get_attribute("data-rendered") == "0:7:1")
    d.find_element(By.ID, "tool-fill").click()
    wait.until(lambda drv: drv.find_element(By.ID, "frame").get_attribute("data-mask").startswith("7:0:"))
    d.find_element(By.ID, "copy-prev").click()
    assert np.array_equal(saved(1), disc_mask(6))  # the previous frame's mask
    d.find_element(By.ID, "clear-frame").click()
    assert not saved(2).any()
    canvas = d.find_element(By.ID, "frame")
    ActionChains(d).move_to_element(canvas).click().perform()  # fill: the whole (empty) frame is one region
    assert saved(3).all()
    ActionChains(d).move_to_element(canvas).key_down(Keys.SHIFT).click().key_up(Keys.SHIFT).perform()  # erase it
    assert not saved(4).any()
    assert text("frame-state") == "edited"
    d.find_element(By.ID, "revert").click()
    d.switch_to.alert.accept()
    wait.until(lambda drv: text("frame-state") == "unchecked")
    assert not saved_png.exists() and read_status(result_dir) == {}
    wait.until(lambda drv: drv.find_element(By.ID, "frame").get_attribute("data-mask").startswith("7:0:"))
    d.find_element(By.TAG_NAME, "body").send_keys("c")  # the model's mask is right, from the keyboard
    wait.until(lambda drv: text("frame-state") == "checked")
    assert read_status(result_dir)["000007"].state == "checked"
    d.find_element(By.ID, "next-unchecked").click()
    wait.until(lambda drv: drv.find_element(By.ID, "frame").get_attribute("data-rendered") == "0:8:1")


def test_model_masks_named_after_the_frames_are_found_and_symlinks_are_not_served(tmp_path):
    """Frame-folder results name masks after the frames (predictions.json's ``file``): the corrections
    API must start from that mask (not look for ``000003.png``), and, like the rest of the page, it
    must not follow a symlinked mask out of the result folder."""
    root = make_result(tmp_path / "named")
    meta = json.loads((root / "predictions.json").read_text())
    for row in meta["frames"]:
        row["file"] = f"frame{row['index'] + 1}.png"
        (root / "masks" / f"{row['index']:06d}.png").rename(root / "masks" / row["file"])
    (root / "predictions.json").write_text(json.dumps(meta))
    outside = tmp_path / "secret.png"
    outside.write_bytes(mask_png(np.ones((H, W), bool)))
    (root / "masks" / "frame5.png").unlink()
    os.symlink(outside, root / "masks" / "frame5.png")
    s = Server(ViewerApp(find_results(root)))
    try:
        status, headers, body = s.get("/api/results/0/corrections/3.png")
        assert status == 200 and headers["X-Mask-Source"] == "model"
        assert body == (root / "masks" / "frame4.png").read_bytes()
        status, headers, body = s.get("/api/results/0/corrections/4.png")
        assert status == 403 and body != outside.read_bytes()
    finally:
        s.close()
