"""`lgrnet view`: the review page's server (over HTTP, no browser) and the page in headless Chromium.

The result folder here is synthetic: a frame folder with a disc moving left to right, the disc's
masks, and predictions.json / predictions.csv in the format `lgrnet predict` writes.
"""
from __future__ import annotations

import csv
import io
import json
import os
import shutil
import time
import zipfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from lgrnet.errors import InputError
from lgrnet.viewer import ViewerApp, find_results, load_result, mask_outline
from lgrnet.viewer.frames import JpegCache
from lgrnet.viewer.uploads import UploadRejected, check_video_file
from tests.helpers.media import decode_video, encode_video
from tests.helpers.viewer_results import FPS, H, N, SCORES, W, Client, Server, disc_center, disc_mask, make_frame, make_result, make_video


# ---- result folders ------------------------------------------------------------------------

def test_find_results_single_and_nested(tmp_path):
    one = make_result(tmp_path / "runs" / "b10")
    make_result(tmp_path / "runs" / "b9")
    make_result(tmp_path / "runs" / "group" / "a1")
    (tmp_path / "runs" / "empty").mkdir()
    assert [r.name for r in find_results(one)] == ["b10"]
    found = find_results(tmp_path / "runs")
    assert [r.name for r in found] == ["b9", "b10", "group/a1"]  # natural order, nested one level
    assert len({r.id for r in found}) == 3
    with pytest.raises(InputError, match="no predictions.json"):
        find_results(tmp_path / "runs" / "empty")


def test_load_result_reports_bad_files(tmp_path):
    root = make_result(tmp_path / "r")
    meta = json.loads((root / "predictions.json").read_text())
    (root / "predictions.json").write_text("{not json")
    with pytest.raises(InputError, match="predictions.json"):
        load_result(root)
    del meta["frames"]
    (root / "predictions.json").write_text(json.dumps(meta))
    with pytest.raises(InputError, match="missing frames"):
        load_result(root)
    (root / "predictions.json").unlink()
    with pytest.raises(InputError, match="not found"):
        load_result(root)


def test_load_result_warns_on_missing_masks(tmp_path):
    root = make_result(tmp_path / "r")
    (root / "masks" / "000003.png").unlink()
    r = load_result(root)
    assert any("11 of 12 masks" in w for w in r.warnings)


# ---- frames, outlines, exports -------------------------------------------------------------

def test_frame_endpoint_serves_the_source_frame(server):
    for i in (0, 7, 11, 3):
        status, headers, body = server.get(f"/api/results/0/frames/{i}.jpg")
        assert status == 200 and headers["Content-Type"] == "image/jpeg"
        got = np.asarray(Image.open(io.BytesIO(body)).convert("RGB")).astype(np.int16)
        assert got.shape == (H, W, 3)
        err = np.abs(got - make_frame(i)).mean()
        assert err < 4.0, f"frame {i}: mean abs difference {err:.2f} to the source frame"
    assert server.get("/api/results/0/frames/12.jpg")[0] == 404
    assert server.get("/api/results/9/frames/0.jpg")[0] == 404
    assert len(server.app.cache) == 4


def test_outline_lies_on_the_mask_boundary(server):
    from scipy import ndimage

    for i in (0, 5):
        out = server.get_json(f"/api/results/0/outlines/{i}.json")
        mask = disc_mask(i)
        boundary = mask & ~ndimage.binary_erosion(mask, structure=ndimage.generate_binary_structure(2, 1))
        pts = np.array([p for c in out["contours"] for p in c])
        assert len(out["contours"]) == 1 and len(pts) >= 8
        assert boundary[pts[:, 1], pts[:, 0]].all(), "every outline vertex is a boundary pixel of the mask"
        ys, xs = np.nonzero(mask)
        assert (pts[:, 0].min(), pts[:, 0].max(), pts[:, 1].min(), pts[:, 1].max()) == (xs.min(), xs.max(), ys.min(), ys.max())
    assert server.get_json("/api/results/0/outlines/10.json")["contours"] == []  # empty mask


def test_mask_outline_traces_holes():
    m = np.zeros((20, 20), bool)
    m[2:18, 2:18] = True
    m[8:12, 8:12] = False
    assert len(mask_outline(m)) == 2


