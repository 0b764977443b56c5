"""Time ``lgrnet score`` on synthetic prediction folders: by default 1,000 scored frames of 352 x 352
(20 videos of 52 frames; the SUN-SEG protocol drops each video's first and last).

Masks are random ellipses; predictions are blurred, shifted and noisy probability maps. The command
runs in a fresh process (start-up and imports included) and the wall time is reported with the
machine's load average before and after, since timings on a shared machine are only indicative.

usage: python benchmarks/score_speed.py [--videos 20] [--frames 52] [--size 352] [--protocol sunseg]
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np


def make_folders(root: Path, videos: int, frames: int, size: int, seed: int = 0) -> None:
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:size, :size]
    for v in range(videos):
        cy, cx = rng.uniform(0.3, 0.7, 2) * size
        for f in range(frames):
            ry, rx = rng.uniform(0.08, 0.25, 2) * size
            cy += rng.normal(0, 2)
            cx += rng.normal(0, 2)
            gt = ((((yy - cy) / ry) ** 2 + ((xx - cx) / rx) ** 2) <= 1).astype(np.float32)
            pred = cv2.GaussianBlur(np.roll(gt, (int(rng.integers(-8, 9)), int(rng.integers(-8, 9))), (0, 1)), (0, 0), 4)
            pred = np.clip(pred + rng.normal(0, 0.08, pred.shape), 0, 1)
            for kind, img in (("GT", gt), ("pred", pred)):
                d = root / kind / f"video{v}"
                d.mkdir(parents=True, exist_ok=True)
                cv2.imwrite(str(d / f"{f + 1}.png"), np.round(img * 255).astype(np.uint8))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--videos", type=int, default=20)
    ap.add_argument("--frames", type=int, default=52, help="frames per video (2 are dropped by sunseg)")
    ap.add_argument("--size", type=int, default=352)
    ap.add_argument("--protocol", choices=("sunseg", "authors", "fibroid"), default="sunseg")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        make_folders(root, args.videos, args.frames, args.size)
        env = dict(os.environ)
        src = Path(__file__).resolve().parents[1] / "src"
        env["PYTHONPATH"] = f"{src}{os.pathsep}{env.get('PYTHONPATH', '')}"
        cmd = [sys.executable, "-m", "lgrnet.cli", "score", str(root / "pred"), str(root / "GT"),
               "--protocol", args.protocol, "--json", str(root / "r.json"), "--quiet"]
        load_before = os.getloadavg()
        t0 = time.perf_counter()
        subprocess.run(cmd, env=env, check=True)
        seconds = time.perf_counter() - t0
        load_after = os.getloadavg()
        res = json.loads((root / "r.json").read_text())
    print(json.dumps({"protocol": args.protocol, "frames_scored": res["frames"], "videos": res["videos"],
                      "size": args.size, "seconds": round(seconds, 2),
                      "ms_per_frame": round(1000 * seconds / max(res["frames"], 1), 2),
                      "loadavg_before": [round(x, 2) for x in load_before],
                      "loadavg_after": [round(x, 2) for x in load_after], "cpus": os.cpu_count()}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
