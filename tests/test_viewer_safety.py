"""The review page serves only regular files inside a result folder (issue 13 item 9), and an upload
that turns out truncated fails with the user's file name and one log line (item 7)."""
from __future__ import annotations

import io
import os
import time
import zipfile
from pathlib import Path

import numpy as np
import pytest

from lgrnet.viewer import ViewerApp, find_results
from tests.helpers.media import encode_video
from test_viewer import _upload
from tests.helpers.viewer_results import Server, make_result

SECRET = b"root:x:0:0:SECRET-LINE\n"


@pytest.fixture
def linked(tmp_path):
    """A result folder whose predictions.csv, overlay.mp4 and mask 1 are symlinks to files outside it."""
    root = make_result(tmp_path / "case01")
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "passwd").write_bytes(SECRET)
    png = (root / "masks" / "000001.png").read_bytes()
    (outside / "mask.png").write_bytes(png + SECRET)  # a valid PNG with the secret after it
    (root / "predictions.csv").unlink()
    os.symlink(outside / "passwd", root / "predictions.csv")
    os.symlink(outside / "passwd", root / "overlay.mp4")
    (root / "masks" / "000001.png").unlink()
    os.symlink(outside / "mask.png", root / "masks" / "000001.png")
    s = Server(ViewerApp(find_results(root)))
    yield s, root, outside
    s.close()


def test_symlinks_out_of_the_result_are_not_served(linked):
    s, root, _ = linked
    for path in ("/api/results/0/predictions.csv", "/api/results/0/overlay.mp4", "/api/results/0/outlines/1.json"):
        status, _, body = s.get(path)
        assert status == 403 and SECRET not in body, (path, status, body[:200])
        assert b"not a regular file inside the result folder" in body
    assert s.get_json("/api/results/0")["has_overlay"] is False
    status, _, body = s.get("/api/results/0/masks.zip")
    assert status == 200 and SECRET not in body
    names = zipfile.ZipFile(io.BytesIO(body)).namelist()
    assert "masks/000001.png" not in names and len(names) == 11 and "masks/000000.png" in names
    assert s.get("/api/results/0/outlines/2.json")[0] == 200  # regular masks still served


def test_symlinked_masks_folder_and_rebuilt_csv(tmp_path):
    root = make_result(tmp_path / "case01")
    real_masks = tmp_path / "elsewhere"
    (root / "masks").rename(real_masks)
    os.symlink(real_masks, root / "masks")  # every mask now resolves outside the result folder
    (root / "predictions.csv").unlink()  # missing: rebuilt from predictions.json, as before
    s = Server(ViewerApp(find_results(root)))
    try:
        status, _, body = s.get("/api/results/0/masks.zip")
        assert status == 200 and zipfile.ZipFile(io.BytesIO(body)).namelist() == []
        assert s.get("/api/results/0/outlines/0.json")[0] == 403
        status, _, body = s.get("/api/results/0/predictions.csv")
        assert status == 200 and body.startswith(b"index,name,score")
    finally:
        s.close()


def test_truncated_upload_fails_with_the_users_file_name(tmp_path, capfd):
    from lgrnet.models.lgrnet import LGRNet
    from lgrnet.viewer.uploads import make_model_runner

    weights = LGRNet.from_preset("tiny").save_pretrained(str(tmp_path / "tiny.safetensors"))
    rng = np.random.default_rng(0)
    frames = [np.clip(rng.normal(128, 50, (48, 64, 3)), 0, 255).astype(np.uint8) for _ in range(20)]
    whole = encode_video(tmp_path / "whole.mp4", frames, faststart=True, gop=5).read_bytes()
    cut = whole[: int(len(whole) * 0.5)]  # the index and the first frames survive: the upload check passes
    work = tmp_path / "work"
    s = Server(ViewerApp(find_results(make_result(tmp_path / "r")), runner=make_model_runner(Path(weights), size=32),
                         work_dir=work))
    try:
        capfd.readouterr()
        status, job = _upload(s, cut, "my exam.mp4")
        assert status == 202, job
        deadline = time.time() + 120
        while job["state"] not in ("done", "error") and time.time() < deadline:
            time.sleep(0.1)
            job = s.get_json(f"/api/jobs/{job['id']}")
        assert job["state"] == "error", job
        msg = job["message"]
        assert msg.startswith("my exam.mp4: ") and ("truncated" in msg or "corrupt" in msg), msg
        assert str(work) not in msg and "upload-" not in msg and "InputError" not in msg, msg
        err = capfd.readouterr().err
        lines = [line for line in err.splitlines() if line.strip()]
        assert lines == [f"lgrnet view: upload my exam.mp4: {msg}"], err
        assert not (work / "results").exists() or not any((work / "results").iterdir())  # no partial result
        assert len(s.get_json("/api/info")["results"]) == 1
    finally:
        s.close()