def test_meta_and_info(server):
    info = server.get_json("/api/info")
    assert [r["name"] for r in info["results"]] == ["case01"]
    assert info["upload"]["enabled"] is False and "--weights" in info["upload"]["reason"]
    meta = server.get_json("/api/results/0")
    assert meta["num_frames"] == N and meta["source_status"] == "ok" and meta["fps_used"] == FPS
    assert [f["score"] for f in meta["frames"]] == SCORES


def test_exports(server, result_dir):
    status, headers, body = server.get("/api/results/0/masks.zip")
    assert status == 200 and "case01_masks.zip" in headers["Content-Disposition"]
    with zipfile.ZipFile(io.BytesIO(body)) as zf:
        names = sorted(zf.namelist())
        assert names == [f"masks/{i:06d}.png" for i in range(N)]
        assert all(zf.read(n) == (result_dir / n).read_bytes() for n in names)
    status, headers, body = server.get("/api/results/0/predictions.csv")
    assert status == 200 and body == (result_dir / "predictions.csv").read_bytes()
    (result_dir / "predictions.csv").unlink()  # rebuilt from predictions.json when missing
    rows = list(csv.DictReader(io.StringIO(server.get("/api/results/0/predictions.csv")[2].decode())))
    assert [float(r["score"]) for r in rows] == SCORES
    meta = json.loads((result_dir / "predictions.json").read_text())
    for r, f in zip(rows, meta["frames"]):  # the writer's columns: the box split in four, x1/y1 exclusive
        box = [r[f"bbox_{k}"] for k in ("x0", "y0", "x1", "y1")]
        assert box == ([str(v) for v in f["bbox"]] if f["bbox"] else ["", "", "", ""])
        assert r["query"] == "3"
    assert server.get("/api/results/0/overlay.mp4")[0] == 404


def test_missing_source_falls_back_to_overlay(tmp_path):
    frames = make_video(tmp_path / "ov.mp4", n=N, gop=5, size=(W, H))
    root = make_result(tmp_path / "r", input_path=str(tmp_path / "moved_away.mp4"))
    shutil.copy(tmp_path / "ov.mp4", root / "overlay.mp4")
    s = Server(ViewerApp(find_results(root)))
    try:
        meta = s.get_json("/api/results/0")
        assert meta["source_status"] == "overlay" and "moved_away.mp4" in meta["source_message"]
        body = s.get("/api/results/0/frames/6.jpg")[2]
        got = np.asarray(Image.open(io.BytesIO(body)).convert("RGB")).astype(np.int16)
        assert np.abs(got - frames[6]).mean() < 4.0
        (root / "overlay.mp4").unlink()
    finally:
        s.close()
    s = Server(ViewerApp(find_results(root)))
    try:
        assert s.get_json("/api/results/0")["source_status"] == "missing"
        assert s.get("/api/results/0/frames/0.jpg")[0] == 404
        assert len(s.get_json("/api/results/0/outlines/0.json")["contours"]) == 1  # outlines still work
    finally:
        s.close()


def test_jpeg_cache_is_bounded():
    c = JpegCache(max_bytes=1000)
    for i in range(10):
        c.put(("r", i), bytes(300))
    assert c.nbytes <= 1000 and len(c) == 3
    assert c.get(("r", 9)) is not None and c.get(("r", 0)) is None
    c.get(("r", 7))
    c.put(("r", 10), bytes(300))
    assert c.get(("r", 7)) is not None and c.get(("r", 8)) is None  # least recently used goes first


# ---- security ------------------------------------------------------------------------------

TRAVERSALS = [
    "/static/../predictions.json", "/static/../../secret.txt", "/static/%2e%2e/%2e%2e/secret.txt",
    "/static/..%2f..%2fsecret.txt", "/static/..%5c..%5csecret.txt", "/static/%2e%2e%2fserver.py",
    "/static/../server.py", "/static//etc/passwd", "/../secret.txt", "/%2e%2e/secret.txt",
    "/api/results/0/frames/..%2f..%2f..%2fsecret.txt", "/api/results/..%2f..%2fsecret.txt",
    "/api/results/0/masks/000000.png", "/api/results/0/predictions.json", "/api/results/0/../../secret.txt",
    "/api/results/0/frames/-1.jpg", "/api/results/0/frames/0.png", "/api/results/0/outlines/0.jpg",
    "/static/server.py", "/static/app.js%00.png", "/etc/passwd", "/static/%ff%fe.js", "/secret.txt",
]


