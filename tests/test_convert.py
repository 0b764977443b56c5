"""`lgrnet convert` on a checkpoint laid out as the authors' trainer writes ckpt.pth.tar (weights
under 'model' beside optimizer, scheduler and numpy/python RNG state), the SHA-256 it prints,
and the strict key and shape checks."""
import hashlib
import random

import numpy as np
import torch
from tests.helpers.official_utils import authors_state_dict

from lgrnet import LGRNet
from lgrnet.cli import main


def trainer_checkpoint(state, path):
    """The dict of their Trainer.save_ckpt: model, optimizer, scheduler, counters, per-rank RNG states."""
    torch.save({"model": state,
                "optimizer": {"state": {}, "param_groups": [{"lr": 1e-4, "params": [0, 1]}]},
                "scheduler": {"milestones": {3: 1, 6: 1}, "last_epoch": 12},
                "num_samples": 1234, "num_iterations": 823,
                "rng_state_dict_by_rank": {0: {"cpu_rng_state": torch.get_rng_state(),
                                               "numpy_rng_state": np.random.get_state(),
                                               "py_rng_state": random.getstate()}},
                "metrics": {}}, path)
    return path


def test_convert_trainer_checkpoint_prints_sha256(shared_dir, tmp_path, capsys):
    state = authors_state_dict(shared_dir, "sunseg_pvt")
    src = trainer_checkpoint(state, tmp_path / "ckpt.pth.tar")
    dst = tmp_path / "lgrnet_sunseg_pvt.safetensors"
    assert main(["convert", str(src), str(dst), "--preset", "sunseg_pvt"]) == 0
    out = capsys.readouterr().out
    src_sha = hashlib.sha256(src.read_bytes()).hexdigest()
    dst_sha = hashlib.sha256(dst.read_bytes()).hexdigest()
    assert f"{src}: sha256 {src_sha}" in out and f"sha256 {dst_sha}" in out
    assert "checked: 654 keys of the sunseg_pvt model present with their shapes, none left over" in out
    ours = LGRNet.from_pretrained(str(dst))
    direct = LGRNet.from_pretrained(str(src), preset="sunseg_pvt")  # the same file, loaded without converting
    assert all(torch.equal(a, b) for a, b in zip(ours.state_dict().values(), direct.state_dict().values()))
    from safetensors import safe_open

    with safe_open(str(dst), framework="pt") as f:
        assert f.metadata()["converted_from_sha256"] == src_sha


def test_convert_refuses_a_checkpoint_that_does_not_fit(shared_dir, tmp_path, capsys):
    """A wrong shape fails with one line (missing keys: tests/test_model.py)."""
    state = dict(authors_state_dict(shared_dir, "sunseg_pvt"))
    state["decoder.query_class.bias"] = torch.zeros(5)
    message = r"shape mismatch for 1 keys: decoder\.class_embed\.bias: file \(5,\) vs model \(2,\)"
    src = trainer_checkpoint(state, tmp_path / "ckpt.pth.tar")
    dst = tmp_path / "out.safetensors"
    assert main(["convert", str(src), str(dst), "--preset", "sunseg_pvt"]) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err
    import re

    assert re.search(message, err), err
    assert not dst.exists()
