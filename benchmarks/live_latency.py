"""`lgrnet live` latency: a 25 fps video played in real time through the code path `lgrnet live
SOURCE --realtime` runs (io.capture.open_capture -> inference.realtime.run_live ->
CausalSession, the live page's LiveState fed every frame), for several window/stride settings;
prints a markdown table (docs/live.md).

    python benchmarks/live_latency.py                                  # the shipped model, default grid
    python benchmarks/live_latency.py --threads 1 --seconds 20
    python benchmarks/live_latency.py --window 4 --stride 1 2          # K=4 with S=1 and S=2
    python benchmarks/live_latency.py --fresh polyp_lite2 --size 256   # a freshly initialised preset
    python benchmarks/live_latency.py --cli                            # also `lgrnet live --out` itself

The source: the frames of --data's split (default /work/shared/data CVC-ClinicDB-612/Test, else the
shipped demo clip), its videos in turn and repeated to --seconds, encoded as H.264 at --fps into a
temporary mp4, then read by FFmpeg and released at each frame's presentation time, as `lgrnet live
--realtime` plays a file. Per setting, in one process: the predictor is warmed up on a few frames
(not measured), then the whole video streams once. Figures:

- latency p50 / p99 / max: per processed frame, from its release (decode done) to its prediction
  ready, in 1 ms bins (inference.realtime.LatencyStats, what `lgrnet live` prints and records);
- processed/s: processed frames over the time from the first result to the last; dropped: frames
  the model could not keep up with; "unaccounted": the video's frames minus processed minus
  dropped (0: every frame is either processed or counted as dropped);
- where the time goes: the session's busy time per processed frame in the backbone (per frame),
  the encoder/decoder (per window, every S frames) and post-processing.

With --cli the same video also runs through the `lgrnet live VIDEO --realtime --no-page --out`
command in a fresh process (recording included), and the figures it records in predictions.json
are printed too.

Latency needs a quiet machine: run it with nothing else on the cores, at normal priority (not
`nice`); the load average before each setting is printed.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from fractions import Fraction
from pathlib import Path
from typing import Dict, List, Optional, Tuple

REPO = Path(__file__).resolve().parents[1]
DEFAULT_DATA = Path(os.environ.get("LGRNET_SHARED") or REPO.parent / "shared") / "data"
DEFAULT_GRID = ["4:1", "2:1", "4:2", "6:1", "6:2", "8:4"]


def frame_paths(split: Path) -> List[Path]:
    """The PNG/JPEG frames of a split (``Frame/<video>/``), its videos in numeric order, or of a
    folder of frames."""
    def key(p: Path):
        return (0, int(p.stem), "") if p.stem.isdigit() else (1, 0, p.stem)

    root = split / "Frame" if (split / "Frame").is_dir() else split
    videos = sorted([d for d in root.iterdir() if d.is_dir()], key=key) or [root]
    out = []
    for v in videos:
        out += sorted([p for p in v.iterdir() if p.suffix.lower() in (".png", ".jpg", ".jpeg")], key=key)
    return out


def make_video(paths: List[Path], out: Path, fps: float, seconds: float) -> Tuple[Path, int]:
    """An H.264 mp4 (crf 18) of ``paths`` in turn, repeated until ``seconds`` at ``fps``; (path, frames)."""
    import av
    import numpy as np
    from PIL import Image

    frames = [np.asarray(Image.open(p).convert("RGB")) for p in paths]
    h, w = frames[0].shape[0] // 2 * 2, frames[0].shape[1] // 2 * 2
    total = max(1, round(seconds * fps))
    c = av.open(str(out), "w")
    try:
        st = c.add_stream("libx264", rate=Fraction(fps).limit_denominator(1001))
        st.height, st.width, st.pix_fmt = h, w, "yuv420p"
        st.options = {"crf": "18"}
        for i in range(total):
            f = np.ascontiguousarray(frames[i % len(frames)][:h, :w])
            for pk in st.encode(av.VideoFrame.from_ndarray(f, format="rgb24")):
                c.mux(pk)
        for pk in st.encode(None):
            c.mux(pk)
    finally:
        c.close()
    return out, total


def fresh_weights(preset: str, size: Optional[int], folder: Path) -> str:
    """A freshly initialised ``preset`` model (random weights, seed 0) saved with its input size."""
    import torch

    from lgrnet.config import get_preset
    from lgrnet.models.lgrnet import LGRNet

    cfg = get_preset(preset)
    size = size or cfg.train.image_size
    torch.manual_seed(0)
    path = folder / f"fresh-{preset}-{size}.safetensors"
    return LGRNet(cfg.model).eval().save_pretrained(str(path), metadata={"input_size": str(size)})


def load_average() -> str:
    try:
        return " ".join(Path("/proc/loadavg").read_text().split()[:3])
    except OSError:
        return "?"


def cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "?"


def measure(predictor, video: Path, frames: int, warmup: List) -> Dict[str, object]:
    """One run of ``video`` in real time through lgrnet live's path; the figures (see the module doc)."""
    from lgrnet.inference.realtime import LatencyStats, run_live
    from lgrnet.io.capture import open_capture
    from lgrnet.viewer.live import LiveState

    warm = predictor.session("warm-up")
    for f in warmup:
        warm.push(f)
    warm.flush()
    load = load_average()
    source = open_capture(str(video), realtime=True)
    state = LiveState(source.path, predictor.settings())  # as lgrnet live with its page (no browser polling)
    stats = LatencyStats()
    session = predictor.session(where=source.path)
    t0 = time.perf_counter()
    live = run_live(session, source.frames(), drop=source.realtime)
    try:
        for lp in live:
            stats.add(lp)
            state.publish(lp, stats.summary())
    finally:
        live.close()
        source.close()
    wall = time.perf_counter() - t0
    fig = stats.run_summary()
    busy = session.clock.seconds()
    n = max(1, fig["processed"])
    return {"window": predictor.window, "stride": predictor.stride, "frames": frames, **fig,
            "unaccounted": frames - fig["processed"] - fig["dropped"], "wall_s": round(wall, 2),
            "windows": session.windows, "backbone_ms_per_frame": round(1000 * busy.get("backbone", 0) / n, 1),
            "encdec_ms_per_window": round(1000 * busy.get("encoder_decoder", 0) / max(1, session.windows), 1),
            "postprocess_ms_per_frame": round(1000 * busy.get("postprocess", 0) / n, 1),
            "busy_ms_per_frame": round(1000 * sum(busy.values()) / n, 1), "load_before": load}


