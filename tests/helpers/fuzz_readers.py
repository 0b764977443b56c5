"""Fuzzing the readers: valid seed files, randomly corrupted, truncated or given garbage headers,
read the way `lgrnet predict` and `lgrnet view` read them.

Every case must end in a result or in one error naming the file (:class:`lgrnet.errors.InputError`
for media, ``ValueError`` for weights, an HTTP error for the viewer) within a time limit: any other
exception is a failure (it would be a traceback), and so is a case that runs past the limit (a hang).
Inputs must be left unchanged. Cases run in a worker process (spawned once, replaced after a hang),
so a hang in native code (FFmpeg, zlib) is caught too.

Used by ``tests/test_fuzz.py`` (a few dozen cases in CI) and ``benchmarks/fuzz.py`` (a long run).
"""
from __future__ import annotations

import hashlib
import multiprocessing as mp
import os
import random
import shutil
import subprocess
import sys
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, List, Optional, Tuple

import numpy as np

HERE = Path(__file__).resolve().parent
KINDS = ("video", "frames", "dicom", "weights", "viewer")


# ------------------------------------------------------------------------------------- seed files

def make_seeds(root: Path) -> Dict[str, List[Path]]:
    """Valid inputs of each kind under ``root``: {kind: [file or folder, ...]}."""
    from tests.helpers.media import encode_video
    from PIL import Image

    root.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    frames = [np.clip(rng.normal(128, 50, (40, 48, 3)), 0, 255).astype(np.uint8) for _ in range(8)]
    seeds: Dict[str, List[Path]] = {k: [] for k in KINDS}
    seeds["video"] += [encode_video(root / "a.mp4", frames, gop=3), encode_video(root / "b.mp4", frames, faststart=True),
                       encode_video(root / "c.mkv", frames), encode_video(root / "d.avi", frames, codec="mpeg4")]
    for ext in ("png", "jpg"):
        d = root / f"frames_{ext}"
        d.mkdir()
        for i, f in enumerate(frames[:3]):
            Image.fromarray(f).save(d / f"{i}.{ext}")
        seeds["frames"].append(d)
    try:
        from test_io_dicom import write_dicom

        grey = np.stack([f[..., 0] for f in frames[:4]])
        seeds["dicom"] += [write_dicom(root / "grey.dcm", grey, frame_time=40.0),
                           write_dicom(root / "rgb_rle.dcm", np.stack(frames[:3]), rle=True)]
    except ImportError:  # pydicom not installed
        pass
    import torch

    from lgrnet.models.lgrnet import LGRNet

    torch.manual_seed(0)
    model = LGRNet.from_preset("tiny")
    seeds["weights"].append(Path(model.save_pretrained(str(root / "tiny.safetensors"))))
    torch.save(model.state_dict(), root / "tiny.pth")
    seeds["weights"].append(root / "tiny.pth")
    from tests.helpers.viewer_results import make_result

    seeds["viewer"].append(make_result(root / "result", n=4))
    return seeds


# -------------------------------------------------------------------------------------- mutations

