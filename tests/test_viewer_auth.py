"""Team review (issue 35): `lgrnet view` beyond loopback needs an access token on every request; the
token moves from the URL into an HttpOnly cookie; it is compared in constant time, never logged and
never written under a result folder; TLS with a session certificate; corrections name the reviewer.

Servers here listen on all addresses (0.0.0.0) and are reached through 127.0.0.1, so that the
traffic stays on this machine."""
from __future__ import annotations

import hashlib
import http.client
import json
import os
import signal
import ssl
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from statistics import median

import numpy as np
import pytest

from lgrnet.errors import UserError
from lgrnet.results.corrections import read_status
from lgrnet.viewer import ViewerApp, find_results
from lgrnet.viewer.auth import Auth, generate_token, load_tokens
from lgrnet.viewer.routing import Router
from lgrnet.viewer.server import ROUTES, serve_in_thread
from tests.helpers.served_page import Client as _Client
from tests.helpers.served_page import chrome as _chrome
from tests.helpers.served_page import parse_address
from tests.helpers.viewer_results import H, N, W, disc_mask, make_result, make_video

SRC = str(Path(__file__).resolve().parents[1] / "src")


# ---- the token itself ------------------------------------------------------------------------

def test_tokens_names_and_the_token_file(tmp_path, monkeypatch):
    t = generate_token()
    assert len(t) >= 43 and t != generate_token()
    f = tmp_path / "reviewers.txt"
    f.write_text("# reviewers\nDr Ada Lovelace  aaaaaaaaaaaaaaaa1\n\nbbbbbbbbbbbbbbbb2\n")
    f.chmod(0o600)
    assert load_tokens(f, env={}) == {"aaaaaaaaaaaaaaaa1": "Dr Ada Lovelace", "bbbbbbbbbbbbbbbb2": ""}
    assert load_tokens(None, env={"LGRNET_VIEW_TOKEN": "  cccccccccccccccc3 \n"}) == {"cccccccccccccccc3": ""}
    assert load_tokens(None, env={}) == {}
    for text, words in (("Ada short\n", "at least 12 characters"), ("# only a comment\n", "no token in the file"),
                        ("Ada dddddddddddddddd\nBob dddddddddddddddd\n", "already given to Ada")):
        f.write_text(text)
        with pytest.raises(UserError, match=words) as info:
            load_tokens(f, env={})
        assert str(f) in str(info.value)
    with pytest.raises(UserError, match="LGRNET_VIEW_TOKEN: a token needs"):
        load_tokens(None, env={"LGRNET_VIEW_TOKEN": "short"})
    with pytest.raises(UserError, match="missing.txt: cannot read"):
        load_tokens(tmp_path / "missing.txt", env={})

    auth = Auth({"aaaaaaaaaaaaaaaa1": "Ada", "bbbbbbbbbbbbbbbb2": ""})
    assert auth.identify("aaaaaaaaaaaaaaaa1") == "Ada" and auth.identify("bbbbbbbbbbbbbbbb2") == ""
    assert auth.identify("aaaaaaaaaaaaaaaa") is None and auth.identify("") is None
    cookie = auth.cookie("aaaaaaaaaaaaaaaa1")
    value = cookie.split(";")[0].split("=", 1)[1]
    assert "aaaaaaaaaaaaaaaa1" not in cookie and "HttpOnly" in cookie and "SameSite=Strict" in cookie
    assert auth.identify_cookie(value) == "Ada" and auth.identify_cookie("0" * 64) is None
    assert Auth({"aaaaaaaaaaaaaaaa1": ""}).identify_cookie(value) is None  # another process's key
    line = "GET /?token=aaaaaaaaaaaaaaaa1&x=1 HTTP/1.1 Bearer bbbbbbbbbbbbbbbb2"
    assert "aaaaaaaaaaaaaaaa1" not in auth.redact(line) and "bbbbbbbbbbbbbbbb2" not in auth.redact(line)
    assert auth.redact("/static/x?token=anything-else") == "/static/x?token=[token]"


