"""The stages of a prediction run side by side: a reader thread ahead of the model, a writer pool
behind it, and a clock of how long each stage was busy.

    read (decode + resize)  ->  [bounded queue]  ->  model + post-processing  ->  [bounded pool]  ->  write

:class:`Prefetcher` runs an iterator (the frame reader) in a thread and hands its items over
through a queue of at most ``depth`` items; :class:`OrderedWriter` runs ``encode(item)`` in a pool
of threads and ``commit(encoded)`` in one thread, in submission order, with at most
``max_pending`` items in flight. Both are bounded, so memory stays flat in the video's length,
and the slowest stage sets the pace. An exception in any stage is re-raised in the caller's
thread (on the next item, or when the stage is closed), and closing a stage stops its threads
before the caller cleans up (the result folder is removed only once no thread writes into it).

Why threads, not processes: decoding (PyAV), resizing and PNG encoding (OpenCV) and H.264
encoding release the GIL, and the frames need no copying between threads.
:class:`StageClock` adds up, per stage, the seconds it was busy (stages overlap, so their sum can
exceed the wall time); ``predictions.json`` records them and ``lgrnet predict --profile`` prints
them as shares of the wall time.
"""
from __future__ import annotations

import collections
import contextlib
import os
import queue
import sys
import threading
import time
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Callable, Dict, Generic, Iterator, Optional, TypeVar

T = TypeVar("T")
E = TypeVar("E")

_DONE = object()


def background_priority() -> None:
    """Lower the calling thread's scheduling priority (Linux: per-thread nice 19; elsewhere nothing).

    For a model on the CPU: its intra-op threads (OpenMP) meet at a barrier after every op, so a
    reader or writer thread that pre-empts one of them stalls them all. At the lowest priority the
    helpers take the cores' idle moments and the model's threads run undisturbed; the bounded
    queues still make the model wait when the helpers fall behind, so every frame is still
    written. Measured (benchmarks/pipeline.py speed, tiny, 150 frames, 2 cores): end-to-end /
    model-only 0.66 at the default priority, 0.77 at nice 10, 0.81-0.86 at nice 19.
    ``LGRNET_HELPER_NICE=N`` sets another value (0: the default priority).
    """
    nice = int(os.environ.get("LGRNET_HELPER_NICE", "19"))
    if nice <= 0 or not hasattr(os, "setpriority") or not sys.platform.startswith("linux"):
        return
    try:
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), nice)
    except OSError:  # not permitted here: run at the default priority
        pass


def available_cores() -> int:
    """The cores this process may run on (its CPU affinity where the OS reports it)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:
        return os.cpu_count() or 1


def reader_thread_helps(device_type: str) -> bool:
    """Whether reading ahead in a thread (:class:`Prefetcher`) speeds a model on ``device_type`` up.

    Yes on an accelerator, and on the CPU when the cores outnumber PyTorch's intra-op threads. No
    when the model's threads take every core: decoding and resizing in the caller's thread then
    cost ~2.5 % of a ``tiny`` run (1.5 ms decoding + 1 ms resizing a 574x500 frame against ~100 ms
    for the model), whereas a reader thread, even at the lowest priority, pre-empts the model's
    OpenMP threads and, through the resize's own OpenMP team, oversubscribes the cores. Measured
    (2 cores, ``tiny`` trained weights, 200 frames, predictions consumed, nothing written; frames/s
    against the model alone, 4 interleaved rounds): reader thread 0.59, reader thread resizing
    with PIL (no PyTorch) 0.87, in the caller's thread 1.00.
    ``LGRNET_READ_AHEAD=1`` / ``0`` forces it on / off.
    """
    env = os.environ.get("LGRNET_READ_AHEAD")
    if env in ("0", "1"):
        return env == "1"
    if device_type != "cpu":
        return True
    import torch

    return available_cores() > torch.get_num_threads()


class StageClock:
    """Busy seconds per stage, safe to add to from several threads.

    >>> clock = StageClock()
    >>> with clock("model"):
    ...     run()
    >>> clock.seconds()   # {"model": 1.23}
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._seconds: Dict[str, float] = collections.defaultdict(float)

    def add(self, stage: str, seconds: float) -> None:
        with self._lock:
            self._seconds[stage] += seconds

    @contextlib.contextmanager
    def __call__(self, stage: str) -> Iterator[None]:
        t = time.perf_counter()
        try:
            yield
        finally:
            self.add(stage, time.perf_counter() - t)

    def seconds(self) -> Dict[str, float]:
        with self._lock:
            return {k: round(v, 3) for k, v in self._seconds.items()}


def shares(stage_seconds: Dict[str, float], wall: float) -> Dict[str, float]:
    """Each stage's busy seconds as a share of the wall time (0.0 .. about 1 per stage)."""
    return {k: round(v / wall, 3) if wall > 0 else 0.0 for k, v in stage_seconds.items()}


