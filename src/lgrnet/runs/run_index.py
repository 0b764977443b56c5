"""The index of the runs over many inputs into one folder: one row per input,
``OUT/index.csv`` and ``OUT/index.json``.

Columns: input, name (the result folder), status ("done", "error" or "missing": no result and
no recorded error, e.g. a process was killed or another run is still writing it), error, frames,
frames_with_lesion (frames whose mask is not empty), max_score, mean_score (of the per-frame
scores), seconds (read to written, as predictions.json records it). :func:`build_index` reads it
back from the result folders and the run state (:mod:`lgrnet.runs.batch`): the inputs of every
run recorded in the folder, in the order the runs started, then any other complete result folder
there (one written by a run over one input), so it can be rebuilt any time (``lgrnet index
OUT``) and covers every run that wrote into the folder; :func:`write_index` writes both files
atomically.
"""
from __future__ import annotations

import csv
import io
import json
import os
import time
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Union

from ..errors import InputError
from ..files import write_text_atomic

RUN_DIR = ".lgrnet-run"  # the run's own records beside the result folders


def run_dir(out_dir: Path) -> Path:
    return Path(out_dir) / RUN_DIR


def manifest_path(out_dir: Path, key: str) -> Path:
    return run_dir(out_dir) / "runs" / key / "inputs.json"


def write_manifest(out_dir: Path, inputs: Sequence[str], names: Sequence[str], key: str) -> None:
    """Record run ``key``'s inputs and their result folder names (``runs/<key>/inputs.json``,
    atomically; a rerun of the same run keeps the time it was first started, its place in the index)."""
    path = manifest_path(out_dir, key)
    started = None
    try:
        started = json.loads(path.read_text()).get("started")
    except (OSError, ValueError, AttributeError):
        pass
    entries = [{"input": os.path.abspath(os.fspath(i)), "name": n} for i, n in zip(inputs, names)]
    write_text_atomic(path, json.dumps({"started": started or time.time(), "inputs": entries}, indent=1) + "\n")


def read_manifests(out_dir: Path) -> Optional[List[Dict[str, str]]]:
    """The inputs of every run recorded in ``out_dir`` ([{"input", "name"}]; a name once, with the
    input of the latest run that lists it, at its first place), runs in the order they started;
    None when no run is recorded. Also reads ``.lgrnet-run/inputs.json`` of lgrnet 0.x runs."""
    runs = []
    paths = list((run_dir(out_dir) / "runs").glob("*/inputs.json")) + [run_dir(out_dir) / "inputs.json"]
    for path in paths:
        try:
            data = json.loads(path.read_text())
            runs.append((float(data.get("started") or path.stat().st_mtime), list(data["inputs"])))
        except (OSError, ValueError, KeyError, TypeError, AttributeError):
            continue
    if not runs:
        return None
    merged: Dict[str, Dict[str, str]] = {}
    for _, entries in sorted(runs, key=lambda r: r[0]):
        for e in entries:
            if e["name"] in merged:
                merged[e["name"]]["input"] = e["input"]
            else:
                merged[e["name"]] = {"input": e["input"], "name": e["name"]}
    return list(merged.values())

INDEX_COLUMNS = ["input", "name", "status", "error", "frames", "frames_with_lesion", "max_score", "mean_score",
                 "seconds"]


def result_row(folder: Path, name: str, input_path: Optional[str] = None) -> Dict[str, object]:
    """The index row of one complete result folder."""
    from ..results.folder import load_result

    res = load_result(folder, name=name)
    frames = res.meta["frames"]
    scores = [float(f["score"]) for f in frames if isinstance(f.get("score"), (int, float))]
    seconds = (res.meta.get("settings") or {}).get("seconds")
    return {"input": input_path or res.meta.get("input"), "name": name, "status": "done", "error": None,
            "frames": len(frames), "frames_with_lesion": sum(1 for f in frames if (f.get("area") or 0) > 0),
            "max_score": round(max(scores), 6) if scores else None,
            "mean_score": round(sum(scores) / len(scores), 6) if scores else None, "seconds": seconds}


def _empty_row(input_path: Optional[str], name: str, status: str, error: Optional[str]) -> Dict[str, object]:
    return {"input": input_path, "name": name, "status": status, "error": error, "frames": None,
            "frames_with_lesion": None, "max_score": None, "mean_score": None, "seconds": None}


def build_index(out_dir: Union[str, os.PathLike]) -> List[Dict[str, object]]:
    """Rows for the inputs of every run recorded in ``out_dir`` (:func:`read_manifests`), then one
    row per other complete result folder found there."""
    from ..results.folder import find_results, is_result_folder

    out_dir = Path(os.fspath(out_dir))
    if not out_dir.is_dir():
        raise InputError(f"{out_dir}: not a folder")
    rows: List[Dict[str, object]] = []
    for entry in read_manifests(out_dir) or []:
        name, inp = entry["name"], entry["input"]
        folder = out_dir / name
        if is_result_folder(folder):
            try:
                rows.append(result_row(folder, name, inp))
            except InputError as exc:
                rows.append(_empty_row(inp, name, "error", str(exc)))
            continue
        error = run_dir(out_dir) / "errors" / f"{name}.json"
        try:
            rows.append(_empty_row(inp, name, "error", json.loads(error.read_text()).get("error")))
        except (OSError, ValueError):
            rows.append(_empty_row(inp, name, "missing", None))
    listed = {r["name"] for r in rows}
    broken: List = []
    try:
        others = [res for res in find_results(out_dir, max_depth=1, broken=broken) if res.name not in listed]
    except InputError:  # no result folder at all
        others = []
    for res in others:
        rows.append(result_row(res.root, res.name))
    for name, problem in broken:
        if name not in listed:
            rows.append(_empty_row(None, name, "error", problem))
    return rows


def write_index(out_dir: Union[str, os.PathLike], rows: List[Dict[str, object]]) -> Path:
    """Write ``index.csv`` and ``index.json`` into ``out_dir`` (each atomically); returns the CSV's path."""
    out_dir = Path(os.fspath(out_dir))
    buf = io.StringIO()
    w = csv.writer(buf)
    w.writerow(INDEX_COLUMNS)
    for r in rows:
        w.writerow(["" if r.get(c) is None else r.get(c) for c in INDEX_COLUMNS])
    counts = {s: sum(1 for r in rows if r["status"] == s) for s in ("done", "error", "missing")}
    write_text_atomic(out_dir / "index.json", json.dumps({"counts": counts, "inputs": rows}, indent=1) + "\n")
    return Path(write_text_atomic(out_dir / "index.csv", buf.getvalue()))