def test_a_wrong_token_costs_what_a_right_one_does():
    """No timing oracle: identify() digests the presented token and compares it with every known one
    (hmac.compare_digest), whether it matches or not. Interleaved batches; medians within 1.5x."""
    right = generate_token()
    auth = Auth({right: "Ada", generate_token(): "Bob", generate_token(): ""})
    cases = {"right": right, "wrong, same length": generate_token(), "right but the last char": right[:-1] + "x",
             "wrong, short": "x", "wrong, long": right * 40}
    cookie_right = auth.cookie(right).split(";")[0].split("=", 1)[1]
    cookie_cases = {"right cookie": cookie_right, "wrong cookie": "f" * 64, "malformed cookie": "zz"}
    times = {k: [] for k in [*cases, *cookie_cases]}
    for _ in range(25):
        for k, v in cases.items():
            t0 = time.perf_counter()
            for _ in range(200):
                auth.identify(v)
            times[k].append(time.perf_counter() - t0)
        for k, v in cookie_cases.items():
            t0 = time.perf_counter()
            for _ in range(200):
                auth.identify_cookie(v)
            times[k].append(time.perf_counter() - t0)
    med = {k: median(v) for k, v in times.items()}
    base = med["right"]
    for k in ("wrong, same length", "right but the last char", "wrong, short"):
        assert 1 / 1.5 < med[k] / base < 1.5, med
    assert 1 / 1.5 < med["wrong cookie"] / med["right cookie"] < 1.5, med
    assert 1 / 1.5 < med["malformed cookie"] / med["right cookie"] < 1.5, med


# ---- a server on all addresses, reached through 127.0.0.1 --------------------------------------

def _runner(input_path, out_dir, progress):
    from lgrnet.viewer.frames import open_frames

    n = open_frames(input_path).num_frames
    progress(n, n)
    make_result(out_dir, n=n, source=input_path, input_path=str(input_path))


@pytest.fixture
def team(tmp_path):
    """A viewer on 0.0.0.0 with a token, uploads (a fake model) and an overlay: (client, token, app, result, tmp)."""
    root = make_result(tmp_path / "runs" / "case01")
    make_video(root / "overlay.mp4", n=N, size=(W, H))
    token = generate_token()
    app = ViewerApp(find_results(root), runner=_runner, work_dir=tmp_path / "work", allowed_hosts=None,
                    auth=Auth({token: ""}))
    httpd, _ = serve_in_thread(app, "0.0.0.0", 0)
    assert httpd.server_address[0] == "0.0.0.0"
    try:
        yield _Client(httpd.server_address[1]), token, app, root, tmp_path
    finally:
        httpd.shutdown()
        httpd.server_close()
        app.close()


def _requests(tmp_path):
    """A request of every kind the page answers: (method, path, body, headers)."""
    video = tmp_path / "up.mp4"
    if not video.exists():
        make_video(video, n=4)
    import io

    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(disc_mask(2).astype(np.uint8) * 255).save(buf, format="PNG")
    png = buf.getvalue()
    return [
        ("GET", "/", None, {}), ("GET", "/index.html", None, {}), ("GET", "/static/main.js", None, {}),
        ("GET", "/static/style.css", None, {}), ("GET", "/static/editor.js", None, {}), ("GET", "/api/info", None, {}),
        ("GET", "/api/jobs/j1", None, {}), ("GET", "/api/results/0", None, {}),
        ("GET", "/api/results/0/frames/0.jpg", None, {}), ("GET", "/api/results/0/outlines/0.json", None, {}),
        ("GET", "/api/results/0/masks.zip", None, {}), ("GET", "/api/results/0/predictions.csv", None, {}),
        ("GET", "/api/results/0/overlay.mp4", None, {}), ("GET", "/api/results/0/corrections", None, {}),
        ("GET", "/api/results/0/corrections/2.png", None, {}), ("HEAD", "/api/results/0/masks.zip", None, {}),
        ("PUT", "/api/results/0/corrections/2.png", png, {"Content-Type": "image/png", "X-Expected-Version": "0"}),
        ("POST", "/api/results/0/corrections/3/status", b'{"state": "checked", "version": 0}',
         {"Content-Type": "application/json"}),
        ("GET", "/api/results/0/corrections/4/boxes", None, {}), ("GET", "/api/results/0/sizes/0.json", None, {}),
        ("PUT", "/api/results/0/corrections/4/boxes", b'{"boxes": [[10, 12, 30, 20]], "version": 0}',
         {"Content-Type": "application/json"}),
        ("POST", "/api/upload", video.read_bytes(), {"X-Filename": "up.mp4"}),
    ]


