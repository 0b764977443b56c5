"""Segment videos of any length in bounded memory: :class:`VideoPredictor` and :func:`predict_to_folder`.

>>> predictor = VideoPredictor.from_pretrained("sunseg_pvt.safetensors")       # or VideoPredictor(model)
>>> for fp in predictor.stream("exam.mp4"):          # one FramePrediction per frame, in order
...     fp.index, fp.score, fp.mask.shape             # mask (H, W) bool at the frame's size
>>> result = predictor.predict("exam.mp4")           # everything stacked in memory (short videos)
>>> predict_to_folder(predictor, "exam.mp4", "out/")  # out/exam/{masks,probs}/, overlay.mp4, predictions.json/csv

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
buffer is full the whole video is one clip (identical to :func:`~lgrnet.engine.inference.segment_clip`).
``window`` is ``--window`` when given, else the largest clip the memory budget allows
(:func:`estimate_bytes_per_frame`; the budget defaults to half the available RAM capped at 8 GiB,
or 80 % of the free GPU memory).

Longer videos run as overlapping windows of ``window`` frames, stride ``window - overlap``; the
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
import re
import sys
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Dict, Iterable, Iterator, List, Optional, Sequence, Tuple, Union

import numpy as np
import torch

from ..errors import InputError, UserError
from ..models.lgrnet import LGRNet
from ..runtime import tune_cpu_allocator
from .inference import choose_query, forward_clip, frames_to_tensor, maps_at_size

if TYPE_CHECKING:
    from .cuda_graphs import GraphedClipForward

ProgressFn = Callable[[int, Optional[int]], None]
MIN_AUTO_WINDOW = 4
MAX_GRAPHS = 2  # CUDA graphs kept per predictor (each holds about one forward's peak memory)
MAX_DEFAULT_BUDGET = 8 << 30
_MODEL_MARGIN = 1.25


# ---------------------------------------------------------------------------------------- results


@dataclass
class FramePrediction:
    """The result for one frame, at the frame's original size.

    frame: uint8 RGB (H, W, 3), the input frame; prob: (H, W) float32 foreground probability of
    the chosen query; mask: (H, W) bool (logit > 0); class_score: the chosen query's foreground
    class probability (one per clip/window); mask_score: mean prob inside the mask (0 if empty);
    score: class_score * mask_score; query: the chosen query's index; window: which window it
    came from (0 when the whole video is one clip); query_probs (Nq, H, W) float32,
    query_class_scores (Nq,), query_mask_scores (Nq,), query_areas (Nq,): every query, only when
    the predictor has ``all_queries=True``.
    """

    index: int
    name: str
    frame: np.ndarray
    prob: np.ndarray
    mask: np.ndarray
    class_score: float
    mask_score: float
    score: float
    query: int
    window: int = 0
    query_probs: Optional[np.ndarray] = None
    query_class_scores: Optional[np.ndarray] = None
    query_mask_scores: Optional[np.ndarray] = None
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

    probs (T, H, W) float32, masks (T, H, W) bool, class_score / mask_score / score (T,) float32,
    query (T,) int64, names: T frame names; info: how the video was run (mode, window, ...).
    """

    probs: np.ndarray
    masks: np.ndarray
    class_score: np.ndarray
    mask_score: np.ndarray
    score: np.ndarray
    query: np.ndarray
    names: List[str]
    info: Dict[str, object] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.names)


@dataclass
class WindowPlan:
    """How a video is split. window: frames per forward pass (the whole video when it has at most
    that many frames); overlap: frames shared by consecutive windows; auto: window derived from
    the memory budget; bytes_per_frame: the estimate used; budget: the memory budget in bytes."""

    window: int
    overlap: int
    auto: bool
    bytes_per_frame: int
    budget: int


# ---------------------------------------------------------------------------------------- memory


def parse_bytes(text: Union[str, int, float]) -> int:
    """'8G', '8GiB', '8GB', '512M', '1.5g' or a number of bytes -> bytes (units are binary: G = 2**30)."""
    if isinstance(text, (int, float)):
        return int(text)
    m = re.fullmatch(r"\s*([0-9]*\.?[0-9]+)\s*([kKmMgGtT]?)(i?[bB])?\s*", str(text))
    if not m:
        raise UserError(f"memory size {text!r}: expected a number with an optional unit, e.g. 6G or 512M")
    power = {"": 0, "k": 1, "m": 2, "g": 3, "t": 4}[m.group(2).lower()]
    return int(float(m.group(1)) * (1024 ** power))


