"""Box corrections (issue 33): a reviewer's boxes of a frame, saved like mask corrections (the result
folder's one locked, versioned writer, lgrnet.results.corrections.save_boxes), their HTTP face on the
review page's route table, the page's box tool in headless Chromium with real mouse events, and
`lgrnet dataset from-results` writing them as the training layout's Box/<video>/<frame>.json.

The result folder is the synthetic one of tests/helpers/viewer_results.py: 12 frames of 96 x 72 with a disc
(frame i is named frame<i+1>.png)."""
from __future__ import annotations

import io
import json

import numpy as np
import pytest
from PIL import Image

from lgrnet.data.boxes import read_box_file
from lgrnet.results import corrections as corr
from tests.helpers.viewer_results import H, N, W, make_result


def _put_boxes(server, i: int, boxes, version, reviewer: str = "", ctype: str = "application/json"):
    body = json.dumps({"boxes": boxes, "version": version}).encode() if not isinstance(boxes, bytes) else boxes
    headers = {"Content-Type": ctype, **({"X-Reviewer": reviewer} if reviewer else {})}
    status, _, out = server.request("PUT", f"/api/results/0/corrections/{i}/boxes", body=body, headers=headers)
    return status, json.loads(out)


def _put_mask(server, i: int, mask: np.ndarray, version: int):
    buf = io.BytesIO()
    Image.fromarray(mask.astype(np.uint8) * 255).save(buf, format="PNG")
    status, _, out = server.request("PUT", f"/api/results/0/corrections/{i}.png", body=buf.getvalue(),
                                    headers={"Content-Type": "image/png", "X-Expected-Version": str(version)})
    return status, json.loads(out)


def _post_state(server, i: int, state: str, version: int):
    status, _, out = server.request("POST", f"/api/results/0/corrections/{i}/status",
                                    body=json.dumps({"state": state, "version": version}).encode(),
                                    headers={"Content-Type": "application/json"})
    return status, json.loads(out)


# ---- the API ----------------------------------------------------------------------------------

def test_boxes_are_saved_versioned_and_the_reviewer_recorded(server, result_dir):
    model_masks = {p.name: p.read_bytes() for p in (result_dir / "masks").iterdir()}
    got = server.get_json("/api/results/0/corrections/2/boxes")
    assert got == {"frame": "000002", "index": 2, "state": "unchecked", "version": 0, "time": None, "reviewer": None,
                   "boxes": None, "frame_size": [H, W]}

    status, out = _put_boxes(server, 2, [[10, 12.5, 30, 20]], 0, reviewer="Dr Ada")
    assert status == 200, out
    assert (out["state"], out["version"], out["reviewer"], out["boxes"]) == ("boxed", 1, "Dr Ada", [[10, 12.5, 30, 20]])
    path = result_dir / "corrections" / "boxes" / "000002.json"
    assert json.loads(path.read_text()) == {"boxes": [[10, 12.5, 30, 20]], "frame_size": [H, W]}  # data.boxes' format
    assert read_box_file(path, (H, W)).tolist() == [[10, 12.5, 30, 20]]
    on_disk = json.loads((result_dir / "corrections" / "status.json").read_text())["frames"]["000002"]
    assert (on_disk["state"], on_disk["version"], on_disk["reviewer"]) == ("boxed", 1, "Dr Ada")
    assert server.get_json("/api/results/0/corrections/2/boxes")["boxes"] == [[10, 12.5, 30, 20]]
    assert server.get_json("/api/results/0/corrections")["frames"]["000002"]["state"] == "boxed"

    # two boxes, then none (annotated: no lesion); each write one version more, by whoever wrote it
    status, out = _put_boxes(server, 2, [[0, 0, 96, 72], [40.25, 8, 0.5, 3]], 1, reviewer="Dr Bob")
    assert status == 200 and out["version"] == 2 and out["reviewer"] == "Dr Bob", out
    assert read_box_file(path).tolist() == [[0, 0, 96, 72], [40.25, 8, 0.5, 3]]
    status, out = _put_boxes(server, 2, [], 2, reviewer="Dr Ada")
    assert status == 200 and out["version"] == 3 and out["boxes"] == [], out
    assert json.loads(path.read_text()) == {"boxes": [], "frame_size": [H, W]}
    assert corr.read_status(result_dir)["000002"] == corr.FrameStatus("boxed", out["time"], 3, "Dr Ada")
    # the model's masks are never written, and no corrected mask appears
    assert {p.name: p.read_bytes() for p in (result_dir / "masks").iterdir()} == model_masks
    assert not (result_dir / "corrections" / "masks").exists()


