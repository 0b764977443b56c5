"""Output writers: PNG maps, overlay drawing, the overlay video, and the atomic result folder."""
from fractions import Fraction
from types import SimpleNamespace

import av
import numpy as np
import pytest
from PIL import Image

from lgrnet.errors import UserError
from lgrnet.results.folder import ResultFolderWriter
from lgrnet.results.writers import OverlayVideoWriter, draw_overlay, write_mask_png, write_prob_png


def test_mask_and_prob_png(tmp_path):
    mask = np.zeros((5, 7), bool)
    mask[1:3, 2:6] = True
    write_mask_png(tmp_path / "m.png", mask)
    m = np.asarray(Image.open(tmp_path / "m.png"))
    assert m.dtype == np.uint8 and m.shape == (5, 7) and set(np.unique(m)) == {0, 255}
    assert np.array_equal(m == 255, mask)
    prob = np.linspace(0, 1, 35, dtype=np.float32).reshape(5, 7)
    prob[0, 0] = -0.2  # clipped
    write_prob_png(tmp_path / "p.png", prob)
    p = np.asarray(Image.open(tmp_path / "p.png"))
    expected = np.array([[round(255 * min(max(float(v), 0.0), 1.0)) for v in row] for row in prob], np.uint8)
    assert np.array_equal(p, expected)


def test_draw_overlay_outlines_the_mask_only():
    frame = np.full((120, 160, 3), 90, np.uint8)
    mask = np.zeros((120, 160), bool)
    mask[50:90, 60:120] = True
    out = draw_overlay(frame, mask, 0.87, label="#3")
    assert out.shape == frame.shape and np.array_equal(frame, np.full_like(frame, 90))  # input untouched
    changed = (out != frame).any(-1)
    assert changed[50, 60:120].all() and changed[50:90, 60].all()  # the outline
    assert not changed[60:80, 70:110].any()  # inside the lesion untouched
    assert not changed[100:, :].any()  # far away untouched
    assert changed[:15, :40].any()  # the caption


def _decode(path):
    with av.open(str(path)) as c:
        st = c.streams.video[0]
        frames = [f.to_ndarray(format="rgb24") for f in c.decode(st)]
        return frames, st.average_rate


@pytest.mark.parametrize("size,fps", [((48, 64), 25), ((33, 45), Fraction(30000, 1001))])
def test_overlay_video_frame_count_rate_and_odd_sizes(tmp_path, size, fps):
    rng = np.random.default_rng(0)
    frames = [np.full((*size, 3), 10 * i, np.uint8) for i in range(13)]
    frames[4] = rng.integers(0, 256, (*size, 3), dtype=np.uint8)
    with OverlayVideoWriter(tmp_path / "o.mp4", fps, size) as w:
        for f in frames:
            w.write(f)
    got, rate = _decode(tmp_path / "o.mp4")
    assert len(got) == 13 and rate == Fraction(fps)
    H, W = size
    assert got[0].shape == (H + H % 2, W + W % 2, 3)
    for i in (0, 7, 12):  # flat frames come back close (lossy, chroma-subsampled)
        assert abs(got[i][:H, :W].astype(int).mean() - 10 * i) < 3


def _fake_prediction(i, H=6, W=8):
    mask = np.zeros((H, W), bool)
    mask[1:3, 2:5] = True
    return SimpleNamespace(index=i, name=f"f{i}.png", frame=np.zeros((H, W, 3), np.uint8), prob=mask * 0.9,
                           mask=mask, class_score=0.5, mask_score=0.9, clip_mask_score=1.0, score=0.45, query=2, area=int(mask.sum()),
                           bbox=[2, 1, 5, 3], query_probs=None)


def test_result_folder_is_atomic(tmp_path):
    out = tmp_path / "out"
    source = SimpleNamespace(path=tmp_path / "in.mp4", kind="video", fps=25.0, frame_size=(6, 8))
    w = ResultFolderWriter(out, "in")
    with pytest.raises(RuntimeError, match="boom"):
        with w:
            w.start(source)
            w.write(_fake_prediction(0))
            assert len(list(out.iterdir())) == 1 and next(out.iterdir()).name.startswith(".in.partial-")
            raise RuntimeError("boom")
    assert not out.exists()  # created by the writer, removed again with the partial folder

    w = ResultFolderWriter(out, "in")
    with w:
        w.start(source)
        for i in range(3):
            w.write(_fake_prediction(i))
        path = w.finish({"k": 1})
    assert path == out / "in" and sorted(p.name for p in out.iterdir()) == ["in"]
    assert sorted(p.name for p in path.iterdir()) == ["masks", "overlay.mp4", "predictions.csv", "predictions.json", "probs"]

    with pytest.raises(UserError, match=r"in: already exists; pass --overwrite"):
        ResultFolderWriter(out, "in").check()
    w = ResultFolderWriter(out, "in", overwrite=True, overlay=False)
    with w:
        w.start(source)
        w.write(_fake_prediction(0))
        w.finish({})
    assert sorted(p.name for p in out.iterdir()) == ["in"]
    assert len(list((out / "in" / "masks").iterdir())) == 1 and not (out / "in" / "overlay.mp4").exists()
