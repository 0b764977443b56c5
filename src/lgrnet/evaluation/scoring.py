"""Score prediction folders against ground truth with one of the protocols (:data:`PROTOCOLS`).

Folders hold ``<video>/<frame>.png`` (the SUN-SEG toolbox's prediction layout for one method and one
data set). A GT folder may also be a split root holding ``GT/``; a folder of images without video
sub-folders is a set of one-frame videos (Kvasir-SEG and other image sets). Predictions are matched
to GT frames by video name and file stem (any image extension, ``.png`` first). Extra prediction
videos and frames are not scored (:func:`unscored_predictions` lists them for a warning); a
missing one is an error that names it.
"""
from __future__ import annotations

import csv
import io
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Dict, Iterable, List, Optional, Sequence, Union

import cv2
import numpy as np

from ..data.datasets import DatasetError, VideoRecord
from ..io.images import find_image, list_images, list_subdirs, read_mask_gray
from ..errors import InputError, UserError
from ..metrics import authors as authors_protocol
from ..metrics import fibroid as fibroid_protocol
from ..metrics import sunseg as sunseg_protocol

PROTOCOLS = ("sunseg", "authors", "fibroid")
_MAX_NAMED = 5


@dataclass(frozen=True)
class FramePair:
    """One GT frame and the prediction scored against it."""

    name: str
    gt: Path
    pred: Path


@dataclass
class VideoPairs:
    """A video's frames in temporal order."""

    name: str
    frames: List[FramePair]


@dataclass
class ScoreResult:
    """What ``lgrnet score`` reports. ``per_video[v]`` holds the video's metrics and its scored
    ``frames``; ``skipped`` names videos left out and why."""

    protocol: str
    metrics: Dict[str, float]
    per_video: Dict[str, Dict[str, float]]
    frames: int
    videos: int
    skipped: Dict[str, str] = field(default_factory=dict)
    notes: List[str] = field(default_factory=list)
    info: Dict[str, object] = field(default_factory=dict)

    def to_json(self) -> dict:
        """The JSON document (non-finite values, e.g. an undefined specificity, become null)."""
        out = {"protocol": self.protocol, "metrics": {k: _finite(v) for k, v in self.metrics.items()},
               "per_video": {v: {k: _finite(x) for k, x in d.items()} for v, d in self.per_video.items()},
               "frames": self.frames, "videos": self.videos}
        if self.skipped:
            out["skipped_videos"] = self.skipped
        if self.notes:
            out["notes"] = self.notes
        out.update(self.info)
        return out


# ----------------------------------------------------------------------------- pairing

def _named(paths: Sequence[object]) -> str:
    shown = ", ".join(str(p) for p in paths[:_MAX_NAMED])
    return shown + (f" and {len(paths) - _MAX_NAMED} more" if len(paths) > _MAX_NAMED else "")


def _select(names: List[str], wanted: Optional[Sequence[str]], where: Path) -> List[str]:
    if not wanted:
        return names
    unknown = [v for v in wanted if v not in names]
    if unknown:
        raise UserError(f"{where}: no video(s) {_named(unknown)} (it has {_named(names)})")
    return [v for v in names if v in set(wanted)]


def pair_folders(pred_dir: Union[str, Path], gt_dir: Union[str, Path],
                 videos: Optional[Sequence[str]] = None) -> List[VideoPairs]:
    """Match every GT frame with its prediction. ``videos`` keeps only the named videos."""
    pred_dir, gt_dir = Path(pred_dir), Path(gt_dir)
    for d, what in ((pred_dir, "prediction"), (gt_dir, "ground-truth")):
        if not d.is_dir():
            raise InputError(f"{d}: no such {what} folder")
    if (gt_dir / "GT").is_dir():
        gt_dir = gt_dir / "GT"
    names = list_subdirs(gt_dir)
    out: List[VideoPairs] = []
    missing: List[Path] = []
    if not names:
        # a flat folder of masks: one-frame videos named by file stem
        images = list_images(gt_dir)
        if not images:
            raise DatasetError(f"{gt_dir}: holds neither <video>/ folders nor masks")
        stems = _select([p.stem for p in images], videos, gt_dir)
        by_stem = {p.stem: p for p in images}
        for stem in stems:
            pred = find_image(pred_dir, stem) or find_image(pred_dir / stem, stem)
            if pred is None:
                missing.append(pred_dir / f"{stem}.png")
                continue
            out.append(VideoPairs(stem, [FramePair(stem, by_stem[stem], pred)]))
    else:
        for video in _select(names, videos, gt_dir):
            frames = []
            for gt in list_images(gt_dir / video):
                pred = find_image(pred_dir / video, gt.stem)
                if pred is None:
                    missing.append(pred_dir / video / f"{gt.stem}.png")
                    continue
                frames.append(FramePair(gt.stem, gt, pred))
            out.append(VideoPairs(video, frames))
    if missing:
        raise DatasetError(f"{len(missing)} prediction(s) missing for frames of {gt_dir}: {_named(missing)}")
    return out


