"""Team review (issue 35) for the live page: `lgrnet live` serves its page under the rules of
`lgrnet view` (commands/serving.py, viewer/auth.py, viewer/tls.py, viewer/listen.py): beyond loopback
every request needs the access token, which moves from the printed URL into an HttpOnly cookie; the
token is printed once and appears in no log line and no recorded file; --require-token /
--token-file / $LGRNET_VIEW_TOKEN; --tls with the printed fingerprint; the Host check on loopback.

Servers here listen on all addresses (0.0.0.0) and are reached through 127.0.0.1, so that the
traffic stays on this machine. The command runs a tiny random model at 64 px on a synthetic clip
played at its own frame rate (--realtime), so that the page keeps changing while the test looks."""
from __future__ import annotations

import argparse
import hashlib
import inspect
import json
import os
import re
import signal
import socket
import ssl
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from lgrnet.commands.serving import PageAccess
from lgrnet.inference.realtime import LatencyStats
from lgrnet.models.lgrnet import LGRNet
from lgrnet.viewer.auth import Auth, generate_token
from lgrnet.viewer.live import STATIC_FILES, LiveHandler, LiveState, make_live_server, start_live_server
from tests.helpers.media import encode_video
from tests.helpers.served_page import Client, chrome, parse_address
from test_live_page import prediction

SRC = str(Path(__file__).resolve().parents[1] / "src")

#: every request the live page answers (GET and HEAD; it takes no writes)
REQUESTS = [("GET", "/"), ("GET", "/live"), ("GET", "/index.html"), *[("GET", f"/static/{n}") for n in STATIC_FILES],
            ("GET", "/api/live/status"), ("GET", "/api/live/frame.jpg"), ("HEAD", "/"), ("HEAD", "/api/live/frame.jpg")]
#: what a refusal must not hold: the page, its scripts, a JPEG, the run's status
SECRETS = (b"\xff\xd8\xff", b"scanner.local", b"processed", b"live.js", b"stage-msg", b"function", b"POLL_MS",
           b"latency", b"--", b"{\n")


def _refused(status, body) -> bool:
    return status in (401, 403) and len(body) < 600 and not any(s in body for s in SECRETS)


def test_the_probe_covers_every_route():
    """A route added to the live page later cannot be left out of the refusal tests."""
    literals = set(re.findall(r'"(/[^"]*)"', inspect.getsource(LiveHandler.do_GET)))
    assert {"/", "/api/live/status", "/api/live/frame.jpg", "/static/"} <= literals
    probed = {p for _, p in REQUESTS}
    for lit in literals:
        assert lit in probed or (lit.endswith("/") and any(p.startswith(lit) and p != lit for p in probed)), lit


@pytest.fixture
def team_live():
    """A live page on 0.0.0.0 with a token (as `lgrnet live --host 0.0.0.0` makes it), one frame
    published: (client, token, port, cookie name)."""
    state = LiveState("rtsp://scanner.local/stream", {"window": 4, "stride": 1, "size": [64, 64]})
    stats = LatencyStats()
    for i in range(2):
        lp = prediction(i, 0.9)
        stats.add(lp)
        state.publish(lp, stats.summary())
    server = make_live_server(state, "0.0.0.0", 0)
    assert server.server_address[0] == "0.0.0.0"
    port = server.server_address[1]
    token = generate_token()
    server.auth = Auth({token: ""}, cookie_name=f"lgrnet_live_{port}", command="lgrnet live")
    start_live_server(server)
    try:
        yield Client(port), token, port, f"lgrnet_live_{port}"
    finally:
        server.shutdown()
        server.server_close()


