"""Causal (streaming) segmentation: each frame's mask from that frame and the frames before it.

>>> predictor = CausalPredictor.from_pretrained("demo", window=4, stride=1)
>>> session = predictor.session()
>>> for frame in camera:                      # uint8 RGB (H, W, 3), one at a time
...     for fp in session.push(frame):        # FramePrediction, as VideoPredictor yields them
...         show(fp.mask, fp.score)
>>> rest = session.flush()                    # at the end: the frames a stride had not emitted yet
>>> for fp in predictor.stream("exam.mp4"):   # the same over a whole input (lgrnet evaluate --causal)
...     ...

How it works
------------
LGRNet's backbone is per frame; its encoder and decoder are per clip (GroupNorm over the clip's
frames, the cyclic t-1 link, the Hilbert scan of all frames' queries, the clip's queries). The
causal predictor keeps a window of the last ``window`` (K) frames that it has processed: each new
frame goes through the backbone once (:meth:`~lgrnet.models.lgrnet.LGRNet.frame_features`) and its
features are kept in a ring buffer of K frames; every ``stride`` (S) frames the encoder and
decoder run over the buffered K frames (:meth:`~lgrnet.models.lgrnet.LGRNet.forward_features`) and
the window's newest S frames are reported, with the published post-processing
(:func:`~lgrnet.inference.predictor.frame_prediction`: chosen query, mask, probability map, score).
So a frame costs one backbone pass plus 1/S of an encoder/decoder pass over K frames, and its
result waits for at most S - 1 later frames. At the start of a stream the window is shorter (frame
t < K sees frames 0..t). No frame's result ever depends on a later frame: the buffer holds only
frames pushed before the window ran.

The output for a window equals running the model from scratch on the same K frames as one clip
(``tests/helpers/reference.segment_clip``), up to float rounding (tests/test_live_stream.py);
with dropped frames (:mod:`lgrnet.inference.realtime`) the window is the last K frames processed.
Memory: K frames' features and K original frames, whatever the stream's length.

Not offered in causal mode: test-time augmentation, torch.compile and CUDA graphs (the window's
shape changes during the start-up; a :class:`~lgrnet.errors.UserError` if asked for).
"""
from __future__ import annotations

import collections
import time
from dataclasses import dataclass
from typing import Deque, Dict, Iterator, List, Optional, Tuple, Union

import numpy as np
import torch

from ..errors import InputError, UserError
from ..models.lgrnet import LGRNet
from ..models.input_size import DEFAULT_INPUT_SIZE
from .clip import frames_to_tensor
from .clip_runner import ClipOutput
from .pipeline import StageClock
from .postprocess import choose_query
from .predictor import ClipScores, FramePrediction, ProgressFn, VideoPredictor, _as_frames, _check_frame, frame_prediction

__all__ = ["DEFAULT_STRIDE", "DEFAULT_WINDOW", "CausalPredictor", "CausalSession", "CausalStream", "check_causal"]

#: the default window (frames of context, the newest included) and stride: the setting that keeps
#: up with a 25 fps source on 2 cores with the shipped model at bounded latency and stays within
#: 0.02 Dice of offline (docs/live.md, "Choosing K and S")
DEFAULT_WINDOW = 2
DEFAULT_STRIDE = 2


def check_causal(window: int, stride: int) -> None:
    """A :class:`~lgrnet.errors.UserError` unless 1 <= stride <= window."""
    if not isinstance(window, int) or window < 1:
        raise UserError(f"--window {window}: must be a positive number of frames")
    if not isinstance(stride, int) or not 1 <= stride <= window:
        raise UserError(f"--stride {stride}: must be between 1 and the window ({window})")


@dataclass
class _Cached:
    """A frame in the ring buffer: its index and name, the original frame, its backbone features
    {level: (1, C, h, w)} on the model's device."""

    index: int
    name: str
    frame: np.ndarray
    feats: Dict[str, torch.Tensor]


