"""End to end: adapt the shipped demo model (trained on CVC-ClinicDB-612 only) to another centre's
videos (CVC-ColonDB-300) through the annotation loop, and score held-out videos before and after.

    predict (demo model) -> "correct" every frame by sending its GT to the review page's HTTP API
    (PUT /api/results/<rid>/corrections/<i>.png, which marks the frame "edited", as the page does) -> lgrnet dataset from-results
    -> lgrnet train --init (the finetune schedule, shortened to --steps) -> lgrnet evaluate

usage: python benchmarks/finetune_colondb.py DATA_ROOT WORK_DIR [--split CVC-ColonDB-300/Train]
           [--held-out 1 9 10] [--steps 200] [--minutes 15] [--threads 2]

DATA_ROOT holds the split (MICCAI VPS layout; default CVC-ColonDB-300/Train, another centre than the
first demo model's training videos; the model shipped since 2026-12-07 was trained on it, so run it
with a split that model has not seen, e.g. --split CVC-ClinicDB-612/Test --held-out 6 7). The
held-out videos are never seen by
fine-tuning (no validation on them either: the run keeps its last weights). Prints the held-out
scores of both protocols (SUN-SEG toolbox and the authors' Dice), before and after, and writes
them to WORK_DIR/summary.json. Every step is one `lgrnet` command, printed as it runs.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
from lgrnet.models.shipped import shipped_weights  # noqa: E402
from lgrnet.models.weight_metadata import read_weight_metadata  # noqa: E402

WEIGHTS = shipped_weights()
SIZE = str(read_weight_metadata(WEIGHTS).input_size[0])  # the shipped model's recorded input size


def lgrnet(*args, env=None) -> None:
    cmd = [sys.executable, "-m", "lgrnet.cli", *map(str, args)]
    print("$ lgrnet " + " ".join(map(str, args)), flush=True)
    subprocess.run(cmd, check=True, env=env)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("data_root", type=Path)
    p.add_argument("work", type=Path)
    p.add_argument("--split", default="CVC-ColonDB-300/Train", help="the split under DATA_ROOT whose videos are "
                                                                     "corrected and held out")
    p.add_argument("--held-out", nargs="+", default=["1", "9", "10"], help="videos of the split kept for testing")
    p.add_argument("--steps", type=int, default=200, help="fine-tuning steps (the finetune schedule, its LR drops "
                                                           "scaled to this length)")
    p.add_argument("--minutes", type=float, default=15.0, help="stop fine-tuning after this long at the latest")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--run", default="run", help="name of the fine-tuning run in WORK_DIR; steps 1-4 (predict, "
                                                 "corrections, dataset, scores before) are reused when WORK_DIR has them")
    p.add_argument("overrides", nargs="*", metavar="key=value", help="more config overrides for train, e.g. train.clip_len=4")
    args = p.parse_intermixed_args()

    from lgrnet.data.datasets import find_videos

    split = args.data_root / args.split
    videos = {v.name: v for v in find_videos(split, require_masks=True)}
    held = [v for v in args.held_out if v in videos]
    tune = [v for v in videos if v not in held]
    work = args.work
    work.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ, OMP_NUM_THREADS=str(args.threads), PYTHONPATH=str(REPO / "src"))
    t0 = time.time()

    if not (work / "eval-before" / "authors.json").is_file():  # steps 1-4 once per WORK_DIR
        prepare(split, tune, held, videos, work, env)
    # 5. fine-tune from the demo model
    run = work / args.run
    s = args.steps
    t_train = time.time()
    lgrnet("train", "--init", WEIGHTS, "--data", work / "dataset", "--out", run, "--no-tensorboard", "--progress", "off",
           "--time-limit", args.minutes, f"train.max_iters={s}", f"train.lr_milestones=[{2 * s // 3},{13 * s // 15}]",
           "train.num_workers=0", f"train.checkpoint_every={s}", "train.eval_every=0", *args.overrides, env=env)
    train_minutes = (time.time() - t_train) / 60
    # 6. after
    after = work / f"eval-after-{args.run}"
    lgrnet("evaluate", "--weights", run / "model.safetensors", "--data", split, "--videos", *held, "--size", SIZE,
           "--out", after, "--device", "cpu", "--quiet", env=env)

    run_info = json.loads((run / "run.json").read_text())
    from safetensors import safe_open

    with safe_open(str(run / "model.safetensors"), framework="pt") as f:
        last_step = int((f.metadata() or {}).get("step", 0))  # where the run stopped (the log has every 10th)
    summary = {"fine_tune_videos": tune, "held_out_videos": held,
               "fine_tune_frames": sum(len(videos[v]) for v in tune),
               "held_out_frames": sum(len(videos[v]) for v in held),
               "steps": last_step, "steps_planned": s, "overrides": args.overrides,
               "train_minutes": round(train_minutes, 2), "total_minutes": round((time.time() - t0) / 60, 2),
               "threads": args.threads, "device": run_info.get("device")}
    for when, folder in (("before", work / "eval-before"), ("after", after)):
        for protocol in ("sunseg", "authors"):
            m = json.loads((folder / f"{protocol}.json").read_text())["metrics"]
            summary[f"{when}_{protocol}"] = {k: round(v, 4) for k, v in m.items() if isinstance(v, (int, float))}
    (work / f"summary-{args.run}.json").write_text(json.dumps(summary, indent=2) + "\n")
    print(json.dumps(summary, indent=2))
    return 0


def prepare(split: Path, tune, held, videos, work: Path, env) -> None:
    """Steps 1-4: predict, correct, dataset, scores before."""
    # 1. the model's masks on the fine-tuning videos
    results = work / "results"
    lgrnet("predict", *(split / "Frame" / v for v in tune), "--weights", WEIGHTS, "--size", SIZE, "--out", results,
           "--no-overlay", "--no-progress", "--device", "cpu", env=env)
    # 2. corrections: every frame "edited" to its ground truth, sent to the review page's HTTP API
    #    (PUT of the mask PNG, which marks the frame "edited"), as the page's editor does
    correct_through_the_page(results, tune, videos)
    # 3. the dataset, and what train will check
    ds = work / "dataset"
    lgrnet("dataset", "from-results", *(results / v for v in tune), "--out", ds, "--only", "edited", env=env)
    lgrnet("dataset", "check", ds, env=env)
    # 4. before: the demo model on the held-out videos
    lgrnet("evaluate", "--weights", WEIGHTS, "--data", split, "--videos", *held, "--size", SIZE,
           "--out", work / "eval-before", "--device", "cpu", "--quiet", env=env)


def correct_through_the_page(results: Path, tune, videos) -> None:
    """Write each frame's ground truth as the reviewer's mask through a review-page server."""
    import http.client

    from lgrnet.io.images import read_mask
    from lgrnet.viewer import ViewerApp, find_results
    from lgrnet.viewer.corrections import encode_mask_png
    from lgrnet.viewer.server import serve_in_thread

    found = {r.root.name: r for r in find_results(results)}
    app = ViewerApp(found.values())
    httpd, _ = serve_in_thread(app, "127.0.0.1", 0)
    port = httpd.server_address[1]
    sent = 0
    try:
        for v in tune:
            rid = found[v].id
            meta = json.loads((results / v / "predictions.json").read_text())
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
            for f in meta["frames"]:
                i = f["index"]
                conn.request("GET", f"/api/results/{rid}/corrections")
                state = json.loads(conn.getresponse().read())
                version = state["frames"].get(f"{i:06d}", {}).get("version", 0)
                body = encode_mask_png(read_mask(videos[v].masks[i], 0))
                conn.request("PUT", f"/api/results/{rid}/corrections/{i}.png", body=body,
                             headers={"Content-Type": "image/png", "X-Expected-Version": str(version)})
                reply = conn.getresponse()
                out = json.loads(reply.read())
                if reply.status != 200 or out.get("state") != "edited":  # a saved mask marks the frame edited
                    raise SystemExit(f"{v} frame {i}: the page refused the mask: {reply.status} {out}")
                sent += 1
            conn.close()
    finally:
        httpd.shutdown()
        httpd.server_close()
        app.close()
    print(f"corrected {sent} frames of {len(tune)} videos through the review page's API (port {port})", flush=True)


if __name__ == "__main__":
    sys.exit(main())
