"""The live page (lgrnet.viewer.live): its server over HTTP, and the page in headless Chromium seeing
frames and scores update and saying when the source ends, fails, or the run is gone."""
from __future__ import annotations

import io
import json
import time
import urllib.error
import urllib.request

import numpy as np
import pytest
from PIL import Image

from lgrnet.inference.predictor import FramePrediction
from lgrnet.inference.realtime import LatencyStats, LivePrediction
from lgrnet.viewer.live import LiveState, serve_live

H, W = 120, 160


def prediction(i: int, score: float) -> LivePrediction:
    frame = np.zeros((H, W, 3), np.uint8)
    frame[:, :, 2] = 40 + i  # each frame differs
    mask = np.zeros((H, W), bool)
    mask[30:90, 20 + 5 * i:80 + 5 * i] = True
    fp = FramePrediction(index=i, name=str(10 + 2 * i), frame=frame, prob=mask.astype(np.float32), mask=mask,
                         class_score=score, mask_score=1.0, clip_mask_score=1.0, score=score, query=0)
    now = time.perf_counter()
    return LivePrediction(fp, source_index=10 + 2 * i, read_time=now - 0.040, ready_time=now, dropped=i)


class Run:
    """A live page whose run the test drives: ``step(i, score)`` publishes a processed frame."""

    def __init__(self):
        self.state = LiveState("rtsp://scanner.local/stream", {"window": 4, "stride": 1, "size": [64, 64]})
        self.stats = LatencyStats()
        self.server, self.url = serve_live(self.state)

    def step(self, i: int, score: float) -> None:
        lp = prediction(i, score)
        self.stats.add(lp)
        self.state.publish(lp, self.stats.summary())

    def get(self, path: str, host: str = ""):
        req = urllib.request.Request(self.url.rstrip("/") + path, headers={"Host": host} if host else {})
        return urllib.request.urlopen(req, timeout=10)

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def run():
    r = Run()
    yield r
    r.close()


def test_server_status_frame_and_refusals(run):
    assert json.load(run.get("/api/live/status"))["state"] == "starting"
    with pytest.raises(urllib.error.HTTPError) as e:
        run.get("/api/live/frame.jpg")
    assert e.value.code == 404
    run.step(0, 0.9)
    run.step(1, 0.8)
    st = json.load(run.get("/api/live/status"))
    assert st["state"] == "running" and st["frame"] == 1 and st["source_index"] == 12 and st["score"] == 0.8
    assert st["processed"] == 2 and st["dropped"] == 1 and st["latency_ms"] == pytest.approx(40, abs=1)
    img = np.asarray(Image.open(io.BytesIO(run.get("/api/live/frame.jpg").read())))
    assert img.shape == (H, W, 3)
    outline = (img[:, :, 1] > 150) & (img[:, :, 0] < 120)  # the green outline drawn around the mask
    assert outline[30:90, 25:86].any() and not outline[100:, :].any()
    page = run.get("/").read().decode()
    assert "live.js" in page and run.get("/static/live.js").headers["Content-Type"].startswith("text/javascript")
    for path in ("/static/../live.py", "/static/server.py", "/api/results"):
        with pytest.raises(urllib.error.HTTPError) as e:
            run.get(path)
        assert e.value.code == 404
    with pytest.raises(urllib.error.HTTPError) as e:  # DNS rebinding: a foreign Host name
        run.get("/api/live/status", host="evil.example:80")
    assert e.value.code == 403


def test_an_auth_check_is_asked_first():
    class Refuse:
        def check(self, method, target, headers):
            class Reply:
                status, body, ctype, headers = 401, b'{"error": "token"}', "application/json", {}
            return type("Decision", (), {"reply": Reply})()

    from lgrnet.viewer.live import make_live_server
    import threading

    server = make_live_server(LiveState("x"), auth=Refuse())
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        with pytest.raises(urllib.error.HTTPError) as e:
            urllib.request.urlopen(f"http://127.0.0.1:{server.server_address[1]}/api/live/status", timeout=10)
        assert e.value.code == 401
    finally:
        server.shutdown()
        server.server_close()


def wait_for(driver, cond, what, timeout=30):
    from selenium.webdriver.support.ui import WebDriverWait

    return WebDriverWait(driver, timeout).until(lambda d: cond(d), message=what)


def text(d, id_):
    return d.find_element("id", id_).text


def test_page_shows_frames_scores_and_the_end(browser, run):
    d = browser
    d.get(run.url)
    wait_for(d, lambda d: "waiting" in text(d, "stage-msg"), "waiting message")
    run.step(0, 0.91)
    wait_for(d, lambda d: d.find_element("id", "frame").get_attribute("data-frame") == "0", "first frame shown")
    assert text(d, "r-score") == "0.91" and text(d, "r-processed") == "1"
    assert "rtsp://scanner.local/stream" in text(d, "source")
    for i in range(1, 4):
        run.step(i, 0.5 + 0.1 * i)
        time.sleep(0.3)
    wait_for(d, lambda d: d.find_element("id", "frame").get_attribute("data-frame") == "3", "frames update")
    assert text(d, "r-score") == "0.80" and text(d, "r-dropped") == "3" and text(d, "r-processed") == "4"
    assert "40 ms" in text(d, "r-latency") and "source #16" in text(d, "r-frame")
    natural = d.execute_script("const i = document.getElementById('frame'); return [i.naturalWidth, i.naturalHeight];")
    assert natural == [W, H]
    banner = d.find_element("id", "banner")
    assert not banner.is_displayed()
    run.state.finish("ended")
    wait_for(d, lambda d: "source ended after 4" in text(d, "banner"), "the page says the source ended")


def test_page_says_when_the_source_fails_or_the_run_is_gone(browser, run):
    d = browser
    d.get(run.url)
    run.step(0, 0.7)
    wait_for(d, lambda d: d.find_element("id", "frame").get_attribute("data-frame") == "0", "first frame")
    run.state.finish("failed", "rtsp://scanner.local/stream: stalled: no data for the read timeout")
    wait_for(d, lambda d: "source failed" in text(d, "banner") and "stalled" in text(d, "banner"), "failure shown")
    d.get(run.url)  # a fresh page, then the run goes away
    wait_for(d, lambda d: d.find_element("tag name", "body").get_attribute("data-state") == "failed", "state")
    run.state.finish("running")
    d.refresh()
    wait_for(d, lambda d: d.find_element("tag name", "body").get_attribute("data-state") == "running", "running")
    run.close()
    wait_for(d, lambda d: "Connection lost" in text(d, "banner"), "the page says the run is gone")
    run.close = lambda: None  # already closed