def test_every_live_route_is_refused_without_the_token_and_served_with_it(team_live):
    client, token, port, name = team_live
    wrong = generate_token()
    spoilers = [({}, ""), ({"Cookie": f"{name}=" + "0" * 64}, ""), ({"Cookie": f"{name}=garbage; x=1"}, ""),
                ({"Authorization": f"Bearer {wrong}"}, ""), ({"Authorization": "Basic YWRhOmFkYQ=="}, ""),
                ({}, f"?token={wrong}"), ({}, f"?token={token[:-1]}"), ({"Cookie": f"{name}={token}"}, ""),
                ({"Host": "evil.example"}, "")]
    for method, path in REQUESTS:
        for extra, query in spoilers:
            status, _, out = client.request(method, path + query, headers=extra)
            assert _refused(status, out), (method, path, extra, query, status, out[:200])
    status, _, out = client.request("GET", "/")
    assert b"lgrnet live" in out and b"lgrnet view" not in out  # the refusal names the command that printed the address
    # no writes: a body is refused by every route, whatever it carries
    for path in ("/", "/api/live/status"):
        for headers in ({}, {"Authorization": f"Bearer {token}"}):
            status, _, out = client.request("POST", path, b"{}", headers)
            assert status == 501 and not any(s in out for s in SECRETS[:3])

    # the token in the URL: a redirect to the same address without it, setting the cookie
    status, h, _ = client.request("GET", f"/?token={token}&x=1")
    assert status == 303 and h["location"] == "/?x=1"
    set_cookie = h["set-cookie"]
    assert set_cookie.startswith(f"{name}=") and token not in set_cookie
    assert "HttpOnly" in set_cookie and "SameSite=Strict" in set_cookie and "Secure" not in set_cookie
    cookie = {"Cookie": set_cookie.split(";")[0]}
    for auth in (cookie, {"Authorization": f"Bearer {token}"}):
        for method, path in REQUESTS:
            status, h, out = client.request(method, path, headers={**auth, "Host": "scanner-pc.ward.example"})
            assert status == 200, (method, path, status, out[:200])
            if method == "GET" and path == "/api/live/frame.jpg":
                assert out[:3] == b"\xff\xd8\xff" and h["content-type"] == "image/jpeg"
            if path == "/api/live/status":
                assert b"scanner.local" in out and b'"processed": 2' in out
            if path == "/":
                assert b"live.js" in out or method == "HEAD"


def test_the_page_shows_no_stream_credentials():
    """Everyone who may open the page sees the source: a stream URL's user name and password are
    left out of the status (source, settings, a failure message), not out of the run's own dict."""
    src = "rtsp://ada:s3cret@scanner.local:8554/endo?x=1"
    settings = {"source": src, "window": 4}
    state = LiveState(src, settings)
    settings["recording"] = "runs/live-1"  # the run adds to its settings after the page starts
    state.finish("failed", f"{src}: stalled: no data for the read timeout")
    st = state.status()
    assert "s3cret" not in json.dumps(st) and "ada" not in json.dumps(st)
    assert st["source"] == st["settings"]["source"] == "rtsp://***@scanner.local:8554/endo?x=1"
    assert st["message"].startswith("rtsp://***@scanner.local:8554/endo?x=1: stalled")
    assert st["settings"]["recording"] == "runs/live-1" and settings["source"] == src
    assert LiveState("/dev/video0").status()["source"] == "/dev/video0"


# ---- PageAccess: what the options decide (the same object `lgrnet view` uses) -----------------------

def _args(**kw):
    base = dict(host="127.0.0.1", port=0, token_file=None, require_token=False, tls=False, certfile=None, keyfile=None)
    base.update(kw)
    return argparse.Namespace(**base)


