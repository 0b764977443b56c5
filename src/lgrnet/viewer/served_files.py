"""What the review page may read from a result folder: regular files inside it, never a symlink.

Used by the server's file routes and by the corrections API, which turn :class:`NotServed` into
HTTP 403.
"""
from __future__ import annotations

import os
import stat
from pathlib import Path
from typing import BinaryIO, Optional


class NotServed(Exception):
    """A path that exists but is not a regular file inside the result folder (or cannot be read)."""


def result_file(root: Path, name: str) -> Optional[Path]:
    """``root/name`` if it is a regular file inside the result folder ``root``; None if it does not
    exist. A symlink, a folder, a device, or a path that leaves ``root`` (through a symlinked
    folder) raises :class:`NotServed`: the page serves only what the result folder itself holds."""
    path = Path(root) / name
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise NotServed(f"{name}: cannot be read ({exc.strerror or exc})") from None
    real_root = os.path.realpath(root)
    if not stat.S_ISREG(st.st_mode) or os.path.commonpath([real_root, os.path.realpath(path)]) != real_root:
        raise NotServed(f"{name}: not a regular file inside the result folder; not served")
    return path


def open_result_file(path: Path) -> BinaryIO:
    """Open a file that :func:`result_file` accepted, refusing a symlink swapped in since."""
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0))
    except OSError as exc:
        raise NotServed(f"{Path(path).name}: cannot be read ({exc.strerror or exc})") from None
    return os.fdopen(fd, "rb")


def read_result_file(root: Path, path: Path) -> Optional[bytes]:
    """The bytes of ``path`` (inside ``root``) if :func:`result_file` accepts it; None if it does not exist."""
    accepted = result_file(root, Path(path).relative_to(root).as_posix())
    if accepted is None:
        return None
    with open_result_file(accepted) as f:
        return f.read()
