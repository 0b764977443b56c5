"""CUDA graphs for windowed prediction (lgrnet.inference.cuda_graphs, VideoPredictor(cuda_graphs=True)).

On any machine: the predictor's wiring, with a stand-in for the CUDA graph: which clips get a
graph (windows, not a whole-clip video), one graph per clip shape kept across videos, at most
MAX_GRAPHS kept, the fallback to eager execution with a warning when a graph fails, the info
reported. That the forward can be captured at all is tests/test_capture_safety.py.

With a GPU: the captured graph reproduces eager outputs for inputs other than the one it was
captured with, and windowed prediction with graphs equals prediction without.
"""
from __future__ import annotations

import numpy as np
import pytest
import torch

from lgrnet import LGRNet, VideoPredictor
from lgrnet.inference import cuda_graphs
from lgrnet.inference.clip import forward_clip
from lgrnet.errors import UserError

from test_predict_api import video

SIZE = 64


# ------------------------------------------------------------------------------- predictor wiring


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    return LGRNet.from_preset("tiny").eval()


class EagerStandIn:
    """Stands in for GraphedClipForward on the CPU: same interface, runs the eager forward."""

    built = []

    def __init__(self, model, example, autocast=True):
        self.model, self.shape = model, tuple(example.shape)
        self.calls = 0
        EagerStandIn.built.append(self)

    def __call__(self, x):
        assert tuple(x.shape) == self.shape
        self.calls += 1
        return forward_clip(self.model, x, autocast=False)


def graph_predictor(model, monkeypatch, stand_in, **kwargs):
    monkeypatch.setattr(cuda_graphs, "GraphedClipForward", stand_in)
    p = VideoPredictor(model, size=SIZE, **kwargs)
    p.runner.cuda_graphs = True  # the constructor refuses a CPU model; the stand-in runs on the CPU
    return p


def test_cuda_graphs_refused_without_cuda(model):
    with pytest.raises(UserError, match="CUDA graphs need the model on a CUDA device"):
        VideoPredictor(model, size=SIZE, cuda_graphs=True)


def test_windows_replay_one_graph_per_shape(model, monkeypatch):
    EagerStandIn.built = []
    frames = video(11)
    ref = VideoPredictor(model, size=SIZE, window=5, overlap=2).predict(frames)
    p = graph_predictor(model, monkeypatch, EagerStandIn, window=5, overlap=2)
    res = p.predict(frames)
    assert res.info["mode"] == "windowed" and res.info["cuda_graph_windows"] == res.info["num_windows"] == 3
    assert len(EagerStandIn.built) == 1 and EagerStandIn.built[0].calls == 3  # every window has 5 frames
    np.testing.assert_array_equal(res.masks, ref.masks)
    np.testing.assert_allclose(res.probs, ref.probs, atol=1e-6)
    p.predict(video(9, seed=1))  # another video, same window shape (windows at 0, 3, 4): the same graph
    assert len(EagerStandIn.built) == 1 and EagerStandIn.built[0].calls == 6


def test_whole_clip_video_runs_eagerly(model, monkeypatch):
    EagerStandIn.built = []
    p = graph_predictor(model, monkeypatch, EagerStandIn, window=8)
    res = p.predict(video(6))
    assert res.info["mode"] == "whole-clip" and res.info["cuda_graph_windows"] == 0 and not EagerStandIn.built


def test_at_most_max_graphs_kept(model, monkeypatch):
    EagerStandIn.built = []
    p = graph_predictor(model, monkeypatch, EagerStandIn, overlap=1)
    for window in (3, 4, 5):
        p.window = window
        p.predict(video(8))
    from lgrnet.inference.clip_runner import MAX_GRAPHS

    assert len(EagerStandIn.built) == 3 and len(p.runner.graphs) == MAX_GRAPHS
    assert [k[1] for k in p.runner.graphs] == [4, 5]


def test_failed_graph_falls_back_to_eager_with_a_warning(model, monkeypatch):
    class Mismatching:
        tries = 0

        def __init__(self, *a, **k):
            Mismatching.tries += 1
            raise cuda_graphs.GraphMismatch("replay differs")

    frames = video(11)
    ref = VideoPredictor(model, size=SIZE, window=5, overlap=2).predict(frames)
    p = graph_predictor(model, monkeypatch, Mismatching, window=5, overlap=2)
    monkeypatch.setattr(torch.cuda, "empty_cache", lambda: None)
    with pytest.warns(UserWarning, match="no CUDA graph for clips of 5 frames at 64x64.*replay differs"):
        res = p.predict(frames)
    assert res.info["cuda_graph_windows"] == 0 and Mismatching.tries == 1  # not retried for the same shape
    np.testing.assert_array_equal(res.masks, ref.masks)
    np.testing.assert_array_equal(res.probs, ref.probs)


# ------------------------------------------------------------------------------------- on a GPU

cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")


@cuda
@pytest.mark.parametrize("autocast", [False, True])
def test_graph_replays_new_inputs_like_eager(autocast):
    torch.manual_seed(0)
    model = LGRNet.from_preset("tiny").eval().cuda()
    g = torch.Generator().manual_seed(1)
    clips = [torch.rand(1, 4, 3, SIZE, SIZE, generator=g) for _ in range(3)]
    with torch.inference_mode():
        graph = cuda_graphs.GraphedClipForward(model, clips[0].cuda(), autocast=autocast)
        for x in clips[1:]:
            eager = forward_clip(model, x, autocast=autocast)
            replay = graph(x)
            tol = 2e-2 if autocast else 1e-4
            scale = max(1.0, float(eager.mask_logits.abs().max()))
            assert float((replay.mask_logits.float() - eager.mask_logits.float()).abs().max()) <= tol * scale
            assert torch.allclose(replay.class_probs.float(), eager.class_probs.float(), atol=tol)


@cuda
def test_windowed_prediction_with_graphs_equals_without():
    torch.manual_seed(0)
    model = LGRNet.from_preset("tiny").eval().cuda()
    frames = video(23)
    ref = VideoPredictor(model, size=SIZE, window=6, precision="fp32").predict(frames)
    res = VideoPredictor(model, size=SIZE, window=6, precision="fp32", cuda_graphs=True).predict(frames)
    assert res.info["cuda_graph_windows"] == res.info["num_windows"] > 1
    assert (res.masks == ref.masks).mean() > 0.999
    np.testing.assert_allclose(res.probs, ref.probs, atol=1e-4)
