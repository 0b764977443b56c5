"""Test helpers for the pages served to a team (`lgrnet view`, `lgrnet live`; issue 35): a plain
HTTP(S) client that keeps nothing between requests, headless Chromium that accepts the session's
self-signed certificate, and the parsing of a printed address."""
from __future__ import annotations

import http.client
import os

import pytest


class Client:
    """One connection per request to 127.0.0.1:``port`` (``context``: HTTPS with that SSL context);
    no cookie jar: a request carries exactly the headers given."""

    def __init__(self, port: int, context=None) -> None:
        self.port, self.context = port, context

    def request(self, method, path, body=None, headers=None):
        """-> (status, {lower-case header: value}, body)."""
        if self.context is not None:
            conn = http.client.HTTPSConnection("127.0.0.1", self.port, timeout=30, context=self.context)
        else:
            conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        try:
            conn.request(method, path, body=body, headers=headers or {})
            res = conn.getresponse()
            return res.status, {k.lower(): v for k, v in res.getheaders()}, res.read()
        finally:
            conn.close()


def parse_address(url: str):
    """A printed page address -> (scheme, port, token or None)."""
    scheme, rest = url.split("://", 1)
    hostport, _, tail = rest.partition("/")
    port = int(hostport.rsplit(":", 1)[1])
    token = tail.split("?token=", 1)[1] if "?token=" in tail else None
    return scheme, port, token


def chrome(tmp_path):
    """Headless Chromium (Selenium) with a fresh profile that accepts self-signed certificates;
    skips the test when Chromium, chromedriver or selenium is missing. Quit it after use."""
    from conftest import CHROMEDRIVER, CHROMIUM

    missing = [p for p in (CHROMIUM, CHROMEDRIVER) if not os.access(p, os.X_OK)]
    if missing:
        pytest.skip(f"headless browser test needs {' and '.join(missing)}")
    webdriver = pytest.importorskip("selenium.webdriver")
    from selenium.webdriver.chrome.service import Service

    opts = webdriver.ChromeOptions()
    opts.binary_location = CHROMIUM
    for flag in ("--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--disable-dev-shm-usage", "--window-size=1280,900",
                 "--force-device-scale-factor=1", f"--user-data-dir={tmp_path / 'chrome-profile'}"):
        opts.add_argument(flag)
    opts.set_capability("acceptInsecureCerts", True)  # the session's self-signed certificate
    opts.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=opts)
    driver.set_page_load_timeout(30)
    return driver
