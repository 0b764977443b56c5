"""Segment videos of any length in bounded memory: :class:`VideoPredictor`.

>>> from lgrnet.runs.predict_folder import predict_to_folder
>>> predictor = VideoPredictor.from_pretrained("sunseg_pvt.safetensors")       # or VideoPredictor(model)
>>> for fp in predictor.stream("exam.mp4"):          # one FramePrediction per frame, in order
...     fp.index, fp.score, fp.mask.shape             # mask (H, W) bool at the frame's size
>>> result = predictor.predict("exam.mp4")           # everything stacked in memory (short videos)
>>> predict_to_folder(predictor, "exam.mp4", "out/")  # out/exam/{masks,probs}/, overlay.mp4, predictions.json/csv

The parts, one module each: window planning (:mod:`lgrnet.inference.windows`), the memory budget
(:mod:`lgrnet.inference.memory`), one clip through the model (:mod:`lgrnet.inference.clip_runner`),
post-processing (:mod:`lgrnet.inference.postprocess`), loading (:mod:`lgrnet.inference.loading`),
devices (:mod:`lgrnet.inference.device`), the reader and writer threads
(:mod:`lgrnet.inference.pipeline`) and the result folder (:func:`lgrnet.runs.predict_folder.predict_to_folder`
writes it through :class:`lgrnet.results.folder.ResultFolderWriter`). This module reads frames,
runs windows and stitches the results.

Whole clip or windows
---------------------
LGRNet is a clip-level model: its input GroupNorm pools statistics over all frames of the clip,
the local branch attends from frame t to frame t-1 cyclically (frame 0 to the last frame), the
global branch scans the frame queries of all frames along a Hilbert curve, and the decoder's
queries (and the chosen query and its class score) are per clip. A frame's output therefore
depends on which frames share its clip, and the published evaluation runs each video as ONE
clip.

The predictor keeps that published behaviour whenever the video fits the memory budget: it reads
frames as a stream into a buffer of at most ``window`` frames, and if the stream ends before the
buffer is full the whole video is one clip (identical to running the clip once:
:func:`~lgrnet.inference.clip.forward_clip` then :func:`~lgrnet.inference.postprocess.postprocess`).
``window`` is ``--window`` when given, else the largest clip the memory budget allows
(:func:`~lgrnet.inference.memory.estimate_bytes_per_frame`; the budget defaults to half the available RAM capped at 8 GiB,
or 80 % of the free GPU memory).

Longer videos run as overlapping windows of ``window`` frames
(:func:`~lgrnet.inference.windows.plan_windows`), stride ``window - overlap``; the
last window is shifted back to end at the last frame, so no window is short. In an overlap each
frame is taken from ONE window (no blending): from the earlier window up to the middle of the
overlap, from the later one after it. Why pick rather than blend:

- a frame's mask, probability map and score then come from a single forward pass and one chosen
  query, so they stay consistent with each other; two windows can choose different queries (and
  class scores), and averaging their maps mixes two objects into a mask no query predicted;
- splitting at the middle of the overlap gives every reported frame at least ``overlap // 2``
  frames of context on each side, and keeps away from the window edges where the model is least
  faithful: the cyclic t-1 link of a window's first frame points to the window's LAST frame
  instead of its real predecessor, and its influence spreads one frame per encoder layer. The
  default overlap, ``max(2 * encoder layers, window // 8)`` (at most ``(window - 1) // 2``),
  keeps the frames that link touches (3 layers: window frames 0..2) out of the reported ones,
  except at the start of the video where the published model has the same wrap-around.

What a window cannot reproduce: GroupNorm statistics, the global Hilbert scan and the decoder's
clip queries see the window, not the whole video. Larger windows are closer to the published
whole-clip output; the window length is reported in ``predictions.json``.

Memory: the buffer holds at most ``window`` frames (original frame, model input, chosen-query
logits) plus one read-ahead frame, and results are yielded (and written) as soon as they are
final, so peak memory depends on the window, the model input size and the frame size, not on
the video's length.
"""
from __future__ import annotations

import collections
import os
import time
from dataclasses import dataclass, field
from typing import Callable, Dict, Iterable, Iterator, List, Optional, Tuple, Union

import numpy as np
import torch

