"""Many inputs across processes: `torchrun --nproc_per_node 2 -m lgrnet.cli predict` over six short
videos (each processed exactly once, results identical to a one-process run, the index complete),
a run killed with SIGKILL and started again (only the rest is done, nothing half-written is left),
and the pieces: size-balanced shares, the launchers' environments, the index rebuilt."""
import csv
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from tests.helpers.media import encode_video

from lgrnet import LGRNet
from lgrnet.cli import main
from lgrnet.runs.shard import Shard, balance, process_threads, shard_from_env

SRC = Path(__file__).resolve().parents[1] / "src"
SIZE = "32"
LENGTHS = [3, 5, 2, 6, 4, 3]


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    root = tmp_path_factory.mktemp("batch")
    torch.manual_seed(0)
    weights = LGRNet.from_preset("tiny").save_pretrained(str(root / "tiny.safetensors"))
    vids = root / "vids"
    vids.mkdir()
    rng = np.random.default_rng(0)
    for i, T in enumerate(LENGTHS):
        frames = [np.clip(rng.normal(30 * i + 40, 40, (40, 48, 3)), 0, 255).astype(np.uint8) for _ in range(T)]
        encode_video(vids / f"exam{i}.mp4", frames)
    return root, weights, vids


def _env(threads: int = 1) -> dict:
    env = dict(os.environ, PYTHONPATH=str(SRC), OMP_NUM_THREADS=str(threads), LGRNET_WRITER_THREADS="1")
    for k in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "LOCAL_WORLD_SIZE", "SLURM_NTASKS", "SLURM_PROCID", "SLURM_STEP_NUM_TASKS"):
        env.pop(k, None)
    return env


def _args(weights, vids, out):
    return ["predict", str(vids), "--weights", str(weights), "--out", str(out), "--size", SIZE, "--no-progress",
            "--device", "cpu"]


def _torchrun(weights, vids, out):
    return [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
            "-m", "lgrnet.cli", *_args(weights, vids, out)]


@pytest.fixture(scope="module")
def reference(setup):
    """The six inputs in one process, one thread (as each of the two torchrun processes gets)."""
    root, weights, vids = setup
    out = root / "one"
    subprocess.run([sys.executable, "-m", "lgrnet.cli", *_args(weights, vids, out)], env=_env(), check=True,
                   capture_output=True, timeout=900)
    return out


def _same_results(a: Path, b: Path, names) -> None:
    for n in names:
        assert (a / n / "predictions.csv").read_bytes() == (b / n / "predictions.csv").read_bytes(), n
        for sub in ("masks", "probs"):
            fa = sorted(p.name for p in (a / n / sub).iterdir())
            assert fa == sorted(p.name for p in (b / n / sub).iterdir()) and len(fa) == LENGTHS[int(n[4:])]
            for f in fa:
                assert (a / n / sub / f).read_bytes() == (b / n / sub / f).read_bytes(), (n, sub, f)
        assert (b / n / "overlay.mp4").is_file()


def _statuses(out: Path):
    markers = sorted((out / ".lgrnet-run").glob("runs/*/done-*-of-2.json"))
    assert len(markers) == 2
    return [s for m in markers for s in json.loads(m.read_text())["statuses"]]


def _no_partials(out: Path) -> None:
    left = [p.name for p in out.iterdir() if ".partial-" in p.name or p.name.startswith(".tmp-")]
    assert left == []


NAMES = [f"exam{i}" for i in range(len(LENGTHS))]


def _descendants(pid: int) -> list:
    kids = []
    for task in Path(f"/proc/{pid}/task").glob("*"):
        try:
            kids += [int(k) for k in (task / "children").read_text().split()]
        except OSError:
            pass
    return kids + [d for k in kids for d in _descendants(k)]


def _kill_tree(pid: int) -> None:
    """SIGKILL a process and all its descendants (as when a node dies)."""
    for p in [pid, *_descendants(pid)]:  # the list first, then the agent (no restarts), then the workers
        try:
            os.kill(p, signal.SIGKILL)
        except ProcessLookupError:
            pass


