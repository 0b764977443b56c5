"""Evaluate a model on a dataset split: predict every video, write the toolbox's prediction folders,
score both protocols and write the tables.

Output folder::

    config.json                    the run: model config, weights, data, split, layout, size, versions
    probs/<video>/<frame>.png      probability maps, uint8 = round(255 * sigmoid(best query's logits))
    masks/<video>/<frame>.png      binary masks {0, 255} (best query's logits > 0), as published
    sunseg.json  sunseg.csv        the SUN-SEG toolbox's protocol, scored on probs/
    authors.json authors.csv       the authors' protocol, scored on masks/
    fibroid.json fibroid.csv       the authors' UFUV protocol, scored on masks/ (when asked)
    confidence.json                how well the per-frame score flags failed frames (frame Dice < 0.5):
                                   AUROC, a reliability table (score bins vs mean Dice), every frame's
                                   score and Dice (:mod:`lgrnet.metrics.reliability`)

``probs/`` and ``masks/`` are each a ``<pred_root>/<method>/<dataset>`` folder of the SUN-SEG toolbox
(``<video>/<frame>.png``), so ``lgrnet score`` or the toolbox itself can re-score them.

Each video is segmented by :class:`~lgrnet.inference.predictor.VideoPredictor` with frames resized to
``size``: as one clip (the published evaluation) whenever it fits the memory budget, else in
overlapping windows (or in the windows asked for). Frames are read as a stream, so memory does not
grow with a video's length. How each video ran is recorded under ``inference`` in ``config.json``.
"""
from __future__ import annotations

import json
import os
import platform
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Dict, List, Optional, Sequence, Union

import cv2
import numpy as np

from ..data.datasets import VideoRecord
from .scoring import ScoreResult, format_table, pairs_from_records, score, write_csv, write_json
from ..files import write_bytes_atomic, write_text_atomic
from ..results.writers import encode_png, mask_to_uint8, prob_to_uint8

if TYPE_CHECKING:
    from ..inference.predictor import VideoPredictor

PROTOCOL_INPUTS = {"sunseg": "probs", "authors": "masks", "fibroid": "masks"}
DEFAULT_PROTOCOLS = ("sunseg", "authors")


def write_png(path: Union[str, Path], image: np.ndarray) -> None:
    """Write a uint8 grey image as PNG, atomically (a rerun with --force never leaves half a file)."""
    write_bytes_atomic(path, encode_png(image, path))


def as_predictor(model, size: int = 352) -> "VideoPredictor":
    """``model`` as a :class:`~lgrnet.inference.predictor.VideoPredictor` (a predictor is returned as is;
    an LGRNet is wrapped with the default window rule: whole video when it fits)."""
    from ..inference.predictor import VideoPredictor

    return model if isinstance(model, VideoPredictor) else VideoPredictor(model, size=size)


def predict_videos(model, videos: Sequence[VideoRecord], out_dir: Union[str, Path], size: int = 352,
                   progress: bool = True, on_video=None, frames_out: Optional[List[Dict[str, object]]] = None
                   ) -> Dict[str, Dict[str, object]]:
    """Segment every video and write ``probs/`` and ``masks/`` under ``out_dir``.

    ``model``: an LGRNet (run at ``size``, whole video when it fits the memory budget) or a
    :class:`~lgrnet.inference.predictor.VideoPredictor` (its size and window settings).
    Returns, per video, how it ran: {"frames", "mode" ("whole-clip" | "windowed"), "window",
    "overlap", "num_windows"}. ``on_video(name, run)``: called when a video's PNGs are all written.
    ``frames_out``: a list that gets one ``{"video", "frame", "score",
    "dice"}`` per frame with a mask (the frame Dice of the binary mask against the ground truth > 128).
    """
    from ..io.images import read_mask
    from ..metrics.reliability import frame_dice

    from ..io.frame_folder import FrameFolderSource
    from ..progress import ProgressBar

    predictor = as_predictor(model, size)
    out_dir = Path(out_dir)
    runs: Dict[str, Dict[str, object]] = {}
    with ProgressBar("predict", total=sum(len(v) for v in videos), enabled=progress, leave=False) as bar:
        for rec in videos:
            stream = predictor.stream(FrameFolderSource.from_files(rec.frames), bar.callback(offset=bar.n))
            for fp in stream:
                stem = rec.frames[fp.index].stem
                write_png(out_dir / "probs" / rec.name / f"{stem}.png", prob_to_uint8(fp.prob))
                write_png(out_dir / "masks" / rec.name / f"{stem}.png", mask_to_uint8(fp.mask))
                gt = rec.masks[fp.index] if frames_out is not None and fp.index < len(rec.masks) else None
                if gt is not None:
                    frames_out.append({"video": rec.name, "frame": stem, "score": round(fp.score, 6),
                                       "dice": round(frame_dice(fp.mask, read_mask(gt)), 6)})
            runs[rec.name] = {"frames": stream.info["num_frames"],
                              **{k: stream.info[k] for k in ("mode", "window", "overlap", "num_windows")}}
            if on_video is not None:
                on_video(rec.name, runs[rec.name])
    return runs


