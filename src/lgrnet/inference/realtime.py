"""Bounded latency: run a :class:`~lgrnet.inference.stream.CausalSession` on a live source that may
be faster than the model, always on the newest frame.

A reader thread reads the source into a one-frame mailbox (:class:`NewestFrame`). With ``drop=True``
(live sources, files played in real time) a frame that arrives while the previous one still waits
replaces it, and the replaced frame is counted as dropped: the model never falls behind the source,
so a result is at most one model step older than its frame's arrival, however long the stream.
With ``drop=False`` (a file as fast as possible) the reader waits for the model: every frame is
processed, still causally.

Latency is per frame, from the moment the frame was read (decoded; for a file played in real
time, released at its presentation time) to the moment its prediction is ready, including the
time it waited in the mailbox. With a stride S the first frames of each stride also wait for the
later ones (:mod:`lgrnet.inference.stream`).

>>> for lp in run_live(predictor.session(), source.frames()):
...     lp.prediction.mask, lp.latency, lp.dropped     # a LivePrediction per processed frame
"""
from __future__ import annotations

import collections
import threading
import time
from dataclasses import dataclass, field
from typing import Deque, Dict, Iterable, Iterator, List, Optional

import numpy as np

from ..errors import InputError
from .predictor import FramePrediction
from .stream import CausalSession

DEFAULT_STALL_TIMEOUT = 10.0  # seconds without a new frame before a live source counts as stalled


class SourceStalled(InputError):
    """No frame arrived for the stall timeout."""


@dataclass
class LivePrediction:
    """A processed frame: the ``prediction`` (its ``index`` counts processed frames; ``name`` is the
    frame's number in the source), ``source_index``, ``read_time`` / ``ready_time``
    (``time.perf_counter()``), ``latency`` = ready - read in seconds, ``dropped``: frames dropped
    before it since the start."""

    prediction: FramePrediction
    source_index: int
    read_time: float
    ready_time: float
    dropped: int

    @property
    def latency(self) -> float:
        return self.ready_time - self.read_time


