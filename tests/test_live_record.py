"""The live recording (lgrnet.runs.live_record): with dropped frames, each recorded frame keeps its
time in the source (source_index / fps) in predictions.json/csv and in overlay.mp4, so the overlay
plays at the source's speed. Synthetic predictions, no model."""
from __future__ import annotations

import av
import numpy as np
import pytest

from lgrnet.inference.predictor import FramePrediction
from lgrnet.inference.realtime import LivePrediction
from lgrnet.results.folder import load_result
from lgrnet.runs.live_record import LiveRecorder

H, W, FPS = 48, 64, 25.0
SOURCE_INDICES = [0, 2, 5, 6, 11]  # frames 1, 3, 4, 7-10 dropped


def prediction(index: int, source_index: int, rng) -> FramePrediction:
    prob = rng.random((H, W)).astype(np.float32)
    return FramePrediction(index=index, name=str(source_index), frame=rng.integers(0, 255, (H, W, 3), dtype=np.uint8),
                           prob=prob, mask=prob > 0.5, class_score=0.9, mask_score=0.8, clip_mask_score=0.8,
                           score=0.576, query=0)


def test_recorded_times_are_the_source_times_with_dropped_frames(tmp_path):
    rng = np.random.default_rng(0)
    rec = LiveRecorder(tmp_path, "rec", fps=FPS)
    rec.start((H, W))
    for i, s in enumerate(SOURCE_INDICES):
        rec.add(LivePrediction(prediction(i, s, rng), s, read_time=1.0 + s / FPS, ready_time=1.05 + s / FPS,
                               dropped=s - i))
    path = rec.finish({"mode": "causal"})
    r = load_result(path)
    rows = r.meta["frames"]
    expected = [s / FPS for s in SOURCE_INDICES]
    assert [row["source_index"] for row in rows] == SOURCE_INDICES
    assert [row["time"] for row in rows] == pytest.approx(expected, abs=1e-6)
    csv = (path / "predictions.csv").read_text().splitlines()
    col = csv[0].split(",").index("time")
    assert [float(line.split(",")[col]) for line in csv[1:]] == pytest.approx(expected, abs=1e-6)
    with av.open(str(path / "overlay.mp4")) as c:
        shown = [f.time for f in c.decode(video=0)]
    assert shown == pytest.approx(expected, abs=1e-3)