def mutate(data: bytes, rng: random.Random, header_bias: int = 0) -> Tuple[bytes, str]:
    """One random corruption of ``data``: byte flips, a truncation, a garbage header, a zeroed or
    inserted block. ``header_bias``: flips fall in the first that many bytes more often."""
    n = len(data)
    if n == 0:
        return bytes(rng.randrange(256) for _ in range(16)), "garbage instead of empty"
    op = rng.choice(("flip", "flip", "truncate", "header", "zero", "insert"))
    b = bytearray(data)
    if op == "flip":
        k = rng.choice((1, 2, 8, 64))
        span = header_bias if header_bias and rng.random() < 0.7 else n
        for _ in range(k):
            b[rng.randrange(min(span, n))] = rng.randrange(256)
        return bytes(b), f"{k} byte(s) changed"
    if op == "truncate":
        cut = rng.choice((0, 1, rng.randrange(n), n // 2, max(0, n - rng.randrange(1, 64))))
        return bytes(b[:cut]), f"truncated to {cut} of {n} bytes"
    if op == "header":
        k = rng.choice((4, 16, 64, 512))
        return bytes(rng.randrange(256) for _ in range(min(k, n))) + bytes(b[k:]), f"first {k} bytes random"
    if op == "zero":
        at, k = rng.randrange(n), rng.choice((16, 256, 4096))
        b[at:at + k] = bytes(len(b[at:at + k]))
        return bytes(b), f"{k} bytes zeroed at {at}"
    at = rng.randrange(n)
    return bytes(b[:at]) + bytes(rng.randrange(256) for _ in range(rng.choice((1, 7, 100)))) + bytes(b[at:]), f"bytes inserted at {at}"


@dataclass
class Case:
    kind: str
    path: Path          # the input (a file, or the folder for frames / viewer)
    changed: Path       # the file that was corrupted
    how: str


def make_case(kind: str, seed: Path, work: Path, index: int, rng: random.Random) -> Case:
    """Copy ``seed`` into ``work`` and corrupt one of its files."""
    dest = work / f"case{index:05d}_{seed.name}"
    if seed.is_dir():
        shutil.copytree(seed, dest, symlinks=True)
        files = sorted(p for p in dest.rglob("*") if p.is_file())
        target = rng.choice(files)
    else:
        shutil.copyfile(seed, dest)
        target = dest
    data, how = mutate(target.read_bytes(), rng, header_bias=16384 if kind == "weights" else 512)
    target.write_bytes(data)
    return Case(kind, dest, target, f"{target.relative_to(work)}: {how}")


# ------------------------------------------------------------------------------------------ checks

def _digest(path: Path) -> str:
    h = hashlib.sha256()
    for p in sorted([path] if path.is_file() else [q for q in path.rglob("*") if q.is_file()]):
        h.update(p.name.encode())
        h.update(p.read_bytes())
    return h.hexdigest()


def _named(msg: str, path: Path, one_line: bool = True) -> Optional[str]:
    """None if ``msg`` is one line naming a file at or under ``path``; else what is wrong."""
    first = msg.split("\n", 1)[0]
    if not first.startswith(str(path)):
        return f"message does not start with the input's path: {msg[:300]!r}"
    if one_line and "\n" in msg:
        return f"message is not one line: {msg[:300]!r}"
    return None


def check_media(path: Path) -> Tuple[str, Optional[str]]:
    from lgrnet.errors import InputError
    from lgrnet.io import open_source

    try:
        src = open_source(path)
        n = sum(1 for _ in src)
        for i in {0, n // 2, n - 1}:
            try:
                src.read(i)
            except IndexError:
                pass  # the viewer answers 404: random access found fewer frames than streaming
        src.close()
        return f"ok ({n} frames)", None
    except InputError as exc:
        return "InputError", _named(str(exc), path)


def check_weights(path: Path) -> Tuple[str, Optional[str]]:
    from lgrnet.models.lgrnet import LGRNet

    try:
        LGRNet.from_pretrained(str(path), preset=None if path.suffix == ".safetensors" else "tiny")
        return "ok", None
    except (ValueError, FileNotFoundError) as exc:
        # "does not fit the model" lists missing keys on further lines, by design
        return type(exc).__name__, _named(str(exc), path, one_line="does not fit the model" not in str(exc))


def check_viewer(path: Path) -> Tuple[str, Optional[str]]:
    from lgrnet.errors import InputError
    from lgrnet.viewer import ViewerApp, find_results
    from lgrnet.viewer.server import HttpError

    try:
        results = find_results(path)
    except InputError as exc:
        return "InputError", _named(str(exc), path)
    app = ViewerApp(results)
    statuses = []
    try:
        r = results[0]
        app.meta(r.id)
        for call in ([lambda i=i: app.outline(r.id, i) for i in range(r.num_frames)]
                     + [lambda i=i: app.frame_jpeg(r.id, i) for i in range(r.num_frames)]
                     + [lambda: app.masks_zip(r.id).close(), r.csv_bytes]):
            try:
                call()
                statuses.append(200)
            except HttpError as exc:
                statuses.append(exc.status)
                if "\n" in exc.message:
                    return "HttpError", f"HTTP error message is not one line: {exc.message[:300]!r}"
    finally:
        app.close()
    return f"ok (HTTP {sorted(set(statuses))})", None


CHECKS = {"video": check_media, "frames": check_media, "dicom": check_media, "weights": check_weights,
          "viewer": check_viewer}


def run_check(kind: str, path: Path) -> Tuple[str, Optional[str]]:
    """(outcome, failure or None) for one case; never raises."""
    import warnings

    before = _digest(path)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # warnings are allowed; tracebacks are not
            outcome, failure = CHECKS[kind](path)
    except Exception as exc:
        outcome = type(exc).__name__
        failure = "unexpected exception (a traceback for the user):\n" + "".join(traceback.format_exception(exc))[-3000:]
    if failure is None and _digest(path) != before:
        failure = "the input was modified"
    return outcome, failure


# ---------------------------------------------------------------------------------------- workers

def _serve(conn) -> None:
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    import torch

    torch.set_num_threads(1)
    while True:
        item = conn.recv()
        if item is None:
            return
        conn.send(run_check(*item))


class Worker:
    """A spawned process that runs checks; :meth:`check` kills and replaces it after a time-out."""

    def __init__(self) -> None:
        self._ctx = mp.get_context("spawn")
        self._start()

    def _start(self) -> None:
        self.conn, child = self._ctx.Pipe()
        self.proc = self._ctx.Process(target=_serve, args=(child,), daemon=True)
        self.proc.start()

    def check(self, kind: str, path: Path, timeout: float) -> Tuple[str, Optional[str], float]:
        t0 = time.perf_counter()
        self.conn.send((kind, path))
        if self.conn.poll(timeout):
            try:
                outcome, failure = self.conn.recv()
            except EOFError:
                outcome, failure = "crash", f"the worker died (exit code {self.proc.exitcode})"
                self._restart()
        else:
            outcome, failure = "hang", f"no answer within {timeout:.0f} s"
            self._restart()
        return outcome, failure, time.perf_counter() - t0

    def _restart(self) -> None:
        self.proc.kill()
        self.proc.join()
        self._start()

    def close(self) -> None:
        try:
            self.conn.send(None)
        except OSError:
            pass
        self.proc.join(10)
        if self.proc.is_alive():
            self.proc.kill()


# ----------------------------------------------------------------------------------- command line

def check_cli(args: List[str], path: Path, timeout: float) -> Optional[str]:
    """Run ``lgrnet ARGS`` (PATH among them): exit 0, or exit 2 with one error line naming ``path``;
    no traceback, within ``timeout``."""
    env = dict(os.environ, OMP_NUM_THREADS="1")
    env["PYTHONPATH"] = str(HERE.parents[1] / "src") + os.pathsep + env.get("PYTHONPATH", "")
    try:
        res = subprocess.run([sys.executable, "-m", "lgrnet.cli", *args], capture_output=True, text=True,
                             timeout=timeout, env=env)
    except subprocess.TimeoutExpired:
        return f"lgrnet {' '.join(args)}: no exit within {timeout:.0f} s"
    if "Traceback" in res.stderr or res.returncode not in (0, 2):
        return f"exit {res.returncode}: {res.stderr[-2000:]}"
    if res.returncode == 2:
        errors = [line for line in res.stderr.splitlines() if ": error: " in line]
        if not errors or str(path) not in errors[0]:
            return f"exit 2 without an error line naming {path}: {res.stderr[-1000:]}"
    return None


@dataclass
class Report:
    cases: int = 0
    outcomes: Dict[str, Dict[str, int]] = field(default_factory=dict)
    failures: List[str] = field(default_factory=list)
    slowest: float = 0.0


def run_fuzz(work: Path, cases_per_kind: int, seed: int = 0, timeout: float = 30.0,
             kinds: Tuple[str, ...] = KINDS, seeds: Optional[Dict[str, List[Path]]] = None,
             deadline: Optional[float] = None) -> Report:
    """Corrupt seeds of each kind ``cases_per_kind`` times (round robin over kinds) and check them."""
    rng = random.Random(seed)
    seeds = seeds or make_seeds(work / "seeds")
    report = Report()
    worker = Worker()
    try:
        for i in range(cases_per_kind):
            if deadline is not None and time.time() > deadline:
                break
            for kind in kinds:
                if not seeds.get(kind):
                    continue
                case = make_case(kind, rng.choice(seeds[kind]), work, report.cases, rng)
                outcome, failure, seconds = worker.check(kind, case.path, timeout)
                report.cases += 1
                report.slowest = max(report.slowest, seconds)
                key = outcome.split(" (")[0]
                report.outcomes.setdefault(kind, {}).setdefault(key, 0)
                report.outcomes[kind][key] += 1
                if failure:
                    report.failures.append(f"[{kind}] {case.how}: {failure}")
                else:
                    shutil.rmtree(case.path, ignore_errors=True) if case.path.is_dir() else case.path.unlink()
    finally:
        worker.close()
    return report
