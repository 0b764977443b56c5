"""A load generator for `lgrnet view` on loopback: concurrent clients fetching frames, outlines, the
mask zip, the CSV and the JSON routes of one result while an uploader posts videos one after another
(each waits for its job to end). Bounded in requests and in time: it stops by itself.

Used by ``tests/test_viewer_load.py`` (a few seconds, in CI) and ``benchmarks/viewer_load.py``
(longer, against an ``lgrnet view`` process with a model).
"""
from __future__ import annotations

import http.client
import json
import random
import threading
import time
from dataclasses import dataclass, field
from typing import Callable, Dict, List, Optional

HOST = "127.0.0.1"  # loopback only


def rss_mib(pid: str = "self") -> float:
    """Resident memory of process ``pid`` in MiB (Linux /proc)."""
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


@dataclass
class LoadReport:
    requests: int = 0
    bytes: int = 0
    errors: Dict[str, int] = field(default_factory=dict)      # "GET /path -> 500": count
    stuck: int = 0                                              # requests past the client time-out
    latencies_ms: List[float] = field(default_factory=list)
    uploads_done: int = 0
    upload_errors: List[str] = field(default_factory=list)
    rss_mib: List[float] = field(default_factory=list)          # server RSS samples over the run
    seconds: float = 0.0

    def summary(self) -> Dict[str, object]:
        lat = sorted(self.latencies_ms) or [float("nan")]

        def q(p: float) -> float:
            return round(lat[min(len(lat) - 1, int(p * len(lat)))], 1)

        return {"requests": self.requests, "requests_per_s": round(self.requests / max(self.seconds, 1e-9), 1),
                "mib_served": round(self.bytes / 2**20, 1), "errors": self.errors, "stuck": self.stuck,
                "latency_ms": {"p50": q(0.5), "p95": q(0.95), "p99": q(0.99), "max": round(lat[-1], 1)},
                "uploads_done": self.uploads_done, "upload_errors": self.upload_errors,
                "rss_mib": {"first": round(self.rss_mib[0], 1) if self.rss_mib else None,
                            "max": round(max(self.rss_mib), 1) if self.rss_mib else None,
                            "last": round(self.rss_mib[-1], 1) if self.rss_mib else None},
                "seconds": round(self.seconds, 1)}


def _request(port: int, method: str, path: str, timeout: float, body: Optional[bytes] = None,
             headers: Optional[dict] = None):
    conn = http.client.HTTPConnection(HOST, port, timeout=timeout)
    try:
        conn.request(method, path, body=body, headers=headers or {})
        res = conn.getresponse()
        return res.status, res.read()
    finally:
        conn.close()


def run_load(port: int, num_frames: int, rid: str = "0", clients: int = 8, seconds: float = 10.0,
             max_requests: int = 5000, upload: Optional[bytes] = None, max_uploads: int = 3,
             timeout: float = 20.0, rss: Optional[Callable[[], float]] = None, seed: int = 0) -> LoadReport:
    """Run the load; see the module notes. ``rss``: returns the server's RSS in MiB (sampled ~5/s)."""
    report = LoadReport()
    lock = threading.Lock()
    stop = threading.Event()
    t0 = time.perf_counter()
    deadline = t0 + seconds

    def record(label: str, status: Optional[int], n: int, ms: float) -> None:
        with lock:
            report.requests += 1
            report.bytes += n
            report.latencies_ms.append(ms)
            if status is None:
                report.stuck += 1
            elif status >= 400:
                report.errors[f"{label} -> {status}"] = report.errors.get(f"{label} -> {status}", 0) + 1
            if report.requests >= max_requests:
                stop.set()

    def client(k: int) -> None:
        rng = random.Random(seed * 1000 + k)
        routes = ([lambda: ("frame", f"/api/results/{rid}/frames/{rng.randrange(num_frames)}.jpg")] * 4
                  + [lambda: ("outline", f"/api/results/{rid}/outlines/{rng.randrange(num_frames)}.json")] * 3
                  + [lambda: ("masks.zip", f"/api/results/{rid}/masks.zip"),
                     lambda: ("predictions.csv", f"/api/results/{rid}/predictions.csv"),
                     lambda: ("info", "/api/info"), lambda: ("meta", f"/api/results/{rid}")])
        while not stop.is_set() and time.perf_counter() < deadline:
            label, path = rng.choice(routes)()
            t = time.perf_counter()
            try:
                status, body = _request(port, "GET", path, timeout)
                n = len(body)
            except TimeoutError:
                status, n = None, 0
            except OSError as exc:  # refused or reset: an error response as far as a user is concerned
                status, n, label = 599, 0, f"{label} ({type(exc).__name__})"
            record(label, status, n, (time.perf_counter() - t) * 1000)

    def uploader() -> None:
        i = 0
        while upload is not None and i < max_uploads and not stop.is_set() and time.perf_counter() < deadline:
            i += 1
            try:
                status, body = _request(port, "POST", "/api/upload", timeout, body=upload,
                                        headers={"X-Filename": f"load{i}.mp4", "Content-Type": "application/octet-stream"})
                job = json.loads(body)
                if status != 202:
                    report.upload_errors.append(f"upload {i}: HTTP {status}: {job}")
                    continue
                while job["state"] not in ("done", "error") and time.perf_counter() < deadline + 60:
                    time.sleep(0.1)
                    status, body = _request(port, "GET", f"/api/jobs/{job['id']}", timeout)
                    job = json.loads(body)
                if job["state"] == "done":
                    report.uploads_done += 1
                else:
                    report.upload_errors.append(f"upload {i}: {job['state']}: {job.get('message')}")
            except (OSError, ValueError) as exc:
                report.upload_errors.append(f"upload {i}: {type(exc).__name__}: {exc}")

    def sampler() -> None:
        while not stop.is_set() and time.perf_counter() < deadline:
            report.rss_mib.append(rss())
            stop.wait(0.2)

    threads = [threading.Thread(target=client, args=(k,), daemon=True) for k in range(clients)]
    threads.append(threading.Thread(target=uploader, daemon=True))
    if rss is not None:
        threads.append(threading.Thread(target=sampler, daemon=True))
    for t in threads:
        t.start()
    for t in threads:
        t.join(seconds + timeout + 120)  # bounded even if the server stops answering
    stop.set()
    report.seconds = time.perf_counter() - t0
    if rss is not None:
        report.rss_mib.append(rss())
    return report
