"""The review page as a reviewer reads it: one frame numbering everywhere (from 0: the page, the URL,
the API, the files and the messages), the details of an edited frame (the corrected mask's area and
box), and a confidence curve whose axis is scaled to the scores (issue 29, item 8).

The result folder is the synthetic one of tests/helpers/viewer_results.py: 12 frames of 96 x 72 with a disc."""
from __future__ import annotations

import io
import json

import numpy as np
import pytest
from PIL import Image

from lgrnet.viewer import ViewerApp, find_results
from tests.helpers.viewer_results import H, N, SCORES, W, Server, make_result


def _mask_png(mask: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(mask.astype(np.uint8) * 255).save(buf, format="PNG")
    return buf.getvalue()


def _put(server, i: int, mask: np.ndarray, version: int):
    status, _, body = server.request("PUT", f"/api/results/0/corrections/{i}.png", body=_mask_png(mask),
                                     headers={"Content-Type": "image/png", "X-Expected-Version": str(version)})
    return status, json.loads(body)


def _wait_rendered(d, tag):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    WebDriverWait(d, 20).until(lambda drv: drv.find_element(By.ID, "frame").get_attribute("data-rendered") == tag)


def _details(d) -> dict:
    from selenium.webdriver.common.by import By

    out = {}
    for row in d.find_elements(By.CSS_SELECTOR, "#frame-info > div"):
        out[row.find_element(By.TAG_NAME, "dt").text] = row.find_element(By.TAG_NAME, "dd").text
    return out


def test_the_409_message_counts_frames_as_the_files_do(server):
    """The stale-write message named frame 14 as "frame 15 (000014)"; it says "frame 14", as the URL,
    the API and masks/000014.png do."""
    m = np.zeros((H, W), bool)
    m[10:20, 10:30] = True
    assert _put(server, 4, m, 0)[0] == 200
    status, out = _put(server, 4, m, 0)
    assert status == 409 and out["error"].startswith("frame 4 was changed elsewhere"), out
    assert "frame 5" not in out["error"] and out["current"]["index"] == 4 and out["current"]["frame"] == "000004"


@pytest.mark.browser
def test_frames_are_counted_from_zero_everywhere_on_the_page(browser, server, result_dir):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    d = browser
    wait = WebDriverWait(d, 20)
    text = lambda el_id: d.find_element(By.ID, el_id).text  # noqa: E731
    d.get(server.url + "#r=0&f=4")  # the URL's f is the index
    _wait_rendered(d, "0:4:1")
    assert text("frame-label") == f"frame 4 of 0–{N - 1}"
    assert d.find_element(By.ID, "slider").get_attribute("value") == "4"
    assert _details(d)["name"] == "frame5.png"  # the source file's own name (its folder counts from 1)
    d.find_element(By.ID, "next").click()
    _wait_rendered(d, "0:5:1")
    assert text("frame-label") == f"frame 5 of 0–{N - 1}" and d.current_url.endswith("#r=0&f=5")
    d.find_element(By.ID, "mark-checked").click()
    wait.until(lambda drv: "frame 5: checked, version 1" in text("save-status"))
    on_disk = json.loads((result_dir / "corrections" / "status.json").read_text())
    assert list(on_disk["frames"]) == ["000005"]  # the same number as the page's, in the file's key
    low = [i for i, s in enumerate(SCORES) if s < 0.5]  # [3, 4, 9, 10]: two stretches
    labels = [b.text.split("\n")[0].split("min")[0].strip() for b in d.find_elements(By.CSS_SELECTOR, "#low-list button")]
    assert low == [3, 4, 9, 10] and labels == ["frames 3–4", "frames 9–10"], labels
    d.find_elements(By.CSS_SELECTOR, "#low-list button")[1].click()
    _wait_rendered(d, f"0:{low[2]}:1")
    assert text("frame-label").startswith(f"frame {low[2]} ")
    # the curve's hover text names the frame under the pointer by its index
    from selenium.webdriver.common.action_chains import ActionChains

    curve = d.find_element(By.ID, "curve")
    w = curve.size["width"]
    x = 34 + 9 / (N - 1) * (w - 34 - 8)
    ActionChains(d).move_to_element_with_offset(curve, int(round(x - w / 2)), 0).perform()
    wait.until(lambda drv: text("curve-hover").startswith("frame 9 (frame10.png)"))


@pytest.mark.browser
def test_an_edited_frames_details_show_the_corrected_mask(browser, server, result_dir):
    """The details under the frame showed the model's area and box for an edited frame; they show the
    corrected mask's (and say so), and follow an edit made on the page."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    model = json.loads((result_dir / "predictions.json").read_text())["frames"][3]
    corrected = np.zeros((H, W), bool)
    corrected[6:16, 5:25] = True  # 20 x 10 at (5, 6): nothing like the model's disc
    assert _put(server, 3, corrected, 0)[0] == 200
    d = browser
    d.get(server.url + "#r=0&f=3")
    _wait_rendered(d, "0:3:1")
    WebDriverWait(d, 20).until(lambda drv: drv.find_element(By.ID, "frame-info").get_attribute("data-frame") == "3:corrected")
    info = _details(d)
    assert info["area (corrected)"] == "200" and info["box (corrected)"] == "20×10 px at (5, 6)", info
    assert str(model["area"]) not in info.values() and model["area"] != 200
    # an unedited frame keeps the model's numbers
    d.find_element(By.ID, "next").click()
    _wait_rendered(d, "0:4:1")
    assert d.find_element(By.ID, "frame-info").get_attribute("data-frame") == "4:model"
    assert _details(d)["area"] == str(json.loads((result_dir / "predictions.json").read_text())["frames"][4]["area"])
    # Clear on the edited frame: the details follow the saved mask
    d.find_element(By.ID, "prev").click()
    _wait_rendered(d, "0:3:1")
    WebDriverWait(d, 20).until(lambda drv: drv.find_element(By.ID, "frame").get_attribute("data-mask").startswith("3:1:"))
    d.find_element(By.ID, "clear-frame").click()
    WebDriverWait(d, 20).until(lambda drv: "frame 3: saved, version 2" in drv.find_element(By.ID, "save-status").text)
    WebDriverWait(d, 20).until(lambda drv: _details(drv).get("area (corrected)") == "0")
    assert _details(d)["box (corrected)"] == "none"


# Pixels of the curve canvas: rows holding the score line's blue, the threshold's and the dots' red.
CURVE_PROBE = """
const c = document.getElementById('curve'), d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
const blue = [], red = [];
for (let y = 0; y < c.height; y++) for (let x = 0; x < c.width; x++) {
  const o = 4 * (y * c.width + x), r = d[o], g = d[o + 1], b = d[o + 2], a = d[o + 3];
  if (a < 200) continue;
  if (b > 200 && r < 140 && g > 140 && g < 210) blue.push([x, y]);
  else if (r > 200 && g < 130 && b < 130) red.push([x, y]);
}
return {w: c.width, h: c.height, range: c.dataset.range, blue, red};
"""


@pytest.mark.browser
def test_the_confidence_axis_is_scaled_to_the_scores(browser, tmp_path):
    """Scores in a narrow band near 0.8 (as the shipped model gives) filled 6% of a 0-1 axis, with the
    threshold line among them; the axis is scaled to the scores and the threshold, so the curve fills
    most of the plot and a flagged frame's dot sits well below the threshold line."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    scores = [0.83, 0.82, 0.81, 0.795, 0.80, 0.835, 0.84, 0.79, 0.78, 0.805, 0.83, 0.82]
    thr = 0.8096
    root = make_result(tmp_path / "band")
    meta = json.loads((root / "predictions.json").read_text())
    for f, s in zip(meta["frames"], scores):
        f["score"] = s
    meta["settings"]["confidence_threshold"] = thr
    (root / "predictions.json").write_text(json.dumps(meta))
    s = Server(ViewerApp(find_results(root)))
    try:
        d = browser
        d.get(s.url)
        _wait_rendered(d, "0:0:1")
        WebDriverWait(d, 20).until(lambda drv: drv.find_element(By.ID, "curve").get_attribute("data-range"))
        p = d.execute_script(CURVE_PROBE)
        lo, hi = (float(v) for v in p["range"].split(","))
        assert lo <= min(scores) and hi >= max(scores) and lo <= thr <= hi and hi - lo < 0.2, (lo, hi)
        top, ph = 8, p["h"] - 8 - 18  # the plot's padding (curve.js PAD), CSS px = canvas px here (dpr 1)
        rows = [y for _, y in p["blue"]]
        assert max(rows) - min(rows) >= 0.6 * ph, (min(rows), max(rows), ph)  # the curve fills the plot
        # the threshold line: the red row with most pixels; where the scaled axis puts thr
        counts = np.bincount([y for _, y in p["red"]], minlength=p["h"])
        y_thr = int(np.argmax(counts))
        assert abs(y_thr - (top + (1 - (thr - lo) / (hi - lo)) * ph)) <= 1.5
        # the lowest flagged frame (8, score 0.78): its red dot, far below the threshold line
        w = p["w"]
        x8 = 34 + 8 / (N - 1) * (w - 34 - 8)
        dot = [y for x, y in p["red"] if abs(x - x8) <= 3 and abs(y - y_thr) > 2]
        assert dot, "no flagged dot at frame 8"
        y8 = top + (1 - (0.78 - lo) / (hi - lo)) * ph
        assert abs(np.mean(dot) - y8) <= 2.5 and np.mean(dot) - y_thr >= 0.25 * ph, (np.mean(dot), y8, y_thr)
        # five frames below the threshold: five dots apart from the line
        flagged = [i for i, v in enumerate(scores) if v < thr]
        assert d.find_element(By.ID, "low-count").text.startswith(f"{len(flagged)} of {N} frames below 0.8096")
        for i in flagged:
            xi = 34 + i / (N - 1) * (w - 34 - 8)
            assert any(abs(x - xi) <= 3 and abs(y - y_thr) > 2 for x, y in p["red"]), i
    finally:
        s.close()
