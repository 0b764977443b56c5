"""Record a live run (``lgrnet live --out``) as a normal result folder, frame by frame, so that
``lgrnet view``, ``lgrnet score`` and ``lgrnet dataset`` read it like any other.

The folder is :mod:`lgrnet.results.folder`'s (masks/, probs/, overlay.mp4, predictions.json/csv),
written by its :class:`~lgrnet.results.folder.ResultFolderWriter`, plus:

- ``frames/<index:06d>.jpg``: the processed frames (JPEG, quality 95), the result's input
  (``input`` in predictions.json points at it), since a live source cannot be read again;
- per frame in predictions.json/csv: ``source_index`` (the frame's number in the source; ``name``
  is the same as text), ``latency_ms`` (read to prediction ready) and ``dropped`` (frames dropped
  before it since the start); ``index`` counts the processed frames; ``time`` is the frame's time
  in the source (``source_index`` / fps), so that with dropped frames the overlay video still plays
  at the source's speed;
- ``settings``: the predictor's (mode "causal", window, stride, ...), the source, and the run's
  figures (frames read, processed and dropped, latency p50/p99, frames/s, how it ended).

Only processed frames are recorded; dropped frames are counted, not kept. Frames are encoded in a
background thread (at most ``MAX_PENDING`` waiting), so writing does not add to the latency of the
frame it writes. :meth:`LiveRecorder.finish` completes the folder (predictions.json last, then the
rename into place), also after Ctrl-C or a source that failed: what was recorded is a complete,
readable result.
"""
from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, Optional, Tuple

from ..errors import UserError
from ..inference.pipeline import OrderedWriter
from ..inference.predictor import FramePrediction
from ..inference.realtime import LivePrediction
from ..results.folder import ResultFolderWriter, frame_key, writing

LIVE_COLUMNS = ("source_index", "latency_ms", "dropped")
MAX_PENDING = 16
JPEG_QUALITY = 95


@dataclass
class RecordedFrame(FramePrediction):
    """A processed frame as recorded: the prediction and the live fields of :data:`LIVE_COLUMNS`."""

    source_index: int = 0
    latency_ms: float = 0.0
    dropped: int = 0


@dataclass
class _RecordedInput:
    """What the writer records of the input: the recorded frames folder (``path``), ``kind`` "live",
    the source's ``fps`` and ``frame_size``; ``times``: each recorded frame's time in the source
    (recorded frame index -> seconds), until the writer asks for it."""

    path: Path
    fps: float
    frame_size: Tuple[int, int]
    kind: str = "live"
    times: Dict[int, float] = dataclasses.field(default_factory=dict)

    def names(self):
        return []

    def frame_time(self, index: int) -> float:
        """Recorded frame ``index``'s time in the source, in seconds (read once, by the writer)."""
        return self.times.pop(index, index / self.fps)


class LiveRecorder:
    """``out_dir/name``, written while the run goes on (see the module documentation).

    >>> rec = LiveRecorder(out, "live-0001", fps=25.0)   # checks the output before anything runs
    >>> rec.start(frame_size)
    >>> rec.add(lp) ...                                 # each LivePrediction, in order
    >>> rec.finish(settings)                            # the published folder's path
    """

    def __init__(self, out_dir, name: str, fps: float, overlay: bool = True):
        self.writer = ResultFolderWriter(Path(out_dir), name, overlay=overlay, extra_columns=LIVE_COLUMNS)
        self.writer.check()  # an existing result or an unwritable folder: one line, before the source runs
        self.fps = fps
        self._pool: Optional[OrderedWriter] = None
        self._input: Optional[_RecordedInput] = None

    @property
    def count(self) -> int:
        return self.writer.count

    def start(self, frame_size: Tuple[int, int]) -> None:
        w = self.writer
        self._input = _RecordedInput(path=Path(os.path.abspath(w.final)) / "frames", fps=self.fps, frame_size=frame_size)
        w.start(self._input)
        with writing(w.tmp):
            (w.tmp / "frames").mkdir()
        self._pool = OrderedWriter(self._encode, w.commit, workers=1, max_pending=MAX_PENDING, low_priority=True)

    def _encode(self, fp: RecordedFrame):
        import cv2

        w = self.writer
        path = w.tmp / "frames" / f"{frame_key(fp.index)}.jpg"
        ok, data = cv2.imencode(".jpg", fp.frame[:, :, ::-1], [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY])
        with writing(w.tmp):
            if not ok:
                raise OSError(f"cannot encode frame {fp.index} as JPEG")
            path.write_bytes(data.tobytes())
        return w.encode(fp)

    def add(self, lp: LivePrediction) -> None:
        """Record a processed frame (in order)."""
        fp = RecordedFrame(**{f.name: getattr(lp.prediction, f.name) for f in dataclasses.fields(FramePrediction)},
                           source_index=lp.source_index, latency_ms=round(lp.latency * 1000, 2), dropped=lp.dropped)
        self._input.times[fp.index] = lp.source_index / self._input.fps
        self._pool.submit(fp)

    def finish(self, settings: Dict[str, object]) -> Path:
        """Write what is pending and publish the folder; its path. With no frame recorded, the
        partial folder is removed and a :class:`~lgrnet.errors.UserError` says so."""
        self._close_pool(drain=True)
        if self.writer.count == 0:
            self.writer.abort()
            raise UserError(f"{self.writer.final}: no frame was processed; nothing recorded")
        return self.writer.finish(settings)

    def _close_pool(self, drain: bool) -> None:
        pool, self._pool = self._pool, None
        if pool is None:
            return
        try:
            if drain:
                pool.drain()
        finally:
            pool.close()

    def abort(self) -> None:
        """Remove the partial folder (an error while writing)."""
        try:
            self._close_pool(drain=False)
        finally:
            self.writer.abort()
