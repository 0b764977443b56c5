"""Writing output files atomically, with the permissions a user expects.

Every file the package writes (checkpoints, logs, configs, tables, prediction PNGs) goes through
:func:`atomic_write`: the content is written to a temporary file beside the target, which is then
renamed onto it, so a reader (or a crash) never sees a half-written file. Unlike
``tempfile.mkstemp``, whose files are private (0600), the temporary file is created with mode
0666 and the process's umask applied, as ``open(path, "w")`` would create it; temporary folders
from :func:`make_temp_dir` likewise get 0777 minus the umask, not ``mkdtemp``'s 0700.
:func:`probe_writable` proves, before any work, that an output can be created where the user asked
(a commands' first check: a read-only folder is refused in one line, not after minutes of compute).
:func:`sha256_file` is the digest that run records and conversions print.
"""
from __future__ import annotations

import os
import secrets
from pathlib import Path
from typing import Callable, Union

PathLike = Union[str, os.PathLike]
_ATTEMPTS = 100


def _unique_name(directory: str, prefix: str, suffix: str = "") -> str:
    return os.path.join(directory, f"{prefix}{secrets.token_hex(4)}{suffix}")


def atomic_write(path: PathLike, write: Callable[[str], None]) -> str:
    """Call ``write(tmp_path)`` on a new temporary file beside ``path``, then rename it onto ``path``.

    The final file has mode ``0666 & ~umask`` (like a file made with ``open``). The parent folder
    is created if needed; on any error the temporary file is removed and ``path`` is untouched.
    Returns the absolute path.
    """
    path = os.path.abspath(os.fspath(path))
    directory = os.path.dirname(path)
    os.makedirs(directory, exist_ok=True)
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0)
    for _ in range(_ATTEMPTS):
        tmp = _unique_name(directory, ".tmp-", "-" + os.path.basename(path)[-100:])
        try:
            fd = os.open(tmp, flags, 0o666)  # the kernel applies the umask
        except FileExistsError:
            continue
        os.close(fd)
        mode = os.stat(tmp).st_mode & 0o7777
        break
    else:
        raise FileExistsError(f"{directory}: cannot create a temporary file for {os.path.basename(path)}")
    try:
        write(tmp)
        if os.stat(tmp).st_mode & 0o7777 != mode:  # a writer that recreated the file (safetensors: 0600)
            os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise
    return path


def write_bytes_atomic(path: PathLike, data: bytes) -> str:
    """Write ``data`` to ``path`` atomically (see :func:`atomic_write`)."""

    def write(tmp: str) -> None:
        with open(tmp, "wb") as f:
            f.write(data)

    return atomic_write(path, write)


def write_text_atomic(path: PathLike, text: str) -> str:
    """Write ``text`` as UTF-8 to ``path`` atomically, newlines as given (see :func:`atomic_write`)."""
    return write_bytes_atomic(path, text.encode("utf-8"))


def make_temp_dir(parent: PathLike, prefix: str) -> Path:
    """A new, empty folder ``parent/<prefix><random>`` with mode ``0777 & ~umask`` (``mkdtemp``
    would make it private, and renaming it into place would keep that)."""
    parent = os.fspath(parent)
    for _ in range(_ATTEMPTS):
        path = _unique_name(parent, prefix)
        try:
            os.mkdir(path, 0o777)  # the kernel applies the umask
        except FileExistsError:
            continue
        return Path(path)
    raise FileExistsError(f"{parent}: cannot create a temporary folder {prefix}...")


def probe_writable(folder: PathLike) -> Path:
    """Prove that files can be created in ``folder`` (created later if missing): create and remove a
    probe file in the nearest folder that exists at or above it, and return that folder.

    Raises the :class:`OSError` the creation raised (``PermissionError`` for a read-only folder, EROFS
    for a read-only file system, ...), :class:`NotADirectoryError` when the nearest existing path is a
    file, and :class:`FileNotFoundError` for a broken symbolic link on the way (creating the folder
    would fail). ``filename`` of the error is the path that failed, for the caller's message.
    ``os.access`` is not enough: it does not see read-only bind mounts and ACLs the same way."""
    path = Path(os.path.abspath(os.fspath(folder)))
    existing = path
    while not existing.exists() and existing != existing.parent:
        if existing.is_symlink():
            raise FileNotFoundError(2, "a broken symbolic link", str(existing))
        existing = existing.parent
    if not existing.is_dir():
        raise NotADirectoryError(20, "a file, not a folder", str(existing))
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0)
    for _ in range(_ATTEMPTS):
        probe = _unique_name(str(existing), ".lgrnet-write-check-")
        try:
            fd = os.open(probe, flags, 0o600)
        except FileExistsError:
            continue
        except OSError as exc:
            raise type(exc)(exc.errno, exc.strerror, str(existing)) from None
        os.close(fd)
        os.unlink(probe)
        return existing
    raise FileExistsError(17, "cannot create a probe file", str(existing))


def sha256_file(path: PathLike) -> str:
    """Hex SHA-256 of a file, read in 1 MiB blocks."""
    import hashlib

    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()