def test_the_probe_covers_every_route(tmp_path):
    """A route added later cannot be left out of the refusal tests below."""
    probed = {(m if m != "HEAD" else "GET", p) for m, p, _, _ in _requests(tmp_path)}
    for route in ROUTES:
        one = Router([route])
        assert any(m == route.method and _matches(one, m, p) for m, p in probed), route.pattern


def _matches(router, method, path) -> bool:
    try:
        router.match(method, path)
        return True
    except Exception:
        return False


SECRETS = (b"<canvas", b"\x89PNG", b"\xff\xd8\xff", b"PK\x03\x04", b"predictions", b"score", b"import ", b"ftyp",
           b"case01", b"contours")


def _refused(status, body):
    return status in (401, 403) and not any(s in body for s in SECRETS)


def test_every_route_is_refused_without_the_token_and_works_with_it(team):
    client, token, app, root, tmp_path = team
    wrong = generate_token()
    for method, path, body, headers in _requests(tmp_path):
        for extra, query in (({}, ""), ({"Cookie": "lgrnet_view=" + "0" * 64}, ""), ({"Authorization": f"Bearer {wrong}"}, ""),
                             ({}, f"?token={wrong}"), ({"Cookie": f"lgrnet_view={token}"}, "")):  # the raw token is no cookie
            status, _, out = client.request(method, path + query, body, {**headers, **extra})
            assert _refused(status, out), (method, path, extra, query, status, out[:200])
    assert not (root / "corrections").exists() and not any((tmp_path / "work" / "uploads").iterdir())

    # the token in the URL: a redirect to the same address without it, setting the cookie
    status, h, _ = client.request("GET", f"/?token={token}&r=0")
    assert status == 303 and h["location"] == "/?r=0" and token not in h["location"]
    set_cookie = h["set-cookie"]
    assert "HttpOnly" in set_cookie and "SameSite=Strict" in set_cookie and token not in set_cookie
    cookie = {"Cookie": set_cookie.split(";")[0]}
    assert client.request("POST", f"/api/results/0/corrections/3/status?token={token}", b"{}",
                          {"Content-Type": "application/json"})[0] == 401  # a URL token only opens pages
    expected = {"/": 200, "/api/jobs/j1": 404}
    for method, path, body, headers in _requests(tmp_path):
        status, h, out = client.request(method, path, body, {**headers, **cookie, "X-Reviewer": "Ada"})
        want = expected.get(path, 202 if path == "/api/upload" else 200)
        assert status == want, (method, path, status, out[:300])
    st = read_status(root)
    assert st["000002"].state == "edited" and st["000002"].reviewer == "Ada"
    assert st["000003"].state == "checked" and st["000003"].reviewer == "Ada"
    assert st["000004"].state == "boxed" and st["000004"].reviewer == "Ada"
    # scripts: the token as a bearer header
    status, _, out = client.request("GET", "/api/info", headers={"Authorization": f"Bearer {token}"})
    assert status == 200 and json.loads(out)["auth"] == {"required": True, "reviewer": None}
    # with tokens, a write must say who makes it
    status, _, out = client.request("POST", "/api/results/0/corrections/5/status", b'{"state": "checked", "version": 0}',
                                    {"Content-Type": "application/json", **cookie})
    assert status == 400 and b"your name" in out


