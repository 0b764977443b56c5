"""Video file sources (PyAV): metadata, streaming, random access, and bad videos."""
from fractions import Fraction

import av
import numpy as np
import pytest

from lgrnet.errors import InputError
from lgrnet.io import open_source
from lgrnet.io.video_file import VideoFileSource
from tests.helpers.media import encode_video


def encode_mp4(path, frames, fps=25, faststart=False, codec="libx264", gop=None):
    """Near-lossless (crf 0) with libx264; ``gop``: a key frame every ``gop`` frames."""
    return encode_video(path, frames, fps, codec=codec, crf=0 if codec == "libx264" else None, gop=gop,
                        faststart=faststart)


def ramp_frames(n, h=48, w=64):
    """Smooth frames whose mean encodes the index (survives lossy coding)."""
    yy, xx = np.mgrid[0:h, 0:w]
    return [np.stack([(xx * 2 + i * 7) % 256, (yy * 3 + i * 5) % 256, np.full_like(xx, (i * 11) % 256)], -1).astype(np.uint8)
            for i in range(n)]


def test_mp4_metadata_and_stream(tmp_path):
    frames = ramp_frames(12)
    path = encode_mp4(tmp_path / "a.mp4", frames, fps=30)
    src = open_source(path)
    assert isinstance(src, VideoFileSource) and src.kind == "video"
    assert src.num_frames == 12 and src.frame_size == (48, 64) and src.fps == pytest.approx(30.0)
    got = list(src)
    assert len(got) == 12 and all(g.dtype == np.uint8 and g.shape == (48, 64, 3) for g in got)
    # near-lossless (crf 0, yuv420p): frames come back in order and close to what was written
    for g, f in zip(got, frames):
        assert np.abs(g.astype(int) - f.astype(int)).mean() < 6
    assert src.names() == [str(i) for i in range(12)]
    assert list(src)[5].tobytes() == got[5].tobytes()  # re-iterable from the start


def test_ntsc_rate_is_kept(tmp_path):
    path = encode_mp4(tmp_path / "ntsc.mp4", ramp_frames(4), fps=Fraction(30000, 1001))
    src = open_source(path)
    assert src.fps == pytest.approx(29.97, abs=1e-3) and src.rate == Fraction(30000, 1001)


def test_read_matches_iteration(tmp_path):
    path = encode_mp4(tmp_path / "b.mp4", ramp_frames(40), fps=25)
    src = open_source(path)
    frames = list(src)
    for i in (0, 1, 17, 39):
        assert np.array_equal(src.read(i), frames[i]), i
    with pytest.raises(IndexError):
        src.read(40)


def test_read_in_any_order_is_exact_and_playing_decodes_once(tmp_path, monkeypatch):
    """Reads in any order return the streamed frames; consecutive reads keep one decoder open
    (playing costs one decode a frame); a jump back seeks to a key frame, not to the start."""
    import lgrnet.io.video_file as video

    path = encode_mp4(tmp_path / "g.mp4", ramp_frames(30), fps=25, gop=4)
    src = open_source(path)
    frames = list(src)
    opened, starts = [], []
    real_open = src._open
    monkeypatch.setattr(src, "_open", lambda *a: opened.append(a) or real_open(*a))

    class Cursor(video._DecodeCursor):
        def __init__(self, av_, container, it, next_index):
            starts.append(next_index)
            super().__init__(av_, container, it, next_index)

    monkeypatch.setattr(video, "_DecodeCursor", Cursor)
    for i in range(30):
        assert np.array_equal(src.read(i), frames[i]), i
    assert len(opened) == 1 and starts == [0]
    src.read(13)
    assert 0 < starts[-1] <= 13  # landed on a key frame before 13
    for i in (0, 1, 29, 5, 4, 13, 12, 12, 2, 28, 9, 20, 3):
        assert np.array_equal(src.read(i), frames[i]), i
    with pytest.raises(IndexError):
        src.read(30)
    src.close()
    assert np.array_equal(src.read(7), frames[7])  # reopens after close
    src.close()


@pytest.mark.parametrize("container", ["avi", "mkv", "mov"])
def test_other_containers(tmp_path, container):
    path = encode_mp4(tmp_path / f"c.{container}", ramp_frames(6), fps=10, codec="mpeg4")
    src = open_source(path)
    assert src.kind == "video" and src.frame_size == (48, 64)
    assert sum(1 for _ in src) == 6
    assert src.names() == [str(i) for i in range(6)]  # counted by decoding where the header has no count (mkv)
    frames = list(src)
    assert np.array_equal(src.read(5), frames[5]) and np.array_equal(src.read(2), frames[2])
    with pytest.raises(IndexError):
        src.read(6)
    src.close()


def test_missing_file(tmp_path):
    with pytest.raises(InputError, match=r"nope\.mp4: no such file or folder"):
        open_source(tmp_path / "nope.mp4")


def test_unreadable_video(tmp_path):
    bad = tmp_path / "garbage.mp4"
    bad.write_bytes(np.random.default_rng(0).integers(0, 256, 5000, dtype=np.uint8).tobytes())
    with pytest.raises(InputError, match=r"garbage\.mp4: cannot open as a video"):
        open_source(bad)


def test_truncated_video_fails_at_open_or_while_streaming(tmp_path):
    # moov at the end: the cut file does not open at all
    p1 = encode_mp4(tmp_path / "cut1.mp4", ramp_frames(30))
    p1.write_bytes(p1.read_bytes()[: p1.stat().st_size * 6 // 10])
    with pytest.raises(InputError, match=r"cut1\.mp4: cannot open as a video"):
        open_source(p1)
    # moov first (faststart): it opens, and the stream reports the missing frames
    p2 = encode_mp4(tmp_path / "cut2.mp4", ramp_frames(30), faststart=True)
    p2.write_bytes(p2.read_bytes()[: p2.stat().st_size * 6 // 10])
    src = open_source(p2)
    with pytest.raises(InputError, match=r"cut2\.mp4: truncated: decoded \d+ of the 30 frames"):
        list(src)


def test_zero_frame_video(tmp_path):
    p = tmp_path / "empty.mp4"
    c = av.open(str(p), "w")
    st = c.add_stream("libx264", rate=25)
    st.width, st.height, st.pix_fmt = 64, 48, "yuv420p"
    c.start_encoding()
    c.close()
    with pytest.raises(InputError, match=r"empty\.mp4: .*no (video )?frames"):
        open_source(p)


def test_alpha_video_rejected(tmp_path):
    p = tmp_path / "alpha.mov"
    c = av.open(str(p), "w")
    st = c.add_stream("qtrle", rate=25)
    st.width, st.height, st.pix_fmt = 32, 32, "argb"
    for _ in range(2):
        for pk in st.encode(av.VideoFrame.from_ndarray(np.zeros((32, 32, 4), np.uint8), format="argb")):
            c.mux(pk)
    for pk in st.encode(None):
        c.mux(pk)
    c.close()
    with pytest.raises(InputError, match=r"alpha\.mov: pixel format argb has an alpha channel"):
        open_source(p)


def test_unknown_file_kind(tmp_path):
    p = tmp_path / "notes.txt"
    p.write_text("hello")
    with pytest.raises(InputError, match=r"notes\.txt: not a video .*DICOM file or a folder of frames"):
        open_source(p)