class NewestFrame:
    """A one-frame mailbox filled by a reader thread from ``frames`` (items with ``index``,
    ``frame``, ``read_time``; see :class:`~lgrnet.io.capture.CapturedFrame`). ``get`` takes the
    newest frame; with ``drop`` an unread frame is replaced (``dropped`` counts them), without it
    the reader waits. The reader's exception (a decoding error) is raised by ``get`` after the
    frames read before it."""

    def __init__(self, frames: Iterable, drop: bool = True):
        self.drop = drop
        self.dropped = 0
        self.read = 0
        self._slot = None
        self._ended = False
        self._error: Optional[BaseException] = None
        self._stop = False
        self._cond = threading.Condition()
        self._frames = frames
        self._thread = threading.Thread(target=self._run, name="lgrnet-live-reader", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        try:
            for item in self._frames:
                with self._cond:
                    while not self.drop and self._slot is not None and not self._stop:
                        self._cond.wait()
                    if self._stop:
                        return
                    if self._slot is not None:
                        self.dropped += 1
                    self._slot = item
                    self.read += 1
                    self._cond.notify_all()
        except BaseException as exc:  # handed to the consumer
            self._error = exc
        finally:
            with self._cond:
                self._ended = True
                self._cond.notify_all()

    def get(self, timeout: Optional[float] = None):
        """The newest unread frame; None when the source has ended (after its last frame). Raises
        the reader's error, or :class:`SourceStalled` after ``timeout`` s without a frame."""
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._cond:
            while self._slot is None and not self._ended:
                left = None if deadline is None else deadline - time.monotonic()
                if left is not None and left <= 0:
                    raise SourceStalled(f"no frame for {timeout:g} s (the source stalled)")
                self._cond.wait(left)
            item, self._slot = self._slot, None
            self._cond.notify_all()
            if item is None and self._error is not None:
                raise self._error
            return item

    def close(self, wait: float = 1.0) -> None:
        """Stop taking frames (the reader thread ends at its next frame; it is a daemon thread, so a
        read blocked in the source does not keep the process alive)."""
        with self._cond:
            self._stop = True
            self._cond.notify_all()
        self._thread.join(wait)


@dataclass
class LatencyStats:
    """Figures of a live run: processed and dropped frames; the latencies and ready times of the
    last ``keep`` frames (:meth:`summary`: what the page shows), and a histogram of every frame's
    latency in 1 ms bins up to 10 s (:meth:`run_summary`: the whole run, in bounded memory)."""

    keep: int = 250
    processed: int = 0
    dropped: int = 0
    latencies: Deque[float] = field(default_factory=collections.deque)
    ready: Deque[float] = field(default_factory=collections.deque)
    histogram: np.ndarray = field(default_factory=lambda: np.zeros(10001, dtype=np.int64))
    first_ready: Optional[float] = None

    def add(self, lp: LivePrediction) -> None:
        self.processed += 1
        self.dropped = lp.dropped
        self.first_ready = lp.ready_time if self.first_ready is None else self.first_ready
        self.histogram[min(int(lp.latency * 1000), len(self.histogram) - 1)] += 1
        for q, v in ((self.latencies, lp.latency), (self.ready, lp.ready_time)):
            q.append(v)
            if len(q) > self.keep:
                q.popleft()

    def summary(self) -> Dict[str, Optional[float]]:
        """{"processed", "dropped", "latency_p50_ms", "latency_p99_ms", "fps"} over the last ``keep`` frames."""
        lat = np.array(self.latencies) * 1000 if self.latencies else None
        span = self.ready[-1] - self.ready[0] if len(self.ready) > 1 else 0.0
        return {"processed": self.processed, "dropped": self.dropped,
                "latency_p50_ms": None if lat is None else round(float(np.percentile(lat, 50)), 1),
                "latency_p99_ms": None if lat is None else round(float(np.percentile(lat, 99)), 1),
                "fps": round((len(self.ready) - 1) / span, 2) if span > 0 else None}

    def percentile_ms(self, q: float) -> Optional[int]:
        """The whole run's latency percentile ``q`` (0-100), in ms (the 1 ms bin's upper edge)."""
        if self.processed == 0:
            return None
        rank = np.searchsorted(np.cumsum(self.histogram), q / 100 * self.processed)
        return int(rank) + 1

    def run_summary(self) -> Dict[str, Optional[float]]:
        """The whole run: {"processed", "dropped", "latency_p50_ms", "latency_p99_ms", "latency_max_ms",
        "fps"} (fps: processed frames per second from the first result to the last)."""
        span = self.ready[-1] - self.first_ready if self.ready and self.first_ready is not None else 0.0
        top = np.flatnonzero(self.histogram)
        return {"processed": self.processed, "dropped": self.dropped,
                "latency_p50_ms": self.percentile_ms(50), "latency_p99_ms": self.percentile_ms(99),
                "latency_max_ms": int(top[-1]) + 1 if top.size else None,
                "fps": round((self.processed - 1) / span, 2) if span > 0 else None}


def run_live(session: CausalSession, frames: Iterable, drop: bool = True,
             stall_timeout: Optional[float] = DEFAULT_STALL_TIMEOUT) -> Iterator[LivePrediction]:
    """Push the newest frame of ``frames`` into ``session`` whenever it is free (see the module
    documentation) and yield each processed frame's :class:`LivePrediction`, in order. At the
    source's end the frames a stride holds are flushed. Raises the source's error (after the
    predictions of the frames before it) or :class:`SourceStalled`; closing the generator (Ctrl-C)
    stops the reader."""
    box = NewestFrame(frames, drop=drop)
    read_times: Dict[int, tuple] = {}  # pushed, not yet reported: prediction index -> (source index, read time)
    count = 0

    def report(preds: List[FramePrediction]) -> Iterator[LivePrediction]:
        now = time.perf_counter()
        for fp in preds:
            source_index, read_time = read_times.pop(fp.index)
            yield LivePrediction(fp, source_index, read_time, now, box.dropped)

    try:
        while True:
            try:
                item = box.get(stall_timeout)
            except BaseException:
                yield from report(session.flush())
                raise
            if item is None:
                break
            read_times[count] = (item.index, item.read_time)
            preds = session.push(item.frame, index=count, name=str(item.index))
            count += 1
            yield from report(preds)
        yield from report(session.flush())
    finally:
        box.close()
