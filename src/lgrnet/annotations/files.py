"""Reading an annotation file's bytes: the file itself, or the one member of a zip (CVAT and other
tools download their exports zipped), with every failure as one :class:`AnnotationError` line."""
from __future__ import annotations

import zipfile
from pathlib import Path
from typing import Callable

from . import AnnotationError


def read_annotation_bytes(path: Path, kind: str, is_member: Callable[[str], bool], holds: str) -> bytes:
    """The bytes of ``path``, or for a ``.zip`` of its single member whose name passes ``is_member``.

    ``kind`` and ``holds`` word the message for a zip without exactly one such member: "a {kind}
    zip must hold {holds}, found N". Raises AnnotationError for a missing, unreadable or empty file.
    """
    try:
        if path.suffix.lower() == ".zip":
            with zipfile.ZipFile(path) as z:
                names = [n for n in z.namelist() if not n.endswith("/") and is_member(n)]
                if len(names) != 1:
                    raise AnnotationError(f"{path}: malformed: a {kind} zip must hold {holds}, found {len(names)}")
                raw = z.read(names[0])
        else:
            raw = path.read_bytes()
    except AnnotationError:
        raise
    except FileNotFoundError:
        raise AnnotationError(f"{path}: no such file") from None
    except (OSError, zipfile.BadZipFile) as exc:
        raise AnnotationError(f"{path}: cannot read ({exc})") from None
    if not raw.strip():
        raise AnnotationError(f"{path}: empty file")
    return raw