def _available_ram() -> Optional[int]:
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return None


def default_memory_budget(device: torch.device) -> int:
    """80 % of the free GPU memory on CUDA; half the available RAM, at most 8 GiB, on the CPU."""
    if device.type == "cuda":
        free, _ = torch.cuda.mem_get_info(device)
        return int(free * 0.8)
    avail = _available_ram()
    return int(min(MAX_DEFAULT_BUDGET, avail // 2)) if avail else 4 << 30


def estimate_bytes_per_frame(model: LGRNet, size: Tuple[int, int], frame_size: Tuple[int, int],
                             all_queries: bool = False) -> int:
    """Memory one more frame of a clip costs, in bytes, for inference at model input ``size``
    (h, w) with original frames of ``frame_size`` (H, W).

    The forward pass costs a fixed number of bytes per input pixel and frame (backbone features
    kept for all frames, encoder tokens with their neighbourhood and deformable samples, the FPN
    map, the decoder heads' (Nq, h, w) logits). The formula ``4 * (2 * (layers + 1) * Nq + 24)``
    bytes per pixel is an empirical fit to peak-RSS slopes measured with torch 2.14 on the CPU
    (eval mode, only the last head kept): sunseg_pvt 391 B/px at 352x352 (formula 416), tiny
    228 B/px at 352x352 and 253 at 128x128 (formula 256); 25 % is added as a margin. The
    predictor's own buffers add the original frame (3 B/px of the frame), the model input
    (12 B/px) and the kept logits (4 B/px, x Nq with ``all_queries``). Not counted: the weights
    and a fixed working set (one backbone call, ~0.1 GB for PVTv2-B2 at 352x352).
    """
    h, w = size
    H, W = frame_size
    cfg = model.config.decoder
    heads = cfg.num_layers + 1
    forward_px = 4 * (2 * heads * cfg.num_queries + 24)
    kept_px = 4 * (cfg.num_queries if all_queries else 1) + 12
    return int(_MODEL_MARGIN * forward_px * h * w) + kept_px * h * w + 3 * H * W


def check_window(window: Optional[int], overlap: Optional[int]) -> None:
    """Raise :class:`~lgrnet.errors.UserError` for a window under 2 frames or an overlap that is
    negative or not less than the window."""
    if window is not None and window < 2:
        raise UserError(f"window {window}: must be at least 2 frames")
    if overlap is not None and (overlap < 0 or (window is not None and overlap >= window)):
        raise UserError(f"overlap {overlap}: must be at least 0 and less than the window ({window})")


def default_overlap(window: int, encoder_layers: int) -> int:
    """``max(2 * encoder_layers, window // 8)``, at most ``(window - 1) // 2`` (see the module doc)."""
    return max(0, min(max(2 * encoder_layers, window // 8), (window - 1) // 2))


# ---------------------------------------------------------------------------------------- inputs


def _as_frames(frames) -> Tuple[Iterable[np.ndarray], Callable[[int], str], Optional[int], Optional[object]]:
    """Normalise what :meth:`VideoPredictor.stream` accepts -> (frames, name_of, total, source)."""
    from ..io.video import FrameSource, open_source

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


def _check_frame(frame, index: int, name: str, first_size: Optional[Tuple[int, int]], where: str) -> np.ndarray:
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


# ---------------------------------------------------------------------------------------- predictor


class PredictionStream:
    """An iterator of :class:`FramePrediction` for one video, with what it did in ``info``
    (filled in as it runs: ``mode`` "whole-clip" or "windowed", ``window``, ``overlap``,
    ``num_windows``, ``num_frames``, ``cuda_graph_windows`` (windows run by a CUDA graph),
    ``seconds``, ``frames_per_second``)."""

    def __init__(self, predictor: "VideoPredictor", frames, progress: Optional[ProgressFn] = None):
        self.predictor = predictor
        self._frames, self._name_of, self.total, self.source = _as_frames(frames)
        self._progress = progress
        self.plan: Optional[WindowPlan] = None
        self.info: Dict[str, object] = {}
        self._it = self._run()

    def __iter__(self) -> "PredictionStream":
        return self

    def __next__(self) -> FramePrediction:
        return next(self._it)

    def close(self) -> None:
        self._it.close()

    def _run(self) -> Iterator[FramePrediction]:
        p = self.predictor
        where = str(getattr(self.source, "path", "frames"))
        reader = iter(self._frames)
        t0 = time.perf_counter()
        index = 0
        first_size: Optional[Tuple[int, int]] = None

        def read_one():
            nonlocal index, first_size
            try:
                f = next(reader)
            except StopIteration:
                return None
            f = _check_frame(f, index, self._name_of(index), first_size, where)
            if first_size is None:
                first_size = f.shape[:2]
            x = frames_to_tensor(f[None], p.size)[0, 0]  # (3, h, w), resized like a whole clip
            entry = (index, f, x)
            index += 1
            return entry

        if self._progress is not None:
            self._progress(0, self.total)
        pending = read_one()
        if pending is None:
            raise InputError(f"{where}: no frames")
        plan = p.plan(first_size)
        self.plan = plan
        N, K = plan.window, plan.overlap
        stride = N - K
        buf: collections.deque = collections.deque(maxlen=N)
        start, emit_from, w, done, graphed_windows = 0, 0, 0, 0, 0
        self.info.update(window=N, overlap=K, memory_budget=plan.budget, bytes_per_frame=plan.bytes_per_frame,
                         auto_window=plan.auto)
        while True:
            end = start + N
            while pending is not None and pending[0] < end:
                buf.append(pending)
                pending = read_one()
            last = pending is None
            if last:
                T = buf[-1][0] + 1
                start, end = max(0, T - N), T
            entries = [e for e in buf if start <= e[0] < end]
            q, class_score, logits, all_logits, all_class, graphed = p._forward([e[2] for e in entries],
                                                                                repeated=not (last and w == 0))
            graphed_windows += int(graphed)
            emit_to = end if last else (start + stride + end) // 2
            for j, (i, frame, _) in enumerate(entries):
                if i < emit_from or i >= emit_to:
                    continue
                yield p._frame_result(i, self._name_of(i), frame, logits[j:j + 1], q, class_score, w,
                                      None if all_logits is None else all_logits[j], all_class)
                done += 1
                if self._progress is not None:
                    self._progress(done, self.total)
            emit_from = emit_to
            del entries, logits, all_logits
            if last:
                break
            start += stride
            w += 1
        seconds = time.perf_counter() - t0
        self.info.update(mode="whole-clip" if w == 0 else "windowed", num_windows=w + 1, num_frames=done,
                         window=min(N, done), overlap=K if w else 0, cuda_graph_windows=graphed_windows,
                         seconds=round(seconds, 3),
                         frames_per_second=round(done / seconds, 3) if seconds > 0 else None)


class VideoPredictor:
    """Segment videos frame by frame with an LGRNet, whole-clip when it fits, else in windows.

    model: an :class:`~lgrnet.models.lgrnet.LGRNet` (put in eval mode; its device is used);
    size: model input size, int or (h, w), multiples of 32 (published: 352);
    window / overlap: frames per forward pass and frames shared by consecutive windows; None:
        window from ``memory_budget``, overlap from :func:`default_overlap`;
    memory_budget: bytes (or '6G'); None: :func:`default_memory_budget`;
    autocast: bf16 autocast on CUDA; all_queries: also return every query's maps and scores;
    cuda_graphs: on CUDA, run windowed videos by replaying a CUDA graph of the window's forward
        (:mod:`lgrnet.engine.cuda_graphs`; a whole-clip video runs eagerly: one forward gains
        nothing). A graph whose first replay differs from the eager forward is dropped with a
        warning and the video runs eagerly;
    compile: run windowed videos through ``torch.compile(model, dynamic=False)`` (compiled once
        per window shape on first use, which takes minutes: 2-5 on a 2-core CPU; whole-clip videos run
        eagerly: each video length would compile again). Combines with ``cuda_graphs``.
    See the module documentation for the windowing rule. On a CPU it calls
    :func:`lgrnet.runtime.tune_cpu_allocator` (process-wide; ``LGRNET_MALLOC_TUNING=0`` skips it).
    """

    def __init__(self, model: LGRNet, size: Union[int, Tuple[int, int]] = 352, window: Optional[int] = None,
                 overlap: Optional[int] = None, memory_budget: Union[None, int, str] = None, autocast: bool = True,
                 all_queries: bool = False, cuda_graphs: bool = False, compile: bool = False):
        size = (size, size) if isinstance(size, int) else tuple(int(s) for s in size)
        if len(size) != 2 or size[0] <= 0 or size[1] <= 0 or size[0] % 32 or size[1] % 32:
            raise UserError(f"model input size {size}: must be positive multiples of 32 (e.g. 352)")
        check_window(window, overlap)
        self.model = model.eval()
        self.size: Tuple[int, int] = size
        self.window = window
        self.overlap = overlap
        self.memory_budget = parse_bytes(memory_budget) if memory_budget is not None else None
        self.autocast = autocast
        self.all_queries = all_queries
        if cuda_graphs and self.device.type != "cuda":
            raise UserError(f"CUDA graphs need the model on a CUDA device; it is on {self.device}")
        self.cuda_graphs = cuda_graphs
        self.compile = compile
        self._compiled: Optional[Callable] = None
        self._graphs: "collections.OrderedDict[Tuple[int, ...], GraphedClipForward]" = collections.OrderedDict()
        self._graph_errors: Dict[Tuple[int, ...], str] = {}
        self.weights: Optional[str] = None
        self.preset: Optional[str] = getattr(model.config, "preset", None) or None
        if self.device.type == "cpu":
            tune_cpu_allocator()  # process-wide, glibc only: see lgrnet.runtime

    @classmethod
    def from_pretrained(cls, weights: Union[str, os.PathLike], preset: Optional[str] = None, device: str = "auto",
                        **kwargs) -> "VideoPredictor":
        """Load ``weights`` (our .safetensors, or an authors' .pth with ``preset``) onto ``device``
        ("auto": CUDA when available, else CPU) and wrap them."""
        dev = resolve_device(device)
        path = os.fspath(weights)
        try:
            model = LGRNet.from_pretrained(path, preset=preset, map_location="cpu")
        except (FileNotFoundError, ValueError, KeyError) as exc:
            raise UserError(str(exc)) from None
        predictor = cls(model.to(dev), **kwargs)
        predictor.weights = os.path.abspath(path)
        predictor.preset = preset or predictor.preset
        return predictor

    @property
    def device(self) -> torch.device:
        return self.model.device

    def plan(self, frame_size: Tuple[int, int]) -> WindowPlan:
        """The window and overlap for frames of ``frame_size`` (H, W)."""
        bpf = estimate_bytes_per_frame(self.model, self.size, frame_size, self.all_queries)
        budget = self.memory_budget if self.memory_budget is not None else default_memory_budget(self.device)
        if self.window is not None:
            window, auto = self.window, False
        else:
            window, auto = int(budget // bpf), True
            if window < MIN_AUTO_WINDOW:
                raise UserError(f"memory budget {budget / 2**20:.0f} MiB fits only {window} frames of {frame_size[1]}x"
                                f"{frame_size[0]} at model size {self.size[1]}x{self.size[0]} (~{bpf / 2**20:.0f} MiB a "
                                f"frame); raise the budget, lower the size, or set a window")
        overlap = self.overlap if self.overlap is not None else default_overlap(window, self.model.config.encoder.num_layers)
        if overlap >= window:
            raise UserError(f"overlap {overlap}: must be less than the window ({window})")
        return WindowPlan(window=window, overlap=overlap, auto=auto, bytes_per_frame=bpf, budget=budget)

    def settings(self) -> Dict[str, object]:
        """The run's settings, as recorded in predictions.json."""
        from .. import __version__

        dtype = "bfloat16 (autocast)" if self.autocast and self.device.type == "cuda" else "float32"
        return {"weights": self.weights, "preset": self.preset, "size": list(self.size), "window": self.window,
                "overlap": self.overlap, "memory_budget": self.memory_budget, "device": str(self.device),
                "dtype": dtype, "all_queries": self.all_queries, "cuda_graphs": self.cuda_graphs,
                "compile": self.compile, "lgrnet_version": __version__, "torch_version": torch.__version__}

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
            score=np.array([r.score for r in results], dtype=np.float32),
            query=np.array([r.query for r in results], dtype=np.int64),
            names=[r.name for r in results], info=dict(s.info))

    # ---------------------------------------------------------------- internals

    @torch.inference_mode()
    def _forward(self, xs: Sequence[torch.Tensor], repeated: bool = False):
        """One clip of model inputs (each (3, h, w)) -> (query, class score, chosen logits (T, h, w),
        all logits (T, Nq, h, w) or None, all class scores (Nq,) or None, graphed), on the CPU.
        repeated: more clips of this shape follow (a CUDA graph pays off); graphed: a CUDA graph ran it."""
        x = torch.stack(list(xs))[None]
        graph = self._graph_for(x) if repeated and self.cuda_graphs else None
        if graph is not None:
            out = graph(x)
        else:
            out = forward_clip(self.model, x, autocast=self.autocast,
                               module=self._compiled_model() if repeated and self.compile else None)
        q = choose_query(out)
        class_probs = out.class_probs[0, :, 0].float().cpu()
        logits = out.mask_logits[0, :, q].float().cpu()
        all_logits = out.mask_logits[0].float().cpu() if self.all_queries else None
        del out
        return (q, float(class_probs[q]), logits, all_logits, (class_probs.numpy() if self.all_queries else None),
                graph is not None)

    def _compiled_model(self) -> Callable:
        """``torch.compile(model, dynamic=False)``, made on first use (compiled per clip shape)."""
        if self._compiled is None:
            self._compiled = _quiet_compiled(torch.compile(self.model, dynamic=False))
        return self._compiled

    def _graph_for(self, x: torch.Tensor) -> Optional["GraphedClipForward"]:
        """The CUDA graph for clips of x's shape (captured on first use, at most MAX_GRAPHS kept);
        None if capturing it failed (warned once per shape)."""
        from .cuda_graphs import GraphedClipForward, GraphMismatch

        key = tuple(x.shape)
        if key in self._graph_errors:
            return None
        graph = self._graphs.get(key)
        if graph is not None:
            self._graphs.move_to_end(key)
            return graph
        while len(self._graphs) >= MAX_GRAPHS:
            self._graphs.popitem(last=False)
        try:
            module = self._compiled_model() if self.compile else self.model
            graph = GraphedClipForward(module, x.to(self.device), autocast=self.autocast)
        except (GraphMismatch, RuntimeError) as exc:  # RuntimeError: capture failed, out of memory
            self._graph_errors[key] = f"{type(exc).__name__}: {exc}"
            torch.cuda.empty_cache()
            warnings.warn(f"lgrnet: no CUDA graph for clips of {key[1]} frames at {key[-1]}x{key[-2]} "
                          f"({self._graph_errors[key]}); running them eagerly")
            return None
        self._graphs[key] = graph
        return graph

    @torch.inference_mode()
    def _frame_result(self, index: int, name: str, frame: np.ndarray, logits: torch.Tensor, q: int,
                      class_score: float, window: int, all_logits: Optional[torch.Tensor],
                      all_class: Optional[np.ndarray]) -> FramePrediction:
        size = frame.shape[:2]
        probs, masks, mask_score = maps_at_size(logits, size)
        ms = float(mask_score[0])
        fp = FramePrediction(index=index, name=name, frame=frame, prob=probs[0].numpy().astype(np.float32, copy=False),
                             mask=masks[0].numpy(), class_score=class_score, mask_score=ms,
                             score=float(np.float32(class_score) * np.float32(ms)), query=q, window=window)
        if all_logits is not None:
            qp, qm, qs = maps_at_size(all_logits, size)  # (Nq, H, W)
            fp.query_probs = qp.numpy().astype(np.float32, copy=False)
            fp.query_class_scores = all_class
            fp.query_mask_scores = qs.numpy().astype(np.float32)
            fp.query_areas = qm.flatten(1).sum(1).numpy().astype(np.int64)
        return fp


def _quiet_compiled(compiled: Callable) -> Callable:
    """``compiled`` without Dynamo's warning about ``functools.lru_cache``-wrapped functions: ours
    (scan orders, window indices) are pure functions of Python ints, traced to constants."""

    def call(x):
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message="Dynamo detected a call to a `functools.lru_cache`")
            return compiled(x)

    return call


def resolve_device(device: Union[str, torch.device, None]) -> torch.device:
    """"auto" -> CUDA when available, else CPU; checks that a requested CUDA device exists."""
    name = str(device or "auto")
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        dev = torch.device(name)
    except RuntimeError:
        raise UserError(f"--device {name}: not a device (auto, cpu, cuda, cuda:N)") from None
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise UserError(f"--device {name}: CUDA is not available on this machine (use --device cpu)")
    return dev


# ---------------------------------------------------------------------------------------- folders


def result_name(input_path: Union[str, os.PathLike]) -> str:
    """The result folder's name for an input: a file's stem, a folder's name."""
    p = Path(os.fspath(input_path))
    if p.is_dir():
        return p.resolve().name or "frames"
    return p.stem or p.name


def predict_to_folder(predictor: VideoPredictor, input_path: Union[str, os.PathLike], out_dir: Union[str, os.PathLike],
                      progress: Optional[ProgressFn] = None, *, name: Optional[str] = None, overwrite: bool = False,
                      overlay: bool = True, fps: Optional[float] = None, dicom_seg: Optional[bool] = None,
                      dicom_seg_fractional: bool = False) -> Path:
    """Segment one input and write ``out_dir/<name>/`` (name: the input's stem); returns that folder.

    The folder holds ``masks/<index:06d>.png``, ``probs/<index:06d>.png``, ``overlay.mp4``,
    ``predictions.json`` and ``predictions.csv`` (see docs/inference.md). It is written under a
    hidden temporary name in ``out_dir`` and renamed when complete; on any error the temporary
    folder is removed. An existing result folder is an error unless ``overwrite``.
    progress: called as ``progress(frames_done, total_or_None)``.
    dicom_seg: for a DICOM input also write ``segmentation.dcm`` (:mod:`lgrnet.io.dicom_seg`); None:
    when the source allows it (else a one-line note on stderr), True: required, False: never.
    """
    from ..io.results import ResultFolderWriter
    from ..io.video import open_source

    out_dir = Path(os.fspath(out_dir))
    if out_dir.exists() and not out_dir.is_dir():
        raise UserError(f"{out_dir}: is a file, not a folder for the results")
    name = name or result_name(input_path)
    source = open_source(input_path, fps=fps)  # input errors first, before anything is created
    write_seg = _want_dicom_seg(source, dicom_seg)
    writer = ResultFolderWriter(out_dir, name, overwrite=overwrite, overlay=overlay, all_queries=predictor.all_queries)
    writer.check()  # refuse an existing result before any work
    stream = predictor.stream(source, progress)
    with writer:
        writer.start(source)
        for fp in stream:
            writer.write(fp)
        settings = predictor.settings()
        settings["requested_window"] = settings.pop("window")
        settings["requested_overlap"] = settings.pop("overlap")
        settings.update({k: stream.info.get(k) for k in ("mode", "window", "overlap", "num_windows", "auto_window",
                                                          "memory_budget", "bytes_per_frame", "cuda_graph_windows",
                                                          "seconds", "frames_per_second")})
        if write_seg:
            from ..io.dicom_seg import write_dicom_seg_for_results

            write_dicom_seg_for_results(source.path, writer.tmp, fractional=dicom_seg_fractional)
            settings["dicom_seg"] = "FRACTIONAL" if dicom_seg_fractional else "BINARY"
        return writer.finish(settings)


def _want_dicom_seg(source, dicom_seg: Optional[bool]) -> bool:
    """Whether to write segmentation.dcm for ``source`` (see :func:`predict_to_folder`)."""
    if source.kind != "dicom" or dicom_seg is False:
        return False
    from ..io.dicom_seg import why_no_dicom_seg

    reason = why_no_dicom_seg(source.path)
    if reason is None:
        return True
    if dicom_seg:
        raise UserError(reason)
    print(f"lgrnet: note: {reason}; no segmentation.dcm (--no-dicom-seg skips this check)", file=sys.stderr)
    return False