@pytest.mark.parametrize("path", TRAVERSALS)
def test_path_traversal_is_rejected(server, result_dir, path):
    (result_dir.parent / "secret.txt").write_text("TOP-SECRET")
    status, _, body = server.get(path)
    assert status in (400, 404), (path, status)
    assert b"TOP-SECRET" not in body and b"import" not in body


def test_static_files_are_served(server):
    for name, ctype in (("/", "text/html"), ("/static/main.js", "text/javascript"), ("/static/style.css", "text/css")):
        status, headers, body = server.get(name)
        assert status == 200 and headers["Content-Type"].startswith(ctype), name
        assert "script-src 'self'" in headers["Content-Security-Policy"]
    assert b"http://" not in server.get("/")[2] and b"https://" not in server.get("/")[2]  # nothing from elsewhere


def test_foreign_host_header_is_refused(server):
    status, _, _ = server.get("/api/info", headers={"Host": "attacker.example:80"})
    assert status == 403
    assert server.get("/api/info", headers={"Host": f"localhost:{server.port}"})[0] == 200


def test_upload_disabled_without_model(server, tmp_path):
    make_video(tmp_path / "v.mp4")
    status, _, body = server.request("POST", "/api/upload", body=(tmp_path / "v.mp4").read_bytes(),
                                     headers={"X-Filename": "v.mp4"})
    assert status == 503 and b"--weights" in body


def _fake_runner(calls):
    """A job runner that writes a result folder over the uploaded video without a model."""
    from lgrnet.viewer.frames import open_frames

    def run(input_path: Path, out_dir: Path, progress) -> None:
        reader = open_frames(input_path)
        n = reader.num_frames
        for i in range(n):
            reader.read(i)
            progress(i + 1, n)
        make_result(out_dir, n=n, source=input_path, input_path=str(input_path))
        calls.append((input_path, out_dir))

    return run


@pytest.fixture
def upload_server(result_dir, tmp_path):
    calls = []
    s = Server(ViewerApp(find_results(result_dir), runner=_fake_runner(calls), work_dir=tmp_path / "work",
                         max_upload_bytes=200_000))
    s.calls = calls
    yield s
    s.close()


def _upload(server, data: bytes, name: str, headers=None):
    h = {"X-Filename": name, "Content-Type": "application/octet-stream", **(headers or {})}
    status, _, body = server.request("POST", "/api/upload", body=data, headers=h)
    return status, json.loads(body)


def test_upload_rejects_files_that_are_not_video(upload_server, tmp_path):
    png = io.BytesIO()
    Image.fromarray(make_frame(0)).save(png, format="PNG")
    cases = {
        "notes.mp4": b"hello, I am text pretending to be a video\n" * 50,  # FFmpeg would read this as 'tty'
        "image.mp4": png.getvalue(),
        "frame.png": png.getvalue(),
        "noext": b"\x00" * 100,
        "empty.mp4": b"",
    }
    for name, data in cases.items():
        status, body = _upload(upload_server, data, name)
        assert status == 415, (name, status, body)
        assert name in body["error"]
    assert list((tmp_path / "work" / "uploads").iterdir()) == []  # nothing kept
    make_video(tmp_path / "big.mp4", n=10)
    status, body = _upload(upload_server, b"\x00" * 250_000, "big.mp4")
    assert status == 413 and "limit" in body["error"]
    status, body = _upload(upload_server, (tmp_path / "big.mp4").read_bytes(), "v.mp4",
                           headers={"Origin": "http://attacker.example"})
    assert status == 403
    assert upload_server.calls == []


def test_check_video_file_accepts_real_video(tmp_path):
    make_video(tmp_path / "v.mp4", n=6)
    info = check_video_file(tmp_path / "v.mp4")
    assert info["codec"] == "h264" and (info["width"], info["height"]) == (64, 48)
    (tmp_path / "a.mp4").write_bytes((tmp_path / "v.mp4").read_bytes()[:200])  # truncated
    with pytest.raises(UploadRejected):
        check_video_file(tmp_path / "a.mp4")