def unscored_predictions(pred_dir: Union[str, Path], pairs: Sequence[VideoPairs],
                         videos: Optional[Sequence[str]] = None) -> List[str]:
    """Warnings for prediction videos and frames under ``pred_dir`` that no GT frame was paired
    with (they are not scored). ``videos``: as given to :func:`pair_folders` (others are not looked at)."""
    pred_dir = Path(pred_dir)
    used = {fp.pred for v in pairs for fp in v.frames}
    paired_videos = {v.name for v in pairs}
    extra_videos: List[str] = []
    extra_frames: List[Path] = []
    for sub in list_subdirs(pred_dir):
        if videos and sub not in videos:
            continue
        images = list_images(pred_dir / sub)
        if sub not in paired_videos and images and not any(p in used for p in images):
            extra_videos.append(sub)
            continue
        extra_frames += [p for p in images if p not in used]
    if not videos:
        extra_frames += [p for p in list_images(pred_dir) if p not in used]
    out = []
    if extra_videos:
        out.append(f"{pred_dir}: {len(extra_videos)} prediction video(s) have no ground truth and are not scored: "
                   f"{_named(extra_videos)}")
    if extra_frames:
        out.append(f"{pred_dir}: {len(extra_frames)} prediction frame(s) have no ground-truth frame and are not "
                   f"scored: {_named([p.relative_to(pred_dir).as_posix() for p in extra_frames])}")
    return out


def pairs_from_records(records: Sequence[VideoRecord], pred_dir: Union[str, Path]) -> List[VideoPairs]:
    """Pair a dataset's masks (from :func:`lgrnet.data.datasets.find_videos`) with predictions written
    as ``pred_dir/<video>/<frame stem>.png``; frames without a mask are not scored."""
    pred_dir = Path(pred_dir)
    out, missing = [], []
    for rec in records:
        frames = []
        for frame, mask in zip(rec.frames, rec.masks):
            if mask is None:
                continue
            pred = find_image(pred_dir / rec.name, frame.stem)
            if pred is None:
                missing.append(pred_dir / rec.name / f"{frame.stem}.png")
                continue
            frames.append(FramePair(frame.stem, mask, pred))
        out.append(VideoPairs(rec.name, frames))
    if missing:
        raise DatasetError(f"{len(missing)} prediction(s) missing in {pred_dir}: {_named(missing)}")
    return out


# ----------------------------------------------------------------------------- reading

def read_grey_cv2(path: Union[str, Path]) -> np.ndarray:
    """A grey uint8 (H, W) image as the toolbox reads it (``cv2.imread(path, IMREAD_GRAYSCALE)``)."""
    try:
        data = np.fromfile(str(path), dtype=np.uint8)
    except OSError as exc:
        raise InputError(f"{path}: cannot read ({exc.strerror or exc})") from None
    img = cv2.imdecode(data, cv2.IMREAD_GRAYSCALE) if data.size else None
    if img is None:
        raise InputError(f"{path}: not a readable image")
    return img


# ----------------------------------------------------------------------------- protocols

def _is_nonbinary(grey: np.ndarray) -> bool:
    return bool(np.count_nonzero((grey != 0) & (grey != 255)))


def _progress(iterable: Iterable, total: int, enabled: bool, desc: str):
    if not enabled:
        return iterable
    from tqdm import tqdm

    return tqdm(iterable, total=total, desc=desc, unit="frame", leave=False)


def _flat(videos: Sequence[VideoPairs], keep: Callable[[int], slice]):
    for v in videos:
        for pair in v.frames[keep(len(v.frames))]:
            yield v.name, pair