from ..errors import InputError
from ..models.lgrnet import LGRNet
from ..precision import resolve_precision
from ..runtime import tune_cpu_allocator
from .clip_runner import ClipOutput, ClipRunner
from .device import resolve_device
from ..models.input_size import DEFAULT_INPUT_SIZE, check_input_size
from .clip import frames_to_tensor
from .loading import inference_size, load_model, recorded_metadata, resolve_weights
from .memory import WindowPlan, parse_bytes, plan_window
from .pipeline import Prefetcher, StageClock, reader_thread_helps
from .postprocess import clip_mask_score, clip_maps, maps_at_size
from .windows import WindowPlanner, check_window

__all__ = ["FramePrediction", "PredictionStream", "VideoPrediction", "VideoPredictor", "ClipScores", "frame_prediction", "mask_bbox"]

ProgressFn = Callable[[int, Optional[int]], None]
MAX_PREFETCH = 32  # frames read ahead of the model at most (each: the frame and its model input)


# ---------------------------------------------------------------------------------------- results


@dataclass
class FramePrediction:
    """The result for one frame, at the frame's original size.

    frame: uint8 RGB (H, W, 3), the input frame; prob: (H, W) float32 foreground probability of
    the chosen query; mask: (H, W) bool (logit > 0); class_score: the chosen query's foreground
    class probability (one per clip/window); mask_score: mean prob inside the mask (0 if empty);
    clip_mask_score: the median mask score of the frames of its clip/window that have a mask (one
    per clip/window, :func:`~lgrnet.inference.postprocess.clip_mask_score`); score: class_score *
    mask_score * clip_mask_score, the frame's confidence; query: the chosen query's index; window:
    which window it came from (0 when the whole video is one clip); query_probs (Nq, H, W) float32,
    query_class_scores (Nq,), query_mask_scores (Nq,), query_clip_mask_scores (Nq,), query_areas
    (Nq,): every query, only when the predictor has ``all_queries=True``.
    """

    index: int
    name: str
    frame: np.ndarray
    prob: np.ndarray
    mask: np.ndarray
    class_score: float
    mask_score: float
    clip_mask_score: float
    score: float
    query: int
    window: int = 0
    query_probs: Optional[np.ndarray] = None
    query_class_scores: Optional[np.ndarray] = None
    query_mask_scores: Optional[np.ndarray] = None
    query_clip_mask_scores: Optional[np.ndarray] = None
    query_areas: Optional[np.ndarray] = None

    @property
    def area(self) -> int:
        """Lesion area in pixels (of the original frame)."""
        return int(self.mask.sum())

    @property
    def bbox(self) -> Optional[List[int]]:
        """[x0, y0, x1, y1] of the mask in pixels, x1/y1 exclusive (width = x1 - x0); None if empty."""
        return mask_bbox(self.mask)


def mask_bbox(mask: np.ndarray) -> Optional[List[int]]:
    """[x0, y0, x1, y1] (x1, y1 exclusive) of the True pixels of a (H, W) mask, or None."""
    rows = np.flatnonzero(mask.any(axis=1))
    if rows.size == 0:
        return None
    cols = np.flatnonzero(mask.any(axis=0))
    return [int(cols[0]), int(rows[0]), int(cols[-1]) + 1, int(rows[-1]) + 1]


@dataclass
class VideoPrediction:
    """All frames' results stacked (what :meth:`VideoPredictor.predict` returns).

    probs (T, H, W) float32, masks (T, H, W) bool, class_score / mask_score / clip_mask_score / score
    (T,) float32,
    query (T,) int64, names: T frame names; info: how the video was run (mode, window, ...).
    """

    probs: np.ndarray
    masks: np.ndarray
    class_score: np.ndarray
    mask_score: np.ndarray
    clip_mask_score: np.ndarray
    score: np.ndarray
    query: np.ndarray
    names: List[str]
    info: Dict[str, object] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.names)


# ---------------------------------------------------------------------------------------- reading


def _as_frames(frames) -> Tuple[Iterable[np.ndarray], Callable[[int], str], Optional[int], Optional[object]]:
    """Normalise what :meth:`VideoPredictor.stream` accepts -> (frames, name_of, total, source)."""
    from ..io import FrameSource, open_source

    if isinstance(frames, (str, os.PathLike)):
        frames = open_source(frames)
    if isinstance(frames, FrameSource):
        return frames, frames.name, frames.num_frames, frames
    if isinstance(frames, torch.Tensor):
        frames = frames.cpu().numpy()
    if isinstance(frames, np.ndarray):
        if frames.ndim not in (3, 4):
            raise InputError(f"frames: expected an array (T, H, W, 3) or (T, H, W), got shape {frames.shape}")
        return frames, str, len(frames), None
    total = len(frames) if hasattr(frames, "__len__") else None
    return frames, str, total, None