class CausalSession:
    """One stream's state: push frames in order, get each processed frame's
    :class:`~lgrnet.inference.predictor.FramePrediction` back (see the module documentation).

    ``push`` returns the predictions a frame completes: none while a stride is filling, else the
    window's newest ``stride`` frames (in order). ``flush`` reports the frames pushed since the
    last window (call it when the stream ends). ``windows`` counts the encoder/decoder passes."""

    def __init__(self, predictor: "CausalPredictor", where: str = "frames"):
        self.predictor = predictor
        self.where = where
        self.ring: Deque[_Cached] = collections.deque(maxlen=predictor.window)
        self.pending = 0  # frames in the ring not yet reported
        self.pushed = 0
        self.windows = 0
        self.clock = StageClock()
        self._first_size: Optional[Tuple[int, int]] = None

    def push(self, frame, index: Optional[int] = None, name: Optional[str] = None) -> List[FramePrediction]:
        """frame: uint8 RGB (H, W, 3) (grey (H, W) is repeated to RGB), every frame of one size;
        index: the frame's number in its source (default: frames pushed so far); name: its name
        (default: the index as text)."""
        index = self.pushed if index is None else int(index)
        name = str(index) if name is None else name
        frame = _check_frame(frame, name, self._first_size, self.where)
        self._first_size = frame.shape[:2]
        p = self.predictor
        with self.clock("backbone"), torch.inference_mode(), p.autocast_context():
            x = frames_to_tensor(frame[None], p.size)[0].to(p.device)  # (1, 3, h, w)
            feats = p.run_model.frame_features(x)
        self.ring.append(_Cached(index, name, frame, feats))
        self.pushed += 1
        self.pending += 1
        return self._emit() if self.pending >= p.stride else []

    def flush(self) -> List[FramePrediction]:
        """The frames pushed since the last window, through one more window (none: [])."""
        return self._emit() if self.pending else []

    @torch.inference_mode()
    def _emit(self) -> List[FramePrediction]:
        entries = list(self.ring)
        p = self.predictor
        with self.clock("encoder_decoder"):
            out = p.run_window([e.feats for e in entries])
        with self.clock("postprocess"):
            scores = ClipScores.of(out)
            first = len(entries) - self.pending
            results = [frame_prediction(e, e.name, out, j, self.windows, scores)
                       for j, e in enumerate(entries) if j >= first]
        self.pending = 0
        self.windows += 1
        return results


class CausalStream:
    """An iterator of :class:`~lgrnet.inference.predictor.FramePrediction` over a whole input, every
    frame pushed through a :class:`CausalSession` (no frame dropped), with ``info`` as
    :class:`~lgrnet.inference.predictor.PredictionStream`'s (``mode`` "causal", ``window``,
    ``stride``, ``overlap`` = window - stride, ``num_windows``, ``num_frames``, ``seconds``,
    ``frames_per_second``, ``stage_seconds``)."""

    def __init__(self, predictor: "CausalPredictor", frames, progress: Optional[ProgressFn] = None):
        self.predictor = predictor
        self._frames, self._name_of, self.total, self.source = _as_frames(frames)
        self._progress = progress
        self.session = CausalSession(predictor, str(getattr(self.source, "path", "frames")))
        self.clock = self.session.clock
        self.info: Dict[str, object] = {}
        self._it = self._run()

    def __iter__(self) -> "CausalStream":
        return self

    def __next__(self) -> FramePrediction:
        return next(self._it)

    def close(self) -> None:
        self._it.close()

    def _run(self) -> Iterator[FramePrediction]:
        p, s = self.predictor, self.session
        t0 = time.perf_counter()
        done = 0
        if self._progress is not None:
            self._progress(0, self.total)
        for index, frame in enumerate(self._frames):
            for fp in s.push(frame, index, self._name_of(index)):
                yield fp
                done += 1
                if self._progress is not None:
                    self._progress(done, self.total)
        if s.pushed == 0:
            raise InputError(f"{s.where}: no frames")
        for fp in s.flush():
            yield fp
            done += 1
            if self._progress is not None:
                self._progress(done, self.total)
        seconds = time.perf_counter() - t0
        self.info.update(mode="causal", window=p.window, stride=p.stride, overlap=p.window - p.stride,
                         num_windows=s.windows, num_frames=done, seconds=round(seconds, 3),
                         frames_per_second=round(done / seconds, 3) if seconds > 0 else None,
                         stage_seconds=self.clock.seconds())