def test_a_stale_box_write_is_refused_with_409(server, result_dir):
    assert _put_boxes(server, 5, [[10, 10, 20, 20]], 0, reviewer="Dr Ada")[0] == 200
    before = (result_dir / "corrections" / "boxes" / "000005.json").read_bytes()
    status, out = _put_boxes(server, 5, [[50, 30, 10, 10]], 0, reviewer="Dr Bob")  # read before Ada's write
    assert status == 409, out
    assert out["error"].startswith("frame 5 was changed elsewhere by Dr Ada") and "version 1 now, 0 expected" in out["error"]
    assert out["current"]["version"] == 1 and out["current"]["reviewer"] == "Dr Ada"
    assert (result_dir / "corrections" / "boxes" / "000005.json").read_bytes() == before
    assert corr.read_status(result_dir)["000005"].version == 1
    # a version from the future is as stale
    assert _put_boxes(server, 5, [[50, 30, 10, 10]], 7)[0] == 409
    # and a mask write or a state change from the old version too: the version counts every write
    assert _put_mask(server, 5, np.zeros((H, W), bool), 0)[0] == 409
    assert _post_state(server, 5, "unchecked", 0)[0] == 409
    assert (result_dir / "corrections" / "boxes" / "000005.json").read_bytes() == before


@pytest.mark.parametrize("boxes, words", [
    ([[90, 10, 20, 20]], "box 0 [90, 10, 20, 20] lies outside the 96x72 frame"),
    ([[10, 10, 20, 20], [-1, 5, 10, 10]], "box 1 [-1, 5, 10, 10] lies outside"),
    ([[10, 60, 20, 12.5]], "lies outside the 96x72 frame"),
    ([[10, 10, -5, 5]], "non-positive size (w=-5, h=5)"),
    ([[10, 10, 0, 5]], "non-positive size"),
    ([[10, 10, 20]], "not [x, y, w, h]"),
    ([[10, 10, 20, "5"]], "not [x, y, w, h]"),
    ([[10, 10, True, 5]], "not [x, y, w, h]"),
    ([10, 10, 20, 5], "box 0 is 10, not [x, y, w, h]"),
    ("10 10 20 5", "must be a list of [x, y, w, h]"),
    (b'{"boxes": [[NaN, 1, 2, 3]], "version": 0}', "not finite"),
])
def test_an_invalid_box_is_a_400_in_one_line_and_nothing_is_written(server, result_dir, boxes, words):
    status, out = _put_boxes(server, 2, boxes, 0)
    assert status == 400, out
    msg = out["error"]
    assert words in msg and msg.startswith("frame 2: ") and "\n" not in msg and "Traceback" not in msg, msg
    assert not (result_dir / "corrections" / "boxes").exists() and corr.read_status(result_dir) == {}


