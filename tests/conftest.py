"""Shared test fixtures.

``shared_dir``: the read-only folder with the authors' fixtures (official/) and real videos (data/).
Found at $LGRNET_SHARED when set, else <repo>/../shared, else /work/shared. The tests that need it (the
fixtures, the oracle, the real videos) must run in CI, so a missing folder FAILS them with a message
saying so; in a bare clone set LGRNET_SKIP_SHARED=1 to skip them instead (see the README).
"""
from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

REPO = Path(__file__).resolve().parents[1]


def find_shared_dir() -> Path | None:
    if os.environ.get("LGRNET_SHARED"):  # set: only there (a wrong setting is not papered over)
        candidates = [os.environ["LGRNET_SHARED"]]
    else:
        candidates = [REPO.parent / "shared", "/work/shared"]
    for c in candidates:
        if c and (Path(c) / "official").is_dir():
            return Path(c)
    return None


SKIP_SHARED = "LGRNET_SKIP_SHARED"


def shared_missing(what: str) -> None:
    """A test cannot run without a part of the shared folder: fail, or skip when the user opted out."""
    if os.environ.get(SKIP_SHARED, "").strip() not in ("", "0"):
        pytest.skip(f"{what} ({SKIP_SHARED} is set)")
    pytest.fail(f"{what}: the fixture, oracle and real-video tests need it. Point $LGRNET_SHARED at the "
                f"folder, or set {SKIP_SHARED}=1 to skip these tests in a bare clone", pytrace=False)


@pytest.fixture(scope="session")
def shared_dir() -> Path:
    d = find_shared_dir()
    if d is None:
        shared_missing("the shared data folder (../shared with official/ and data/) is not available")
    return d


@pytest.fixture(scope="session")
def data_dir(shared_dir) -> Path:
    d = shared_dir / "data"
    if not d.is_dir():
        shared_missing(f"{d} is missing")
    return d


@pytest.fixture(scope="session")
def shared_path(shared_dir):
    """``shared_path("data/...")``: that path inside the shared folder; fails (or skips, opted out)
    when it is missing."""
    def get(rel: str) -> Path:
        p = shared_dir / rel
        if not p.exists():
            shared_missing(f"{p} is missing")
        return p

    return get


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


# ---- headless Chromium for the review page's browser tests (test_viewer*.py) ---------------------

CHROMIUM, CHROMEDRIVER = "/usr/bin/chromium", "/usr/bin/chromedriver"


@pytest.fixture
def browser(tmp_path):
    missing = [p for p in (CHROMIUM, CHROMEDRIVER) if not os.access(p, os.X_OK)]
    if missing:
        pytest.skip(f"headless browser test needs {' and '.join(missing)} (apt-get install chromium chromium-driver)")
    webdriver = pytest.importorskip("selenium.webdriver", reason="the browser test needs selenium (pip install selenium)")
    from selenium.webdriver.chrome.service import Service

    opts = webdriver.ChromeOptions()
    opts.binary_location = CHROMIUM
    for flag in ("--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--disable-dev-shm-usage",
                 "--window-size=1280,900", "--force-device-scale-factor=1", f"--user-data-dir={tmp_path / 'chrome-profile'}"):
        opts.add_argument(flag)
    opts.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=opts)
    driver.set_page_load_timeout(30)
    yield driver
    driver.quit()


@pytest.fixture
def result_dir(tmp_path) -> Path:
    """The viewer tests' synthetic result folder (tests/viewer_results.py) at tmp_path/case01."""
    from viewer_results import make_result

    return make_result(tmp_path / "case01")


@pytest.fixture
def server(result_dir):
    """A viewer over ``result_dir`` on a free loopback port (closed after the test)."""
    from lgrnet.viewer import ViewerApp, find_results
    from viewer_results import Server

    s = Server(ViewerApp(find_results(result_dir)))
    yield s
    s.close()
