"""The tests that need the shared folder (fixtures, oracle, real videos) skip when it is missing, with a
summary at the end of the run naming where it was looked for; with LGRNET_REQUIRE_SHARED=1 (what CI
sets) they fail instead (tests/conftest.py). Each case runs pytest in a subprocess on three such tests,
one through each fixture (shared_dir, data_dir, shared_path)."""
from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

TESTS = Path(__file__).resolve().parent
REPO = TESTS.parent
NEEDS_SHARED = ["test_official_fixtures.py::test_bare_state_dict_and_missing_keys",
                "test_datasets.py::test_real_data_is_ordered_by_number",
                "test_io_frames.py::test_real_folder_natural_order"]


def run_pytest(shared: Path, **extra: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != "LGRNET_REQUIRE_SHARED"}
    env.update(LGRNET_SHARED=str(shared), **extra)
    return subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                           *[str(TESTS / t) for t in NEEDS_SHARED]],
                          cwd=shared.parent, env=env, capture_output=True, text=True, timeout=300)


@pytest.mark.parametrize("shape", ["missing", "empty"])
def test_missing_shared_skips_with_a_summary(tmp_path, shape):
    shared = tmp_path / "no-such-folder"
    if shape == "empty":
        shared.mkdir()
    r = run_pytest(shared)
    assert r.returncode == 0, r.stdout + r.stderr
    assert re.search(r"\b3 skipped\b", r.stdout) and "passed" not in r.stdout and "error" not in r.stdout, r.stdout
    # the summary: one line, after the results, naming the count, the folder and the variable
    line = f"3 tests skipped: the shared data folder was not found at {shared}"
    assert line in r.stdout, r.stdout
    assert "set LGRNET_SHARED=" in r.stdout.split(line, 1)[1].splitlines()[0]
    assert "Traceback" not in r.stdout


@pytest.mark.parametrize("value", ["1", "yes"])
def test_required_shared_fails(tmp_path, value):
    shared = tmp_path / "no-such-folder"
    r = run_pytest(shared, LGRNET_REQUIRE_SHARED=value)
    assert r.returncode == 1, r.stdout + r.stderr
    assert re.search(r"\b3 errors?\b", r.stdout) and "skipped" not in r.stdout, r.stdout  # never a skip
    assert f"{shared} (with official/ and data/) is not available" in r.stdout
    assert "LGRNET_REQUIRE_SHARED=1 is set" in r.stdout and "Traceback" not in r.stdout


def test_require_zero_means_not_required(tmp_path):
    r = run_pytest(tmp_path / "no-such-folder", LGRNET_REQUIRE_SHARED="0")
    assert r.returncode == 0 and re.search(r"\b3 skipped\b", r.stdout), r.stdout + r.stderr


def run_ci(tmp_path: Path, shared: Path) -> subprocess.CompletedProcess:
    """.ci/run, copied into tmp_path/ci (it works on the folder above its own), with a python3 on PATH that
    only says it was called: nothing is installed, the run stops where it would create the venv."""
    work = tmp_path / "ci"
    (work / ".ci").mkdir(parents=True)
    (work / ".ci" / "run").write_text((REPO / ".ci" / "run").read_text())
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    stub = bin_dir / "python3"
    stub.write_text("#!/bin/sh\necho 'python3 called' >&2\nexit 99\n")
    stub.chmod(0o755)
    env = {k: v for k, v in os.environ.items() if k != "LGRNET_REQUIRE_SHARED"}
    env.update(LGRNET_SHARED=str(shared), PATH=f"{bin_dir}{os.pathsep}{env.get('PATH', '')}")
    return subprocess.run(["bash", str(work / ".ci" / "run")], env=env, capture_output=True, text=True, timeout=60)


def test_ci_fails_at_once_without_the_shared_folder(tmp_path):
    missing = tmp_path / "no-such-folder"
    r = run_ci(tmp_path, missing)
    assert r.returncode == 1, r.stdout + r.stderr
    assert f"CI needs the shared data folder (official/ and data/) at {missing}" in r.stderr
    assert "python3 called" not in r.stderr  # before anything is installed
    (missing / "official").mkdir(parents=True)  # data/ still missing: not enough
    assert run_ci(tmp_path / "again", missing).returncode == 1
    (missing / "data").mkdir()
    r = run_ci(tmp_path / "present", missing)
    assert r.returncode == 99 and "python3 called" in r.stderr, r.stdout + r.stderr  # went on to the install


def test_ci_requires_the_shared_folder():
    """.ci/run exports LGRNET_REQUIRE_SHARED=1 before it runs pytest (CI never skips these silently)."""
    lines = [ln.strip() for ln in (REPO / ".ci" / "run").read_text().splitlines() if not ln.strip().startswith("#")]
    require = [i for i, ln in enumerate(lines) if re.fullmatch(r"export LGRNET_REQUIRE_SHARED=1", ln)]
    pytest_runs = [i for i, ln in enumerate(lines) if "-m pytest" in ln]
    assert require and pytest_runs and require[0] < pytest_runs[0], "\n".join(lines)
