"""Phone and scanner videos (issue 29 item 5): a display matrix (phones in portrait) is applied to the
frames, the masks and the overlay, and recorded; variable-frame-rate videos and DICOM Frame Time
Vectors keep each frame's time in predictions.json/csv and in the overlay video."""
import csv
import json
import shutil
import subprocess
from fractions import Fraction

import av
import numpy as np
import pytest
from PIL import Image

from lgrnet.io import open_source
from lgrnet.results.writers import OverlayVideoWriter

FFMPEG = shutil.which("ffmpeg")
needs_ffmpeg = pytest.mark.skipif(FFMPEG is None, reason="the ffmpeg command is not installed (Debian package ffmpeg)")


def pattern(i, h=48, w=64):
    """A frame whose orientation is unmistakable: a bright block in the top-left corner, a ramp."""
    yy, xx = np.mgrid[0:h, 0:w]
    f = np.stack([(xx * 3 + i * 9) % 256, (yy * 4) % 256, np.full_like(xx, 90)], -1).astype(np.uint8)
    f[2:14, 3:20] = 250
    return f


def encode(path, frames, times=None, fps=25):
    """uint8 RGB frames -> near-lossless H.264 (yuv444p, qp 0); ``times``: each frame's time in seconds
    (variable frame rate), else a constant ``fps``."""
    tb = Fraction(1, 1000) if times is not None else Fraction(1, fps)
    with av.open(str(path), "w") as c:
        st = c.add_stream("libx264", rate=fps)
        st.height, st.width = frames[0].shape[:2]
        st.pix_fmt = "yuv444p"
        st.options = {"qp": "0"}
        st.codec_context.time_base = tb
        st.time_base = tb
        for i, f in enumerate(frames):
            vf = av.VideoFrame.from_ndarray(f, format="rgb24")
            vf.pts = round(Fraction(times[i]).limit_denominator(10**6) / tb) if times is not None else i
            vf.time_base = tb
            for p in st.encode(vf):
                c.mux(p)
        for p in st.encode(None):
            c.mux(p)
    return path


def decode(path):
    """[(time s, uint8 RGB frame as stored)] of a video, with PyAV."""
    with av.open(str(path)) as c:
        return [(float(f.pts * f.time_base), f.to_ndarray(format="rgb24")) for f in c.decode(video=0)]


def with_rotate_tag(src, dst, degrees):
    """A copy of ``src`` whose container says "rotate by ``degrees``" (a display matrix), as phones write."""
    subprocess.run([FFMPEG, "-loglevel", "error", "-y", "-i", str(src), "-c", "copy", "-metadata:s:v:0",
                    f"rotate={degrees}", str(dst)], check=True)
    return dst


def autorotated(src, dst):
    """FFmpeg's own rendering of ``src`` as displayed (the ffmpeg command applies the display matrix)."""
    subprocess.run([FFMPEG, "-loglevel", "error", "-y", "-i", str(src), "-c:v", "libx264", "-qp", "0", "-pix_fmt",
                    "yuv444p", str(dst)], check=True)
    return [f for _, f in decode(dst)]


@needs_ffmpeg
@pytest.mark.parametrize("tag", [90, 180, 270])
def test_display_matrix_is_applied_as_ffmpeg_does(tmp_path, tag):
    """Frames come out as FFmpeg displays them (reference: the ffmpeg command's autorotation), by
    iteration and by random access; frame_size is the displayed size; the rotation is recorded."""
    frames = [pattern(i) for i in range(6)]
    plain = encode(tmp_path / "plain.mp4", frames)
    phone = with_rotate_tag(plain, tmp_path / "phone.mp4", tag)
    reference = autorotated(phone, tmp_path / "shown.mp4")
    src = open_source(phone)
    got = list(src)
    assert src.frame_size == reference[0].shape[:2] == got[0].shape[:2]
    assert src.rotation in (90, 180, 270) and src.input_corrections == {"rotation": src.rotation}
    for g, r in zip(got, reference):
        assert np.abs(g.astype(int) - r.astype(int)).mean() < 2  # lossless up to colour conversions
    assert np.array_equal(src.read(4), got[4]) and np.array_equal(src.read(1), got[1])
    if tag == 180:  # same shape as stored: the frames must differ from the stored ones
        assert np.abs(got[0].astype(int) - frames[0].astype(int)).mean() > 20


def predict(*args):
    from lgrnet.cli import main

    return main(["predict", *map(str, args), "--size", "64", "--no-progress"])


@pytest.fixture(scope="module")
def weights(tmp_path_factory):
    import torch

    from lgrnet import LGRNet

    torch.manual_seed(0)
    return LGRNet.from_preset("tiny").save_pretrained(str(tmp_path_factory.mktemp("w") / "tiny.safetensors"))