def via_cli(weights: str, size: Optional[int], video: Path, k: int, s: int, threads: int, precision: str,
            out: Path) -> Dict:
    """``lgrnet live VIDEO --realtime --no-page --out`` in a fresh process; the figures it recorded."""
    name = f"K{k}-S{s}"
    cmd = [sys.executable, "-m", "lgrnet", "live", str(video), "--realtime", "--no-page", "--weights", weights,
           "--window", str(k), "--stride", str(s), "--threads", str(threads), "--precision", precision, "--out", str(out), "--name", name]
    if size:
        cmd += ["--size", str(size)]
    env = {**os.environ, "PYTHONPATH": str(REPO / "src")}
    subprocess.run(cmd, check=True, env=env, stdout=subprocess.DEVNULL)
    settings = json.loads((out / name / "predictions.json").read_text())["settings"]
    keys = ("frames_read", "processed", "dropped", "latency_p50_ms", "latency_p99_ms", "latency_max_ms", "fps")
    return {"window": k, "stride": s, **{key: settings.get(key) for key in keys}}


def settings_grid(args) -> List[Tuple[int, int]]:
    from lgrnet.inference.stream import DEFAULT_STRIDE, DEFAULT_WINDOW

    if args.window or args.stride:
        return [(k, s) for k in (args.window or [DEFAULT_WINDOW]) for s in (args.stride or [DEFAULT_STRIDE]) if s <= k]
    grid = [tuple(int(v) for v in item.split(":")) for item in args.grid]
    default = (DEFAULT_WINDOW, DEFAULT_STRIDE)
    return [default] + [g for g in grid if g != default]