def test_a_named_token_is_the_reviewer_and_a_stale_write_says_by_whom(tmp_path):
    root = make_result(tmp_path / "case01")
    ada, bob = generate_token(), generate_token()
    app = ViewerApp(find_results(root), allowed_hosts=None, auth=Auth({ada: "Dr Ada", bob: "Dr Bob"}))
    httpd, _ = serve_in_thread(app, "0.0.0.0", 0)
    try:
        c = _Client(httpd.server_address[1])
        as_ada = {"Authorization": f"Bearer {ada}", "Content-Type": "application/json", "X-Reviewer": "Mallory"}
        as_bob = {"Authorization": f"Bearer {bob}", "Content-Type": "application/json"}
        assert json.loads(c.request("GET", "/api/info", headers=as_ada)[2])["auth"]["reviewer"] == "Dr Ada"
        assert c.request("POST", "/api/results/0/corrections/4/status", b'{"state": "checked", "version": 0}', as_ada)[0] == 200
        assert read_status(root)["000004"].reviewer == "Dr Ada"  # the token's name, not the one sent
        status, _, out = c.request("POST", "/api/results/0/corrections/4/status", b'{"state": "unchecked", "version": 0}', as_bob)
        out = json.loads(out)
        assert status == 409 and "changed elsewhere by Dr Ada at " in out["error"] and out["current"]["reviewer"] == "Dr Ada"
        status_file = json.loads((root / "corrections" / "status.json").read_text())
        assert status_file["frames"]["000004"]["reviewer"] == "Dr Ada" and status_file["frames"]["000004"]["time"]
    finally:
        httpd.shutdown()
        httpd.server_close()
        app.close()


def test_a_thousand_unauthenticated_requests_are_all_refused(tmp_path):
    """A bounded load test on loopback (the token required there): 1,000 requests of every kind,
    with no token, wrong tokens, wrong cookies and bad paths, from 8 clients at once: all refused,
    nothing served; the server then still answers the authorised page."""
    root = make_result(tmp_path / "runs" / "case01")
    token = generate_token()
    app = ViewerApp(find_results(root), runner=_runner, work_dir=tmp_path / "work", auth=Auth({token: "Ada"}))
    httpd, _ = serve_in_thread(app, "127.0.0.1", 0)
    try:
        c = _Client(httpd.server_address[1])
        kinds = _requests(tmp_path) + [("GET", "/static/../../secret.txt", None, {}), ("GET", "/nope", None, {}),
                                       ("DELETE", "/api/info", None, {})]
        spoilers = [{}, {"Cookie": "lgrnet_view=" + "a" * 64}, {"Cookie": "lgrnet_view=garbage; other=1"},
                    {"Authorization": "Bearer " + generate_token()}, {"Authorization": "Basic YWRhOmFkYQ=="},
                    {"Cookie": f"lgrnet_view={token}"}]
        jobs = [(kinds[k % len(kinds)], spoilers[k % len(spoilers)], k) for k in range(1000)]

        def one(job):
            (method, path, body, headers), extra, k = job
            query = f"?token={generate_token()}" if k % 7 == 0 else ""
            return c.request(method, path + query, body, {**headers, **extra})

        t0 = time.perf_counter()
        with ThreadPoolExecutor(8) as pool:
            answers = list(pool.map(one, jobs))
        elapsed = time.perf_counter() - t0
        bad = [(j[0][0], j[0][1], s) for j, (s, _, b) in zip(jobs, answers) if not (s in (401, 403, 501) and
                                                                              not any(x in b for x in SECRETS))]
        assert bad == [], bad[:10]
        assert sum(s == 401 for s, _, _ in answers) >= 950  # DELETE is 501 from http.server itself
        assert not (root / "corrections").exists() and app.jobs.get("j1") is None
        assert elapsed < 120, elapsed
        status, _, out = c.request("GET", "/", headers={"Authorization": f"Bearer {token}"})
        assert status == 200 and b"<canvas" in out
        assert json.loads(c.request("GET", "/api/info", headers={"Authorization": f"Bearer {token}"})[2])["auth"]["reviewer"] == "Ada"
    finally:
        httpd.shutdown()
        httpd.server_close()
        app.close()


# ---- the command: the printed URL, the logs, the files, TLS -----------------------------------

