"""Atomic writes: the final files and folders get 0666 / 0777 minus the umask (not mkstemp's 0600),
nothing is left behind on failure; the package's writers use them."""
from __future__ import annotations

import os
import stat
from types import SimpleNamespace

import numpy as np
import pytest

from lgrnet.files import atomic_write, make_temp_dir, write_bytes_atomic, write_text_atomic


@pytest.fixture(params=[0o022, 0o077, 0o002])
def umask(request):
    old = os.umask(request.param)
    yield request.param
    os.umask(old)


def mode(path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


def test_files_get_the_umask_mode(tmp_path, umask):
    p = write_text_atomic(tmp_path / "sub" / "a.json", "{}\n")
    assert mode(p) == 0o666 & ~umask and open(p).read() == "{}\n"
    (tmp_path / "b.bin").write_bytes(b"old")
    os.chmod(tmp_path / "b.bin", 0o600)
    write_bytes_atomic(tmp_path / "b.bin", b"new")  # replacing a file gives it the normal mode too
    assert mode(tmp_path / "b.bin") == 0o666 & ~umask and (tmp_path / "b.bin").read_bytes() == b"new"
    d = make_temp_dir(tmp_path, ".x.partial-")
    assert d.is_dir() and d.name.startswith(".x.partial-") and mode(d) == 0o777 & ~umask
    assert make_temp_dir(tmp_path, ".x.partial-") != d


def test_failed_write_leaves_nothing(tmp_path):
    (tmp_path / "keep.txt").write_text("original")

    def broken(tmp):
        with open(tmp, "w") as f:
            f.write("partial")
        raise RuntimeError("disk full")

    with pytest.raises(RuntimeError, match="disk full"):
        atomic_write(tmp_path / "keep.txt", broken)
    assert (tmp_path / "keep.txt").read_text() == "original"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["keep.txt"]


def test_package_writers_use_normal_permissions(tmp_path, umask):
    """A training checkpoint, a score table and a prediction result folder with its files."""
    import torch

    from lgrnet.inference.predictor import FramePrediction
    from lgrnet.training.state import save_checkpoint
    from lgrnet.results.folder import ResultFolderWriter
    from lgrnet.evaluation.scoring import ScoreResult, write_csv

    save_checkpoint(str(tmp_path / "last.pt"), {"step": 1, "w": torch.zeros(2)})
    assert mode(tmp_path / "last.pt") == 0o666 & ~umask
    from lgrnet import LGRNet

    weights = LGRNet.from_preset("tiny").save_pretrained(str(tmp_path / "best.safetensors"))  # safetensors writes 0600
    assert mode(weights) == 0o666 & ~umask
    write_csv(ScoreResult("authors", {"Dice": 0.5}, {}, 1, 1), tmp_path / "authors.csv")
    assert mode(tmp_path / "authors.csv") == 0o666 & ~umask

    source = SimpleNamespace(path=tmp_path / "in.mp4", kind="video", fps=25.0, frame_size=(8, 10))
    mask = np.zeros((8, 10), bool)
    mask[2:5, 3:7] = True
    with ResultFolderWriter(tmp_path / "out", "case", overlay=False) as w:
        w.start(source)
        w.write(FramePrediction(0, "0", np.zeros((8, 10, 3), np.uint8), mask * 0.9, mask, 0.8, 0.9, 1.0, 0.72, 2))
        folder = w.finish({})
    assert mode(folder) == 0o777 & ~umask
    for p in [folder / "predictions.json", folder / "predictions.csv", folder / "masks" / "000000.png"]:
        assert mode(p) == 0o666 & ~umask, p
    assert mode(folder / "masks") == 0o777 & ~umask
