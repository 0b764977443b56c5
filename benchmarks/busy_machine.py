"""`lgrnet predict` and `lgrnet evaluate` on a busy machine (issue 29, item 1): wall time with 0, 1
and 2 other one-thread compute jobs running, for the default settings and the alternatives, and the
ratios to the idle time.

Run it on an otherwise idle machine (nothing else running: the figures are ratios to this script's
own idle runs). Each command runs in a fresh process (as a user starts it; the wall time includes
starting Python and loading the model); settings are interleaved within a round, loads are the
outer loop. The other jobs are `python` processes multiplying 256x256 matrices with one BLAS thread,
at the same priority as lgrnet.

Settings (environment and options of the measured command):
  default          what lgrnet does by itself: auto threads (the usable cores), OMP_WAIT_POLICY=PASSIVE
  spin-300k        libgomp's own default (GOMP_SPINCOUNT=300000, the wait policy unset): lgrnet before
                   issue 29; idle threads spin 300,000 turns after every parallel region
  active           OMP_WAIT_POLICY=ACTIVE (idle threads never sleep)
  spin-10k         GOMP_SPINCOUNT=10000: spin briefly, then sleep
  threads-1        --threads 1 (what "fewer threads when the cores are busy" gives on 2 cores)
  threads-busy     --threads set to the cores that /proc/stat shows idle just before the run (at least 1)

Targets (issue 29): default within 2x of its idle time with one other job, 3.5x with two.

  python benchmarks/busy_machine.py                       # all settings, loads 0 1 2, 3 rounds
  python benchmarks/busy_machine.py --settings default spin-300k --rounds 2
  python benchmarks/busy_machine.py --smoke               # seconds: 9 frames, one video, one round
  python benchmarks/busy_machine.py --json benchmarks/results/cpu_busy_machine.json
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Dict, List

REPO = Path(__file__).resolve().parents[1]

SETTINGS: Dict[str, Dict] = {
    "default": {"env": {}, "args": []},
    "spin-300k": {"env": {"GOMP_SPINCOUNT": "300000"}, "args": []},
    "active": {"env": {"OMP_WAIT_POLICY": "ACTIVE"}, "args": []},
    "spin-10k": {"env": {"GOMP_SPINCOUNT": "10000"}, "args": []},
    "threads-1": {"env": {}, "args": ["--threads", "1"]},
    "threads-busy": {"env": {}, "args": ["--threads", "{free}"]},
}

JOB = ("import numpy as np\n"
       "a = np.random.default_rng(0).random((256, 256))\n"
       "while True:\n"
       "    a = a @ a\n"
       "    a /= np.abs(a).max()\n")
ONE_THREAD = {"OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}


def shared_data() -> Path:
    root = os.environ.get("LGRNET_SHARED") or str(REPO.parent / "shared")
    return Path(root) / "data"


def make_video(split: Path, out: Path, frames: int) -> Path:
    """An mp4 of the split's first ``frames`` frames (its videos in turn), H.264 at 25 fps."""
    import av
    import numpy as np
    from PIL import Image

    paths: List[Path] = []
    for video in sorted((split / "Frame").iterdir(), key=lambda p: int(p.name) if p.name.isdigit() else p.name):
        paths += sorted(video.iterdir(), key=lambda p: int(p.stem) if p.stem.isdigit() else p.stem)
    paths = paths[:frames]
    c = av.open(str(out), "w")
    try:
        st = c.add_stream("libx264", rate=25)
        first = np.asarray(Image.open(paths[0]).convert("RGB"))
        st.height, st.width = first.shape[0] // 2 * 2, first.shape[1] // 2 * 2
        st.pix_fmt = "yuv420p"
        for p in paths:
            img = np.asarray(Image.open(p).convert("RGB"))[: st.height, : st.width]
            for pk in st.encode(av.VideoFrame.from_ndarray(np.ascontiguousarray(img), format="rgb24")):
                c.mux(pk)
        for pk in st.encode(None):
            c.mux(pk)
    finally:
        c.close()
    return out


def cpu_times() -> List[int]:
    with open("/proc/stat") as f:
        return [int(x) for x in f.readline().split()[1:]]


def free_cores(sample_s: float = 0.3) -> int:
    """Cores not used by other programs over ``sample_s`` (from /proc/stat; at least 1)."""
    from lgrnet.runtime import usable_cores

    try:
        a = cpu_times()
        time.sleep(sample_s)
        b = cpu_times()
    except OSError:
        return usable_cores()
    d = [y - x for x, y in zip(a, b)]
    total = sum(d[:8]) or 1
    idle = (d[3] + d[4]) / total  # idle + iowait
    return max(1, min(usable_cores(), round(idle * (os.cpu_count() or 1))))


def start_jobs(n: int) -> List[subprocess.Popen]:
    env = dict(os.environ, **ONE_THREAD)
    return [subprocess.Popen([sys.executable, "-c", JOB], env=env) for _ in range(n)]


def stop_jobs(jobs: List[subprocess.Popen]) -> None:
    for j in jobs:
        j.terminate()
    for j in jobs:
        j.wait()


