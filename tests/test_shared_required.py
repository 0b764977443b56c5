"""The tests that need the shared folder (fixtures, oracle, real videos) fail with a clear message when
it is missing, and skip only when the user opts out with LGRNET_SKIP_SHARED=1 (tests/conftest.py)."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

TESTS = Path(__file__).resolve().parent
# one test through each fixture: shared_dir, data_dir, shared_path
NEEDS_SHARED = ["test_official_fixtures.py::test_bare_state_dict_and_missing_keys",
                "test_datasets.py::test_real_data_is_ordered_by_number",
                "test_io_frames.py::test_real_folder_natural_order"]


def run_without_shared(tmp_path, **extra):
    env = {k: v for k, v in os.environ.items() if k != "LGRNET_SKIP_SHARED"}
    env.update(LGRNET_SHARED=str(tmp_path / "no-such-folder"), **extra)
    return subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-rs",
                           *[str(TESTS / t) for t in NEEDS_SHARED]],
                          cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)


def test_missing_shared_fails_with_a_message(tmp_path):
    r = run_without_shared(tmp_path)
    assert r.returncode == 1, r.stdout + r.stderr
    assert "3 errors" in r.stdout, r.stdout  # fixture setup fails: an error, never a skip
    assert "the shared data folder (../shared with official/ and data/) is not available" in r.stdout
    assert "LGRNET_SKIP_SHARED=1" in r.stdout
    assert "Traceback" not in r.stdout


def test_opt_out_skips(tmp_path):
    r = run_without_shared(tmp_path, LGRNET_SKIP_SHARED="1")
    assert r.returncode == 0, r.stdout + r.stderr
    assert "3 skipped" in r.stdout and "LGRNET_SKIP_SHARED is set" in r.stdout, r.stdout
