"""Shared test fixtures.

``shared_dir``: the read-only folder with the authors' fixtures (official/) and real videos (data/).
Found via $LGRNET_SHARED, then <repo>/../shared, then /work/shared; tests that need it are
skipped with a clear reason when none exists.
"""
from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

REPO = Path(__file__).resolve().parents[1]


def find_shared_dir() -> Path | None:
    candidates = [os.environ.get("LGRNET_SHARED"), REPO.parent / "shared", "/work/shared"]
    for c in candidates:
        if c and (Path(c) / "official").is_dir():
            return Path(c)
    return None


@pytest.fixture(scope="session")
def shared_dir() -> Path:
    d = find_shared_dir()
    if d is None:
        pytest.skip("the shared data folder (../shared with official/ and data/) is not available")
    return d


@pytest.fixture(scope="session")
def data_dir(shared_dir) -> Path:
    d = shared_dir / "data"
    if not d.is_dir():
        pytest.skip(f"{d} is missing")
    return d


@pytest.fixture
def one_thread():
    """One torch thread for the test (gradcheck and other runs of thousands of tiny ops: a second
    thread only adds synchronisation, and waits for a busy core on a shared machine)."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


@pytest.fixture(autouse=True)
def _threads():
    # Keep runs comparable and the 2-core CI machine responsive.
    torch.set_num_threads(min(2, os.cpu_count() or 1))
    yield