def _check_frame(frame, name: str, first_size: Optional[Tuple[int, int]], where: str) -> np.ndarray:
    frame = np.asarray(frame)
    if frame.dtype != np.uint8:
        raise InputError(f"{where}: frame {name} has dtype {frame.dtype}; expected uint8 RGB (16-bit and float frames are not supported)")
    if frame.ndim == 2:
        frame = np.repeat(frame[:, :, None], 3, axis=2)
    if frame.ndim != 3 or frame.shape[2] != 3:
        raise InputError(f"{where}: frame {name} has shape {frame.shape}; expected (H, W, 3) RGB (no alpha)")
    if first_size is not None and frame.shape[:2] != first_size:
        raise InputError(f"{where}: frame {name} is {frame.shape[1]}x{frame.shape[0]} but the first frame is "
                         f"{first_size[1]}x{first_size[0]}; all frames must have one size")
    return frame


@dataclass
class _Entry:
    """A frame in the window buffer: its index, the original frame, the model input (3, h, w)."""

    index: int
    frame: np.ndarray
    x: torch.Tensor


@dataclass
class ClipScores:
    """A clip's (window's) :func:`~lgrnet.inference.postprocess.clip_mask_score`: ``chosen`` for the
    chosen query, ``queries`` (Nq,) float32 for every query when the clip kept all queries' logits."""

    chosen: float
    queries: Optional[np.ndarray] = None

    @classmethod
    @torch.inference_mode()
    def of(cls, out: ClipOutput) -> "ClipScores":
        queries = None
        if out.all_logits is not None:  # (T, Nq, h, w)
            queries = clip_mask_score(out.all_logits).numpy().astype(np.float32)
        return cls(chosen=float(clip_mask_score(out.logits)), queries=queries)


@torch.inference_mode()
def frame_prediction(entry: _Entry, name: str, out: ClipOutput, j: int, window: int,
                     clip_scores: ClipScores) -> FramePrediction:
    """Frame ``j`` of the clip ``out`` (the buffer's ``entry``, reported by window ``window``) -> its
    :class:`FramePrediction` (post-processing: :func:`~lgrnet.inference.postprocess.clip_maps`);
    ``clip_scores``: the clip's, once per clip (:meth:`ClipScores.of`)."""
    size = entry.frame.shape[:2]
    maps = clip_maps(out.logits[j:j + 1], out.class_score, out.query, size, clip_score=clip_scores.chosen)
    fp = FramePrediction(index=entry.index, name=name, frame=entry.frame, prob=maps.probs[0], mask=maps.masks[0],
                         class_score=float(maps.class_score[0]), mask_score=float(maps.mask_score[0]),
                         score=float(maps.score[0]), query=out.query, window=window,
                         clip_mask_score=maps.clip_mask_score)
    if out.all_logits is not None:
        qp, qm, qs = maps_at_size(out.all_logits[j], size)  # (Nq, H, W)
        fp.query_probs = qp.numpy().astype(np.float32, copy=False)
        fp.query_class_scores = out.all_class_scores
        fp.query_mask_scores = qs.numpy().astype(np.float32)
        fp.query_clip_mask_scores = clip_scores.queries
        fp.query_areas = qm.flatten(1).sum(1).numpy().astype(np.int64)
    return fp


# ---------------------------------------------------------------------------------------- predictor