def _start(args, tmp_path, env_extra=None):
    env = dict(os.environ)
    env["PYTHONPATH"] = SRC + os.pathsep + env.get("PYTHONPATH", "")
    env["OMP_NUM_THREADS"] = "1"
    env.pop("LGRNET_VIEW_TOKEN", None)
    env.update(env_extra or {})
    proc = subprocess.Popen([sys.executable, "-m", "lgrnet.cli", "view", *args], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=env)
    lines = []
    while True:
        line = proc.stdout.readline()
        if not line:
            proc.kill()
            raise AssertionError("".join(lines) + proc.stderr.read())
        lines.append(line)
        if " at http" in line:
            return proc, lines


def _stop(proc):
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err
    return out, err


def _printed(line):
    url = line.split(" at ")[1].split()[0]
    return (*parse_address(url), url)


def test_the_token_is_printed_once_and_never_logged_or_written(tmp_path):
    root = make_result(tmp_path / "runs" / "case01")
    proc, lines = _start([str(root.parent), "--host", "0.0.0.0", "--port", "0", "--verbose",
                          "--upload-dir", str(tmp_path / "uploads")], tmp_path)
    try:
        scheme, port, token, url = _printed(lines[-1])
        assert scheme == "http" and token and len(token) >= 43 and "127.0.0.1" not in url  # this machine's name
        c = _Client(port)
        assert c.request("GET", "/api/info")[0] == 401
        assert c.request("GET", f"/api/info?token={token[:-1]}x")[0] == 401
        status, h, _ = c.request("GET", f"/?token={token}")
        assert status == 303
        cookie = {"Cookie": h["set-cookie"].split(";")[0], "X-Reviewer": "Ada"}
        assert c.request("GET", "/api/results/0/frames/1.jpg", headers=cookie)[0] == 200
        status, h2, _ = c.request("GET", f"//evil.example/static/..%2f..%2fsecret?token={token}")
        assert status == 303 and h2["location"] == "/evil.example/static/..%2f..%2fsecret"  # never to another site
        assert c.request("GET", "/static/..%2f..%2fsecret", headers=cookie)[0] == 400
        m = disc_mask(1).astype(np.uint8) * 255
        import io

        from PIL import Image

        buf = io.BytesIO()
        Image.fromarray(m).save(buf, format="PNG")
        status, _, out = c.request("PUT", "/api/results/0/corrections/1.png", buf.getvalue(),
                                   {**cookie, "Content-Type": "image/png", "X-Expected-Version": "0"})
        assert status == 200, out
        assert c.request("POST", "/api/upload", b"x" * 10, {**cookie, "X-Filename": f"{token}.mp4"})[0] == 503
        # a request line the server cannot parse, holding the token
        import socket

        with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
            s.sendall(f"GET /?token={token} HTTP/9.9 {token}\r\n\r\n".encode())
            s.recv(4096)
    finally:
        out, err = _stop(proc)
    printed = "".join(lines) + out
    assert printed.count(token) == 1 and token not in err, err[-2000:]
    assert "GET /api/results/0/frames/1.jpg" in err  # --verbose logged the requests, without the token
    assert read_status(root)["000001"].reviewer == "Ada"
    for folder in (root.parent, tmp_path / "uploads"):
        for p in folder.rglob("*"):
            if p.is_file():
                assert token.encode() not in p.read_bytes(), p


def test_loopback_keeps_todays_page_unless_asked(tmp_path):
    root = make_result(tmp_path / "case01")
    proc, lines = _start([str(root), "--port", "0"], tmp_path, env_extra={"LGRNET_VIEW_TOKEN": "x" * 20})
    try:
        _, port, token, url = _printed(lines[-1])
        assert token is None and url.startswith("http://127.0.0.1:")
        assert _Client(port).request("GET", "/api/info")[0] == 200  # as before: no token on loopback
    finally:
        _stop(proc)
    proc, lines = _start([str(root), "--port", "0", "--require-token"], tmp_path)
    try:
        _, port, token, _ = _printed(lines[-1])
        assert token and _Client(port).request("GET", "/api/info")[0] == 401
        assert _Client(port).request("GET", "/api/info", headers={"Authorization": f"Bearer {token}"})[0] == 200
    finally:
        _stop(proc)