@pytest.mark.parametrize("body, ctype, status, words", [
    (b'{"boxes": [[1, 1, 2, 2]]}', "application/json", 400, '{"boxes": [[x, y, w, h], ...], "version": N}'),
    (b'{"boxes": [[1, 1, 2, 2]], "version": "0"}', "application/json", 400, '"version": N'),
    (b'[[1, 1, 2, 2]]', "application/json", 400, '"version": N'),
    (b'{"version": 0}', "application/json", 400, '"boxes"'),
    (b'{"boxes": [[1, 1, 2, 2]', "application/json", 400, "not valid JSON"),
    (b'{"boxes": [], "version": 0}', "text/plain", 415, "application/json"),
])
def test_a_malformed_box_request_is_refused(server, result_dir, body, ctype, status, words):
    got, out = _put_boxes(server, 2, body, 0, ctype=ctype)
    assert got == status and words in out["error"], out
    assert not (result_dir / "corrections" / "boxes").exists()
    assert server.request("PUT", "/api/results/0/corrections/99/boxes", body=b'{"boxes": [], "version": 0}',
                          headers={"Content-Type": "application/json"})[0] == 404
    assert server.request("GET", "/api/results/0/corrections/99/boxes")[0] == 404


def test_a_frame_holds_a_mask_or_boxes_never_both(server, result_dir):
    square = np.zeros((H, W), bool)
    square[10:30, 20:50] = True
    assert _put_mask(server, 3, square, 0)[0] == 200
    status, out = _put_boxes(server, 3, [[1, 1, 5, 5]], 1)
    assert status == 400 and "frame 3 has a corrected mask" in out["error"], out
    assert not (result_dir / "corrections" / "boxes" / "000003.json").exists()

    assert _put_boxes(server, 4, [[1, 1, 5, 5]], 0)[0] == 200
    status, out = _put_mask(server, 4, square, 1)
    assert status == 400 and "frame 4 is annotated by boxes" in out["error"], out
    assert not (result_dir / "corrections" / "masks" / "000004.png").exists()
    for state, words in (("checked", "has boxes, so it is 'boxed'"), ("edited", "no corrected mask to mark as edited")):
        status, out = _post_state(server, 4, state, 1)
        assert status == 400 and words in out["error"], out
    status, out = _post_state(server, 3, "boxed", 1)
    assert status == 400 and "has no boxes to mark as boxed" in out["error"], out
    status, out = _post_state(server, 4, "boxed", 1)  # boxed again: its file is there
    assert status == 200 and out["state"] == "boxed" and out["version"] == 2, out
    # unchecked forgets the boxes (the file goes); then the frame may take a mask
    status, out = _post_state(server, 4, "unchecked", 2)
    assert status == 200 and out["state"] == "unchecked", out
    assert not (result_dir / "corrections" / "boxes" / "000004.json").exists()
    assert server.get_json("/api/results/0/corrections/4/boxes")["boxes"] is None
    assert _put_mask(server, 4, square, 0)[0] == 200


def test_status_files_without_boxes_read_as_before(tmp_path):
    """A folder corrected before boxes existed (no reviewer, states checked / edited) reads as it did;
    a state that is none of the three is still refused in one line naming the file."""
    root = make_result(tmp_path / "old")
    (root / "corrections" / "masks").mkdir(parents=True)
    Image.fromarray(np.zeros((H, W), np.uint8)).save(root / "corrections" / "masks" / "000001.png")
    (root / "corrections" / "status.json").write_text(json.dumps({"version": 1, "frames": {
        "000001": {"state": "edited", "time": "2026-12-01T21:50:03Z", "version": 2},
        "000004": {"state": "checked", "time": "2026-12-01T21:51:00Z"}}}))
    st = corr.read_status(root)
    assert st == {"000001": corr.FrameStatus("edited", "2026-12-01T21:50:03Z", 2, ""),
                  "000004": corr.FrameStatus("checked", "2026-12-01T21:51:00Z", 1, "")}
    from lgrnet.annotations.results import reviewed_frames
    from lgrnet.results.folder import load_result

    rv = reviewed_frames(load_result(root))
    assert rv.states == {1: "edited", 4: "checked"} and rv.box_paths == {}
    (root / "corrections" / "status.json").write_text(json.dumps({"version": 1, "frames": {"000001": {"state": "boxes"}}}))
    with pytest.raises(corr.InputError, match=r"status.json: frame '000001' must have \"state\": \"checked\", \"edited\" or \"boxed\""):
        corr.read_status(root)