@needs_ffmpeg
def test_predict_phone_video_in_displayed_orientation(tmp_path, weights):
    """Masks, probability maps and the overlay of a portrait phone video are in the displayed
    orientation (they were in the stored one), and predictions.json says the rotation was applied."""
    plain = encode(tmp_path / "plain.mp4", [pattern(i) for i in range(5)])
    phone = with_rotate_tag(plain, tmp_path / "phone.mp4", 90)
    shown = autorotated(phone, tmp_path / "shown.mp4")
    H, W = shown[0].shape[:2]
    assert (H, W) == (64, 48)
    out = tmp_path / "out"
    assert predict(phone, "--weights", weights, "--out", out) == 0
    info = json.loads((out / "phone" / "predictions.json").read_text())
    assert (info["height"], info["width"]) == (H, W) and info["input_corrections"] == {"rotation": 90}
    assert Image.open(out / "phone" / "masks" / "000000.png").size == (W, H)
    assert Image.open(out / "phone" / "probs" / "000004.png").size == (W, H)
    overlay = decode(out / "phone" / "overlay.mp4")
    assert overlay[0][1].shape[:2] == (H, W)
    # the overlay shows the frame as displayed (below the caption; outlines and H.264 at CRF 20 cost
    # ~11 grey levels), far from the frame turned the other way up (~56)
    for i in (2, 4):
        o = overlay[i][1][16:-4, 4:-4].astype(int)
        right, upside_down = (np.abs(o - s[16:-4, 4:-4]).mean() for s in (shown[i], np.rot90(shown[i], 2)))
        assert right < 15 and right < upside_down / 3


def test_variable_frame_rate_times_reach_predictions_and_overlay(tmp_path, weights):
    """A variable-frame-rate mp4: each frame's timestamp is in predictions.json and .csv, and the
    overlay shows each frame at its source time (it had a constant rate from the average)."""
    times = [0.0, 0.04, 0.1, 0.2, 0.21, 0.5, 0.52, 0.9]
    vfr = encode(tmp_path / "vfr.mp4", [pattern(i) for i in range(len(times))], times=times)
    assert [round(t, 6) for t, _ in decode(vfr)] == times  # the test file itself
    src = open_source(vfr)
    list(src)
    assert [src.frame_time(i) for i in range(len(times))] == pytest.approx(times, abs=1e-9)
    out = tmp_path / "out"
    assert predict(vfr, "--weights", weights, "--out", out) == 0
    info = json.loads((out / "vfr" / "predictions.json").read_text())
    assert [f["time"] for f in info["frames"]] == pytest.approx(times, abs=1e-6)
    with open(out / "vfr" / "predictions.csv") as fh:
        assert [float(r["time"]) for r in csv.DictReader(fh)] == pytest.approx(times, abs=1e-6)
    assert [t for t, _ in decode(out / "vfr" / "overlay.mp4")] == pytest.approx(times, abs=1 / 90000)


def test_dicom_frame_time_vector_gives_each_frame_its_time(tmp_path, weights):
    pydicom = pytest.importorskip("pydicom")
    from tests.helpers.dicom_forms import cine_frames, write_cine

    path = write_cine(tmp_path / "us.dcm", cine_frames(4, 40, 48))
    ds = pydicom.dcmread(path)
    del ds.FrameTime
    ds.FrameTimeVector, ds.FrameIncrementPointer = [0, 40, 60, 100], 0x00181065
    ds.save_as(path)
    src = open_source(path)
    assert [src.frame_time(i) for i in range(4)] == pytest.approx([0.0, 0.04, 0.1, 0.2])
    out = tmp_path / "out"
    assert predict(path, "--weights", weights, "--out", out, "--no-dicom-seg") == 0
    info = json.loads((out / "us" / "predictions.json").read_text())
    assert [f["time"] for f in info["frames"]] == pytest.approx([0.0, 0.04, 0.1, 0.2])
    assert [t for t, _ in decode(out / "us" / "overlay.mp4")] == pytest.approx([0.0, 0.04, 0.1, 0.2], abs=1 / 90000)


def test_constant_rate_sources_keep_index_over_fps(tmp_path):
    frames_dir = tmp_path / "frames"
    frames_dir.mkdir()
    for i in range(3):
        Image.fromarray(pattern(i)).save(frames_dir / f"{i}.png")
    src = open_source(frames_dir, fps=10)
    assert [src.frame_time(i) for i in range(3)] == pytest.approx([0.0, 0.1, 0.2])


def test_overlay_writer_times(tmp_path):
    """write(frame, time=...) stamps each frame at its time (1/90000 s units), never going backwards."""
    with OverlayVideoWriter(tmp_path / "o.mp4", 25, (48, 64)) as w:
        for i, t in enumerate([0.0, 0.033, 0.25, 0.25, 1.0]):  # a repeated time still moves forward
            w.write(pattern(i), time=t)
    got = [t for t, _ in decode(tmp_path / "o.mp4")]
    assert got[:3] == pytest.approx([0.0, 0.033, 0.25], abs=1e-9)
    assert got[3] == pytest.approx(0.25 + 1 / 90000) and got[4] == pytest.approx(1.0)
