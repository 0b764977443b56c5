"""Evaluate a model on a dataset split: predict every video, write the toolbox's prediction folders,
score both protocols and write the tables.

Output folder::

    config.json                    the run: model config, weights, data, split, layout, size, versions
    probs/<video>/<frame>.png      probability maps, uint8 = round(255 * sigmoid(best query's logits))
    masks/<video>/<frame>.png      binary masks {0, 255} (best query's logits > 0), as published
    sunseg.json  sunseg.csv        the SUN-SEG toolbox's protocol, scored on probs/
    authors.json authors.csv       the authors' protocol, scored on masks/

``probs/`` and ``masks/`` are each a ``<pred_root>/<method>/<dataset>`` folder of the SUN-SEG toolbox
(``<video>/<frame>.png``), so ``lgrnet score`` or the toolbox itself can re-score them.

Each video is segmented as one clip (the published evaluation), with frames resized to ``size``.
"""
from __future__ import annotations

import json
import os
import platform
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, Optional, Sequence, Union

import cv2
import numpy as np

from ..data.datasets import VideoRecord, read_frame
from ..errors import InputError
from ..metrics.scoring import ScoreResult, format_table, pairs_from_records, score, write_csv, write_json
from ..models.checkpoint import atomic_write

PROTOCOL_INPUTS = {"sunseg": "probs", "authors": "masks"}


def write_png(path: Union[str, Path], image: np.ndarray) -> None:
    """Write a uint8 grey image as PNG, atomically."""
    ok, buf = cv2.imencode(".png", image)
    if not ok:
        raise InputError(f"{path}: cannot encode PNG")
    data = buf.tobytes()

    def write(tmp: str) -> None:
        with open(tmp, "wb") as f:
            f.write(data)

    atomic_write(str(path), write)


def probs_to_uint8(probs: np.ndarray) -> np.ndarray:
    """Probabilities in [0, 1] -> uint8 0..255 (rounded)."""
    return np.round(np.clip(probs, 0.0, 1.0) * 255.0).astype(np.uint8)


def predict_videos(model, videos: Sequence[VideoRecord], out_dir: Union[str, Path], size: int = 352,
                   progress: bool = True) -> int:
    """Segment every video as one clip and write ``probs/`` and ``masks/`` under ``out_dir``.
    Returns the number of frames written."""
    from ..engine.inference import segment_clip

    out_dir = Path(out_dir)
    iterator = videos
    if progress:
        from tqdm import tqdm

        iterator = tqdm(videos, desc="predict", unit="video", leave=False)
    n = 0
    for rec in iterator:
        frames = [read_frame(f) for f in rec.frames]
        shapes = {f.shape for f in frames}
        if len(shapes) > 1:
            raise InputError(f"video {rec.name}: frames differ in size ({', '.join(map(str, sorted(shapes)))})")
        pred = segment_clip(model, np.stack(frames), size)
        for k, frame in enumerate(rec.frames):
            write_png(out_dir / "probs" / rec.name / f"{frame.stem}.png", probs_to_uint8(pred.probs[k]))
            write_png(out_dir / "masks" / rec.name / f"{frame.stem}.png", pred.masks[k].astype(np.uint8) * 255)
        n += len(rec.frames)
    return n


@dataclass
class EvaluationResult:
    out_dir: Path
    frames: int
    results: Dict[str, ScoreResult] = field(default_factory=dict)
    seconds_predict: float = 0.0
    seconds_score: float = 0.0

    def tables(self) -> str:
        return "\n\n".join(format_table(r) for r in self.results.values())


def write_config(out_dir: Union[str, Path], config: dict) -> None:
    import torch

    from .. import __version__

    data = dict(config)
    data.setdefault("versions", {"lgrnet": __version__, "torch": torch.__version__, "numpy": np.__version__,
                                 "opencv": cv2.__version__, "python": platform.python_version()})
    text = json.dumps(data, indent=2, default=str) + "\n"

    def write(tmp: str) -> None:
        with open(tmp, "w", encoding="utf-8") as f:
            f.write(text)

    atomic_write(os.path.join(str(out_dir), "config.json"), write)


def evaluate_split(model, videos: Sequence[VideoRecord], out_dir: Union[str, Path], size: int = 352,
                   drop_ends: bool = True, config: Optional[dict] = None, progress: bool = True) -> EvaluationResult:
    """Predict ``videos`` (with masks) into ``out_dir`` and score both protocols; writes
    ``config.json`` first, then the prediction folders, then ``{sunseg,authors}.{json,csv}``."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    write_config(out_dir, {**(config or {}), "size": size, "drop_ends": drop_ends,
                           "videos": [v.name for v in videos], "frames": sum(len(v) for v in videos),
                           "started": time.strftime("%Y-%m-%dT%H:%M:%S%z")})
    model.eval()
    t0 = time.perf_counter()
    frames = predict_videos(model, videos, out_dir, size=size, progress=progress)
    t1 = time.perf_counter()
    result = EvaluationResult(out_dir, frames, seconds_predict=t1 - t0)
    for protocol, folder in PROTOCOL_INPUTS.items():
        pairs = pairs_from_records(videos, out_dir / folder)
        res = score(pairs, protocol=protocol, drop_ends=drop_ends, progress=progress)
        res.info.update({"pred_dir": str(out_dir / folder), "data": (config or {}).get("data"),
                         "split": (config or {}).get("split")})
        write_json(res, out_dir / f"{protocol}.json")
        write_csv(res, out_dir / f"{protocol}.csv")
        result.results[protocol] = res
    result.seconds_score = time.perf_counter() - t1
    return result
