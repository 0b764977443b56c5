"""VideoPredictor: whole-clip results equal segment_clip, windowed results equal an independent
per-window computation, streaming is lazy, and the window plan follows the memory budget."""
import numpy as np
import pytest
import torch

from lgrnet import LGRNet, VideoPredictor
from tests.helpers.reference import segment_clip
from lgrnet.inference.memory import estimate_bytes_per_frame, parse_bytes
from lgrnet.inference.predictor import mask_bbox, prefetch_depth
from lgrnet.inference.windows import default_overlap, plan_windows
from lgrnet.errors import InputError, UserError

SIZE = 64


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    return LGRNet.from_preset("tiny").eval()


def video(T, H=40, W=56, seed=0):
    """Smooth random frames (so that masks are not all-or-nothing)."""
    rng = np.random.default_rng(seed)
    base = rng.integers(0, 256, (T, H // 8 + 1, W // 8 + 1, 3)).astype(np.float32)
    up = np.repeat(np.repeat(base, 8, 1), 8, 2)[:, :H, :W]
    return np.clip(up + rng.normal(0, 10, up.shape), 0, 255).astype(np.uint8)


def assert_same(fp_probs, fp_masks, ref_probs, ref_masks, what):
    np.testing.assert_allclose(fp_probs, ref_probs, atol=2e-5, rtol=0, err_msg=what)
    differ = fp_masks != ref_masks
    # a mask pixel may flip only where the logit is within float noise of 0
    assert (np.abs(ref_probs[differ] - 0.5) < 1e-4).all(), what


@pytest.mark.parametrize("window", [None, 7, 12])
def test_window_covering_the_video_equals_whole_clip(model, window):
    frames = video(7)
    ref = segment_clip(model, frames, SIZE)
    res = VideoPredictor(model, size=SIZE, window=window).predict(frames)
    assert res.info["mode"] == "whole-clip" and res.info["num_windows"] == 1 and res.info["window"] == 7
    assert_same(res.probs, res.masks, ref.probs, ref.masks, f"window {window}")
    assert res.probs.shape == (7, 40, 56) and res.masks.dtype == bool
    np.testing.assert_allclose(res.class_score, ref.class_score, atol=1e-6)
    np.testing.assert_allclose(res.mask_score, ref.mask_score, atol=1e-5)
    np.testing.assert_allclose(res.score, ref.score, atol=1e-5)
    assert (res.query == ref.query).all()


@pytest.mark.parametrize("T,N,K", [(11, 5, 2), (10, 5, 2), (9, 4, 0), (13, 6, 3)])
def test_windowed_equals_per_window_segment_clip(model, T, N, K):
    frames = video(T, seed=T)
    windows = plan_windows(T, N, K)  # the plan itself is tested in test_windows.py
    refs = [segment_clip(model, frames[w.start:w.end], SIZE) for w in windows]
    owner = {i: w for w, win in enumerate(windows) for i in range(win.emit_from, win.emit_to)}
    fps = list(VideoPredictor(model, size=SIZE, window=N, overlap=K).stream(frames))
    assert [fp.index for fp in fps] == list(range(T))
    for fp in fps:
        w = owner[fp.index]
        ref = refs[w]
        j = fp.index - windows[w].start
        assert fp.window == w, (fp.index, fp.window, w)
        assert_same(fp.prob, fp.mask, ref.probs[j], ref.masks[j], f"frame {fp.index}")
        assert fp.query == ref.query and fp.class_score == pytest.approx(float(ref.class_score[j]), abs=1e-6)
        assert fp.score == pytest.approx(float(ref.score[j]), abs=1e-5)
        assert np.array_equal(fp.frame, frames[fp.index])


def test_windows_change_results_and_the_default_overlap_is_used(model):
    """Sanity: the clip matters (so the tests above can fail), and without --overlap the predictor
    runs the default overlap's plan (each frame from the window plan_windows names)."""
    frames = video(12, seed=3)
    whole = VideoPredictor(model, size=SIZE).predict(frames)
    fps = list(VideoPredictor(model, size=SIZE, window=6).stream(frames))
    assert np.abs(whole.probs - np.stack([fp.prob for fp in fps])).max() > 1e-3
    K = default_overlap(6, model.config.encoder.num_layers)
    plan = plan_windows(12, 6, K)
    assert [fp.window for fp in fps] == [w for w, win in enumerate(plan) for _ in range(win.emit_from, win.emit_to)]


def test_stream_is_lazy(model):
    consumed = []

    def gen():
        for i, f in enumerate(video(30, seed=1)):
            consumed.append(i)
            yield f

    # in turn: one window plus one read-ahead frame
    stream = VideoPredictor(model, size=SIZE, window=5, overlap=2, pipeline=False).stream(gen())
    first = next(stream)
    assert first.index == 0 and len(consumed) <= 6
    rest = list(stream)
    assert len(rest) == 29 and len(consumed) == 30

    # pipelined: the reader thread may be a bounded number of frames further ahead (its queue, plus
    # the frame it holds while the queue is full), never the whole video
    consumed.clear()
    predictor = VideoPredictor(model, size=SIZE, window=5, overlap=2)
    stream = predictor.stream(gen())
    first = next(stream)
    ahead = prefetch_depth(predictor.plan((40, 56))) + 1  # video()'s frame size
    assert first.index == 0 and len(consumed) <= 6 + ahead < 30
    rest = list(stream)
    assert len(rest) == 29 and len(consumed) == 30


def test_all_queries_include_the_chosen_one(model):
    frames = video(4)
    fps = list(VideoPredictor(model, size=SIZE, all_queries=True).stream(frames))
    nq = model.num_queries
    for fp in fps:
        assert fp.query_probs.shape == (nq, 40, 56) and fp.query_class_scores.shape == (nq,)
        assert np.array_equal(fp.query_probs[fp.query], fp.prob)
        assert fp.query_class_scores.argmax() == fp.query
        assert fp.query_areas[fp.query] == fp.area


def test_plan_follows_memory_budget(model):
    bpf = estimate_bytes_per_frame(model, (SIZE, SIZE), (40, 56))
    p = VideoPredictor(model, size=SIZE, memory_budget=bpf * 9 + 1).plan((40, 56))
    assert p.auto and p.window == 9 and p.overlap == default_overlap(9, 2) == 4
    frames = video(20)
    res = VideoPredictor(model, size=SIZE, memory_budget=bpf * 9 + 1).predict(frames)
    assert res.info["mode"] == "windowed" and res.info["window"] == 9 and len(res) == 20
    with pytest.raises(UserError, match="memory budget .* fits only 2 frames"):
        VideoPredictor(model, size=SIZE, memory_budget=bpf * 2).plan((40, 56))
    # larger frames and inputs cost more
    assert estimate_bytes_per_frame(model, (352, 352), (1080, 1920)) > 20 * bpf


def test_bad_arguments_and_frames(model):
    with pytest.raises(UserError, match="multiple of 32"):
        VideoPredictor(model, size=50)
    with pytest.raises(UserError, match="overlap 5: must be at least 0 and less than the window"):
        VideoPredictor(model, window=5, overlap=5)
    p = VideoPredictor(model, size=SIZE)
    with pytest.raises(InputError, match="frames: no frames"):
        p.predict([])
    with pytest.raises(InputError, match="frame 1 has dtype uint16"):
        p.predict([np.zeros((8, 8, 3), np.uint8), np.zeros((8, 8, 3), np.uint16)])
    with pytest.raises(InputError, match=r"frame 0 has shape \(8, 8, 4\)"):
        p.predict([np.zeros((8, 8, 4), np.uint8)])
    with pytest.raises(InputError, match="frame 2 is 9x8 but the first frame is 8x8"):
        p.predict([np.zeros((8, 8, 3), np.uint8)] * 2 + [np.zeros((8, 9, 3), np.uint8)])
    grey = p.predict(np.zeros((2, 8, 8), np.uint8))
    assert grey.masks.shape == (2, 8, 8)


def test_parse_bytes_and_bbox():
    assert parse_bytes("6G") == parse_bytes("6GiB") == 6 << 30
    assert parse_bytes("512M") == 512 << 20 and parse_bytes("1.5k") == 1536 and parse_bytes(1000) == 1000
    with pytest.raises(UserError, match="memory size 'lots'"):
        parse_bytes("lots")
    rng = np.random.default_rng(0)
    for _ in range(20):
        m = rng.random((7, 9)) > 0.93
        ys, xs = np.nonzero(m)
        expected = None if len(xs) == 0 else [xs.min(), ys.min(), xs.max() + 1, ys.max() + 1]
        assert mask_bbox(m) == expected


@pytest.mark.parametrize("size", [(352, 352), (96, 128), (640, 704)])  # shrinking, non-square, enlarging
def test_frames_to_tensor_resizes_as_pil_does(size):
    """uint8 frames are resized in uint8: within one grey level of PIL's bilinear resize (the
    published evaluation's), and within one level (rounding) of resizing in float."""
    from PIL import Image

    from lgrnet.inference.clip import frames_to_tensor

    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[0:500, 0:574]
    smooth = 128 + 60 * np.sin(xx / 17.0) * np.cos(yy / 13.0)
    frames = np.clip(smooth[None, ..., None] + rng.normal(0, 25, (2, 500, 574, 3)), 0, 255).astype(np.uint8)
    x = frames_to_tensor(frames, size)
    assert x.shape == (1, 2, 3, *size) and x.dtype == torch.float32
    got = (x[0] * 255).round().to(torch.int16).permute(0, 2, 3, 1).numpy()
    pil = np.stack([np.asarray(Image.fromarray(f).resize(size[::-1], Image.BILINEAR)) for f in frames]).astype(np.int16)
    assert np.abs(got - pil).max() <= 1
    as_float = frames_to_tensor(torch.from_numpy(frames).float(), size)
    assert (x - as_float).abs().max() <= 1 / 255 + 1e-6