def score_sunseg(videos: Sequence[VideoPairs], drop_ends: bool = True, progress: bool = False) -> ScoreResult:
    """The SUN-SEG toolbox's protocol on paired folders (see :mod:`lgrnet.metrics.sunseg`).

    Videos with no frame left once the first and last are dropped (videos of one or two frames) are
    skipped and named in ``skipped``; if no video is left it is an error.
    """
    keep = lambda n: sunseg_protocol.frames_kept(n, drop_ends)  # noqa: E731
    skipped: Dict[str, str] = {}
    for v in videos:
        n = len(v.frames)
        if n == 0:
            skipped[v.name] = "no frames"
        elif len(range(n)[keep(n)]) == 0:
            skipped[v.name] = (f"{n} frame(s): nothing left after dropping the first and last frame "
                               f"(the SUN-SEG protocol)")
    todo = [v for v in videos if v.name not in skipped]
    if not todo:
        raise UserError("nothing to score: " + (
            "every video has at most 2 frames, and the SUN-SEG protocol drops the first and last frame "
            "of each video (pass --keep-ends to score every frame, e.g. for image data sets)"
            if videos and drop_ends else "no frames"))
    total = sum(len(range(len(v.frames))[keep(len(v.frames))]) for v in todo)
    per_frame: Dict[str, List[sunseg_protocol.FrameScores]] = {v.name: [] for v in todo}
    resized = 0
    no_negatives: List[str] = []
    nonbinary = 0
    spe = sunseg_protocol.CURVES.index("Spe")
    for video, pair in _progress(_flat(todo, keep), total, progress, "sunseg"):
        gt = read_grey_cv2(pair.gt)
        nonbinary += _is_nonbinary(gt)
        pred = read_grey_cv2(pair.pred)
        if pred.shape != gt.shape:
            resized += 1
            pred = sunseg_protocol.resize_to(pred, gt.shape)
        scores = sunseg_protocol.score_frame(pred, gt)
        if np.isnan(scores.curves[spe]).any():
            no_negatives.append(str(pair.gt))
        per_frame[video].append(scores)
    video_scores = {name: sunseg_protocol.mean_over_frames(fs) for name, fs in per_frame.items()}
    per_video = {}
    for name, vs in video_scores.items():
        d = sunseg_protocol.summarize(vs.scalars, vs.curves)
        d["frames"] = vs.frames
        per_video[name] = d
    notes = []
    if skipped:
        notes.append(f"{len(skipped)} video(s) skipped (see skipped_videos)")
    if resized:
        notes.append(f"{resized} prediction(s) resized to their GT's size (cv2.resize, bilinear)")
    if nonbinary:
        notes.append(f"{nonbinary} GT mask(s) have grey levels other than 0 and 255: foreground = > 128 (toolbox)")
    if no_negatives:
        notes.append(f"specificity is undefined (NaN, as in the toolbox) for {len(no_negatives)} frame(s) whose "
                     f"GT covers the whole frame: {_named(no_negatives)}")
    if not drop_ends:
        notes.append("--keep-ends: every frame scored (the toolbox drops each video's first and last frame)")
    return ScoreResult("sunseg", sunseg_protocol.summarize_videos(video_scores), per_video, total,
                       len(video_scores), skipped, notes, {"drop_ends": drop_ends})


def score_authors(videos: Sequence[VideoPairs], progress: bool = False) -> ScoreResult:
    """The authors' protocol on paired folders (see :mod:`lgrnet.metrics.authors`): every frame, GT > 0,
    prediction > 127, nearest-resized to the GT's size if it differs."""
    skipped = {v.name: "no frames" for v in videos if not v.frames}
    todo = [v for v in videos if v.frames]
    if not todo:
        raise UserError("nothing to score: no frames")
    total = sum(len(v.frames) for v in todo)
    results = {v.name: authors_protocol.AuthorsVideo([], []) for v in todo}
    resized = nonbinary = 0
    for video, pair in _progress(_flat(todo, lambda n: slice(0, n)), total, progress, "authors"):
        gt_grey = read_mask_gray(pair.gt)
        nonbinary += _is_nonbinary(gt_grey)
        gt = gt_grey > authors_protocol.GT_THRESHOLD
        pred = read_mask_gray(pair.pred)
        if pred.shape != gt.shape:
            resized += 1
            pred = cv2.resize(pred, (gt.shape[1], gt.shape[0]), interpolation=cv2.INTER_NEAREST)
        d, i = authors_protocol.dice_iou(pred > authors_protocol.PRED_THRESHOLD, gt)
        results[video].dice.append(d)
        results[video].iou.append(i)
    per_video = {name: {**r.means(), "frames": r.frames} for name, r in results.items()}
    notes = []
    if nonbinary:
        notes.append(f"{nonbinary} GT mask(s) have grey levels other than 0 and 255: foreground = > 0 (the authors' rule)")
    if resized:
        notes.append(f"{resized} prediction(s) resized to their GT's size (nearest)")
    return ScoreResult("authors", authors_protocol.summarize_videos(results), per_video, total,
                       len(results), skipped, notes)