class CausalPredictor(VideoPredictor):
    """A :class:`~lgrnet.inference.predictor.VideoPredictor` that segments causally: ``window``
    (K) frames of context, the newest included, and ``stride`` (S) frames reported per
    encoder/decoder pass (see the module documentation). Loading, precision, ``size``,
    ``all_queries`` and the recorded settings are the video predictor's;
    :meth:`stream` and :meth:`predict` run causally. ``session()`` starts a push-style stream."""

    def __init__(self, model: LGRNet, size: Union[int, Tuple[int, int]] = DEFAULT_INPUT_SIZE,
                 window: int = DEFAULT_WINDOW, stride: int = DEFAULT_STRIDE, **settings):
        window = DEFAULT_WINDOW if window is None else window
        stride = DEFAULT_STRIDE if stride is None else stride
        check_causal(window, stride)
        for name in ("tta", "compile", "cuda_graphs"):
            if settings.get(name):
                raise UserError(f"{name.replace('_', '-')} is not available in causal mode")
        settings.pop("overlap", None)
        settings.pop("memory_budget", None)
        super().__init__(model, size=size, window=window, **settings)
        self.stride = stride

    @classmethod
    def from_pretrained(cls, weights, preset: Optional[str] = None, device: str = "auto",
                        size: Union[None, int, Tuple[int, int]] = None, revision: Optional[str] = None,
                        window: int = DEFAULT_WINDOW, stride: int = DEFAULT_STRIDE, **settings) -> "CausalPredictor":
        """As :meth:`VideoPredictor.from_pretrained <lgrnet.inference.predictor.VideoPredictor.from_pretrained>`,
        with the causal ``window`` and ``stride``."""
        check_causal(DEFAULT_WINDOW if window is None else window, DEFAULT_STRIDE if stride is None else stride)
        return super().from_pretrained(weights, preset=preset, device=device, size=size, revision=revision,
                                       window=window, stride=stride, **settings)

    @property
    def run_model(self) -> LGRNet:
        """The model the frames go through (a bfloat16 copy for CPU bf16, as the clip runner's)."""
        return self.runner.run_model

    def autocast_context(self):
        """bf16 autocast on CUDA when the run's precision says so (as the clip runner)."""
        return torch.autocast(device_type=self.device.type, dtype=torch.bfloat16, enabled=self.runner.autocast)

    @torch.inference_mode()
    def run_window(self, feats: List[Dict[str, torch.Tensor]]) -> ClipOutput:
        """The encoder and decoder over a window: the frames' backbone features (oldest first) ->
        the window's :class:`~lgrnet.inference.clip_runner.ClipOutput` (chosen query, its logits)."""
        clip = {k: torch.cat([f[k] for f in feats]) for k in feats[0]}  # {level: (T, C, h, w)}
        with self.autocast_context():
            out = self.run_model.forward_features(clip, 1, len(feats))
        q = choose_query(out)
        class_probs = out.class_probs[0, :, 0].float().cpu()
        result = ClipOutput(query=q, class_score=float(class_probs[q]), logits=out.mask_logits[0, :, q].float().cpu())
        if self.runner.all_queries:
            result.all_logits = out.mask_logits[0].float().cpu()
            result.all_class_scores = class_probs.numpy()
        return result

    def session(self, where: str = "frames") -> CausalSession:
        """A new stream's state (``where``: the source's name, for error messages)."""
        return CausalSession(self, where)

    def stream(self, frames, progress: Optional[ProgressFn] = None) -> CausalStream:  # type: ignore[override]
        """Every frame of ``frames`` (what :meth:`VideoPredictor.stream` accepts), causally, in order."""
        return CausalStream(self, frames, progress)

    def settings(self) -> Dict[str, object]:
        s = super().settings()
        s.update(mode="causal", window=self.window, stride=self.stride, overlap=self.window - self.stride,
                 memory_budget=None)
        return s