def test_upload_runs_the_job_and_adds_the_result(upload_server, tmp_path):
    frames = make_video(tmp_path / "clip.mp4", n=10)
    status, job = _upload(upload_server, (tmp_path / "clip.mp4").read_bytes(), "my clip.mp4")
    assert status == 202 and job["state"] in ("queued", "running", "done")
    deadline = time.time() + 30
    while time.time() < deadline:
        job = upload_server.get_json(f"/api/jobs/{job['id']}")
        if job["state"] in ("done", "error"):
            break
        time.sleep(0.05)
    assert job["state"] == "done", job
    assert (job["done"], job["total"]) == (10, 10)
    (saved, out_dir), = upload_server.calls
    assert saved.parent == tmp_path / "work" / "uploads" and saved.suffix == ".mp4"
    assert saved.read_bytes() == (tmp_path / "clip.mp4").read_bytes()
    info = upload_server.get_json("/api/info")
    assert [r["name"] for r in info["results"]] == ["case01", "upload: my clip.mp4"]  # spaces kept (issue 29 item 9)
    rid = job["result_id"]
    body = upload_server.get(f"/api/results/{rid}/frames/3.jpg")[2]
    got = np.asarray(Image.open(io.BytesIO(body)).convert("RGB")).astype(np.int16)
    assert np.abs(got - frames[3]).mean() < 4.0
    assert upload_server.get("/api/jobs/j99")[0] == 404


def test_upload_job_error_is_reported(result_dir, tmp_path):
    def broken(input_path, out_dir, progress):
        out_dir.mkdir(parents=True)
        raise RuntimeError("model exploded")

    s = Server(ViewerApp(find_results(result_dir), runner=broken, work_dir=tmp_path / "work"))
    try:
        make_video(tmp_path / "v.mp4")
        status, job = _upload(s, (tmp_path / "v.mp4").read_bytes(), "v.mp4")
        assert status == 202
        for _ in range(200):
            job = s.get_json(f"/api/jobs/{job['id']}")
            if job["state"] == "error":
                break
            time.sleep(0.05)
        assert job["state"] == "error" and "model exploded" in job["message"]
        assert len(s.get_json("/api/info")["results"]) == 1
        assert not any((tmp_path / "work" / "results").iterdir())  # partial output removed
    finally:
        s.close()


# ---- command line --------------------------------------------------------------------------

def test_cli_reports_bad_folders_and_busy_port(tmp_path, capsys):
    from lgrnet.cli import main

    assert main(["view", str(tmp_path / "nope")]) == 2
    assert "nope: not a folder" in capsys.readouterr().err
    assert main(["view", str(tmp_path)]) == 2
    assert "no predictions.json" in capsys.readouterr().err
    root = make_result(tmp_path / "r")
    assert main(["view", str(root), "--weights", str(tmp_path / "missing.safetensors")]) == 2
    assert "missing.safetensors: no such weight file or folder" in capsys.readouterr().err  # the one loader's message
    (tmp_path / "bad.safetensors").write_bytes(b"not a checkpoint")
    assert main(["view", str(root), "--weights", str(tmp_path / "bad.safetensors")]) == 2
    err = capsys.readouterr().err  # one line naming the file (the loader's message, or the viewer's own)
    assert "bad.safetensors: " in err and len(err.strip().splitlines()) == 1 and "Traceback" not in err
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen(1)
        port = sock.getsockname()[1]
        assert main(["view", str(root), "--port", str(port)]) == 2
        assert "in use" in capsys.readouterr().err