def predict_share(predictor, videos: Sequence[VideoRecord], out_dir: Path, shard, progress: bool = True,
                  timeout: Optional[float] = None) -> Optional[Dict[str, Dict[str, object]]]:
    """Several processes (:mod:`lgrnet.runs.shard`): predict this process's share of ``videos``
    (balanced by frame count), skipping videos a killed run finished, each recorded in
    ``out_dir/.lgrnet-run/videos/<video>.json`` once its PNGs are written. Rank 0 then waits for
    every video's record and returns the runs of all videos (to be scored once); the other ranks
    return None."""
    from ..runs.batch import POLL_SECONDS, run_dir
    from ..runs.shard import balance

    records = run_dir(out_dir) / "videos"
    share = balance([len(v) for v in videos], shard.world_size)[shard.rank]
    todo = [videos[i] for i in share if not (records / f"{videos[i].name}.json").is_file()]

    def done(name: str, run: Dict[str, object]) -> None:
        write_text_atomic(records / f"{name}.json", json.dumps(run) + "\n")

    predict_videos(predictor, todo, out_dir, progress=progress, on_video=done)
    if shard.rank != 0:
        return None
    deadline = None if timeout is None else time.monotonic() + timeout
    while True:
        missing = [v.name for v in videos if not (records / f"{v.name}.json").is_file()]
        if not missing:
            break
        if deadline is not None and time.monotonic() >= deadline:
            from ..errors import UserError

            raise UserError(f"{out_dir}: {len(missing)} video(s) not predicted by the other processes in time "
                            f"({', '.join(missing[:5])}); run the same command again")
        time.sleep(POLL_SECONDS)
    return {v.name: json.loads((records / f"{v.name}.json").read_text()) for v in videos}


@dataclass
class EvaluationResult:
    out_dir: Path
    frames: int
    results: Dict[str, ScoreResult] = field(default_factory=dict)
    seconds_predict: float = 0.0
    seconds_score: float = 0.0
    runs: Dict[str, Dict[str, object]] = field(default_factory=dict)
    confidence: Optional[Dict[str, object]] = None

    @property
    def windowed(self) -> List[str]:
        """Videos that did not run as one clip (not the published protocol)."""
        return [v for v, r in self.runs.items() if r.get("mode") == "windowed"]

    def tables(self) -> str:
        text = "\n\n".join(format_table(r) for r in self.results.values())
        if self.confidence is not None:
            from ..metrics.reliability import format_reliability

            text += "\n\n" + format_reliability(self.confidence["reliability"], self.confidence["auroc"],
                                                flag=self.confidence.get("flag_threshold"))
        return text


def write_config(out_dir: Union[str, Path], config: dict) -> None:
    import torch

    from ..version import __version__

    data = dict(config)
    data.setdefault("versions", {"lgrnet": __version__, "torch": torch.__version__, "numpy": np.__version__,
                                 "opencv": cv2.__version__, "python": platform.python_version()})
    write_text_atomic(os.path.join(str(out_dir), "config.json"), json.dumps(data, indent=2, default=str) + "\n")