def test_the_writer_checks_the_frame_size_and_the_lock_order(tmp_path):
    """save_boxes is the one writer: boxes for another frame size are refused; a float box is written
    so that it reads back exactly (float32); set_state("boxed") needs the file."""
    root = make_result(tmp_path / "case01")
    with pytest.raises(corr.BadCorrection, match=r"frame 1: box 0 \[0, 0, 100, 10\] lies outside the 96x72 frame"):
        corr.save_boxes(root, 1, [[0, 0, 100, 10]], (H, W), 0)
    with pytest.raises(corr.BadCorrection, match="no boxes to mark as boxed"):
        corr.set_state(root, 1, "boxed", 0)
    st = corr.save_boxes(root, 1, np.array([[0.1, 0.2, 10.3, 20.7]], np.float32), (H, W), 0, reviewer="x")
    assert st.state == "boxed" and st.version == 1 and st.reviewer == "x"
    got = corr.read_boxes(root, 1, (H, W))
    assert got.dtype == np.float32 and np.array_equal(got, np.array([[0.1, 0.2, 10.3, 20.7]], np.float32))
    assert corr.read_boxes(root, 2) is None
    with pytest.raises(corr.InputError, match="the boxes are for a 96x72 frame, but the frame is 100x72"):
        corr.read_boxes(root, 1, (H, 100))
    with pytest.raises(corr.StaleWrite):
        corr.save_boxes(root, 1, [], (H, W), 0)


# ---- `lgrnet dataset from-results` --------------------------------------------------------------

def _from_results(capsys, *args):
    from lgrnet.cli import main

    rc = main(["dataset", "from-results", *map(str, args)])
    return rc, capsys.readouterr().err


def test_from_results_writes_the_boxed_frames_boxes(tmp_path, capsys):
    from lgrnet.io.images import list_images, read_mask

    root = make_result(tmp_path / "case01")
    square = np.zeros((H, W), bool)
    square[10:30, 20:50] = True
    corr.save_boxes(root, 1, [[10, 12, 30, 20]], (H, W), 0, reviewer="Dr Ada")
    corr.save_boxes(root, 4, [], (H, W), 0, reviewer="Dr Bob")  # annotated: no lesion
    corr.save_boxes(root, 6, [[0.5, 1.25, 40, 30], [60, 40, 36, 32]], (H, W), 0, reviewer="Dr Ada")
    corr.save_mask(root, 2, square, 0, reviewer="Dr Ada")
    corr.set_state(root, 3, "checked", 0, reviewer="Dr Bob")
    stems = [f"frame{i + 1}" for i in range(N)]
    want = {1: [[10, 12, 30, 20]], 4: [], 6: [[0.5, 1.25, 40, 30], [60, 40, 36, 32]]}

    def boxes_in(ds):
        d = ds / "Box" / "case01"
        return {p.stem: json.loads(p.read_text()) for p in d.iterdir()} if d.is_dir() else {}

    def masks_in(ds):
        return {p.stem: read_mask(p, 127) for p in list_images(ds / "GT" / "case01")}

    rc, err = _from_results(capsys, root, "--out", tmp_path / "boxed", "--only", "boxed")
    assert rc == 0, err
    assert boxes_in(tmp_path / "boxed") == {stems[i]: {"boxes": b, "frame_size": [H, W]} for i, b in want.items()}
    assert masks_in(tmp_path / "boxed") == {} and len(list((tmp_path / "boxed" / "Frame" / "case01").iterdir())) == N
    assert "3 frames with boxes (3 boxes)" in err

    rc, err = _from_results(capsys, root, "--out", tmp_path / "all")
    assert rc == 0, err
    assert boxes_in(tmp_path / "all") == boxes_in(tmp_path / "boxed")
    got = masks_in(tmp_path / "all")
    assert sorted(got) == [stems[2], stems[3]] and np.array_equal(got[stems[2]], square)

    rc, err = _from_results(capsys, root, "--out", tmp_path / "ada", "--only", "boxed", "--reviewer", "Dr Ada")
    assert rc == 0, err
    assert sorted(boxes_in(tmp_path / "ada")) == [stems[1], stems[6]]

    # --overwrite with masks only: the video's old Box/ folder goes with it
    rc, err = _from_results(capsys, root, "--out", tmp_path / "all", "--only", "edited", "--overwrite")
    assert rc == 0, err
    assert boxes_in(tmp_path / "all") == {} and sorted(masks_in(tmp_path / "all")) == [stems[2]]