def test_what_the_options_decide(tmp_path, monkeypatch):
    monkeypatch.delenv("LGRNET_VIEW_TOKEN", raising=False)
    a = PageAccess(_args(), "lgrnet live", "lgrnet_live")  # loopback as before: no token, Host checked
    assert a.tokens == {} and a.auth(8766) is None and a.allowed_hosts == {"127.0.0.1", "localhost", "::1"}
    assert PageAccess(_args(host="127.0.0.2"), "lgrnet live", "lgrnet_live").allowed_hosts is not None
    a = PageAccess(_args(host="0.0.0.0"), "lgrnet live", "lgrnet_live")  # beyond loopback: a generated token
    assert a.generated and a.tokens == {a.generated: ""} and a.allowed_hosts is None
    url, opened, note = a.address(("0.0.0.0", 8766))
    assert opened == f"{url}?token={a.generated}" and note == "" and url.startswith("http://") and "0.0.0.0" not in url
    auth = a.auth(8766)
    assert auth.cookie_name == "lgrnet_live_8766" and auth.command == "lgrnet live" and not auth.secure
    a = PageAccess(_args(require_token=True), "lgrnet live", "lgrnet_live")
    assert a.generated and a.allowed_hosts is not None  # the token and the Host check both
    monkeypatch.setenv("LGRNET_VIEW_TOKEN", "e" * 20)
    assert PageAccess(_args(), "lgrnet live", "lgrnet_live").tokens == {}  # the variable applies beyond loopback
    a = PageAccess(_args(host="0.0.0.0"), "lgrnet live", "lgrnet_live")
    assert a.tokens == {"e" * 20: ""} and a.generated is None
    url, opened, note = a.address(("0.0.0.0", 8766))
    assert opened == url and "e" * 20 not in opened and "?token=YOUR-TOKEN" in note
    f = tmp_path / "tokens.txt"
    f.write_text("Dr Ada aaaaaaaaaaaaaaaa1\n")
    f.chmod(0o600)
    a = PageAccess(_args(token_file=f), "lgrnet live", "lgrnet_live")  # a token file: required on loopback too
    assert a.tokens == {"aaaaaaaaaaaaaaaa1": "Dr Ada"} and a.generated is None


def test_bad_serving_options_are_one_line(tmp_path, capsys, monkeypatch):
    from lgrnet.cli import main

    monkeypatch.delenv("LGRNET_VIEW_TOKEN", raising=False)
    clip = str(tmp_path / "never-opened.mp4")
    short = tmp_path / "short.txt"
    short.write_text("Ada short\n")
    for extra, words in ((["--keyfile", "k.pem"], "--keyfile needs --certfile"),
                         (["--tls", "--certfile", "c.pem"], "--tls makes a certificate"),
                         (["--certfile", str(tmp_path / "missing.pem")], "missing.pem: no such file"),
                         (["--token-file", str(short)], f"{short}:1: a token needs at least 12"),
                         (["--port", "70000"], "--port 70000: must be 0..65535")):
        rc = main(["live", clip, "--weights", str(tmp_path / "w.safetensors"), "--host", "0.0.0.0", *extra])
        err = capsys.readouterr().err
        assert rc == 2 and err.startswith("lgrnet live: error: ") and words in err and "Traceback" not in err, err
    monkeypatch.setenv("LGRNET_VIEW_TOKEN", "short")
    assert main(["live", clip, "--weights", str(tmp_path / "w.safetensors"), "--host", "0.0.0.0"]) == 2
    assert "LGRNET_VIEW_TOKEN: a token needs" in capsys.readouterr().err
    main(["live", clip, "--weights", str(tmp_path / "w.safetensors"), "--host", "0.0.0.0", "--no-page"])
    assert "LGRNET_VIEW_TOKEN" not in capsys.readouterr().err  # no page: no token read


# ---- the command: a real run, its printed address, its logs and recording ----------------------------

H, W, FPS, N = 96, 128, 10, 600  # 60 s at its own frame rate: the run outlasts every test; Ctrl-C ends it


@pytest.fixture(scope="module")
def assets(tmp_path_factory):
    d = tmp_path_factory.mktemp("live-auth")
    torch.manual_seed(0)
    weights = LGRNet.from_preset("tiny").eval().save_pretrained(str(d / "tiny64.safetensors"), metadata={"input_size": "64"})
    yy, xx = np.mgrid[:H, :W]

    def frames():
        for t in range(N):
            f = np.full((H, W, 3), 40, np.uint8)
            f[(yy - 48) ** 2 + (xx - 20 - (t % 90)) ** 2 < 300] = (220, 90, 70)
            f[:, :, 1] += np.uint8(t % 100)
            yield f

    return {"weights": str(weights), "clip": str(encode_video(d / "clip.mp4", frames(), fps=FPS))}