@pytest.mark.parametrize("maker", ["openssl", "cryptography"])
def test_session_certificate(maker):
    from lgrnet.viewer.tls import self_signed, server_context

    if maker == "cryptography":
        pytest.importorskip("cryptography")
    cert = self_signed("0.0.0.0", use_cryptography=maker == "cryptography")
    try:
        assert cert.made_with == maker and oct(cert.keyfile.stat().st_mode & 0o777) == "0o600"
        assert oct(cert.certfile.parent.stat().st_mode & 0o777) == "0o700"
        server_context(cert.certfile, cert.keyfile)
        der = ssl.PEM_cert_to_DER_cert(cert.certfile.read_text())
        assert cert.fingerprint == ":".join(f"{b:02X}" for b in hashlib.sha256(der).digest())
    finally:
        cert.close()
    assert not cert.certfile.parent.exists()


def test_tls_serves_the_printed_fingerprint(tmp_path):
    root = make_result(tmp_path / "case01")
    proc, lines = _start([str(root), "--host", "0.0.0.0", "--port", "0", "--tls"], tmp_path)
    try:
        scheme, port, token, _ = _printed(lines[-1])
        printed = [ln for ln in lines if "fingerprint" in ln][0].split("fingerprint ")[1].split()[0]
        served = ssl.get_server_certificate(("127.0.0.1", port))
        der = ssl.PEM_cert_to_DER_cert(served)
        assert scheme == "https" and printed == ":".join(f"{b:02X}" for b in hashlib.sha256(der).digest())
        ctx = ssl.create_default_context(cadata=served)  # trust exactly the printed certificate
        ctx.check_hostname = False
        c = _Client(port, ctx)
        assert c.request("GET", "/api/info")[0] == 401
        status, h, _ = c.request("GET", f"/?token={token}")
        assert status == 303 and "Secure" in h["set-cookie"]
        assert c.request("GET", "/api/info", headers={"Cookie": h["set-cookie"].split(";")[0]})[0] == 200
        plain = http.client.HTTPConnection("127.0.0.1", port, timeout=10)  # plain HTTP to the TLS port: nothing
        with pytest.raises((http.client.HTTPException, OSError)):
            plain.request("GET", f"/?token={token}")
            plain.getresponse()
        assert c.request("GET", "/api/info", headers={"Authorization": f"Bearer {token}"})[0] == 200  # still serving
    finally:
        _, err = _stop(proc)
    assert token not in err


# ---- the page in headless Chromium, over HTTP and HTTPS -----------------------------------------