class PredictionStream:
    """An iterator of :class:`FramePrediction` for one video, with what it did in ``info``
    (filled in as it runs: ``mode`` "whole-clip" or "windowed", ``window``, ``overlap``,
    ``num_windows``, ``num_frames``, ``cuda_graph_windows`` (windows run by a CUDA graph),
    ``seconds``, ``frames_per_second``, ``stage_seconds``: busy seconds per stage, see
    :mod:`lgrnet.inference.pipeline`).

    Reads -> runs -> stitches: frames are read into a buffer of at most ``window`` frames plus one
    read-ahead frame (which tells whether the stream has ended), the
    :class:`~lgrnet.inference.windows.WindowPlanner` says which window to run and which of its frames
    to report, the predictor's :class:`~lgrnet.inference.clip_runner.ClipRunner` runs it, and the
    reported frames are post-processed and yielded in order."""

    def __init__(self, predictor: "VideoPredictor", frames, progress: Optional[ProgressFn] = None):
        self.predictor = predictor
        self._frames, self._name_of, self.total, self.source = _as_frames(frames)
        self._progress = progress
        self.clock = StageClock()  # busy seconds per stage; predict_to_folder adds its writing stages
        self.plan: Optional[WindowPlan] = None
        self.info: Dict[str, object] = {}
        self._it = self._run()

    def __iter__(self) -> "PredictionStream":
        return self

    def __next__(self) -> FramePrediction:
        return next(self._it)

    def close(self) -> None:
        self._it.close()

    def _reader(self) -> Iterator[_Entry]:
        """The frames, checked, with their model inputs (each resized as in a whole clip)."""
        where = str(getattr(self.source, "path", "frames"))
        first_size: Optional[Tuple[int, int]] = None
        for index, f in enumerate(self._frames):
            f = _check_frame(f, self._name_of(index), first_size, where)
            first_size = f.shape[:2]
            yield _Entry(index, f, frames_to_tensor(f[None], self.predictor.size)[0, 0])

    def _run(self) -> Iterator[FramePrediction]:
        p = self.predictor
        clock = self.clock
        reader: Iterator[_Entry] = self._reader()
        t0 = time.perf_counter()
        if self._progress is not None:
            self._progress(0, self.total)
        with clock("read"):
            pending = next(reader, None)
        if pending is None:
            raise InputError(f"{getattr(self.source, 'path', 'frames')}: no frames")
        self.plan = plan = p.plan(pending.frame.shape[:2])
        planner = WindowPlanner(plan.window, plan.overlap)
        read_ahead = p.pipeline and reader_thread_helps(p.device.type)
        if read_ahead:  # decode + resize the next window while the model runs this one
            # a model on the CPU with spare cores: the reader yields them to its threads (pipeline.background_priority)
            reader = Prefetcher(reader, prefetch_depth(plan), clock=clock, stage="read",
                                low_priority=p.device.type == "cpu")
        buf: collections.deque = collections.deque(maxlen=plan.window)
        w = done = graphed_windows = 0
        self.info.update(read_ahead=read_ahead, window=plan.window, overlap=plan.overlap, memory_budget=plan.budget,
                         bytes_per_frame=plan.bytes_per_frame, auto_window=plan.auto)
        try:
            while True:
                while pending is not None and pending.index < planner.next_end:  # read
                    buf.append(pending)
                    with clock("wait_read" if read_ahead else "read"):
                        pending = next(reader, None)
                win = planner.next(buf[-1].index + 1 if pending is None else None)
                entries = [e for e in buf if win.start <= e.index < win.end]
                with clock("model"):
                    out = p.runner([e.x for e in entries], repeated=not (planner.done and w == 0))  # run
                graphed_windows += int(out.graphed)
                with clock("postprocess"):
                    clip_scores = ClipScores.of(out)
                for j, e in enumerate(entries):  # stitch: report this window's share of its frames
                    if win.emit_from <= e.index < win.emit_to:
                        with clock("postprocess"):
                            fp = frame_prediction(e, self._name_of(e.index), out, j, w, clip_scores)
                        yield fp
                        done += 1
                        if self._progress is not None:
                            self._progress(done, self.total)
                del entries, out
                if planner.done:
                    break
                w += 1
        finally:
            if isinstance(reader, Prefetcher):
                reader.close()
        seconds = time.perf_counter() - t0
        self.info.update(mode="whole-clip" if w == 0 else "windowed", num_windows=w + 1, num_frames=done,
                         window=min(plan.window, done), overlap=plan.overlap if w else 0,
                         cuda_graph_windows=graphed_windows, seconds=round(seconds, 3),
                         frames_per_second=round(done / seconds, 3) if seconds > 0 else None,
                         stage_seconds=clock.seconds())