class Prefetcher(Generic[T]):
    """Iterate ``items`` in a background thread, at most ``depth`` items ahead of the consumer.

    The producer's exception is raised by ``next()`` in the consumer's thread; :meth:`close`
    (also on garbage collection of an abandoned iteration: call it) stops the producer at its
    next item and joins it. ``clock``/``stage``: the producer's busy time is added there.
    """

    def __init__(self, items: Iterator[T], depth: int, clock: Optional[StageClock] = None, stage: str = "read",
                 name: str = "lgrnet-reader", low_priority: bool = False):
        self._items = items
        self._low_priority = low_priority
        self._queue: "queue.Queue" = queue.Queue(maxsize=max(1, int(depth)))
        self._stop = threading.Event()
        self._clock = clock
        self._stage = stage
        self._thread = threading.Thread(target=self._produce, name=name, daemon=True)
        self._finished = False
        self._thread.start()

    def _put(self, item) -> bool:
        while not self._stop.is_set():
            try:
                self._queue.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def _produce(self) -> None:
        if self._low_priority:
            background_priority()
        try:
            while not self._stop.is_set():
                t = time.perf_counter()
                try:
                    item = next(self._items)
                except StopIteration:
                    break
                finally:
                    if self._clock is not None:
                        self._clock.add(self._stage, time.perf_counter() - t)
                if not self._put((True, item)):
                    return
        except BaseException as exc:  # handed to the consumer, raised there
            self._put((False, exc))
            return
        self._put((True, _DONE))

    def __iter__(self) -> "Prefetcher[T]":
        return self

    def __next__(self) -> T:
        if self._finished:
            raise StopIteration
        ok, item = self._queue.get()
        if not ok:
            self._finished = True
            raise item
        if item is _DONE:
            self._finished = True
            raise StopIteration
        return item

    def close(self) -> None:
        """Stop the producer and wait for it (its iterator is closed in its own thread's last step)."""
        self._stop.set()
        while self._thread.is_alive():
            with contextlib.suppress(queue.Empty):
                self._queue.get_nowait()  # unblock a producer waiting on a full queue
            self._thread.join(timeout=0.05)
        close = getattr(self._items, "close", None)
        if close is not None:
            close()


class OrderedWriter(Generic[T, E]):
    """``encode`` items in a pool of ``workers`` threads, ``commit`` them in one thread in order.

    >>> with OrderedWriter(encode, commit, workers=2, max_pending=32) as w:
    ...     for item in items: w.submit(item)    # blocks while max_pending items are in flight
    ...     w.drain()                            # all committed; raises the first stage error

    ``encode(item) -> encoded`` must be safe to run concurrently (PNG encoding, drawing);
    ``commit(encoded)`` runs in submission order (CSV rows, the overlay video's encoder). The first
    error of either stops the writer: :meth:`submit` and :meth:`drain` raise it. Leaving the
    ``with`` block (normally or by an exception) stops the threads before returning, so a caller
    can remove what they were writing into.
    """

    def __init__(self, encode: Callable[[T], E], commit: Callable[[E], None], workers: int = 2,
                 max_pending: int = 32, clock: Optional[StageClock] = None, low_priority: bool = False):
        self._encode = encode
        self._low_priority = low_priority
        self._commit = commit
        self._clock = clock
        self._pool = ThreadPoolExecutor(max_workers=max(1, int(workers)), thread_name_prefix="lgrnet-encode",
                                        initializer=background_priority if low_priority else None)
        self._queue: "queue.Queue" = queue.Queue(maxsize=max(1, int(max_pending)))
        self._error: Optional[BaseException] = None
        self._stop = threading.Event()
        self._committer = threading.Thread(target=self._commit_loop, name="lgrnet-commit", daemon=True)
        self._committer.start()

    def _timed_encode(self, item: T) -> E:
        if self._stop.is_set():
            raise _Cancelled()
        t = time.perf_counter()
        try:
            return self._encode(item)
        finally:
            if self._clock is not None:
                self._clock.add("encode", time.perf_counter() - t)

    def _commit_loop(self) -> None:
        if self._low_priority:
            background_priority()
        while True:
            fut = self._queue.get()
            if fut is _DONE:
                return
            if self._error is not None or self._stop.is_set():
                fut.cancel()
                continue
            try:
                encoded = fut.result()
                t = time.perf_counter()
                self._commit(encoded)
                if self._clock is not None:
                    self._clock.add("commit", time.perf_counter() - t)
            except _Cancelled:
                continue
            except BaseException as exc:
                self._error = exc
                self._stop.set()

    def _raise(self) -> None:
        if self._error is not None:
            raise self._error

    def submit(self, item: T) -> None:
        """Queue ``item`` (blocks while ``max_pending`` items are in flight)."""
        self._raise()
        fut: Future = self._pool.submit(self._timed_encode, item)
        while True:
            try:
                self._queue.put(fut, timeout=0.1)
                break
            except queue.Full:
                self._raise()
        self._raise()

    def drain(self) -> None:
        """Wait until every submitted item is committed; raise the first error."""
        self._queue.put(_DONE)
        self._committer.join()
        self._pool.shutdown(wait=True)
        self._raise()

    def close(self) -> None:
        """Stop: cancel what is not encoded yet and wait for the threads."""
        self._stop.set()
        if self._committer.is_alive():
            while True:
                try:
                    self._queue.put(_DONE, timeout=0.1)
                    break
                except queue.Full:
                    with contextlib.suppress(queue.Empty):
                        f = self._queue.get_nowait()
                        if isinstance(f, Future):
                            f.cancel()
            self._committer.join()
        self._pool.shutdown(wait=True, cancel_futures=True)

    def __enter__(self) -> "OrderedWriter[T, E]":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


class _Cancelled(Exception):
    """An item skipped because the writer was stopped."""
