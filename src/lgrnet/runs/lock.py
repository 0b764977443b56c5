"""One process at a time on one result: :class:`NameLock` is an advisory lock (``flock``) on a
file ``OUT/.<name>.lock`` that a process holds while it writes the result ``name``.

Runs that share an output folder (two ``lgrnet predict`` into one ``--out``, a torchrun run
beside a rerun of it) take each result's lock before they touch it, so that a run only ever
removes the temporary folders of a result it holds (they can only be a killed run's), and a
second run waits for a result another run is writing instead of writing it twice. The lock
goes with its holder: a killed process (any signal, SIGKILL included) frees it, and the file is
removed on release. Where ``fcntl`` is missing (Windows) the lock is a no-op.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Optional

try:
    import fcntl
except ImportError:  # Windows: no advisory locks; runs into one folder are not protected
    fcntl = None  # type: ignore[assignment]


def lock_path(out_dir: Path, name: str) -> Path:
    return Path(out_dir) / f".{name}.lock"


class NameLock:
    """The lock of result ``name`` in ``out_dir``: :meth:`acquire` (``wait``: block until it is
    free, else return False at once when another process holds it), :meth:`release`."""

    def __init__(self, out_dir: Path, name: str):
        self.path = lock_path(out_dir, name)
        self._fd: Optional[int] = None

    def acquire(self, wait: bool = False) -> bool:
        if fcntl is None:
            return True
        flags = os.O_RDWR | os.O_CREAT | getattr(os, "O_CLOEXEC", 0)
        while True:
            fd = os.open(self.path, flags, 0o666)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | (0 if wait else fcntl.LOCK_NB))
            except BlockingIOError:
                os.close(fd)
                return False
            except BaseException:
                os.close(fd)
                raise
            # The holder before us removes the file on release: a lock on a removed file is no
            # lock (a third process would create a new one), so try again on the current file.
            try:
                same = os.path.samestat(os.fstat(fd), os.stat(self.path))
            except FileNotFoundError:
                same = False
            if same:
                self._fd = fd
                return True
            os.close(fd)

    def release(self) -> None:
        if self._fd is None:
            return
        try:
            os.unlink(self.path)  # while still held: nobody can be holding this file after us
        except FileNotFoundError:
            pass
        os.close(self._fd)
        self._fd = None

    def __enter__(self) -> "NameLock":
        self.acquire(wait=True)
        return self

    def __exit__(self, *exc) -> None:
        self.release()


def is_locked(out_dir: Path, name: str) -> bool:
    """Whether a process holds the lock of ``name`` now (it is being written)."""
    if fcntl is None or not lock_path(out_dir, name).exists():
        return False
    probe = NameLock(out_dir, name)
    if probe.acquire(wait=False):
        probe.release()  # free: a killed holder's file, now removed
        return False
    return True