def test_torchrun_two_processes_each_input_once_same_results(setup, reference):
    root, weights, vids = setup
    out = root / "two"
    r = subprocess.run(_torchrun(weights, vids, out), env=_env(), capture_output=True, text=True, timeout=900)
    assert r.returncode == 0, r.stderr[-3000:]
    done = [s["name"] for s in _statuses(out) if s["status"] == "done"]
    assert sorted(done) == NAMES  # each exactly once, none twice
    _same_results(reference, out, NAMES)
    rows = list(csv.DictReader(open(out / "index.csv")))
    assert [r["name"] for r in rows] == NAMES and all(r["status"] == "done" for r in rows)
    for row, T in zip(rows, LENGTHS):
        preds = json.loads((out / row["name"] / "predictions.json").read_text())
        assert int(row["frames"]) == T == preds["num_frames"]
        assert int(row["frames_with_lesion"]) == sum(f["area"] > 0 for f in preds["frames"])
        assert float(row["max_score"]) == pytest.approx(max(f["score"] for f in preds["frames"]), abs=1e-6)
    assert json.loads((out / "index.json").read_text())["counts"] == {"done": 6, "error": 0, "missing": 0}
    _no_partials(out)


def test_killed_run_rerun_does_only_the_rest(setup, reference):
    root, weights, vids = setup
    out = root / "killed"
    proc = subprocess.Popen(_torchrun(weights, vids, out), env=_env(), stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, start_new_session=True)
    deadline = time.monotonic() + 600
    try:
        while time.monotonic() < deadline and proc.poll() is None:
            done = [n for n in NAMES if (out / n).is_dir()]
            if len(done) >= 2:
                break
            time.sleep(0.05)
    finally:
        _kill_tree(proc.pid)  # torchrun starts its workers in sessions of their own: kill each
        proc.wait()
    first = {n for n in NAMES if (out / n).is_dir()}
    if len(first) == len(NAMES):
        pytest.skip("the run finished before it could be killed (machine too fast for this test's inputs)")
    assert first and not (out / "index.csv").exists()
    r = subprocess.run(_torchrun(weights, vids, out), env=_env(), capture_output=True, text=True, timeout=900)
    assert r.returncode == 0, r.stderr[-3000:]
    statuses = _statuses(out)
    assert sorted(s["name"] for s in statuses) == NAMES
    assert {s["name"] for s in statuses if s["status"] == "skipped"} == first
    assert {s["name"] for s in statuses if s["status"] == "done"} == set(NAMES) - first
    _same_results(reference, out, NAMES)
    _no_partials(out)
    assert json.loads((out / "index.json").read_text())["counts"] == {"done": 6, "error": 0, "missing": 0}


def test_index_is_rebuilt_and_reports_missing_and_failed(setup, reference, tmp_path, capsys):
    out = tmp_path / "o"
    shutil.copytree(reference, out)
    (out / "index.csv").unlink()
    shutil.rmtree(out / "exam2")
    (out / ".lgrnet-run" / "errors").mkdir(exist_ok=True)
    (out / ".lgrnet-run" / "errors" / "exam4.json").write_text(json.dumps({"error": "exam4.mp4: truncated"}))
    shutil.rmtree(out / "exam4")
    assert main(["index", str(out)]) == 1
    rows = {r["name"]: r for r in csv.DictReader(open(out / "index.csv"))}
    assert rows["exam2"]["status"] == "missing" and rows["exam4"]["status"] == "error"
    assert rows["exam4"]["error"] == "exam4.mp4: truncated" and rows["exam0"]["status"] == "done"
    assert "4 done, 1 failed, 1 missing" in capsys.readouterr().out


def test_balance_is_disjoint_complete_and_balanced():
    rng = np.random.default_rng(1)
    for world in (1, 2, 3, 7):
        sizes = rng.integers(1, 1000, 40).tolist()
        shares = balance(sizes, world)
        assert sorted(i for s in shares for i in s) == list(range(40))
        totals = [sum(sizes[i] for i in s) for s in shares]
        assert max(totals) - min(totals) <= max(sizes)  # greedy longest-first bound
        assert shares == balance(sizes, world)
    assert balance([5, 1, 1, 1, 1, 1], 2) == [[0], [1, 2, 3, 4, 5]]


