"""Inputs that used to be accepted without a word (issue 13 item 8): a half-truncated .mkv whose
header's duration says more frames than decode is an error, and tiny or extreme-aspect frames get
a warning line from `lgrnet predict`."""

import numpy as np
import pytest

from lgrnet.cli import main
from lgrnet.errors import InputError, InputWarning
from lgrnet.io import open_source
from lgrnet.io.source import frame_size_warning

from tests.helpers.media import decode_video, encode_video


def _noise(n, h, w, seed=0):
    rng = np.random.default_rng(seed)
    return [np.clip(rng.normal(128, 40, (h, w, 3)), 0, 255).astype(np.uint8) for _ in range(n)]


@pytest.fixture(scope="module")
def weights(tmp_path_factory):
    from lgrnet.models.lgrnet import LGRNet

    return LGRNet.from_preset("tiny").save_pretrained(str(tmp_path_factory.mktemp("w") / "tiny.safetensors"))


@pytest.mark.parametrize("ext,codec", [("mkv", "libx264"), ("webm", "libvpx")])
def test_half_truncated_matroska_is_an_error(tmp_path, ext, codec):
    whole = encode_video(tmp_path / f"whole.{ext}", _noise(38, 72, 96), codec=codec)
    src = open_source(whole)
    assert src.num_frames is None and src.expected_frames == 38  # no count in the header, only a duration
    assert len(list(src)) == 38 == len(decode_video(whole))
    cut = tmp_path / f"cut.{ext}"
    data = whole.read_bytes()
    cut.write_bytes(data[: len(data) // 2])
    decodable = len(decode_video(cut))
    assert 0 < decodable < 30  # FFmpeg itself decodes part of it without complaint
    with pytest.raises(InputError, match=rf"cut\.{ext}: truncated: decoded {decodable} frames, but its "
                                         rf"header's duration \(1\.52 s at 25 fps\) says about 38"):
        list(open_source(cut))


def test_truncated_mkv_fails_predict(tmp_path, weights, capsys):
    whole = encode_video(tmp_path / "whole.mkv", _noise(38, 72, 96))
    data = whole.read_bytes()
    (tmp_path / "exam.mkv").write_bytes(data[: len(data) // 2])
    assert main(["predict", str(tmp_path / "exam.mkv"), "--weights", weights, "--out", str(tmp_path / "o"),
                 "--size", "32", "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert "exam.mkv: truncated" in err and "Traceback" not in err
    assert not (tmp_path / "o" / "exam").exists()


def test_frame_size_warning_rule():
    assert frame_size_warning("a.mp4", (288, 352), (352, 352)) is None
    assert frame_size_warning("a.mp4", (1080, 1920), (352, 352)) is None
    tiny = frame_size_warning("t.mp4", (16, 16), (352, 352))
    assert tiny.startswith("t.mp4: 16x16 frames are resized to the model's 352x352") and "upscaled 22.0x" in tiny
    wide = frame_size_warning("w.mp4", (64, 2000), (352, 352))
    assert "2000x64" in wide and "squashed" in wide and "scaled 31." in wide  # 2000/64 = 31.25
    assert "upscaled" in frame_size_warning("s.mp4", (40, 40), (352, 352))  # 8.8x
    assert frame_size_warning("s.mp4", (48, 48), (352, 352)) is None  # 7.3x


def test_predict_warns_for_tiny_and_extreme_aspect_videos(tmp_path, weights, capsys, recwarn):
    for name, (h, w) in {"tiny.mp4": (16, 16), "wide.mp4": (64, 2000), "fine.mp4": (48, 64)}.items():
        encode_video(tmp_path / name, _noise(2, h, w))
    for name, expect in (("tiny.mp4", "upscaled"), ("wide.mp4", "squashed"), ("fine.mp4", None)):
        assert main(["predict", str(tmp_path / name), "--weights", weights, "--out", str(tmp_path / "o"),
                     "--size", "64", "--no-progress", "--no-overlay"]) == 0
        err = capsys.readouterr().err
        lines = [line for line in err.splitlines() if "warning" in line]
        if expect is None:
            assert lines == [], err
        else:
            assert len(lines) == 1 and lines[0].startswith("lgrnet predict: warning: ") and expect in lines[0], err
            assert name in lines[0]
    assert (tmp_path / "o" / "tiny" / "predictions.json").is_file()  # a warning, not an error
    assert not [w for w in recwarn if issubclass(w.category, InputWarning)]  # printed by the CLI, not re-raised