def test_from_results_refuses_a_broken_box_correction_in_one_line(tmp_path, capsys):
    root = make_result(tmp_path / "case01")
    corr.save_boxes(root, 1, [[10, 12, 30, 20]], (H, W), 0)
    path = corr.corrected_boxes_path(root, 1)
    for text, words in ((json.dumps({"boxes": [[10, 12, 30, 20]], "frame_size": [H * 2, W * 2]}),
                         "the boxes are for a 192x144 frame, but the frame is 96x72"),
                        (json.dumps({"boxes": [[90, 12, 30, 20]], "frame_size": [H, W]}), "lies outside the 96x72 frame"),
                        ("{", "malformed box file")):
        path.write_text(text)
        rc, err = _from_results(capsys, root, "--out", tmp_path / "ds")
        assert rc == 2 and words in err and str(path) in err and len(err.strip().splitlines()) == 1, err
        assert not (tmp_path / "ds" / "Frame").exists()
    path.unlink()
    rc, err = _from_results(capsys, root, "--out", tmp_path / "ds")
    assert rc == 2 and "frame '000001' is marked boxed, but" in err and "does not exist" in err, err
    corr.set_state(root, 1, "unchecked", 1)
    rc, err = _from_results(capsys, root, "--out", tmp_path / "ds", "--only", "boxed")
    assert rc == 2 and "no frame is marked boxed" in err, err


# ---- the box tool in headless Chromium, real mouse events --------------------------------------

# the canvas pixel (RGBA) at canvas coordinates (x, y)
PIXEL = "const c = document.getElementById('frame'); return Array.from(c.getContext('2d').getImageData(arguments[0], arguments[1], 1, 1).data);"
BOX_RGB = (0xFF, 0xD8, 0x4A)