def timed(cmd: List[str], env: Dict[str, str]) -> float:
    t = time.perf_counter()
    r = subprocess.run(cmd, env=env, capture_output=True, text=True)
    seconds = time.perf_counter() - t
    if r.returncode != 0:
        raise SystemExit(f"failed ({r.returncode}): {' '.join(cmd)}\n{r.stderr[-2000:]}")
    return seconds


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, default=None, help="the shared data folder (default ../shared/data)")
    ap.add_argument("--weights", default="demo", help="the model (default: the shipped one)")
    ap.add_argument("--settings", nargs="+", default=list(SETTINGS), choices=list(SETTINGS))
    ap.add_argument("--loads", nargs="+", type=int, default=[0, 1, 2], help="other one-thread jobs (default 0 1 2)")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--commands", nargs="+", default=["predict", "evaluate"], choices=["predict", "evaluate"])
    ap.add_argument("--frames", type=int, default=81, help="frames of the predicted mp4 (default 81)")
    ap.add_argument("--smoke", action="store_true", help="9 frames, one evaluated video, one round, loads 0 1")
    ap.add_argument("--json", type=Path, default=None, help="also write the results here")
    args = ap.parse_args()
    if args.smoke:
        args.frames, args.rounds, args.loads = 9, 1, [x for x in args.loads if x <= 1]
    data = args.data or shared_data()
    split = data / "CVC-ClinicDB-612" / "Test"
    if not split.is_dir():
        raise SystemExit(f"{split}: missing (pass --data)")
    lgrnet = [sys.executable, "-m", "lgrnet"]
    base_env = {k: v for k, v in os.environ.items()
                if k not in ("OMP_NUM_THREADS", "OMP_WAIT_POLICY", "GOMP_SPINCOUNT", "LGRNET_THREADS")}
    base_env["PYTHONPATH"] = os.pathsep.join([str(REPO / "src"), base_env.get("PYTHONPATH", "")])
    weights = args.weights
    if weights == "demo":
        from lgrnet.models.shipped import shipped_weights  # the name `demo` (issue 29, item 7)

        weights = str(shipped_weights())
    work = Path(tempfile.mkdtemp(prefix="lgrnet-busy-"))
    times: Dict[str, Dict[str, Dict[int, List[float]]]] = {}
    try:
        video = make_video(split, work / f"clip{args.frames}.mp4", args.frames)
        videos = ["--videos", sorted(p.name for p in (split / "Frame").iterdir())[0]] if args.smoke else []
        run_no = 0
        for load in args.loads:
            jobs = start_jobs(load)
            try:
                time.sleep(1.0)
                for rnd in range(args.rounds):
                    for command in args.commands:
                        for name in args.settings:
                            s = SETTINGS[name]
                            run_no += 1
                            out = work / f"out{run_no}"
                            extra = [a.replace("{free}", str(free_cores())) for a in s["args"]]
                            if command == "predict":
                                cmd = lgrnet + ["predict", str(video), "--weights", weights, "--out", str(out),
                                                "--no-progress", *extra]
                            else:
                                cmd = lgrnet + ["evaluate", "--weights", weights, "--data", str(data), "--split",
                                                "CVC-ClinicDB-612/Test", "--out", str(out), "--quiet", *videos, *extra]
                            seconds = timed(cmd, dict(base_env, **s["env"]))
                            times.setdefault(command, {}).setdefault(name, {}).setdefault(load, []).append(seconds)
                            print(f"load {load} round {rnd + 1} {command:8s} {name:12s} {seconds:7.2f} s "
                                  f"{' '.join(extra)}", flush=True)
                            shutil.rmtree(out, ignore_errors=True)
            finally:
                stop_jobs(jobs)
    finally:
        shutil.rmtree(work, ignore_errors=True)

    print(f"\n{platform.processor() or platform.machine()}, {os.cpu_count()} CPUs; median wall seconds "
          f"(ratio to the same setting idle; ratio to default idle)")
    table = {}
    for command, by_setting in times.items():
        print(f"\n{command} ({args.frames}-frame mp4)" if command == "predict" else "\nevaluate (CVC-ClinicDB-612 Test)")
        print(f"  {'setting':12s}" + "".join(f"{f'{n} other job(s)':>28s}" for n in args.loads))
        ref = statistics.median(by_setting["default"][0]) if "default" in by_setting and 0 in by_setting["default"] else None
        for name, by_load in by_setting.items():
            idle = statistics.median(by_load[0]) if 0 in by_load else None
            cells = []
            for n in args.loads:
                m = statistics.median(by_load[n])
                r_self = f"{m / idle:.2f}x" if idle else "-"
                r_ref = f"{m / ref:.2f}x" if ref else "-"
                cells.append(f"{m:8.2f} ({r_self}; {r_ref})")
                table.setdefault(command, {}).setdefault(name, {})[n] = {"seconds": by_load[n], "median": m,
                                                                        "ratio_to_idle": m / idle if idle else None,
                                                                        "ratio_to_default_idle": m / ref if ref else None}
            print(f"  {name:12s}" + "".join(f"{c:>28s}" for c in cells))
    print("\ntargets (issue 29): default within 2x of idle with 1 other job, within 3.5x with 2")
    if args.json:
        record = {"cpu": platform.processor(), "cpus": os.cpu_count(), "frames": args.frames, "rounds": args.rounds,
                  "smoke": args.smoke, "when": time.strftime("%Y-%m-%d %H:%M"), "results": table}
        args.json.write_text(json.dumps(record, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