def prefetch_depth(plan: WindowPlan) -> int:
    """Frames the reader may read ahead: one window's new frames (its stride), at most
    :data:`MAX_PREFETCH`, so that the next window is decoded while the model runs this one."""
    return max(2, min(MAX_PREFETCH, plan.window - plan.overlap))


class VideoPredictor:
    """Segment videos frame by frame with an LGRNet, whole-clip when it fits, else in windows.

    model: an :class:`~lgrnet.models.lgrnet.LGRNet` (put in eval mode; its device is used);
    size: model input size, int or (h, w), multiples of 32 (default: the published 352;
        :meth:`from_pretrained` defaults to the size the weights record);
    window / overlap: frames per forward pass and frames shared by consecutive windows; None:
        window from ``memory_budget``, overlap from :func:`~lgrnet.inference.windows.default_overlap`;
    memory_budget: bytes (or '6G'); None: :func:`~lgrnet.inference.memory.default_memory_budget`;
    precision: "auto" (bf16 on CUDA and on CPUs with native bfloat16, else fp32), "fp32" or "bf16"
        (:mod:`lgrnet.precision`; bf16 on a CPU without native bfloat16 is a
        :class:`~lgrnet.precision.PrecisionError`); None: bf16 (autocast) on CUDA, fp32 on a CPU;
    all_queries: also return every query's maps and scores;
    cuda_graphs: on CUDA, run windowed videos by replaying a CUDA graph of the window's forward
        (:mod:`lgrnet.inference.cuda_graphs`; a whole-clip video runs eagerly: one forward gains
        nothing). A graph whose first replay differs from the eager forward is dropped with a
        warning and the video runs eagerly;
    compile: run windowed videos through ``torch.compile(model, dynamic=False)`` (compiled once
        per window shape on first use, which takes minutes: 2-5 on a 2-core CPU; whole-clip videos run
        eagerly: each video length would compile again). Combines with ``cuda_graphs``;
    pipeline: decode and resize frames in a reader thread ahead of the model where that helps
        (:func:`~lgrnet.inference.pipeline.reader_thread_helps`: not on a CPU whose every core runs
        the model's threads), and write in a pool behind it (:mod:`lgrnet.inference.pipeline`;
        False: everything in turn, in the caller's thread).
    tta: test-time augmentation, the clip run under the four flips of its (h, w) axes with the
        logits flipped back and averaged (:meth:`~lgrnet.inference.clip_runner.ClipRunner._run_tta`;
        4x the forward time, the same memory per forward).
    The forward passes are :attr:`runner`'s (:class:`~lgrnet.inference.clip_runner.ClipRunner`),
    which holds the run options (``runner.precision``, ``all_queries``, ``cuda_graphs``,
    ``compile``, ``tta``); the predictor's own attributes are ``model``, ``size``, ``window``,
    ``overlap``, ``memory_budget``, ``pipeline``, ``runner``, and from :meth:`from_pretrained`
    ``weights``, ``preset`` and ``confidence_threshold``.
    See the module documentation for the windowing rule. On a CPU it calls
    :func:`lgrnet.runtime.tune_cpu_allocator` (process-wide; ``LGRNET_MALLOC_TUNING=0`` skips it).
    """

    def __init__(self, model: LGRNet, size: Union[int, Tuple[int, int]] = DEFAULT_INPUT_SIZE,
                 window: Optional[int] = None, overlap: Optional[int] = None,
                 memory_budget: Union[None, int, str] = None, precision: Optional[str] = None,
                 all_queries: bool = False, cuda_graphs: bool = False, compile: bool = False, pipeline: bool = True,
                 tta: bool = False):
        self.size: Tuple[int, int] = check_input_size(size)
        self.pipeline = pipeline
        check_window(window, overlap)
        self.model = model.eval()
        self.window = window
        self.overlap = overlap
        self.memory_budget = parse_bytes(memory_budget) if memory_budget is not None else None
        self.runner = ClipRunner(self.model, precision=precision, all_queries=all_queries, cuda_graphs=cuda_graphs,
                                 compile=compile, tta=tta)
        self.weights: Optional[str] = None
        # the score below which the review page lists a frame (recorded by the weights; None: the page's 0.5)
        self.confidence_threshold: Optional[float] = None
        self.preset: Optional[str] = getattr(model.config, "preset", None) or None
        if self.device.type == "cpu":
            tune_cpu_allocator()  # process-wide, glibc only: see lgrnet.runtime

    @classmethod
    def from_pretrained(cls, weights: Union[str, os.PathLike], preset: Optional[str] = None, device: str = "auto",
                        size: Union[None, int, Tuple[int, int]] = None, revision: Optional[str] = None,
                        **settings) -> "VideoPredictor":
        """Load ``weights`` (our .safetensors, a model folder, a hub id ``org/name`` at ``revision``,
        or an authors' .pth with ``preset``) onto ``device`` ("auto": CUDA when available, else CPU)
        and wrap them. ``size``: the model input size; None: the size the weights record
        (:mod:`lgrnet.models.weight_metadata`; the shipped demo model records its own), else 352.
        ``confidence_threshold`` is the weights' recorded one. ``settings``: the other arguments of
        :class:`VideoPredictor`. The one way the commands load a model."""
        if size is not None:
            size = inference_size(None, size)  # option errors before the (slow) load
        check_window(settings.get("window"), settings.get("overlap"))
        if settings.get("memory_budget") is not None:
            parse_bytes(settings["memory_budget"])
        if settings.get("precision") is not None:  # a bf16 request the CPU cannot serve, before the load
            resolve_precision(settings["precision"], resolve_device(device))
        local = resolve_weights(weights, revision)  # a hub id: its folder in the hub cache
        size = size or inference_size(local, None)
        predictor = cls(load_model(local, preset=preset, device=device), size=size, **settings)
        given = os.fspath(weights)
        predictor.weights = os.path.abspath(given) if os.path.exists(given) else given
        predictor.preset = preset or predictor.preset
        predictor.confidence_threshold = recorded_metadata(local).confidence_threshold
        return predictor

    @property
    def device(self) -> torch.device:
        return self.model.device

    def plan(self, frame_size: Tuple[int, int]) -> WindowPlan:
        """The window and overlap for frames of ``frame_size`` (H, W)."""
        return plan_window(self.model, self.size, frame_size, window=self.window, overlap=self.overlap,
                           budget=self.memory_budget, all_queries=self.runner.all_queries or self.runner.tta)

    def settings(self) -> Dict[str, object]:
        """The run's settings, as recorded in predictions.json."""
        from ..version import __version__

        return {"weights": self.weights, "preset": self.preset, "size": list(self.size), "window": self.window,
                "overlap": self.overlap, "memory_budget": self.memory_budget, "device": str(self.device),
                "dtype": self.runner.dtype, "precision": self.runner.precision.as_dict(), "all_queries": self.runner.all_queries,
                "cuda_graphs": self.runner.cuda_graphs, "compile": self.runner.compile, "pipeline": self.pipeline,
                **({"compile_seconds": dict(self.runner.compile_seconds), "compile_cache": self.runner.compile_cache}
                   if self.runner.compile_seconds else {}),
                "tta": "flips" if self.runner.tta else "off",
                "confidence_threshold": self.confidence_threshold, "lgrnet_version": __version__, "torch_version": torch.__version__}

    def stream(self, frames, progress: Optional[ProgressFn] = None) -> PredictionStream:
        """Results frame by frame, in order, as soon as they are final.

        frames: a path (video file, frame folder, DICOM file), a :class:`~lgrnet.io.FrameSource`,
        a uint8 array (T, H, W, 3), or any iterable of uint8 (H, W, 3) frames (grey (H, W) frames
        are repeated to RGB). progress: called as ``progress(frames_done, total_or_None)``.
        """
        return PredictionStream(self, frames, progress)

    def predict(self, frames, progress: Optional[ProgressFn] = None) -> VideoPrediction:
        """All frames' results stacked in memory (for long videos use :meth:`stream` or
        :func:`predict_to_folder`, which keep memory bounded)."""
        s = self.stream(frames, progress)
        results = list(s)
        return VideoPrediction(
            probs=np.stack([r.prob for r in results]), masks=np.stack([r.mask for r in results]),
            class_score=np.array([r.class_score for r in results], dtype=np.float32),
            mask_score=np.array([r.mask_score for r in results], dtype=np.float32),
            clip_mask_score=np.array([r.clip_mask_score for r in results], dtype=np.float32),
            score=np.array([r.score for r in results], dtype=np.float32),
            query=np.array([r.query for r in results], dtype=np.int64),
            names=[r.name for r in results], info=dict(s.info))
