"""Messages that must send users the right way (issue 13 item 4): files given as --weights that are
not weights, a checkpoint without a config, a truncated uncompressed DICOM, an empty video file.

Each bad input gets exit status 2 and one line naming the file; never torch's advice to turn off
``weights_only``, never a pickle-protocol warning, never a traceback."""
import os
import pickle
from pathlib import Path

import numpy as np
import pytest
import torch

from lgrnet.cli import main
from lgrnet.errors import InputError
from lgrnet.io import open_source

from tests.helpers.media import encode_video


class _Sneaky:
    """Unpickling this would create a file: the loader must refuse it, never run it."""

    target = ""

    def __reduce__(self):
        return (open, (self.target, "w"))


@pytest.fixture(scope="module")
def clip(tmp_path_factory):
    path = tmp_path_factory.mktemp("clip") / "clip.mp4"
    rng = np.random.default_rng(0)
    return encode_video(path, [rng.integers(0, 256, (32, 32, 3), dtype=np.uint8) for _ in range(3)])


def _weight_files(tmp: Path):
    rng = np.random.default_rng(1)
    files = {}
    files["random.pth"] = rng.integers(0, 256, 5000, dtype=np.uint8).tobytes()
    files["random.safetensors"] = rng.integers(0, 256, 5000, dtype=np.uint8).tobytes()
    files["empty.pth"] = b""
    files["plain_pickle.pth"] = pickle.dumps({"weights": [1.0, 2.0]}, protocol=4)
    torch.save({"w": torch.zeros(4)}, tmp / "ok.pth")
    whole = (tmp / "ok.pth").read_bytes()
    files["truncated.pth"] = whole[: len(whole) // 2]
    sneaky = _Sneaky()
    sneaky.target = str(tmp / "pwned")
    torch.save({"w": torch.zeros(4), "x": sneaky}, tmp / "code.pth")
    for name, data in files.items():
        (tmp / name).write_bytes(data)
    return sorted(files) + ["code.pth"]


def test_files_that_are_not_weights_get_one_line(tmp_path, clip, capsys, recwarn):
    names = _weight_files(tmp_path)
    expect = {"random.pth": "not a weight file", "random.safetensors": "not a readable safetensors file",
              "empty.pth": "the file is empty", "plain_pickle.pth": "a Python pickle",
              "truncated.pth": "damaged or truncated", "code.pth": "holding Python objects ("}
    for name in names:
        rc = main(["predict", str(clip), "--weights", str(tmp_path / name), "--out", str(tmp_path / "out")])
        err = capsys.readouterr().err
        first = [line for line in err.splitlines() if "error:" in line][0]
        assert rc == 2, (name, err)
        assert f"{name}: " in first and expect[name] in first, (name, err)
        assert "safetensors" in first and "state dict" in first  # says what is expected
        assert "weights_only" not in err and "Traceback" not in err, (name, err)
    assert not (tmp_path / "pwned").exists()  # the pickled call was never made
    assert not (tmp_path / "out").exists()
    assert not [w for w in recwarn if "pickle protocol" in str(w.message)]


def test_missing_config_names_the_cli_option(tmp_path, clip, capsys):
    from safetensors.torch import save_file

    from lgrnet.models.lgrnet import LGRNet

    state = {k: v.contiguous() for k, v in LGRNet.from_preset("tiny").state_dict().items()}
    save_file(state, str(tmp_path / "bare.safetensors"))  # no lgrnet config in its metadata
    torch.save(state, tmp_path / "bare.pth")
    for name in ("bare.safetensors", "bare.pth"):
        assert main(["predict", str(clip), "--weights", str(tmp_path / name), "--out", str(tmp_path / "o")]) == 2
        err = capsys.readouterr().err
        assert f"{name}:" in err and "--preset NAME" in err and "pass preset=" not in err, err
    assert main(["predict", str(clip), "--weights", str(tmp_path / "bare.pth"), "--preset", "tiny",
                 "--out", str(tmp_path / "o"), "--size", "32"]) == 0


def test_truncated_uncompressed_dicom_says_truncated(tmp_path):
    pytest.importorskip("pydicom")
    from test_io_dicom import write_dicom

    frames = np.random.default_rng(2).integers(0, 256, (6, 20, 30), dtype=np.uint8)
    whole = write_dicom(tmp_path / "whole.dcm", frames).read_bytes()
    for keep, held in ((len(whole) - 50, 5), (len(whole) - 3 * 600, 3)):
        cut = tmp_path / f"cut{keep}.dcm"
        cut.write_bytes(whole[:keep])
        with pytest.raises(InputError) as info:
            list(open_source(cut))
        msg = str(info.value)
        assert msg.startswith(f"{cut}: truncated") and f"holds {held} of the 6 frames" in msg, msg
        assert "pylibjpeg" not in msg and "compressed DICOM" not in msg


def test_truncated_rle_dicom_says_truncated(tmp_path):
    pytest.importorskip("pydicom")
    from test_io_dicom import write_dicom

    frames = np.random.default_rng(3).integers(0, 256, (4, 16, 24, 3), dtype=np.uint8)
    whole = write_dicom(tmp_path / "rle.dcm", frames, rle=True).read_bytes()
    cut = tmp_path / "cut.dcm"
    cut.write_bytes(whole[: len(whole) // 2])
    with pytest.raises(InputError, match=r"cut\.dcm: truncated"):
        list(open_source(cut))


def test_empty_video_file_says_empty(tmp_path, capsys):
    (tmp_path / "x.mp4").write_bytes(b"")
    with pytest.raises(InputError, match=r"x\.mp4: the file is empty"):
        open_source(tmp_path / "x.mp4")
    weights = tmp_path / "tiny.safetensors"
    from lgrnet.models.lgrnet import LGRNet

    LGRNet.from_preset("tiny").save_pretrained(str(weights))
    assert main(["predict", str(tmp_path / "x.mp4"), "--weights", str(weights), "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err
    assert "x.mp4: the file is empty" in err and "Invalid data" not in err
    assert os.path.getsize(tmp_path / "x.mp4") == 0
