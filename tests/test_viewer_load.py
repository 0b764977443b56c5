"""`lgrnet view` under load on loopback (small CI part; benchmarks/viewer_load.py runs longer): six
clients fetch frames, outlines, masks.zip, the CSV and the JSON routes while two uploads run through
the job queue. No error responses, no request past the client time-out, every upload done, the
server's memory bounded (the JPEG cache has a byte limit; zips are spooled to disk past 64 MiB)."""
from __future__ import annotations

from lgrnet.viewer import ViewerApp, find_results
from test_viewer import _fake_runner
from tests.helpers.viewer_results import N, Server, make_result, make_video
from tests.helpers.viewer_load import rss_mib, run_load


def test_concurrent_clients_while_uploads_run(tmp_path):
    root = make_result(tmp_path / "case01")
    make_video(tmp_path / "up.mp4", n=12)
    calls = []
    s = Server(ViewerApp(find_results(root), runner=_fake_runner(calls), work_dir=tmp_path / "work",
                         cache_bytes=64 << 10))  # a small cache: evictions happen under load
    try:
        warm = run_load(s.port, N, clients=2, seconds=1.0, max_requests=40)  # first imports and allocations
        assert warm.requests > 0 and not warm.errors
        report = run_load(s.port, N, clients=6, seconds=6.0, max_requests=1500,
                          upload=(tmp_path / "up.mp4").read_bytes(), max_uploads=2, timeout=20, rss=rss_mib)
    finally:
        s.close()
    summary = report.summary()
    print(summary)
    assert report.requests >= 60, summary
    assert report.errors == {} and report.stuck == 0, summary
    assert report.uploads_done == 2 and report.upload_errors == [], summary
    assert len(calls) == 2
    assert report.seconds < 6.0 + 20 + 5  # stopped by itself
    assert max(report.rss_mib) - report.rss_mib[0] < 100, summary  # MiB over the run
