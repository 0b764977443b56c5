"""The pipeline's stages (lgrnet.inference.pipeline): bounded read-ahead, ordered commits from a pool,
errors from any stage raised in the caller, and the pipelined predictor equal to the serial one."""
import os
import sys
import threading
import time

import numpy as np
import pytest
import torch

from lgrnet import LGRNet, VideoPredictor
from lgrnet.inference.pipeline import OrderedWriter, Prefetcher, StageClock


def test_prefetcher_yields_all_in_order_and_stays_bounded():
    made = []

    def items():
        for i in range(50):
            made.append(i)
            yield i

    p = Prefetcher(items(), depth=3)
    time.sleep(0.2)
    assert len(made) <= 3 + 2  # queue depth, one item being put, one being made
    assert list(p) == list(range(50))
    p.close()


def test_prefetcher_raises_the_producers_error_and_close_stops_it():
    def bad():
        yield 1
        raise ValueError("frame 1 is broken")

    p = Prefetcher(bad(), depth=2)
    assert next(p) == 1
    with pytest.raises(ValueError, match="frame 1 is broken"):
        next(p)
    p.close()
    endless = Prefetcher(iter(range(10**9)), depth=2)
    next(endless)
    endless.close()
    assert not endless._thread.is_alive()


def test_ordered_writer_commits_in_order_from_a_pool():
    committed, threads = [], set()

    def encode(i):
        time.sleep(0.002 * ((7 * i) % 5))  # finish out of order
        threads.add(threading.current_thread().name)
        return i * i

    clock = StageClock()
    with OrderedWriter(encode, committed.append, workers=3, max_pending=4, clock=clock) as w:
        for i in range(40):
            w.submit(i)
        w.drain()
    assert committed == [i * i for i in range(40)]
    assert len(threads) > 1 and set(clock.seconds()) == {"encode", "commit"}


@pytest.mark.parametrize("where", ["encode", "commit"])
def test_ordered_writer_error_stops_it_and_is_raised(where):
    committed = []

    def encode(i):
        if where == "encode" and i == 5:
            raise OSError("disk full")
        return i

    def commit(i):
        if where == "commit" and i == 5:
            raise OSError("disk full")
        committed.append(i)

    with pytest.raises(OSError, match="disk full"):
        with OrderedWriter(encode, commit, workers=2, max_pending=2) as w:
            for i in range(100):
                w.submit(i)
            w.drain()
    assert committed == list(range(5))  # nothing after the failed frame


def test_pipelined_predictor_matches_serial(monkeypatch):
    monkeypatch.setenv("LGRNET_READ_AHEAD", "1")  # a reader thread even where the model takes every core
    torch.manual_seed(0)
    model = LGRNet.from_preset("tiny").eval()
    frames = np.random.default_rng(0).integers(0, 256, (11, 40, 48, 3), dtype=np.uint8)
    a = VideoPredictor(model, size=32, window=5, overlap=2, pipeline=True)
    b = VideoPredictor(model, size=32, window=5, overlap=2, pipeline=False)
    ra, sa = a.predict(frames), a.stream(frames)
    rb = b.predict(frames)
    assert np.array_equal(ra.masks, rb.masks) and np.array_equal(ra.probs, rb.probs)
    assert np.array_equal(ra.score, rb.score) and ra.names == rb.names
    list(sa)
    assert {"read", "wait_read", "model", "postprocess"} <= set(sa.info["stage_seconds"])
    assert sa.info["read_ahead"] is True


def test_reader_thread_only_where_cores_are_spare(monkeypatch):
    from lgrnet.inference import pipeline

    monkeypatch.delenv("LGRNET_READ_AHEAD", raising=False)
    monkeypatch.setattr(pipeline, "available_cores", lambda: 2)
    monkeypatch.setattr(torch, "get_num_threads", lambda: 2)
    assert pipeline.reader_thread_helps("cpu") is False  # the model's threads take every core
    assert pipeline.reader_thread_helps("cuda") is True
    monkeypatch.setattr(torch, "get_num_threads", lambda: 1)
    assert pipeline.reader_thread_helps("cpu") is True
    monkeypatch.setenv("LGRNET_READ_AHEAD", "0")
    assert pipeline.reader_thread_helps("cuda") is False
    monkeypatch.setattr(torch, "get_num_threads", lambda: 2)
    monkeypatch.setenv("LGRNET_READ_AHEAD", "1")
    assert pipeline.reader_thread_helps("cpu") is True
    frames = np.random.default_rng(0).integers(0, 256, (4, 40, 48, 3), dtype=np.uint8)
    monkeypatch.setenv("LGRNET_READ_AHEAD", "0")
    stream = VideoPredictor(LGRNet.from_preset("tiny").eval(), size=32, window=3, overlap=1).stream(frames)
    assert len(list(stream)) == 4 and stream.info["read_ahead"] is False
    assert "wait_read" not in stream.info["stage_seconds"]


@pytest.mark.skipif(not hasattr(os, "getpriority") or not sys.platform.startswith("linux"), reason="per-thread nice is Linux's")
@pytest.mark.parametrize("low", [False, True])
def test_low_priority_helpers_run_at_nice_19_and_the_caller_is_untouched(low, monkeypatch):
    monkeypatch.delenv("LGRNET_HELPER_NICE", raising=False)
    base = os.getpriority(os.PRIO_PROCESS, threading.get_native_id())

    def nice_of_this_thread(_=None):
        return os.getpriority(os.PRIO_PROCESS, threading.get_native_id())

    reader = Prefetcher((nice_of_this_thread() for _ in range(2)), depth=1, low_priority=low)
    seen_by_reader = list(reader)
    committed = []
    with OrderedWriter(nice_of_this_thread, lambda encoded: committed.append((encoded, nice_of_this_thread())),
                       workers=2, low_priority=low) as w:
        for i in range(3):
            w.submit(i)
        w.drain()
    want = max(base, 19) if low else base
    assert seen_by_reader == [want, want]
    assert committed == [(want, want)] * 3  # encoder threads and the committing thread alike
    assert nice_of_this_thread() == base  # the caller (the model's thread) keeps its priority
