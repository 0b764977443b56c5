"""The index of a run over many inputs: one row per input, ``OUT/index.csv`` and ``OUT/index.json``.

Columns: input, name (the result folder), status ("done", "error" or "missing": no result and
no recorded error, e.g. a process was killed), error, frames, frames_with_lesion (frames whose
mask is not empty), max_score, mean_score (of the per-frame scores), seconds (read to written,
as predictions.json records it). :func:`build_index` reads it back from the result folders and
the run state (:mod:`lgrnet.runs.batch`), so it can be rebuilt any time (``lgrnet index OUT``);
:func:`write_index` writes both files atomically.
"""
from __future__ import annotations

import csv
import io
import json
import os
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Union

from ..errors import InputError
from ..files import write_text_atomic

RUN_DIR = ".lgrnet-run"  # the run's own records beside the result folders


def run_dir(out_dir: Path) -> Path:
    return Path(out_dir) / RUN_DIR


def write_manifest(out_dir: Path, inputs: Sequence[str], names: Sequence[str]) -> None:
    """Record the run's inputs and their result folder names (``inputs.json``, atomically)."""
    entries = [{"input": os.path.abspath(os.fspath(i)), "name": n} for i, n in zip(inputs, names)]
    write_text_atomic(run_dir(out_dir) / "inputs.json", json.dumps({"inputs": entries}, indent=1) + "\n")


def read_manifest(out_dir: Path) -> Optional[List[Dict[str, str]]]:
    """The inputs of the last run into ``out_dir`` ([{"input", "name"}]), or None when none is recorded."""
    path = run_dir(out_dir) / "inputs.json"
    try:
        return list(json.loads(path.read_text())["inputs"])
    except (OSError, ValueError, KeyError, TypeError):
        return None

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


def _empty_row(input_path: str, name: str, status: str, error: Optional[str]) -> Dict[str, object]:
    return {"input": input_path, "name": name, "status": status, "error": error, "frames": None,
            "frames_with_lesion": None, "max_score": None, "mean_score": None, "seconds": None}


def build_index(out_dir: Union[str, os.PathLike]) -> List[Dict[str, object]]:
    """Rows for the inputs of the last run into ``out_dir`` (its ``.lgrnet-run/inputs.json``), in
    the run's order; without a recorded run, one row per result folder found there."""
    from ..results.folder import find_results, is_result_folder

    out_dir = Path(os.fspath(out_dir))
    if not out_dir.is_dir():
        raise InputError(f"{out_dir}: not a folder")
    manifest = read_manifest(out_dir)
    rows: List[Dict[str, object]] = []
    if manifest is None:
        for res in find_results(out_dir, max_depth=1):
            rows.append(result_row(res.root, res.name))
        return rows
    for entry in manifest:
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
