"""Result folders written by ``lgrnet predict`` / ``lgrnet demo``, as the review page sees them.

A result folder holds::

    predictions.json   {"input", "kind", "num_frames", "fps", "width", "height", "settings",
                        "frames": [{"index", "name", "score", "class_score", "mask_score",
                                    "area", "bbox": [x0, y0, x1, y1] | null, "query"}, ...]}
                       (bbox: x1 and y1 exclusive, so the box is x1 - x0 pixels wide)
    predictions.csv    the same per-frame table (columns: :data:`lgrnet.io.results.CSV_COLUMNS`)
    masks/<index:06d>.png   uint8 0/255 at the frame's original size
    probs/<index:06d>.png   uint8 0..255
    overlay.mp4        the frames with the outline drawn

The layout is :mod:`lgrnet.io.results`'s (the writer); this module only reads it.
``lgrnet view`` takes one such folder, or a folder whose subfolders (two levels at most) hold
several of them.
"""
from __future__ import annotations

import csv
import io
import json
import math
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Optional, Union

import numpy as np

from ..errors import InputError
from ..io.video import DEFAULT_FPS

PREDICTIONS = "predictions.json"
REQUIRED_KEYS = ("num_frames", "frames")


@dataclass
class Result:
    """One result folder. ``id`` is the short name the server uses in its URLs."""

    id: str
    name: str
    root: Path
    meta: Dict[str, Any]
    warnings: List[str] = field(default_factory=list)

    @property
    def num_frames(self) -> int:
        return int(self.meta["num_frames"])

    @property
    def fps(self) -> float:
        fps = self.meta.get("fps")
        return float(fps) if isinstance(fps, (int, float)) and math.isfinite(fps) and fps > 0 else DEFAULT_FPS

    def source_path(self) -> Optional[Path]:
        """The source recorded in ``input`` (relative paths are taken from the result folder)."""
        src = self.meta.get("input")
        if not isinstance(src, str) or not src:
            return None
        p = Path(src)
        return p if p.is_absolute() else (self.root / p)

    def mask_path(self, index: int) -> Path:
        return self.root / "masks" / f"{index:06d}.png"

    def prob_path(self, index: int) -> Path:
        return self.root / "probs" / f"{index:06d}.png"

    def csv_bytes(self) -> bytes:
        """predictions.csv as written, or the same table rebuilt from predictions.json."""
        p = self.root / "predictions.csv"
        if p.is_file():
            return p.read_bytes()
        from ..io.results import CSV_COLUMNS, csv_row

        buf = io.StringIO()
        w = csv.writer(buf)
        w.writerow(CSV_COLUMNS)
        for f in self.meta["frames"]:
            w.writerow(csv_row(f))
        return buf.getvalue().encode("utf-8")

    def summary(self) -> Dict[str, Any]:
        """What the page's result list shows."""
        scores = [f.get("score") for f in self.meta["frames"] if isinstance(f.get("score"), (int, float))]
        return {"id": self.id, "name": self.name, "num_frames": self.num_frames, "kind": self.meta.get("kind"),
                "mean_score": float(np.mean(scores)) if scores else None}


def load_result(root: Union[str, Path], rid: str = "0", name: Optional[str] = None) -> Result:
    """Read and check ``root/predictions.json``. Raises :class:`InputError` naming the file."""
    root = Path(root)
    path = root / PREDICTIONS
    try:
        meta = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise InputError(f"{path}: not found; is {root} a result folder of `lgrnet predict`?") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InputError(f"{path}: cannot read ({exc})") from None
    if not isinstance(meta, dict):
        raise InputError(f"{path}: expected a JSON object")
    missing = [k for k in REQUIRED_KEYS if k not in meta]
    if missing:
        raise InputError(f"{path}: missing {', '.join(missing)}")
    frames = meta["frames"]
    if not isinstance(frames, list) or not all(isinstance(f, dict) for f in frames):
        raise InputError(f"{path}: 'frames' must be a list of objects")
    warnings: List[str] = []
    n = meta["num_frames"]
    if not isinstance(n, int) or n < 0:
        raise InputError(f"{path}: 'num_frames' must be a non-negative integer")
    if len(frames) != n:
        warnings.append(f"{PREDICTIONS} lists {len(frames)} frames but says num_frames={n}; using {len(frames)}")
        meta["num_frames"] = n = len(frames)
    for i, f in enumerate(frames):
        f.setdefault("index", i)
        if f["index"] != i:
            raise InputError(f"{path}: frame entries must be in order; entry {i} has index {f['index']}")
        s = f.get("score")
        if s is not None and not (isinstance(s, (int, float)) and math.isfinite(s)):
            raise InputError(f"{path}: frame {i} has a non-numeric score {s!r}")
    masks_dir = root / "masks"
    if not masks_dir.is_dir():
        warnings.append("no masks/ folder: no outlines to show")
    else:
        have = sum(1 for i in range(n) if (masks_dir / f"{i:06d}.png").is_file())
        if have < n:
            warnings.append(f"masks/ has {have} of {n} masks")
    return Result(id=rid, name=name or root.resolve().name, root=root, meta=meta, warnings=warnings)


def find_results(root: Union[str, Path], max_depth: int = 2) -> List[Result]:
    """One result folder, or every result folder under ``root`` (at most ``max_depth`` levels down),
    in natural order of their relative paths. Raises :class:`InputError` when there is none."""
    from ..data.datasets import natural_key

    root = Path(root)
    if not root.is_dir():
        raise InputError(f"{root}: not a folder")
    if (root / PREDICTIONS).is_file():
        return [load_result(root, rid="0")]
    found: List[Path] = []

    def walk(folder: Path, depth: int) -> None:
        try:
            entries = sorted(os.scandir(folder), key=lambda e: natural_key(e.name))
        except OSError:
            return
        for e in entries:
            if e.name.startswith(".") or not e.is_dir():
                continue
            p = Path(e.path)
            if (p / PREDICTIONS).is_file():
                found.append(p)
            elif depth < max_depth:
                walk(p, depth + 1)

    walk(root, 1)
    if not found:
        raise InputError(f"{root}: no {PREDICTIONS} here or in its subfolders; run `lgrnet predict` first")
    return [load_result(p, rid=str(i), name=p.relative_to(root).as_posix()) for i, p in enumerate(found)]


def safe_filename(name: str, default: str = "result") -> str:
    """A name fit for a download or a folder: letters, digits, '-', '_' and '.' only."""
    name = re.sub(r"[^A-Za-z0-9._-]+", "_", name).strip("._")
    return name[:80] or default
