"""Shared test fixtures.

``shared_dir``: the read-only folder with the authors' fixtures (official/) and real videos (data/).
Found at $LGRNET_SHARED when set (only there: a setting that names a missing folder means "not
available"), else at <repo>/../shared; nowhere else. Without it the tests that need it (the fixtures,
the oracle, the real videos) SKIP, and the end of the run says how many and where the folder was
looked for. CI sets LGRNET_REQUIRE_SHARED=1 (.ci/run): then a missing folder FAILS those tests, so that
nothing is skipped silently there.
"""
from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

REPO = Path(__file__).resolve().parents[1]
SHARED_ENV, REQUIRE_ENV = "LGRNET_SHARED", "LGRNET_REQUIRE_SHARED"
#: every skip for want of the shared folder starts with this (counted by pytest_terminal_summary)
SHARED_SKIP = "needs the shared data folder"


def shared_candidate() -> Path:
    """Where the shared folder is looked for: $LGRNET_SHARED when set, else <repo>/../shared."""
    return Path(os.environ[SHARED_ENV]) if os.environ.get(SHARED_ENV) else REPO.parent / "shared"


def find_shared_dir() -> Path | None:
    c = shared_candidate()
    return c if (c / "official").is_dir() else None


def shared_required() -> bool:
    return os.environ.get(REQUIRE_ENV, "").strip() not in ("", "0")


def shared_missing(what: str) -> None:
    """A test cannot run without a part of the shared folder: skip, or fail where CI requires it."""
    if shared_required():
        pytest.fail(f"{what}: the fixture, oracle and real-video tests need it and {REQUIRE_ENV}=1 is set. "
                    f"Point ${SHARED_ENV} at the folder (with official/ and data/)", pytrace=False)
    pytest.skip(f"{SHARED_SKIP}: {what}")


def pytest_terminal_summary(terminalreporter, exitstatus, config) -> None:
    """One visible line at the end of the run: how many tests skipped for want of the shared folder."""
    n = 0
    for rep in terminalreporter.stats.get("skipped", []):
        longrepr = getattr(rep, "longrepr", None)
        if isinstance(longrepr, tuple) and len(longrepr) == 3 and SHARED_SKIP in str(longrepr[2]):
            n += 1
    if n:
        terminalreporter.write_sep("=", "shared data", yellow=True)
        terminalreporter.write_line(
            f"{n} test{'s' if n != 1 else ''} skipped: the shared data folder was not found at {shared_candidate()} "
            f"(or lacks a part these tests read); set {SHARED_ENV}=/path/to/shared (with official/ and data/) "
            f"to run them", yellow=True)


@pytest.fixture(scope="session")
def shared_dir() -> Path:
    d = find_shared_dir()
    if d is None:
        shared_missing(f"{shared_candidate()} (with official/ and data/) is not available")
    return d


@pytest.fixture(scope="session")
def data_dir(shared_dir) -> Path:
    d = shared_dir / "data"
    if not d.is_dir():
        shared_missing(f"{d} is missing")
    return d


@pytest.fixture(scope="session")
def shared_path(shared_dir):
    """``shared_path("data/...")``: that path inside the shared folder; skips (fails where required)
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
    """The viewer tests' synthetic result folder (tests/helpers/viewer_results.py) at tmp_path/case01."""
    from tests.helpers.viewer_results import make_result

    return make_result(tmp_path / "case01")


@pytest.fixture
def server(result_dir):
    """A viewer over ``result_dir`` on a free loopback port (closed after the test)."""
    from lgrnet.viewer import ViewerApp, find_results
    from tests.helpers.viewer_results import Server

    s = Server(ViewerApp(find_results(result_dir)))
    yield s
    s.close()