def confidence_report(frames: List[Dict[str, object]]) -> Dict[str, object]:
    """What ``confidence.json`` holds: the AUROC of the per-frame score for failed frames, the
    reliability table, the threshold that flags failed frames best (``flag_threshold``: run on
    Valid videos, the value a model records for the review page) and the frames (see
    :mod:`lgrnet.metrics.reliability`)."""
    from ..metrics.reliability import FAIL_BELOW, failure_auroc, flag_threshold, reliability_table

    scores = [float(f["score"]) for f in frames]
    dice = [float(f["dice"]) for f in frames]
    auc = failure_auroc(scores, dice)
    return {"fail_below": FAIL_BELOW, "frames_scored": len(frames),
            "failed": sum(d < FAIL_BELOW for d in dice), "auroc": None if np.isnan(auc) else round(auc, 4),
            "mean_dice": round(float(np.mean(dice)), 4) if dice else None,
            "reliability": reliability_table(scores, dice), "flag_threshold": flag_threshold(scores, dice),
            "frames": frames}


def evaluate_split(model, videos: Sequence[VideoRecord], out_dir: Union[str, Path], size: int = 352,
                   drop_ends: bool = True, config: Optional[dict] = None, progress: bool = True,
                   protocols: Sequence[str] = DEFAULT_PROTOCOLS, shard=None) -> Optional[EvaluationResult]:
    """Predict ``videos`` (with masks) into ``out_dir`` and score both protocols; writes
    ``config.json`` first, then the prediction folders, then ``<protocol>.{json,csv}`` for each of
    ``protocols`` (of :data:`PROTOCOL_INPUTS`), then ``config.json`` again with how each video ran
    (``inference``).

    ``model``: an LGRNet (run at ``size``) or a :class:`~lgrnet.inference.predictor.VideoPredictor`
    (its size, window, overlap and memory budget). ``shard``: a :class:`~lgrnet.runs.shard.Shard`
    of several processes: each predicts its share (:func:`predict_share`) and rank 0 scores them
    all once; the other ranks return None."""
    sharded = shard is not None and shard.world_size > 1
    predictor = as_predictor(model, size)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    settings = predictor.settings()
    run_config = {**(config or {}), "size": predictor.size[0] if predictor.size[0] == predictor.size[1] else list(predictor.size),
                  "window": settings["window"], "overlap": settings["overlap"],
                  "memory_budget": settings["memory_budget"], "tta": settings.get("tta", "off"), "drop_ends": drop_ends, "protocols": list(protocols),
                  "videos": [v.name for v in videos], "frames": sum(len(v) for v in videos),
                  "started": time.strftime("%Y-%m-%dT%H:%M:%S%z")}
    if not sharded or shard.rank == 0:
        write_config(out_dir, run_config)
    t0 = time.perf_counter()
    frames: List[Dict[str, object]] = []
    if sharded:
        runs = predict_share(predictor, videos, out_dir, shard, progress=progress)
        if runs is None:
            return None
    else:
        runs = predict_videos(predictor, videos, out_dir, progress=progress, frames_out=frames)
    t1 = time.perf_counter()
    result = EvaluationResult(out_dir, sum(int(r["frames"]) for r in runs.values()), seconds_predict=t1 - t0, runs=runs)
    result.confidence = confidence_report(frames)
    write_text_atomic(os.path.join(str(out_dir), "confidence.json"), json.dumps(result.confidence, indent=1) + "\n")
    for protocol in protocols:
        folder = PROTOCOL_INPUTS[protocol]
        pairs = pairs_from_records(videos, out_dir / folder)
        res = score(pairs, protocol=protocol, drop_ends=drop_ends, progress=progress)
        res.info.update({"pred_dir": str(out_dir / folder), "data": (config or {}).get("data"),
                         "split": (config or {}).get("split")})
        write_json(res, out_dir / f"{protocol}.json")
        write_csv(res, out_dir / f"{protocol}.csv")
        result.results[protocol] = res
    result.seconds_score = time.perf_counter() - t1
    write_config(out_dir, {**run_config, "inference": runs, "finished": time.strftime("%Y-%m-%dT%H:%M:%S%z")})
    return result