def test_launcher_environments():
    assert shard_from_env({}) == Shard()
    s = shard_from_env({"RANK": "3", "WORLD_SIZE": "4", "LOCAL_RANK": "1", "LOCAL_WORLD_SIZE": "2",
                        "TORCHELASTIC_RUN_ID": "none"})
    assert (s.rank, s.world_size, s.local_rank, s.local_world_size, s.launcher, s.run_id) == (3, 4, 1, 2, "torchrun", None)
    srun = {"SLURM_PROCID": "5", "SLURM_NTASKS": "8", "SLURM_STEP_NUM_TASKS": "8", "SLURM_LOCALID": "1",
            "SLURM_TASKS_PER_NODE": "4(x2)", "SLURM_JOB_ID": "77", "SLURM_STEP_ID": "0"}
    s = shard_from_env(srun)
    assert (s.rank, s.world_size, s.local_rank, s.local_world_size, s.run_id) == (5, 8, 1, 4, "77.0")
    assert process_threads(s, cores=16) == 4 and process_threads(Shard(), cores=2) == 2
    # an srun step of 2 tasks in an allocation of 8: the step's count, the step's tasks per node
    t = shard_from_env({**srun, "SLURM_PROCID": "1", "SLURM_LOCALID": "0", "SLURM_STEP_NUM_TASKS": "2",
                        "SLURM_STEP_TASKS_PER_NODE": "1(x2)"})
    assert (t.rank, t.world_size, t.local_world_size) == (1, 2, 1)
    # the batch script itself (no srun): the job's SLURM_NTASKS, but one process, not rank 0 of 8
    assert shard_from_env({"SLURM_PROCID": "0", "SLURM_NTASKS": "8", "SLURM_LOCALID": "0", "SLURM_JOB_ID": "77",
                           "SLURM_TASKS_PER_NODE": "4(x2)"}) == Shard()
    # srun around torchrun: torchrun's variables win
    t = shard_from_env({**srun, "RANK": "1", "WORLD_SIZE": "2", "LOCAL_RANK": "1"})
    assert (t.launcher, t.rank, t.world_size) == ("torchrun", 1, 2)
    with pytest.raises(Exception, match="rank 4 of 2"):
        shard_from_env({"RANK": "4", "WORLD_SIZE": "2"})


def test_evaluate_sharded_predicts_each_share_and_scores_once(data_dir, setup, tmp_path, monkeypatch):
    """`lgrnet evaluate` under two processes, run in turn here: process 1 predicts its share and
    scores nothing; process 0 predicts the rest, then scores every video, as one process does."""
    from lgrnet.data.datasets import find_videos

    _, weights, _ = setup
    split = "CVC-ClinicDB-612/Test"
    root = tmp_path / "data"
    for rec in find_videos(data_dir, split, require_masks=True):
        if rec.name not in ("16", "24", "6"):
            continue
        for frame, mask in list(zip(rec.frames, rec.masks))[:3]:
            for src, kind in ((frame, "Frame"), (mask, "GT")):
                dst = root / split / kind / rec.name / src.name
                dst.parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(src, dst)
    # one thread in every run, as each of two processes on this 2-core machine gets (the native CPU
    # kernels' float sums depend on the thread count)
    args = ["evaluate", "--weights", str(weights), "--data", str(root), "--split", split, "--size", SIZE,
            "--quiet", "--device", "cpu", "--threads", "1"]
    torch.set_num_threads(1)
    assert main([*args, "--out", str(tmp_path / "one")]) == 0
    out = tmp_path / "two"
    for rank in (1, 0):
        monkeypatch.setenv("WORLD_SIZE", "2")
        monkeypatch.setenv("RANK", str(rank))
        monkeypatch.setenv("LOCAL_RANK", str(rank))
        assert main([*args, "--out", str(out)]) == 0
        if rank == 1:
            predicted = {p.stem for p in (out / ".lgrnet-run" / "videos").iterdir()}
            assert predicted and len(predicted) < 3 and not (out / "sunseg.json").exists()
    assert {p.stem for p in (out / ".lgrnet-run" / "videos").iterdir()} == {"16", "24", "6"}
    for table in ("sunseg.csv", "authors.csv", "confidence.json"):  # the same rows, every frame's score and Dice
        assert (tmp_path / "one" / table).read_text() == (out / table).read_text()
    assert json.loads((out / "confidence.json").read_text())["frames_scored"] == 9