@pytest.mark.browser
@pytest.mark.parametrize("tls", [False, True], ids=["http", "https"])
def test_a_reviewer_opens_the_printed_url_edits_and_reloads(tmp_path, tls):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    root = make_result(tmp_path / "case01")
    proc, lines = _start([str(root), "--host", "0.0.0.0", "--port", "0", *(["--tls"] if tls else [])], tmp_path)
    d = None
    try:
        scheme, port, token, url = _printed(lines[-1])
        assert scheme == ("https" if tls else "http")
        here = f"{scheme}://127.0.0.1:{port}/"
        d = _chrome(tmp_path)
        wait = WebDriverWait(d, 30)
        text = lambda el_id: d.find_element(By.ID, el_id).text  # noqa: E731
        d.get(f"{here}?token={token}")  # the printed URL, reached through 127.0.0.1
        wait.until(lambda drv: drv.find_element(By.ID, "frame").get_attribute("data-rendered") == "0:0:1")
        assert token not in d.current_url and "token" not in d.current_url  # out of the address bar
        cookies = d.get_cookies()
        assert len(cookies) == 1 and cookies[0]["httpOnly"] and cookies[0]["sameSite"] == "Strict"
        assert cookies[0]["secure"] is tls and token not in cookies[0]["value"]
        assert d.execute_script("return document.cookie") == ""  # HttpOnly: no script reads it
        # no name yet: the page asks for one before saving
        d.find_element(By.ID, "next").click()
        wait.until(lambda drv: drv.find_element(By.ID, "frame").get_attribute("data-rendered") == "0:1:1")
        d.find_element(By.ID, "mark-checked").click()
        wait.until(lambda drv: "type your name" in text("save-status"))
        assert read_status(root) == {}
        name = d.find_element(By.ID, "reviewer")
        name.send_keys("Dr Ada")
        d.find_element(By.ID, "frame").click()  # leave the box: its change event
        d.find_element(By.ID, "mark-checked").click()
        wait.until(lambda drv: "frame 1: checked, version 1" in text("save-status"))
        d.find_element(By.ID, "next").click()
        wait.until(lambda drv: drv.find_element(By.ID, "frame").get_attribute("data-rendered") == "0:2:1")
        d.find_element(By.ID, "tool-fill").click()
        wait.until(lambda drv: drv.find_element(By.ID, "frame").get_attribute("data-mask").startswith("2:0:"))
        d.find_element(By.ID, "copy-prev").click()  # an edit: frame 1's mask
        wait.until(lambda drv: "frame 2: saved, version 1" in text("save-status"))
        assert "by Dr Ada" in text("frame-by")
        # reload without the token: the cookie carries it
        d.get(here + "#r=0&f=1")  # the same page with another fragment: not loaded again by itself
        d.refresh()
        wait.until(lambda drv: drv.find_element(By.ID, "frame").get_attribute("data-rendered") == "0:1:1")
        assert text("frame-state") == "checked" and "by Dr Ada" in text("frame-by")
        assert d.find_element(By.ID, "reviewer").get_attribute("value") == "Dr Ada"
        st = read_status(root)
        assert {k: (v.state, v.reviewer) for k, v in st.items()} == {"000001": ("checked", "Dr Ada"),
                                                                     "000002": ("edited", "Dr Ada")}
        saved = np.asarray(__import__("PIL.Image", fromlist=["Image"]).open(root / "corrections" / "masks" / "000002.png")) == 255
        assert np.array_equal(saved, disc_mask(1))
        severe = [e for e in d.get_log("browser") if e["level"] == "SEVERE" and "401" not in e["message"]]
        assert severe == [], severe
    finally:
        if d is not None:
            d.quit()
        _, err = _stop(proc)
    assert token not in err


# ---- `lgrnet dataset from-results --reviewer` ---------------------------------------------------

def test_dataset_from_results_filters_by_reviewer(tmp_path, capsys):
    from lgrnet.cli import main
    from lgrnet.io.images import list_images, read_mask
    from lgrnet.results import corrections as corr

    root = make_result(tmp_path / "case01")
    square = np.zeros((H, W), bool)
    square[10:30, 20:50] = True
    corr.save_mask(root, 1, square, 0, reviewer="Dr Ada")
    corr.set_state(root, 2, "checked", 0, reviewer="Dr Bob")
    corr.save_mask(root, 3, ~square, 0, reviewer="Dr Ada")
    corr.set_state(root, 5, "checked", 0)  # no name recorded (a loopback page nobody named)
    names = [f["name"].rsplit(".", 1)[0] for f in json.loads((root / "predictions.json").read_text())["frames"]]
    for who, want in (("Dr Ada", {1: square, 3: ~square}), ("Dr Bob", {2: disc_mask(2)}), (None, None)):
        out = tmp_path / f"ds-{who}"
        rc = main(["dataset", "from-results", str(root), "--out", str(out), *(["--reviewer", who] if who else [])])
        assert rc == 0, capsys.readouterr().err
        got = {p.stem: read_mask(p, 127) for p in list_images(out / "GT" / "case01")}
        if want is None:  # no filter: every reviewed frame
            assert sorted(got) == sorted(names[i] for i in (1, 2, 3, 5))
            continue
        assert sorted(got) == sorted(names[i] for i in want)
        assert all(np.array_equal(got[names[i]], m) for i, m in want.items())
    rc = main(["dataset", "from-results", str(root), "--out", str(tmp_path / "ds-eve"), "--reviewer", "Eve"])
    err = capsys.readouterr().err
    assert rc == 2 and "by 'Eve'" in err and "Dr Ada, Dr Bob, (no name)" in err and "Traceback" not in err