def test_cli_serves_until_stopped(tmp_path):
    import subprocess
    import sys
    import urllib.request

    root = make_result(tmp_path / "r")
    env = dict(os.environ)
    src = str(Path(__file__).resolve().parents[1] / "src")
    env["PYTHONPATH"] = src + os.pathsep + env.get("PYTHONPATH", "")
    proc = subprocess.Popen([sys.executable, "-m", "lgrnet.cli", "view", str(root), "--port", "0"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    try:
        line = proc.stdout.readline()
        assert "at http://127.0.0.1:" in line, line + proc.stderr.read()
        url = line.split(" at ")[1].split()[0]
        with urllib.request.urlopen(url + "api/info", timeout=20) as res:
            assert json.loads(res.read())["results"][0]["num_frames"] == N
    finally:
        import signal

        proc.send_signal(signal.SIGTERM)  # handled like Ctrl+C: stop, clean up, exit 0
        proc.wait(timeout=20)
    assert proc.returncode == 0
    assert "stopped" in proc.stderr.read()


def _real_clip(data_dir: Path, path: Path, n: int = 6, size=(96, 72)) -> list:
    """An H.264 mp4 of the first ``n`` frames of a CVC-ClinicDB test video, shrunk to ``size``;
    returns the frames as decoded."""
    from lgrnet.data.datasets import find_videos
    from lgrnet.io.images import read_frame

    rec = find_videos(data_dir, "CVC-ClinicDB-612/Test")[0]
    encode_video(path, (np.asarray(Image.fromarray(read_frame(f)).resize(size, Image.BILINEAR)) for f in rec.frames[:n]),
                 fps=10)
    return decode_video(path)


def test_cli_upload_runs_the_model(tmp_path, data_dir):
    """`lgrnet view --weights` segments an uploaded video with the model: a short mp4 of real
    colonoscopy frames, a tiny random-weight model, over HTTP, polled to completion."""
    import signal
    import subprocess
    import sys

    import torch

    from lgrnet.models.lgrnet import LGRNet

    torch.manual_seed(0)
    weights = tmp_path / "tiny.safetensors"
    LGRNet.from_preset("tiny").save_pretrained(str(weights))
    frames = _real_clip(data_dir, tmp_path / "clip.mp4")
    root = make_result(tmp_path / "r")
    env = dict(os.environ)
    env["PYTHONPATH"] = str(Path(__file__).resolve().parents[1] / "src") + os.pathsep + env.get("PYTHONPATH", "")
    env["OMP_NUM_THREADS"] = "1"
    work = tmp_path / "work"
    proc = subprocess.Popen([sys.executable, "-m", "lgrnet.cli", "view", str(root), "--port", "0", "--weights",
                             str(weights), "--size", "64", "--upload-dir", str(work)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    try:
        line = proc.stdout.readline()
        assert "at http://127.0.0.1:" in line, line + proc.stderr.read()
        port = int(line.split(" at ")[1].split()[0].rstrip("/").rsplit(":", 1)[1])
        client = Client(port)
        assert client.get_json("/api/info")["upload"]["enabled"] is True
        status, job = _upload(client, (tmp_path / "clip.mp4").read_bytes(), "clip.mp4")
        assert status == 202, job
        deadline = time.time() + 180
        while job["state"] not in ("done", "error") and time.time() < deadline:
            time.sleep(0.2)
            job = client.get_json(f"/api/jobs/{job['id']}")
        assert job["state"] == "done", job
        assert (job["done"], job["total"]) == (6, 6)
        out = work / "results" / f"{job['id']}_clip"
        meta = json.loads((out / "predictions.json").read_text())
        assert meta["num_frames"] == 6 and len(meta["frames"]) == 6 and (meta["width"], meta["height"]) == (96, 72)
        assert meta["settings"]["size"] == [64, 64] and meta["settings"]["mode"] == "whole-clip"
        assert meta["settings"]["weights"] == str(weights.resolve())
        assert Path(meta["input"]).parent == work / "uploads"
        assert sorted(p.name for p in (out / "masks").iterdir()) == [f"{i:06d}.png" for i in range(6)]
        assert all(set(f) >= {"score", "bbox", "query", "area"} for f in meta["frames"])
        rid = job["result_id"]
        served = client.get_json(f"/api/results/{rid}")
        assert served["num_frames"] == 6 and served["source_status"] == "ok"
        got = np.asarray(Image.open(io.BytesIO(client.get(f"/api/results/{rid}/frames/4.jpg")[2])).convert("RGB"))
        assert np.abs(got.astype(int) - frames[4]).mean() < 4.0
        written = (out / "predictions.csv").read_bytes()
        (out / "predictions.csv").unlink()  # rebuilt from predictions.json: the writer's bytes
        assert client.get(f"/api/results/{rid}/predictions.csv")[2] == written
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=30)
    assert proc.returncode == 0, proc.stderr.read()


# ---- the page in a real browser ------------------------------------------------------------


# Counts outline-coloured pixels and the disc's (pink) pixels on the frame canvas, with their
# centroids in frame pixel coordinates.
CANVAS_PROBE = """
const c = document.getElementById('frame');
const k = parseFloat(c.dataset.scale);
const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
let g = 0, gx = 0, gy = 0, p = 0, px = 0, py = 0;
for (let y = 0; y < c.height; y++) for (let x = 0; x < c.width; x++) {
  const o = 4 * (y * c.width + x), r = d[o], G = d[o + 1], b = d[o + 2];
  if (G > 180 && r < 130 && b < 130) { g++; gx += x; gy += y; }
  else if (r > 170 && G > 80 && G < 170 && b > 100 && b < 190) { p++; px += x; py += y; }
}
return {rendered: c.dataset.rendered, k: k, green: g, gx: g ? gx / g / k : null, gy: g ? gy / g / k : null,
        pink: p, px: p ? px / p / k : null, py: p ? py / p / k : null};
"""


@pytest.mark.browser
def test_review_page_in_headless_chromium(browser, server, tmp_path):
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys
    from selenium.webdriver.support.ui import WebDriverWait

    d = browser
    wait = WebDriverWait(d, 20)

    def rendered(tag):
        wait.until(lambda drv: drv.find_element(By.ID, "frame").get_attribute("data-rendered") == tag)
        return d.execute_script(CANVAS_PROBE)

    def near(ax, ay, i, tol=1.5):
        cx, cy = disc_center(i)
        return ax is not None and abs(ax - cx) < tol and abs(ay - cy) < tol

    d.get(server.url)
    first = rendered("0:0:1")
    assert first["green"] > 100 and near(first["gx"], first["gy"], 0), first
    assert near(first["px"], first["py"], 0), first
    assert d.find_element(By.ID, "frame-label").text == f"frame 0 of 0–{N - 1}"  # counted from 0, as the URL

    # the slider, moved with the keyboard as a user would
    slider = d.find_element(By.ID, "slider")
    slider.click()
    slider.send_keys(Keys.HOME, *[Keys.ARROW_RIGHT] * 5)
    moved = rendered("0:5:1")
    assert d.find_element(By.ID, "frame-label").text == f"frame 5 of 0–{N - 1}"
    assert near(moved["gx"], moved["gy"], 5) and near(moved["px"], moved["py"], 5), moved  # frame and outline moved
    assert moved["gx"] - first["gx"] > 20

    # the outline toggle
    d.find_element(By.ID, "outline").click()
    off = rendered("0:5:0")
    assert off["green"] == 0 and near(off["px"], off["py"], 5), off
    d.find_element(By.ID, "outline").click()
    assert rendered("0:5:1")["green"] > 100

    # the confidence curve: click where frame 9 is plotted
    curve = d.find_element(By.ID, "curve")
    w = curve.size["width"]
    x = 34 + 9 / (N - 1) * (w - 34 - 8)
    ActionChains(d).move_to_element_with_offset(curve, int(round(x - w / 2)), 0).click().perform()
    at9 = rendered("0:9:1")
    assert near(at9["gx"], at9["gy"], 9), at9

    # the low-confidence list follows the threshold
    low = [i for i, s in enumerate(SCORES) if s < 0.5]
    assert d.find_element(By.ID, "low-count").text.startswith(f"{len(low)} of {N} frames below 0.50")
    buttons = d.find_elements(By.CSS_SELECTOR, "#low-list button")
    assert [b.text.split("\n")[0].split("min")[0].strip() for b in buttons] == ["frames 3–4", "frames 9–10"]
    buttons[0].click()
    rendered("0:3:1")
    thr = d.find_element(By.ID, "thr")
    thr.click()
    thr.send_keys(Keys.END)  # threshold 1.0: every frame is below
    wait.until(lambda drv: drv.find_element(By.ID, "low-count").text.startswith(f"{N} of {N} frames below 1.00"))
    thr.send_keys(Keys.HOME, *[Keys.ARROW_RIGHT] * 50)
    wait.until(lambda drv: drv.find_element(By.ID, "low-count").text.startswith(f"{len(low)} of {N} frames below 0.50"))

    # play from the start runs to the end at the video's fps, then stops
    slider.send_keys(Keys.HOME)
    rendered("0:0:1")
    t0 = time.time()
    d.find_element(By.ID, "play").click()
    wait.until(lambda drv: drv.find_element(By.ID, "play").text == "Play"
               and drv.find_element(By.ID, "frame").get_attribute("data-rendered") == f"0:{N - 1}:1")
    elapsed = time.time() - t0
    assert elapsed > 0.85 * (N - 1) / FPS, f"played {N - 1} frames in {elapsed:.2f} s at {FPS} fps"

    # export links point at working downloads
    for link_id, ctype in (("dl-masks", "application/zip"), ("dl-csv", "text/csv")):
        href = d.find_element(By.ID, link_id).get_attribute("href")
        status, headers, _ = server.get(href.split(str(server.port), 1)[1])
        assert status == 200 and headers["Content-Type"].startswith(ctype)

    # upload is off without --weights, and the page says why
    assert not d.find_element(By.ID, "upload-box").is_enabled() or \
        d.execute_script("return document.getElementById('upload-box').disabled")
    assert "--weights" in d.find_element(By.ID, "upload-status").text

    # a frame with a low score, outline on, for the screenshot
    slider.send_keys(Keys.HOME, *[Keys.ARROW_RIGHT] * 4)
    rendered("0:4:1")
    shot = tmp_path / "viewer.png"
    d.save_screenshot(str(shot))
    assert shot.stat().st_size > 10_000
    if os.environ.get("LGRNET_SCREENSHOT"):
        shutil.copy(shot, os.environ["LGRNET_SCREENSHOT"])

    severe = [e for e in d.get_log("browser") if e["level"] == "SEVERE"]
    assert severe == [], severe


@pytest.mark.browser
def test_low_confidence_threshold_starts_at_the_recorded_one(browser, tmp_path):
    """A result whose settings record the model's calibrated threshold opens with the low-confidence
    list at exactly that value: 0.8125 lies between the slider's 0.01 steps, and the frame scored 0.81
    is below it (a threshold rounded to the slider's 0.81 would leave it out). Moving the slider still works."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys
    from selenium.webdriver.support.ui import WebDriverWait

    root = make_result(tmp_path / "calibrated")
    meta = json.loads((root / "predictions.json").read_text())
    meta["settings"]["confidence_threshold"] = 0.8125
    (root / "predictions.json").write_text(json.dumps(meta))
    s = Server(ViewerApp(find_results(root)))
    try:
        d = browser
        wait = WebDriverWait(d, 20)
        d.get(s.url)
        below = sum(score < 0.8125 for score in SCORES)
        assert below == sum(score < 0.81 for score in SCORES) + 1  # the case the test is about
        wait.until(lambda drv: drv.find_element(By.ID, "low-count").text.startswith(f"{below} of {N} frames below 0.8125"))
        assert abs(float(d.find_element(By.ID, "thr").get_attribute("value")) - 0.8125) <= 0.005
        thr = d.find_element(By.ID, "thr")
        thr.click()
        thr.send_keys(Keys.HOME)
        wait.until(lambda drv: drv.find_element(By.ID, "low-count").text.startswith(f"0 of {N} frames below 0.00"))
    finally:
        s.close()


@pytest.mark.browser
def test_page_upload_runs_and_shows_the_new_result(browser, upload_server, tmp_path):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    d = browser
    wait = WebDriverWait(d, 30)
    frames = make_video(tmp_path / "clip.mp4", n=N, size=(W, H))
    d.get(upload_server.url)
    wait.until(lambda drv: drv.find_element(By.ID, "frame").get_attribute("data-rendered") == "0:0:1")
    assert "MiB" in d.find_element(By.ID, "upload-status").text  # upload is on
    (tmp_path / "notes.mp4").write_text("not a video\n" * 20)
    d.find_element(By.ID, "upload-file").send_keys(str(tmp_path / "notes.mp4"))
    d.find_element(By.ID, "upload-btn").click()
    wait.until(lambda drv: "Rejected: notes.mp4: not a video file" in drv.find_element(By.ID, "upload-status").text)

    d.find_element(By.ID, "upload-file").send_keys(str(tmp_path / "clip.mp4"))
    d.find_element(By.ID, "upload-btn").click()
    wait.until(lambda drv: drv.find_element(By.ID, "frame").get_attribute("data-rendered") == "1:0:1")
    assert "clip.mp4: done" in d.find_element(By.ID, "upload-status").text
    options = [o.text for o in d.find_elements(By.CSS_SELECTOR, "#result-select option")]
    assert options[1].startswith("upload: clip.mp4") and len(options) == 2
    probe = d.execute_script(CANVAS_PROBE)
    assert probe["green"] > 100  # the fake runner's disc masks, drawn over the uploaded video's frames
    # the canvas shows the uploaded video's first frame (light grey with a dark bar at the left), not the
    # first result's (dark background)
    probe_px = ("const c = document.getElementById('frame'); const k = +c.dataset.scale;"
                "return Array.from(c.getContext('2d').getImageData(Math.round(X * k), Math.round(Y * k), 1, 1).data);")
    for x, y in ((1, 60), (60, 5)):
        px = d.execute_script(probe_px.replace("X", str(x + 0.5)).replace("Y", str(y + 0.5)))
        assert np.abs(np.array(px[:3]) - frames[0][y, x]).max() < 12, ((x, y), px, frames[0][y, x])