# ----------------------------------------------------------------------------- runs sharing one --out


def _two_at_once(cmds):
    """Start both commands at once and wait for both: (return codes, stdouts, stderrs)."""
    procs = [subprocess.Popen(c, env=_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for c in cmds]
    outs = [p.communicate(timeout=900) for p in procs]
    return [p.returncode for p in procs], [o[0] for o in outs], [o[1] for o in outs]


def _no_locks(out: Path) -> None:
    assert [p.name for p in out.iterdir() if p.name.endswith(".lock")] == []


def test_two_runs_with_the_same_inputs_into_one_out(setup, reference):
    """Two `lgrnet predict` of the same six inputs into one --out at the same time: both succeed, each
    input is written once (by one of them; the other skips it or waits for it), results as one run's."""
    root, weights, vids = setup
    out = root / "same"
    cmd = [sys.executable, "-m", "lgrnet", *_args(weights, vids, out)]
    codes, stdouts, stderrs = _two_at_once([cmd, cmd])
    assert codes == [0, 0], stderrs
    for n, T in zip(NAMES, LENGTHS):
        written = sum(f"{out / n}: {T} frames, " in text for text in stdouts)
        assert written == 1, (n, stdouts)
    _same_results(reference, out, NAMES)
    _no_partials(out)
    _no_locks(out)
    assert json.loads((out / "index.json").read_text())["counts"] == {"done": 6, "error": 0, "missing": 0}


def test_two_runs_with_other_inputs_into_one_out_index_lists_both(setup, reference):
    """Two runs of different inputs into one --out at the same time: both succeed and the index (the one
    the last run writes, and `lgrnet index`) lists every result in the folder, not only the last run's."""
    root, weights, vids = setup
    out = root / "other"
    files = [str(vids / f"{n}.mp4") for n in NAMES]
    a = [sys.executable, "-m", "lgrnet", "predict", *files[:3], *_args(weights, vids, out)[2:]]
    b = [sys.executable, "-m", "lgrnet", "predict", *files[3:], *_args(weights, vids, out)[2:]]
    codes, _, stderrs = _two_at_once([a, b])
    assert codes == [0, 0], stderrs
    _same_results(reference, out, NAMES)
    for _ in range(2):  # as the runs left it, then rebuilt by `lgrnet index`
        rows = list(csv.DictReader(open(out / "index.csv")))
        assert sorted(r["name"] for r in rows) == NAMES and all(r["status"] == "done" for r in rows)
        assert {r["input"] for r in rows} == {os.path.abspath(f) for f in files}
        assert main(["index", str(out)]) == 0


def test_index_lists_results_of_single_input_runs_too(setup, reference, tmp_path):
    """A result written by a run over one input (which records no run) is in the folder's index too."""
    out = tmp_path / "o"
    shutil.copytree(reference, out)
    shutil.copytree(reference / "exam1", out / "extra")
    assert main(["index", str(out)]) == 0
    rows = [r["name"] for r in csv.DictReader(open(out / "index.csv"))]
    assert rows == [*NAMES, "extra"]


def test_name_lock_excludes_and_cleans_up(tmp_path):
    from lgrnet.runs.lock import NameLock, is_locked

    a, b = NameLock(tmp_path, "exam"), NameLock(tmp_path, "exam")
    assert a.acquire() and not is_locked(tmp_path, "other")
    assert not b.acquire(wait=False) and is_locked(tmp_path, "exam")
    a.release()
    assert not (tmp_path / ".exam.lock").exists() and not is_locked(tmp_path, "exam")
    assert b.acquire(wait=False)
    b.release()
    # a lock file a killed process left (nobody holds it) is free and removed on the next look
    (tmp_path / ".exam.lock").write_text("")
    assert not is_locked(tmp_path, "exam") and not (tmp_path / ".exam.lock").exists()
