"""Every command that writes checks its output first, before any compute, and a read-only place is one
line naming the path the user gave, exit 2 (issue 29, item 2: evaluate, train, dataset from-results /
import / export, score --json, export --format onnx and convert ended in a PermissionError traceback,
the ONNX export after ~15 s; predict and demo named a random `.lgrnet-write-check-...` file).

The commands run in a subprocess for which file permissions hold: as root (CI) under ``setpriv``
without CAP_DAC_OVERRIDE / CAP_DAC_READ_SEARCH, else as the user running the tests. Loading a model,
training and serving the page are tripwires there (tests/readonly_runner.py), so a check that comes
after the compute fails the test too.
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from lgrnet.commands.demo import demo_clip, demo_weights

TESTS = Path(__file__).resolve().parent
DROP_DAC = ["--bounding-set", "-dac_override,-dac_read_search", "--"]


def obeying_permissions() -> list:
    """The command prefix that makes file permissions hold for a subprocess."""
    if os.geteuid() != 0:
        return []
    setpriv = shutil.which("setpriv")
    if setpriv is None:  # never skip: CI runs as root and must run these tests
        pytest.fail("running as root, the read-only output tests need setpriv (util-linux) to drop "
                    "CAP_DAC_OVERRIDE", pytrace=False)
    return [setpriv, *DROP_DAC]


def tiny_split(root: Path, n: int = 3) -> Path:
    for sub in ("Frame", "GT"):
        (root / sub / "v1").mkdir(parents=True)
    for i in range(n):
        Image.fromarray(np.full((64, 64, 3), 40 * i, np.uint8)).save(root / "Frame" / "v1" / f"{i}.png")
        m = np.zeros((64, 64), np.uint8)
        m[10:30, 10:30] = 255
        Image.fromarray(m).save(root / "GT" / "v1" / f"{i}.png")
    return root


@pytest.fixture(scope="module")
def readonly_runs(tmp_path_factory):
    """{case: (code, stderr, the output path given)} of every writing command with its output in a
    read-only folder."""
    from tests.helpers.viewer_results import make_result

    tmp = tmp_path_factory.mktemp("ro")
    prefix = obeying_permissions()
    data = tiny_split(tmp / "ds" / "Test")
    result = make_result(tmp / "results" / "case01")
    frames = demo_clip() / "frames"
    weights = str(demo_weights())
    ro = tmp / "ro"
    ro.mkdir()
    cases = {
        "predict": (["predict", str(frames), "--weights", weights, "--out", "{out}", "--no-progress"], ro / "pred"),
        "demo": (["demo", "--out", "{out}"], ro / "demo"),
        "evaluate": (["evaluate", "--weights", weights, "--data", str(tmp / "ds"), "--split", "Test", "--out", "{out}",
                      "--quiet"], ro / "eval"),
        "train": (["train", "--preset", "tiny", "--data", str(data), "--out", "{out}", "--max-steps", "1",
                   "--no-tensorboard"], ro / "run"),
        "dataset from-results": (["dataset", "from-results", str(result), "--out", "{out}"], ro / "dataset"),
        "dataset import": (["dataset", "import", "--format", "coco", str(tmp / "none.json"), "--frames", str(frames),
                            "--out", "{out}"], ro / "dataset2"),
        "dataset export": (["dataset", "export", "--format", "coco", str(result), "--out", "{out}"], ro / "pre.json"),
        "score --json": (["score", str(data / "GT"), str(data / "GT"), "--json", "{out}", "--quiet"], ro / "s.json"),
        "score --csv": (["score", str(data / "GT"), str(data / "GT"), "--csv", "{out}", "--quiet"], ro / "sub" / "s.csv"),
        "export": (["export", "--format", "onnx", "--weights", weights, "--frames", "2", "--size", "64", "{out}"],
                   ro / "m.onnx"),
        "convert": (["convert", weights, "--preset", "tiny", "{out}"], ro / "c.safetensors"),
        "index": (["index", "{out}"], ro),
        "view --upload-dir": (["view", str(result), "--port", "0", "--upload-dir", "{out}"], ro / "uploads"),
    }
    argvs = [[str(out) if a == "{out}" else a for a in argv] for argv, out in cases.values()]
    (tmp / "cases.json").write_text(json.dumps(argvs))
    ro.chmod(0o555)
    try:
        control = subprocess.run([*prefix, sys.executable, "-c", f"open({str(ro / 'x')!r}, 'w')"],
                                 capture_output=True, text=True)
        assert control.returncode != 0 and "PermissionError" in control.stderr, "the folder is not read-only here"
        env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(TESTS), os.environ.get("PYTHONPATH", "")]))
        r = subprocess.run([*prefix, sys.executable, str(TESTS / "readonly_runner.py"), str(tmp / "cases.json")],
                           capture_output=True, text=True, env=env, cwd=tmp, timeout=600)
    finally:
        ro.chmod(0o755)
    assert r.returncode == 0, r.stdout + r.stderr
    lines = [json.loads(line) for line in r.stdout.splitlines() if line.startswith("{")]
    assert len(lines) == len(cases), r.stdout + r.stderr
    return {name: (line["code"], line["stderr"], str(out)) for (name, (_, out)), line in zip(cases.items(), lines)}


@pytest.mark.parametrize("case", ["predict", "demo", "evaluate", "train", "dataset from-results", "dataset import",
                                  "dataset export", "score --json", "score --csv", "export", "convert", "index",
                                  "view --upload-dir"])
def test_read_only_output_is_one_line_naming_the_path(readonly_runs, case):
    code, err, out = readonly_runs[case]
    assert code == 2, (case, code, err)
    assert "Traceback" not in err and "ran before the output was checked" not in err, err
    assert len(err.strip().splitlines()) == 1, err
    assert err.startswith(f"lgrnet {case.split()[0]}") and f"{out}: cannot write" in err, err
    assert "Permission denied" in err and ".lgrnet-write-check" not in err, err
