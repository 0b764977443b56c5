"""End-to-end ``lgrnet predict`` against the model alone, and peak memory against video length.

    python benchmarks/pipeline.py speed --preset tiny --frames 300 --rounds 3
    python benchmarks/pipeline.py speed --weights demo --frames 300 --rounds 3
    python benchmarks/pipeline.py speed --preset sunseg_pvt --frames 300 --rounds 2
    python benchmarks/pipeline.py memory --preset tiny --size 64 --frames 1000 10000

speed: a synthetic 574x500 mp4 (moving blobs on a textured background) of ``--frames`` frames;
each round times, interleaved in one process (the shared machine's speed drifts), (a) the model
alone: the same windows through the predictor's ClipRunner on model inputs decoded and resized
beforehand, and (b) ``predict_to_folder`` with every output (mask and probability PNGs, the
overlay video, predictions.json/csv), pipelined and, with ``--serial``, in turn. Printed per
round: frames/s of each and the ratio end-to-end / model-only, plus the stage shares of the
pipelined run. The windows are ``--window`` frames (default 32): a video run as one clip cannot
overlap reading or writing with its single forward pass.

``--weights demo``: the shipped tiny model instead of random weights. Random weights mark most of
every frame as lesion, in many pieces; a trained model's single outlines cost the writers less.

memory: ``lgrnet predict`` in a child process per length (same settings), its peak RSS
(``ru_maxrss`` of the child), and the ratio to the first length.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from fractions import Fraction
from pathlib import Path

import numpy as np


def synthetic_video(path: Path, frames: int, size=(500, 574), fps: int = 25) -> Path:
    """A smooth, compressible test video: a textured background and a moving bright blob."""
    import av

    H, W = size
    yy, xx = np.mgrid[0:H, 0:W]
    base = (80 + 40 * np.sin(xx / 23.0) * np.cos(yy / 31.0)).astype(np.float32)
    c = av.open(str(path), "w")
    st = c.add_stream("libx264", rate=Fraction(fps))
    st.height, st.width, st.pix_fmt = H, W, "yuv420p"
    st.options = {"preset": "veryfast"}
    for t in range(frames):
        cx, cy = W / 2 + W / 3 * np.sin(t / 17.0), H / 2 + H / 4 * np.cos(t / 23.0)
        blob = 120 * np.exp(-((xx - cx) ** 2 + (yy - cy) ** 2) / (2 * 45.0 ** 2))
        g = np.clip(base + blob, 0, 255).astype(np.uint8)
        rgb = np.stack([np.clip(g * 1.3, 0, 255).astype(np.uint8), g, (g * 0.7).astype(np.uint8)], -1)
        for pk in st.encode(av.VideoFrame.from_ndarray(rgb, format="rgb24")):
            c.mux(pk)
    for pk in st.encode(None):
        c.mux(pk)
    c.close()
    return path


def load() -> float:
    return round(os.getloadavg()[0], 2)


def speed(args) -> None:
    import torch

    from lgrnet import LGRNet, VideoPredictor
    from lgrnet.inference.clip import frames_to_tensor
    from lgrnet.runs.predict_folder import predict_to_folder
    from lgrnet.inference.windows import plan_windows
    from lgrnet.io import open_source

    torch.manual_seed(0)
    torch.set_num_threads(args.threads)
    tmp = Path(tempfile.mkdtemp(prefix="lgrnet-pipeline-bench-"))
    video = synthetic_video(tmp / "synthetic.mp4", args.frames)
    if args.weights == "demo":  # the shipped tiny model: a trained model's masks (random weights give noise)
        from lgrnet.commands.demo import demo_weights

        model = LGRNet.from_pretrained(demo_weights())
    elif args.weights:
        model = LGRNet.from_pretrained(args.weights)
    else:
        model = LGRNet.from_preset(args.preset).eval()
    pipelined = VideoPredictor(model, size=args.size, window=args.window, overlap=args.overlap)
    serial = VideoPredictor(model, size=args.size, window=args.window, overlap=args.overlap, pipeline=False)
    # the model alone: the same windows over inputs decoded and resized beforehand
    xs = [frames_to_tensor(f[None], pipelined.size)[0, 0] for f in open_source(video)]
    plan = pipelined.plan((500, 574))
    windows = plan_windows(len(xs), plan.window, plan.overlap)

    def model_only() -> float:
        t = time.perf_counter()
        for w in windows:
            pipelined.runner(xs[w.start:w.end], repeated=len(windows) > 1)
        return len(xs) / (time.perf_counter() - t)

    def end_to_end(predictor, k: int) -> tuple:
        out = tmp / f"out{k}"
        s = predict_to_folder(predictor, video, out, overlay=True)
        fps = s.num_frames / s.settings["seconds"]
        import shutil

        shutil.rmtree(out)
        return fps, s.settings.get("stage_shares")

    model_only_warm = model_only() if args.warmup else None
    rounds = []
    for r in range(args.rounds):
        row = {"round": r, "load_before": load()}
        order = ["model", "pipelined", "serial"] if r % 2 == 0 else ["serial", "pipelined", "model"]
        for what in order:
            if what == "model":
                row["model_only_fps"] = round(model_only(), 3)
            elif what == "pipelined":
                row["end_to_end_fps"], row["stage_shares"] = end_to_end(pipelined, r)
            elif args.serial:
                row["serial_fps"], _ = end_to_end(serial, 100 + r)
        row["ratio"] = round(row["end_to_end_fps"] / row["model_only_fps"], 3)
        if args.serial:
            row["serial_ratio"] = round(row["serial_fps"] / row["model_only_fps"], 3)
        row["load_after"] = load()
        rounds.append(row)
        print(json.dumps(row), flush=True)
    summary = {"preset": args.preset, "weights": args.weights or "random", "frames": args.frames, "frame_size": [500, 574], "size": args.size,
               "window": plan.window, "overlap": plan.overlap, "threads": args.threads,
               "warmup_model_fps": model_only_warm, "median_ratio": statistics.median(r["ratio"] for r in rounds)}
    if args.serial:
        summary["median_serial_ratio"] = statistics.median(r["serial_ratio"] for r in rounds)
    print(json.dumps(summary))


def memory(args) -> None:
    tmp = Path(tempfile.mkdtemp(prefix="lgrnet-memory-bench-"))
    code = ("import torch; from lgrnet import LGRNet; torch.manual_seed(0); "
            f"LGRNet.from_preset({args.preset!r}).save_pretrained({str(tmp / 'w.safetensors')!r})")
    subprocess.run([sys.executable, "-c", code], check=True)
    rows = []
    for n in args.frames:
        video = synthetic_video(tmp / f"v{n}.mp4", n, size=(args.height, args.width))
        cmd = [sys.executable, "-c", "import resource, sys; from lgrnet.cli import main; code = main(sys.argv[1:]); "
               "print('MAXRSS', resource.getrusage(resource.RUSAGE_SELF).ru_maxrss); sys.exit(code)",
               "predict", str(video), "--weights", str(tmp / "w.safetensors"), "--out", str(tmp / f"o{n}"),
               "--size", str(args.size), "--window", str(args.window), "--no-progress", "--device", "cpu"]
        t = time.perf_counter()
        r = subprocess.run(cmd, capture_output=True, text=True, check=True)
        kib = int([line for line in r.stdout.splitlines() if line.startswith("MAXRSS")][-1].split()[1])
        rows.append({"frames": n, "peak_rss_mib": round(kib / 1024, 1), "seconds": round(time.perf_counter() - t, 1)})
        rows[-1]["ratio_to_first"] = round(rows[-1]["peak_rss_mib"] / rows[0]["peak_rss_mib"], 3)
        print(json.dumps(rows[-1]), flush=True)
    print(json.dumps({"preset": args.preset, "size": args.size, "window": args.window, "rows": rows}))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = ap.add_subparsers(dest="what", required=True)
    s = sub.add_parser("speed")
    s.add_argument("--preset", default="tiny")
    s.add_argument("--weights", default=None,
                   help="a weight file, or 'demo' (the shipped tiny model); default: the preset's random weights")
    s.add_argument("--frames", type=int, default=300)
    s.add_argument("--size", type=int, default=352)
    s.add_argument("--window", type=int, default=32)
    s.add_argument("--overlap", type=int, default=None)
    s.add_argument("--rounds", type=int, default=3)
    s.add_argument("--threads", type=int, default=2)
    s.add_argument("--serial", action="store_true", help="also time the unpipelined predictor")
    s.add_argument("--warmup", action="store_true", help="one model-only pass before the rounds")
    m = sub.add_parser("memory")
    m.add_argument("--preset", default="tiny")
    m.add_argument("--frames", type=int, nargs="+", default=[1000, 10000])
    m.add_argument("--size", type=int, default=64)
    m.add_argument("--window", type=int, default=32)
    m.add_argument("--height", type=int, default=120)
    m.add_argument("--width", type=int, default=160)
    args = ap.parse_args()
    speed(args) if args.what == "speed" else memory(args)


if __name__ == "__main__":
    main()
