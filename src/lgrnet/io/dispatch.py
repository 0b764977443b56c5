"""Which reader opens a path: a folder of frames, a DICOM file (by extension or its ``DICM``
preamble) or a video file (by extension); anything else is refused with one line."""
from __future__ import annotations

import os
from pathlib import Path
from typing import Optional

from ..errors import InputError
from .dicom import DICOM_EXTENSIONS, DicomSource, has_dicom_preamble
from .frame_folder import FrameFolderSource
from .images import IMAGE_EXTENSIONS
from .source import FrameSource, PathLike
from .video_file import VIDEO_EXTENSIONS, VideoFileSource


def open_source(path: PathLike, fps: Optional[float] = None) -> FrameSource:
    """Open a video file, a folder of frames or a DICOM file as a :class:`FrameSource`.

    ``fps`` overrides the frame rate (useful for folders and DICOM files without timing).
    Raises :class:`~lgrnet.errors.InputError` (message: ``"<path>: <problem>"``) for a missing
    path, a file of an unknown kind, an image file where a folder of frames is expected, an
    unreadable, empty or truncated video, frames of different sizes, and 16-bit or RGBA frames.
    """
    raw = os.fspath(path)
    p = Path(raw)
    if not p.exists():
        raise InputError(f"{p}: no such file or folder")
    if p.is_dir():
        return FrameFolderSource(p, fps)
    if raw.endswith(("/", os.sep)):
        raise InputError(f"{p}: is a file, not a folder of frames")
    if not p.is_file():
        raise InputError(f"{p}: not a regular file or folder")
    suffix = p.suffix.lower()
    try:
        empty = p.stat().st_size == 0
    except OSError as exc:
        raise InputError(f"{p}: cannot read ({exc.strerror or exc})") from None
    if empty:
        raise InputError(f"{p}: the file is empty (0 bytes)")
    if suffix in IMAGE_EXTENSIONS:
        raise InputError(f"{p}: is a single image file; pass the folder that holds the frames (or a video / DICOM file)")
    if suffix in DICOM_EXTENSIONS or has_dicom_preamble(p):
        return DicomSource(p, fps)
    if suffix in VIDEO_EXTENSIONS:
        return VideoFileSource(p, fps)
    raise InputError(f"{p}: not a video ({', '.join(e[1:] for e in VIDEO_EXTENSIONS[:6])}, ...), "
                     f"a DICOM file or a folder of frames")