class Page:
    """The review page in a browser: frame coordinates -> mouse positions, and what it shows."""

    def __init__(self, d, url):
        from selenium.webdriver.support.ui import WebDriverWait

        self.d, self.url, self.wait = d, url, WebDriverWait(d, 20)

    def el(self, el_id):
        from selenium.webdriver.common.by import By

        return self.d.find_element(By.ID, el_id)

    def text(self, el_id):
        return self.el(el_id).text

    def rendered(self, tag):
        self.wait.until(lambda drv: self.el("frame").get_attribute("data-rendered") == tag)

    def saved(self, frame, version):
        self.wait.until(lambda drv: f"frame {frame}: saved, version {version}" in self.text("save-status"))

    def view(self):
        """(left, top, width, height) of the canvas in CSS pixels, canvas pixels per frame pixel k, origin."""
        rect = self.d.execute_script("const r = document.getElementById('frame').getBoundingClientRect();"
                                     "return [r.left, r.top, r.width, r.height];")
        c = self.el("frame")
        _, ox, oy = (float(v) for v in c.get_attribute("data-view").split(","))
        return rect, float(c.get_attribute("data-scale")), ox, oy

    def offset(self, x, y):
        """move_to_element_with_offset's offset (from the canvas's centre, whole CSS pixels) for frame point (x, y)."""
        rect, k, ox, oy = self.view()
        return (int(round(rect[0] + (x - ox) * k - (rect[0] + rect[2] / 2))),
                int(round(rect[1] + (y - oy) * k - (rect[1] + rect[3] / 2))))

    def frame_point(self, off):
        """The frame point under a mouse offset (the inverse of offset: what the page receives)."""
        rect, k, ox, oy = self.view()
        cx = rect[0] + rect[2] / 2 + off[0] - rect[0]
        cy = rect[1] + rect[3] / 2 + off[1] - rect[1]
        return cx / k + ox, cy / k + oy

    def drag(self, x0, y0, x1, y1):
        """Press at frame point (x0, y0), move in two steps to (x1, y1), release: real pointer events."""
        from selenium.webdriver.common.action_chains import ActionChains

        a, b = self.offset(x0, y0), self.offset(x1, y1)
        dx, dy = b[0] - a[0], b[1] - a[1]
        ActionChains(self.d).move_to_element_with_offset(self.el("frame"), *a).click_and_hold() \
            .move_by_offset(dx // 2, dy // 2).move_by_offset(dx - dx // 2, dy - dy // 2).release().perform()
        return a, b

    def click(self, x, y):
        from selenium.webdriver.common.action_chains import ActionChains

        ActionChains(self.d).move_to_element_with_offset(self.el("frame"), *self.offset(x, y)).click().perform()

    def boxes_of(self, i):
        return self.d.execute_async_script("const done = arguments[arguments.length - 1];"
                                           f"window.lgrnetBoxes.boxesOf({i}).then(done);")

    def drawn(self):
        return json.loads(self.el("frame").get_attribute("data-boxes") or "null")

    def pixel_at_frame(self, x, y):
        _, k, ox, oy = self.view()
        return self.d.execute_script(PIXEL, int((x - ox) * k), int((y - oy) * k))


def _near(rgba, rgb, tol=40):
    return all(abs(a - b) <= tol for a, b in zip(rgba[:3], rgb))


def _saved_boxes(result_dir, i):
    return json.loads(corr.corrected_boxes_path(result_dir, i).read_text())


@pytest.mark.browser
def test_drawing_adjusting_copying_boxes_in_headless_chromium(browser, server, result_dir, tmp_path, capsys):
    """A reviewer draws a box with the mouse, adjusts its corner and edge, moves it, draws and deletes a
    second, undoes, copies the boxes to the next frames (an edited frame keeps its mask), reloads: the
    boxes are on the page and the canvas, and `dataset from-results` writes them in frame pixels."""
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.keys import Keys

    square = np.zeros((H, W), bool)
    square[5:25, 5:35] = True
    assert _put_mask(server, 4, square, 0)[0] == 200  # frame 4: a corrected mask, kept by the copy
    p = Page(browser, server.url)
    d = browser
    d.get(server.url + "#r=0&f=2")
    p.rendered("0:2:1")
    p.el("tool-box").click()
    assert p.el("box-bar").is_displayed() and p.el("tool-box").get_attribute("aria-pressed") == "true"
    k = p.view()[1]
    assert k > 5  # 96 x 72 frame shown ~7x: each frame pixel is several CSS pixels, edges snap exactly

    p.drag(10, 12, 50, 40)
    p.saved(2, 1)
    assert _saved_boxes(result_dir, 2) == {"boxes": [[10, 12, 40, 28]], "frame_size": [H, W]}
    assert p.drawn() == [[10, 12, 40, 28]] and p.text("frame-state") == "boxed"
    assert p.text("box-info") == "box: 40×28 px at (10, 12)"
    st = corr.read_status(result_dir)["000002"]
    assert (st.state, st.version) == ("boxed", 1)

    p.drag(50, 40, 60, 50)  # the bottom-right corner
    p.saved(2, 2)
    assert _saved_boxes(result_dir, 2)["boxes"] == [[10, 12, 50, 38]]
    p.drag(10, 30, 14, 31)  # the left edge: only x moves
    p.saved(2, 3)
    assert _saved_boxes(result_dir, 2)["boxes"] == [[14, 12, 46, 38]]
    p.drag(30, 30, 25, 28)  # inside: the box moves by (-5, -2)
    p.saved(2, 4)
    assert _saved_boxes(result_dir, 2)["boxes"] == [[9, 10, 46, 38]]

    p.drag(90, 66, 70, 52)  # a second box, drawn from its bottom-right corner
    p.saved(2, 5)
    assert _saved_boxes(result_dir, 2)["boxes"] == [[9, 10, 46, 38], [70, 52, 20, 14]]
    assert p.text("box-info").startswith("boxes (2): ")
    ActionChains(d).send_keys(Keys.DELETE).perform()  # the new box is selected: Delete removes it
    p.saved(2, 6)
    assert _saved_boxes(result_dir, 2)["boxes"] == [[9, 10, 46, 38]]
    p.el("undo").click()
    p.saved(2, 7)
    assert _saved_boxes(result_dir, 2)["boxes"] == [[9, 10, 46, 38], [70, 52, 20, 14]]
    p.click(80, 60)  # select the second box (a click: nothing changes, nothing saved)
    p.click(3, 3)  # a click on empty frame: no box drawn
    assert p.drawn() == [[9, 10, 46, 38], [70, 52, 20, 14]] and corr.read_status(result_dir)["000002"].version == 7
    p.click(80, 60)
    p.el("box-delete").click()
    p.saved(2, 8)
    final = [[9, 10, 46, 38]]
    assert _saved_boxes(result_dir, 2)["boxes"] == final

    # copy to the next 3 frames: 3 and 5 get the box, 4 keeps its corrected mask
    n = p.el("box-copy-n")
    n.clear()
    n.send_keys("3")
    p.el("box-copy").click()
    p.wait.until(lambda drv: "boxes copied to 2 frames (3, 5); not to 4 (a corrected mask)" in p.text("save-status"))
    for i in (3, 5):
        assert _saved_boxes(result_dir, i) == {"boxes": final, "frame_size": [H, W]}
        assert corr.read_status(result_dir)[f"{i:06d}"].state == "boxed"
    assert not corr.corrected_boxes_path(result_dir, 4).exists() and corr.read_status(result_dir)["000004"].state == "edited"

    # reload: the boxes come back, drawn on the canvas (in the box colour, tool off) and in the page state
    d.refresh()
    p.rendered("0:2:1")
    p.wait.until(lambda drv: p.drawn() == final)
    assert p.text("frame-state") == "boxed" and p.text("box-info") == "box: 46×38 px at (9, 10)"
    assert p.text("review-count") == f"0 checked, 1 edited, 3 boxed, {N - 4} to review"
    got = p.boxes_of(2)
    assert got == {"version": 8, "boxes": final, "size": [H, W], "state": "boxed"}
    assert _near(p.pixel_at_frame(9 + 23, 10), BOX_RGB) and _near(p.pixel_at_frame(9, 10 + 19), BOX_RGB)
    assert not _near(p.pixel_at_frame(9 + 23, 10 + 19), BOX_RGB)  # an outline, not a fill
    p.el("next").click()
    p.rendered("0:3:1")
    p.wait.until(lambda drv: p.drawn() == final)
    p.el("next").click()
    p.rendered("0:4:1")
    assert p.drawn() is None and p.text("box-info") == ""  # the edited frame: its mask, no box

    # the mask tools refuse a boxed frame (it holds boxes, not a mask), and the page says why
    p.el("prev").click()
    p.rendered("0:3:1")
    p.el("tool-brush").click()
    p.drag(40, 40, 50, 40)
    p.wait.until(lambda drv: "frame 3 is annotated with boxes" in p.text("save-status"))
    assert not corr.corrected_mask_path(result_dir, 3).exists()

    severe = [e for e in d.get_log("browser") if e["level"] == "SEVERE"]
    assert severe == [], severe

    from lgrnet.cli import main

    out = tmp_path / "ds"
    rc = main(["dataset", "from-results", str(result_dir), "--out", str(out)])
    err = capsys.readouterr().err
    assert rc == 0, err
    # frame i is named frame<i+1>.png: its box file is Box/case01/frame<i+1>.json
    written = {q.stem: json.loads(q.read_text()) for q in (out / "Box" / "case01").iterdir()}
    assert written == {f"frame{i + 1}": {"boxes": final, "frame_size": [H, W]} for i in (2, 3, 5)}
    assert [q.name for q in (out / "GT" / "case01").iterdir()] == ["frame5.png"]


@pytest.mark.browser
def test_a_box_on_a_large_frame_lands_in_frame_pixels_and_a_stale_write_is_refused(browser, tmp_path, capsys):
    """On an 800 x 600 frame shown at about half size (a CSS pixel is ~2 frame pixels) the saved box is
    where the mouse went, within the canvas's resolution; another writer's change makes the page's
    next save a 409 that the page reports, and the file keeps the other writer's boxes."""
    from lgrnet.viewer import ViewerApp, find_results
    from tests.helpers.viewer_results import Server

    BW, BH = 800, 600
    root = make_result(tmp_path / "big", n=4)
    frames_dir = tmp_path / "big_frames"
    for q in frames_dir.iterdir():
        Image.open(q).resize((BW, BH), Image.NEAREST).save(q)
    for q in (root / "masks").iterdir():
        Image.open(q).resize((BW, BH), Image.NEAREST).save(q)
    meta = json.loads((root / "predictions.json").read_text())
    meta["width"], meta["height"] = BW, BH
    (root / "predictions.json").write_text(json.dumps(meta))
    s = Server(ViewerApp(find_results(root)))
    try:
        d = browser
        p = Page(d, s.url)
        d.get(s.url + "#r=0&f=1")
        p.rendered("0:1:1")
        k = p.view()[1]
        assert 0.4 < k < 0.8, k  # downscaled: a CSS pixel covers 1.25-2.5 frame pixels
        p.el("tool-box").click()
        a, b = p.drag(200.0, 130.0, 605.0, 471.0)
        p.saved(1, 1)
        (x, y, w, h), = _saved_boxes(root, 1)["boxes"]
        # where the mouse went (whole CSS pixels from the canvas's centre, which the driver may round by
        # half a CSS pixel), snapped to whole frame pixels by the page
        (ax, ay), (bx, by) = p.frame_point(a), p.frame_point(b)
        tol = 0.5 / k + 0.5
        assert tol < 1.5 and all(abs(u - v) <= tol for u, v in ((x, ax), (y, ay), (x + w, bx), (y + h, by))), \
            ((x, y, w, h), (ax, ay, bx, by), tol)
        tol = 1.5 / k + 0.5  # and where the test aimed: the offsets are whole CSS pixels too
        assert all(abs(u - v) <= tol for u, v in ((x, 200), (y, 130), (x + w, 605), (y + h, 471))), ((x, y, w, h), tol)
        assert all(float(v).is_integer() for v in (x, y, w, h))
        assert _saved_boxes(root, 1)["frame_size"] == [BH, BW]

        # another writer (a script, another tab) changes frame 1 after the page read it
        corr.save_boxes(root, 1, [[0, 0, 100, 100]], (BH, BW), 1, reviewer="Dr Bob")
        p.drag(400, 300, 470, 330)  # inside: a move
        p.wait.until(lambda drv: "frame 1 not saved: changed by Dr Bob in another tab or session" in p.text("save-status"))
        assert "changed elsewhere by Dr Bob" in p.text("banner") and p.el("reload-frame").is_displayed()
        assert _saved_boxes(root, 1)["boxes"] == [[0, 0, 100, 100]]
        p.el("reload-frame").click()
        p.wait.until(lambda drv: p.drawn() == [[0, 0, 100, 100]])
        p.drag(100, 100, 120, 130)  # the reloaded box's corner: saved on top of Bob's version
        p.saved(1, 3)
        assert _saved_boxes(root, 1)["boxes"] == [[0, 0, 120, 130]]
        assert corr.read_status(root)["000001"].reviewer == ""
    finally:
        s.close()