def _start(assets, tmp_path, *extra, env_extra=None):
    """`lgrnet live CLIP --realtime` -> (process, the stdout lines up to the page's address, that address)."""
    env = {**os.environ, "PYTHONPATH": SRC, "OMP_NUM_THREADS": "1"}
    env.pop("LGRNET_VIEW_TOKEN", None)
    env.update(env_extra or {})
    proc = subprocess.Popen([sys.executable, "-m", "lgrnet", "live", assets["clip"], "--weights", assets["weights"],
                             "--realtime", "--device", "cpu", "--port", "0", "--linger", "0", *extra],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    lines = []
    while True:
        line = proc.stdout.readline()
        if not line:
            proc.kill()
            raise AssertionError("".join(lines) + proc.stderr.read())
        lines.append(line)
        if line.startswith("live page: "):
            return proc, lines, line.split()[2]


def _stop(proc):
    """Ctrl-C: the run ends cleanly (exit 0) -> (the rest of stdout, stderr)."""
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err
    return out, err


def _wait_for_frame(client, headers, timeout=120):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        status, _, out = client.request("GET", "/api/live/status", headers=headers)
        assert status == 200, out
        if b'"frame": null' not in out:
            return
        time.sleep(0.2)
    raise AssertionError("no frame processed")


def test_the_token_is_printed_once_and_never_logged_or_recorded(assets, tmp_path):
    out_dir = tmp_path / "rec"
    proc, lines, opened = _start(assets, tmp_path, "--host", "0.0.0.0", "--out", str(out_dir), "--name", "r")
    try:
        scheme, port, token = parse_address(opened)
        assert scheme == "http" and token and len(token) >= 43 and "://0.0.0.0" not in opened  # this machine's name
        c = Client(port)
        for method, path in REQUESTS:
            assert _refused(*c.request(method, path)[::2]), path
        status, h, _ = c.request("GET", f"/?token={token}")
        assert status == 303 and h["location"] == "/"
        cookie = {"Cookie": h["set-cookie"].split(";")[0]}
        _wait_for_frame(c, cookie)
        for method, path in REQUESTS:
            assert c.request(method, path, headers=cookie)[0] == 200, path
        assert c.request("GET", f"/api/live/status?token={token[:-1]}x")[0] == 401
        with socket.create_connection(("127.0.0.1", port), timeout=10) as s:  # a request line it cannot parse
            s.sendall(f"GET /?token={token} HTTP/9.9 {token}\r\n\r\n".encode())
            s.recv(4096)
        assert c.request("GET", "/api/live/status", headers=cookie)[0] == 200  # still serving
    finally:
        out, err = _stop(proc)
    printed = "".join(lines) + out
    assert printed.count(token) == 1 and token not in err, err[-2000:]
    assert "without TLS" in err  # beyond loopback in clear: warned
    files = [p for p in out_dir.rglob("*") if p.is_file()]
    assert any(p.name == "predictions.json" for p in files)
    for p in files:
        assert token.encode() not in p.read_bytes(), p


def test_on_loopback_a_token_file_is_required_and_the_host_checked(assets, tmp_path):
    f = tmp_path / "screens.txt"
    f.write_text("ward-tablet tttttttttttttttttttt\n")
    f.chmod(0o600)
    proc, lines, opened = _start(assets, tmp_path, "--token-file", str(f))
    try:
        scheme, port, token = parse_address(opened)
        assert opened.startswith("http://127.0.0.1:") and token is None and "?token=YOUR-TOKEN" in lines[-1]
        c = Client(port)
        bearer = {"Authorization": "Bearer " + "t" * 20}
        assert c.request("GET", "/api/live/status")[0] == 401
        assert c.request("GET", "/api/live/status", headers=bearer)[0] == 200
        # the Host check stays on loopback (DNS rebinding), token or not
        assert c.request("GET", "/api/live/status", headers={**bearer, "Host": "evil.example:80"})[0] == 403
        status, h, _ = c.request("GET", "/?token=" + "t" * 20)
        assert status == 303 and c.request("GET", "/", headers={"Cookie": h["set-cookie"].split(";")[0]})[0] == 200
    finally:
        _, err = _stop(proc)
    assert "t" * 20 not in err and "t" * 20 not in "".join(lines)


# ---- the page in headless Chromium, over HTTP and HTTPS ----------------------------------------------

@pytest.mark.browser
@pytest.mark.parametrize("tls", [False, True], ids=["http", "https"])
def test_a_second_screen_opens_the_printed_url_and_sees_frames_update(assets, tmp_path, tls):
    proc, lines, opened = _start(assets, tmp_path, "--host", "0.0.0.0", *(["--tls"] if tls else []))
    d = None
    try:
        scheme, port, token = parse_address(opened)
        assert scheme == ("https" if tls else "http")
        if tls:  # the fingerprint printed is the certificate served
            printed = [ln for ln in lines if "fingerprint" in ln][0].split("fingerprint ")[1].split()[0]
            der = ssl.PEM_cert_to_DER_cert(ssl.get_server_certificate(("127.0.0.1", port)))
            assert printed == ":".join(f"{b:02X}" for b in hashlib.sha256(der).digest())
        here = f"{scheme}://127.0.0.1:{port}/"
        d = chrome(tmp_path)
        from selenium.webdriver.support.ui import WebDriverWait

        wait = WebDriverWait(d, 90)
        shown = lambda drv: drv.find_element("id", "frame").get_attribute("data-frame")  # noqa: E731
        d.get(f"{here}?token={token}")  # the printed URL, reached through 127.0.0.1
        wait.until(lambda drv: shown(drv) is not None, message="a first frame")
        assert "token" not in d.current_url  # out of the address bar
        cookies = d.get_cookies()
        assert len(cookies) == 1 and cookies[0]["httpOnly"] and cookies[0]["sameSite"] == "Strict"
        assert cookies[0]["secure"] is tls and token not in cookies[0]["value"]
        assert d.execute_script("return document.cookie") == ""  # HttpOnly: no script reads it
        first = shown(d)
        wait.until(lambda drv: shown(drv) != first, message="frames update")
        # a reload without the token: the cookie carries it, frames keep coming
        d.get(here)
        wait.until(lambda drv: shown(drv) is not None, message="a frame after the reload")
        again = shown(d)
        wait.until(lambda drv: shown(drv) != again, message="frames update after the reload")
        assert d.find_element("tag name", "body").get_attribute("data-state") == "running"
        severe = [e for e in d.get_log("browser") if e["level"] == "SEVERE"]
        assert severe == [], severe
        d.delete_all_cookies()  # without the cookie: refused
        d.get(here)
        assert "access token needed" in d.title and d.find_elements("id", "frame") == []
    finally:
        if d is not None:
            d.quit()
        out, err = _stop(proc)
    assert token not in err and ("".join(lines) + out).count(token) == 1


def test_a_stream_password_is_neither_shown_nor_recorded(assets, tmp_path):
    """rtsp://user:password@camera/... is a common source: the run reads it, the page and the
    recorded predictions.json name the source without the user name and password."""
    import av

    from test_live_cli import SilentServer

    ts = tmp_path / "clip.ts"
    with av.open(assets["clip"]) as src, av.open(str(ts), "w", format="mpegts") as dst:
        st = dst.add_stream_from_template(src.streams.video[0])
        for pkt in src.demux(video=0):
            if pkt.dts is not None:
                pkt.stream = st
                dst.mux(pkt)
    server = SilentServer(ts.read_bytes()[:400_000])
    try:
        env = {**os.environ, "PYTHONPATH": SRC, "OMP_NUM_THREADS": "1"}
        res = subprocess.run([sys.executable, "-m", "lgrnet", "live", f"tcp://ada:s3cret-pw@127.0.0.1:{server.port}",
                              "--weights", assets["weights"], "--no-page", "--max-frames", "3", "--timeout", "30",
                              "--device", "cpu", "--out", str(tmp_path / "rec"), "--name", "r"],
                             capture_output=True, text=True, timeout=240, env=env)
    finally:
        server.close()
    assert res.returncode == 0, res.stderr
    meta = json.loads((tmp_path / "rec" / "r" / "predictions.json").read_text())
    assert meta["settings"]["source"] == f"tcp://***@127.0.0.1:{server.port}" and meta["num_frames"] == 3
    for p in (tmp_path / "rec").rglob("*"):
        assert not p.is_file() or b"s3cret-pw" not in p.read_bytes(), p
