"""The synthetic result folder that the viewer tests share: 12 frames of 96 x 72 with a disc moving
left to right (frame 10 empty), its prediction files, a small H.264 video, and a viewer server on a
loopback port with a tiny HTTP client. The ``result_dir`` and ``server`` fixtures (conftest.py) are
built from these."""
from __future__ import annotations

import csv
import http.client
import json
from pathlib import Path

import numpy as np
from PIL import Image

from lgrnet.viewer import ViewerApp, serve_in_thread
from tests.helpers.media import decode_video, encode_video

W, H, N, R, FPS = 96, 72, 12, 14, 8.0
BG, DISC = (40, 30, 35), (220, 120, 140)
SCORES = [0.92, 0.88, 0.81, 0.35, 0.28, 0.77, 0.9, 0.93, 0.62, 0.41, 0.0, 0.86]  # frame 10: nothing found


def disc_center(i: int) -> tuple:
    return (20.0 + i * (W - 40.0) / (N - 1), H / 2.0 + 6.0 * np.sin(i / 2.0))


def disc_mask(i: int) -> np.ndarray:
    cx, cy = disc_center(i)
    yy, xx = np.mgrid[0:H, 0:W]
    return (xx - cx) ** 2 + (yy - cy) ** 2 <= R * R


def make_frame(i: int) -> np.ndarray:
    img = np.empty((H, W, 3), np.uint8)
    img[:] = BG
    img[disc_mask(i)] = DISC
    return img


def make_result(root: Path, n: int = N, source: Path = None, input_path: str = None) -> Path:
    """Write a result folder at ``root`` (and, unless ``source`` is given, its frame folder beside it)."""
    root.mkdir(parents=True)
    if source is None:
        source = root.parent / f"{root.name}_frames"
        source.mkdir()
        for i in range(n):
            Image.fromarray(make_frame(i)).save(source / f"frame{i + 1}.png")  # natural order: frame1..frame12
    (root / "masks").mkdir()
    (root / "probs").mkdir()
    frames = []
    for i in range(n):
        m = disc_mask(i) if SCORES[i % len(SCORES)] > 0 else np.zeros((H, W), bool)
        Image.fromarray(m.astype(np.uint8) * 255).save(root / "masks" / f"{i:06d}.png")
        Image.fromarray((m * 200 + 20).astype(np.uint8)).save(root / "probs" / f"{i:06d}.png")
        ys, xs = np.nonzero(m)
        s = SCORES[i % len(SCORES)]
        frames.append({"index": i, "name": f"frame{i + 1}.png", "score": s, "class_score": 0.95 if s else 0.1,
                       "mask_score": s / 0.95 if s else 0.0, "area": int(m.sum()),
                       "bbox": [int(xs.min()), int(ys.min()), int(xs.max()) + 1, int(ys.max()) + 1] if m.any() else None,
                       "query": 3})
    meta = {"input": input_path if input_path is not None else str(source.resolve()), "kind": "frames",
            "num_frames": n, "fps": FPS, "width": W, "height": H,
            "settings": {"weights": "synthetic", "size": 352}, "frames": frames}
    (root / "predictions.json").write_text(json.dumps(meta))
    with open(root / "predictions.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["index", "name", "score", "class_score", "mask_score", "area",
                    "bbox_x0", "bbox_y0", "bbox_x1", "bbox_y1", "query"])
        for fr in frames:
            w.writerow([fr["index"], fr["name"], fr["score"], fr["class_score"], fr["mask_score"], fr["area"],
                        *(fr["bbox"] or ["", "", "", ""]), fr["query"]])
    return root


def make_video(path: Path, n: int = 10, gop: int = 4, size=(64, 48)) -> list:
    """An H.264 mp4 of ``n`` frames with a keyframe every ``gop`` frames; returns the frames as decoded."""
    w, h = size

    def frame(i):
        img = np.full((h, w, 3), 200, np.uint8)
        img[:, : (i * 5) % w + 4] = (30 + 20 * i) % 256
        return img

    encode_video(path, (frame(i) for i in range(n)), fps=10, gop=gop)
    return decode_video(path)


class Client:
    """A tiny HTTP client for a viewer on a loopback port."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.url = f"http://127.0.0.1:{port}/"

    def request(self, method: str, path: str, body: bytes = None, headers: dict = None):
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=20)
        try:
            conn.request(method, path, body=body, headers=headers or {})
            res = conn.getresponse()
            return res.status, dict(res.getheaders()), res.read()
        finally:
            conn.close()

    def get(self, path: str, **kw):
        return self.request("GET", path, **kw)

    def get_json(self, path: str):
        status, _, body = self.get(path)
        assert status == 200, (path, status, body[:300])
        return json.loads(body)


class Server(Client):
    """A viewer server on a free loopback port, with the client above."""

    def __init__(self, app: ViewerApp) -> None:
        self.app = app
        self.httpd, self.thread = serve_in_thread(app, "127.0.0.1", 0)
        super().__init__(self.httpd.server_address[1])

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
        self.app.close()
