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


def predict_video(predictor: "VideoPredictor", rec: VideoRecord, out_dir: Path, bar=None,
                  frames_out: Optional[List[Dict[str, object]]] = None) -> Dict[str, object]:
    """Segment one video and write its ``probs/`` and ``masks/`` PNGs under ``out_dir``.

    Returns how it ran: {"frames", "mode" ("whole-clip" | "windowed"), "window", "overlap",
    "num_windows"}. ``frames_out``: a list that gets one ``{"video", "frame", "score", "dice"}``
    per frame with a mask (the frame Dice of the binary mask against the ground truth > 128).
    ``bar``: a :class:`~lgrnet.progress.ProgressBar` that counts the frames."""
    from ..io.frame_folder import FrameFolderSource
    from ..io.images import read_mask
    from ..metrics.reliability import frame_dice

    stream = predictor.stream(FrameFolderSource.from_files(rec.frames),
                              bar.callback(offset=bar.n) if bar is not None else None)
    for fp in stream:
        stem = rec.frames[fp.index].stem
        write_png(out_dir / "probs" / rec.name / f"{stem}.png", prob_to_uint8(fp.prob))
        write_png(out_dir / "masks" / rec.name / f"{stem}.png", mask_to_uint8(fp.mask))
        gt = rec.masks[fp.index] if frames_out is not None and fp.index < len(rec.masks) else None
        if gt is not None:
            frames_out.append({"video": rec.name, "frame": stem, "score": round(fp.score, 6),
                               "dice": round(frame_dice(fp.mask, read_mask(gt)), 6)})
    return {"frames": stream.info["num_frames"], **{k: stream.info[k] for k in ("mode", "window", "overlap", "num_windows")}}


def predict_videos(model, videos: Sequence[VideoRecord], out_dir: Union[str, Path], size: int = 352,
                   progress: bool = True, frames_out: Optional[List[Dict[str, object]]] = None,
                   shard=None) -> Optional[Dict[str, Dict[str, object]]]:
    """Segment every video (:func:`predict_video`) and write ``probs/`` and ``masks/`` under ``out_dir``.

    ``model``: an LGRNet (run at ``size``, whole video when it fits the memory budget) or a
    :class:`~lgrnet.inference.predictor.VideoPredictor` (its size and window settings).
    Returns, per video, how it ran (see :func:`predict_video`); ``frames_out`` gets the per-frame
    records of every video, in the order of ``videos``.

    ``shard``: a :class:`~lgrnet.runs.shard.Shard` of several processes. They share the videos
    with the mechanism of ``lgrnet predict`` (:func:`lgrnet.runs.batch.run_share`, balanced by
    frame count): each process predicts its share, skipping videos a killed run finished, and
    records each video in ``out_dir/.lgrnet-run/videos/<video>.json`` (how it ran and its
    per-frame records) once its PNGs are written. Rank 0 then waits for every process's share
    and returns what one process returns; the other ranks return None."""
    from ..errors import UserError
    from ..progress import ProgressBar
    from ..runs.batch import run_key, run_share, share_statuses, wait_for_shares
    from ..runs.run_index import run_dir
    from ..runs.shard import Shard

    predictor = as_predictor(model, size)
    out_dir = Path(out_dir)
    shard = shard or Shard()
    sharded = shard.world_size > 1
    started = time.time()
    records_dir = run_dir(out_dir) / "videos"
    by_name = {v.name: v for v in videos}
    records: Dict[str, Dict[str, object]] = {}

    def record_path(name: str) -> Path:
        return records_dir / f"{name}.json"

    def load_record(name: str) -> Optional[Dict[str, object]]:
        try:
            record = json.loads(record_path(name).read_text())
        except (OSError, ValueError):
            return None
        return record if isinstance(record, dict) and {"run", "frames"} <= set(record) else None

    with ProgressBar("predict", total=sum(len(v) for v in videos), enabled=progress, leave=False) as bar:
        def work(_input: str, name: str) -> str:
            frames: List[Dict[str, object]] = []
            run = predict_video(predictor, by_name[name], out_dir, bar, frames)
            records[name] = {"run": run, "frames": frames}
            if sharded:  # for rank 0, and for a rerun after a kill
                write_text_atomic(record_path(name), json.dumps(records[name]) + "\n")
            return f"{name}: {run['frames']} frames"

        names = [v.name for v in videos]
        key = run_key(names, names)
        statuses = run_share(names, names, out_dir, shard, work, key=key, sizes=[len(v) for v in videos],
                             is_done=(lambda name: load_record(name) is not None) if sharded else (lambda name: False),
                             record=sharded, keep_going=sharded, command="evaluate", log=lambda line: None)
    failed = [s for s in statuses if s.status == "error"]
    if not sharded:
        runs = {n: records[n]["run"] for n in names}
    else:
        if shard.rank != 0:
            if failed:
                raise UserError(f"{len(failed)} video(s) of this process's share failed: {failed[0].error}")
            return None
        wait_for_shares(out_dir, shard, since=started - 60, key=key)
        failed = [s for s in share_statuses(out_dir, key, shard.world_size) if s.status == "error"]
        if failed:
            raise UserError(f"{len(failed)} video(s) failed ({', '.join(s.name for s in failed[:5])}): {failed[0].error}")
        records = {n: load_record(n) for n in names}
        lost = [n for n, r in records.items() if r is None]
        if lost:
            raise UserError(f"{records_dir}: no record of video(s) {', '.join(lost[:5])} after every process finished; "
                            f"run the same command again")
        runs = {n: records[n]["run"] for n in names}
    if frames_out is not None:
        for n in names:
            frames_out.extend(records[n]["frames"])
    return runs


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
    of several processes: each predicts its share (:func:`predict_videos`) and rank 0 scores them
    all once, writing the same files as one process; the other ranks return None."""
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
    runs = predict_videos(predictor, videos, out_dir, progress=progress, frames_out=frames, shard=shard)
    if runs is None:  # not rank 0: its share is predicted
        return None
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
