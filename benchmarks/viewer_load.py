"""Load test of an `lgrnet view` process on loopback (127.0.0.1 only), with a model for uploads:
concurrent clients fetch frames, outlines, masks.zip, the CSV and the JSON routes of a result while
uploaded videos run through the tiny model one after another. Bounded in requests and in time.
Reports requests/s, latency percentiles, error responses, stuck requests and the server's RSS
(sampled from /proc) over the run. ``tests/test_viewer_load.py`` is the short CI part.

usage: python -m benchmarks.viewer_load [--clients 16] [--seconds 60] [--uploads 3]
       [--frames 48] [--cache-mb 8] [--json OUT]
"""
from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

from tests.helpers.viewer_load import rss_mib, run_load  # noqa: E402


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--clients", type=int, default=16)
    ap.add_argument("--seconds", type=float, default=60.0)
    ap.add_argument("--max-requests", type=int, default=200000)
    ap.add_argument("--uploads", type=int, default=3)
    ap.add_argument("--frames", type=int, default=48, help="frames of the served result and of each upload")
    ap.add_argument("--cache-mb", type=float, default=8.0, help="lgrnet view --cache-mb (small: evictions under load)")
    ap.add_argument("--json", metavar="OUT")
    args = ap.parse_args()

    import numpy as np
    import torch
    from tests.helpers.media import encode_video
    from tests.helpers.viewer_results import make_result

    from lgrnet.models.lgrnet import LGRNet

    with tempfile.TemporaryDirectory(prefix="lgrnet-viewer-load-") as tmp:
        tmp = Path(tmp)
        root = make_result(tmp / "result", n=args.frames)
        torch.manual_seed(0)
        weights = LGRNet.from_preset("tiny").save_pretrained(str(tmp / "tiny.safetensors"))
        rng = np.random.default_rng(0)
        video = encode_video(tmp / "up.mp4", [rng.integers(0, 256, (72, 96, 3), dtype=np.uint8)
                                              for _ in range(args.frames)], fps=10).read_bytes()
        env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=str(ROOT / "src"))
        proc = subprocess.Popen([sys.executable, "-m", "lgrnet.cli", "view", str(root), "--host", "127.0.0.1",
                                 "--port", "0", "--weights", weights, "--size", "64", "--upload-dir", str(tmp / "work"),
                                 "--cache-mb", str(args.cache_mb)],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
        try:
            line = proc.stdout.readline()
            if " at http://127.0.0.1:" not in line:
                print(line + proc.stderr.read(), file=sys.stderr)
                return 2
            port = int(line.split(" at ")[1].split()[0].rstrip("/").rsplit(":", 1)[1])
            idle = rss_mib(str(proc.pid))
            report = run_load(port, args.frames, clients=args.clients, seconds=args.seconds,
                              max_requests=args.max_requests, upload=video, max_uploads=args.uploads,
                              rss=lambda: rss_mib(str(proc.pid)))
        finally:
            proc.send_signal(signal.SIGTERM)
            try:
                _, err = proc.communicate(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
                _, err = proc.communicate()
    out = report.summary()
    out.update({"cache_mb": args.cache_mb, "clients": args.clients, "uploads": args.uploads, "frames": args.frames, "server_rss_idle_mib": round(idle, 1),
                "server_exit": proc.returncode, "server_stderr_tail": err[-2000:],
                "load_average": os.getloadavg(), "when": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())})
    print(json.dumps(out, indent=1))
    if args.json:
        Path(args.json).write_text(json.dumps(out, indent=1) + "\n")
    ok = not report.errors and not report.stuck and not report.upload_errors and report.uploads_done == args.uploads
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