def main(argv=None) -> int:
    tmp = Path(tempfile.mkdtemp(prefix="lgrnet-live-latency-"))  # the video, fresh weights, --cli recordings
    try:
        return run(argv, tmp)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def run(argv, tmp: Path) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--weights", default="demo", help="weights (default: demo, the shipped model)")
    p.add_argument("--fresh", metavar="PRESET", help="instead of --weights: a freshly initialised PRESET model "
                                                    "(e.g. polyp_lite2), saved at --size (default: its training size)")
    p.add_argument("--size", type=int, default=None, help="model input size (default: the size the weights record)")
    p.add_argument("--threads", type=int, default=2, help="CPU threads (default 2)")
    p.add_argument("--precision", choices=("fp32", "bf16"), default="fp32",
                   help="the model's precision (default fp32, lgrnet live's CPU default; bf16 needs a CPU with it)")
    p.add_argument("--seconds", type=float, default=20.0, help="length of the played video per setting (default 20)")
    p.add_argument("--fps", type=float, default=25.0, help="the video's frame rate (default 25)")
    p.add_argument("--window", type=int, nargs="+", help="windows K to measure (with --stride: every S <= K)")
    p.add_argument("--stride", type=int, nargs="+", help="strides S to measure")
    p.add_argument("--grid", nargs="+", default=DEFAULT_GRID, metavar="K:S",
                   help=f"settings when neither --window nor --stride is given (default {' '.join(DEFAULT_GRID)}; "
                        f"lgrnet's default first)")
    p.add_argument("--data", type=Path, default=DEFAULT_DATA, help="the data root (default %(default)s)")
    p.add_argument("--split", default="CVC-ClinicDB-612/Test", help="the split whose frames make the video")
    p.add_argument("--video", type=Path, help="play this video instead (it is played once, whatever --seconds)")
    p.add_argument("--cli", action="store_true", help="also run each setting through `lgrnet live --out`")
    p.add_argument("--json", type=Path, help="write the figures here too")
    args = p.parse_args(argv)

    from lgrnet.runtime import configure_threads, prepare_openmp, tune_cpu_allocator

    prepare_openmp()  # as the lgrnet command: before torch loads
    configure_threads(str(args.threads))
    tune_cpu_allocator()
    import av

    from lgrnet.inference.stream import CausalPredictor

    weights = fresh_weights(args.fresh, args.size, tmp) if args.fresh else args.weights
    if args.video:
        video = args.video
        with av.open(str(video)) as c:
            frames = sum(1 for _ in c.decode(video=0))
        origin = str(video)
    else:
        split = args.data / args.split
        if not split.is_dir():
            split = REPO / "src" / "lgrnet" / "assets" / "demo_clip" / "frames"
        paths = frame_paths(split)
        video, frames = make_video(paths, tmp / "source.mp4", args.fps, args.seconds)
        origin = f"{split} ({len(paths)} frames, repeated)"
    from lgrnet.io.capture import open_capture

    probe = open_capture(str(video))
    warmup = [f.frame for _, f in zip(range(8), probe.frames())]
    fps, frame_size = probe.fps, probe.frame_size
    probe.close()

    rows = []
    for k, s in settings_grid(args):
        predictor = CausalPredictor.from_pretrained(weights, device="cpu", size=args.size, window=k, stride=s,
                                                     precision=args.precision)
        rows.append(measure(predictor, video, frames, warmup))
        print(f"K={k} S={s}: {json.dumps(rows[-1])}", file=sys.stderr, flush=True)
    cli_rows = [via_cli(weights, args.size, video, k, s, args.threads, args.precision, tmp / "cli") for k, s in settings_grid(args)] \
        if args.cli else []

    size = predictor.size if isinstance(predictor.size, int) or predictor.size[0] != predictor.size[1] \
        else predictor.size[0]
    label = args.fresh and f"freshly initialised {args.fresh}" or Path(str(weights)).name
    print(f"\n{label} at {size} px; source {origin}: {frames} frames of {frame_size[1]}x{frame_size[0]} at "
          f"{fps:g} fps played in real time; {args.precision}; {args.threads} thread(s); CPU {cpu_name()}; "
          f"torch {__import__('torch').__version__}\n")
    print("| K | S | latency p50 ms | p99 ms | max ms | processed/s | processed | dropped | unaccounted "
          "| backbone ms/frame | enc+dec ms/window | busy ms/frame | load before |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['window']} | {r['stride']} | {r['latency_p50_ms']} | {r['latency_p99_ms']} | {r['latency_max_ms']} "
              f"| {r['fps']} | {r['processed']} | {r['dropped']} | {r['unaccounted']} | {r['backbone_ms_per_frame']} "
              f"| {r['encdec_ms_per_window']} | {r['busy_ms_per_frame']} | {r['load_before']} |")
    if cli_rows:
        print("\n`lgrnet live VIDEO --realtime --no-page --out` (fresh process, recording):\n")
        print("| K | S | frames read | processed | dropped | latency p50 ms | p99 ms | max ms | processed/s |")
        print("|---|---|---|---|---|---|---|---|---|")
        for r in cli_rows:
            print(f"| {r['window']} | {r['stride']} | {r['frames_read']} | {r['processed']} | {r['dropped']} "
                  f"| {r['latency_p50_ms']} | {r['latency_p99_ms']} | {r['latency_max_ms']} | {r['fps']} |")
    if args.json:
        args.json.write_text(json.dumps({"weights": str(weights) if not args.fresh else label, "size": size,
                                         "precision": args.precision,
                                         "threads": args.threads, "cpu": cpu_name(), "source": origin,
                                         "frames": frames, "fps": fps, "rows": rows, "cli": cli_rows}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