def score_fibroid(videos: Sequence[VideoPairs], progress: bool = False) -> ScoreResult:
    """The authors' UFUV protocol on paired folders (see :mod:`lgrnet.metrics.fibroid`): every frame,
    GT > 0, prediction > 127 (binary masks), nearest-resized to the GT's size if it differs. Per-video
    values are the same six metrics over each video's frames."""
    skipped = {v.name: "no frames" for v in videos if not v.frames}
    todo = [v for v in videos if v.frames]
    if not todo:
        raise UserError("nothing to score: no frames")
    total = sum(len(v.frames) for v in todo)
    counts: Dict[str, List[fibroid_protocol.Counts]] = {v.name: [] for v in todo}
    resized = nonbinary = 0
    undefined: List[str] = []
    for video, pair in _progress(_flat(todo, lambda n: slice(0, n)), total, progress, "fibroid"):
        gt_grey = read_mask_gray(pair.gt)
        nonbinary += _is_nonbinary(gt_grey)
        pred = read_mask_gray(pair.pred)
        if pred.shape != gt_grey.shape:
            resized += 1
            pred = cv2.resize(pred, (gt_grey.shape[1], gt_grey.shape[0]), interpolation=cv2.INTER_NEAREST)
        c = fibroid_protocol.confusion(pred > authors_protocol.PRED_THRESHOLD, gt_grey > authors_protocol.GT_THRESHOLD)
        if c.tp[0] + c.fp[0] + c.fn[0] == 0:
            undefined.append(str(pair.gt))
        counts[video].append(c)
    merged = {name: fibroid_protocol.Counts.concat(cs) for name, cs in counts.items()}
    per_video = {name: {**fibroid_protocol.summarize(c), "frames": c.frames} for name, c in merged.items()}
    metrics = fibroid_protocol.summarize(fibroid_protocol.Counts.concat(merged.values()))
    notes = []
    if undefined:
        notes.append(f"{len(undefined)} frame(s) have an empty GT and an empty prediction: their Dice and IoU "
                     f"are 0/0, undefined (NaN) as in the authors' evaluator, so dice and mean_iou are NaN "
                     f"(null in JSON): {_named(undefined)}")
    if nonbinary:
        notes.append(f"{nonbinary} GT mask(s) have grey levels other than 0 and 255: foreground = > 0 (the authors' rule)")
    if resized:
        notes.append(f"{resized} prediction(s) resized to their GT's size (nearest)")
    return ScoreResult("fibroid", metrics, per_video, total, len(merged), skipped, notes)


def score(videos: Sequence[VideoPairs], protocol: str = "sunseg", drop_ends: bool = True,
          progress: bool = False) -> ScoreResult:
    if protocol == "sunseg":
        return score_sunseg(videos, drop_ends=drop_ends, progress=progress)
    if protocol == "authors":
        return score_authors(videos, progress=progress)
    if protocol == "fibroid":
        return score_fibroid(videos, progress=progress)
    raise UserError(f"unknown protocol {protocol!r} (choose from {', '.join(PROTOCOLS)})")


# ----------------------------------------------------------------------------- output

def _atomic_text(path: Union[str, Path], text: str) -> None:
    from ..files import write_text_atomic

    write_text_atomic(path, text)


def _finite(x):
    return None if isinstance(x, float) and not np.isfinite(x) else x


def write_json(result: ScoreResult, path: Union[str, Path]) -> None:
    _atomic_text(path, json.dumps(result.to_json(), indent=2) + "\n")


def csv_text(result: ScoreResult) -> str:
    """One row per video, then an ``ALL`` row with the data set's metrics (for ``sunseg`` the ALL row
    is max / mean over thresholds of the mean curve, not a mean of the video rows)."""
    keys = list(result.metrics)
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(["video", "frames"] + keys)
    for name, d in result.per_video.items():
        w.writerow([name, d["frames"]] + [repr(float(d[k])) for k in keys])
    w.writerow(["ALL", result.frames] + [repr(float(result.metrics[k])) for k in keys])
    return buf.getvalue()


def write_csv(result: ScoreResult, path: Union[str, Path]) -> None:
    _atomic_text(path, csv_text(result))


TITLES = {"sunseg": "SUN-SEG toolbox protocol", "authors": "LGRNet authors' protocol",
          "fibroid": "LGRNet authors' UFUV (fibroid) protocol"}


def format_table(result: ScoreResult, title: Optional[str] = None) -> str:
    """A printable table of the data set's metrics (3 decimals, as the toolbox prints them)."""
    head = title or TITLES[result.protocol]
    lines = [f"{head}: {result.videos} video(s), {result.frames} frame(s) scored"]
    width = max(len(k) for k in result.metrics)
    for k, v in result.metrics.items():
        lines.append(f"  {k:<{width}}  {v:.3f}")
    for note in result.notes:
        lines.append(f"  note: {note}")
    for name, why in result.skipped.items():
        lines.append(f"  skipped {name}: {why}")
    return "\n".join(lines)
