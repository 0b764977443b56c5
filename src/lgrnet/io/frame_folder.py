"""A folder of image frames (png, jpg, bmp, tif) as a source, in natural order of the file names.

Every image header is read when the folder is opened: sizes must all match, and 16-bit grey,
float or alpha (RGBA, LA) images are rejected, since converting them to 8-bit RGB silently would
be wrong (16-bit RGB PNGs are full-range: Pillow decodes them to 8-bit RGB, the high byte of
each sample).
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Iterator, List, Optional, Sequence

import numpy as np

from ..errors import InputError
from .images import IMAGE_EXTENSIONS, image_header, list_images, list_subdirs, read_frame, unsupported_frame_error
from .source import DEFAULT_FPS, FrameSource, PathLike


class FrameFolderSource(FrameSource):
    """A folder of images (png, jpg, bmp, tif), ordered by the numbers in their names (natural sort).

    ``files``: the frames' file names in ``path``, in temporal order, instead of every image of the
    folder (a dataset's video, see :meth:`from_files`).
    """

    kind = "frames"

    def __init__(self, path: Path, fps: Optional[float] = None, files: Optional[Sequence[str]] = None):
        path = Path(path)
        if files is None:
            try:
                files = [p.name for p in list_images(path)]
                subdirs = [] if files else list_subdirs(path)
            except OSError as exc:
                raise InputError(f"{path}: cannot list the folder ({exc.strerror or exc})") from None
            if not files:
                hint = f"; it has sub-folders ({', '.join(subdirs[:3])}{', ...' if len(subdirs) > 3 else ''}): pass one of them" if subdirs else ""
                raise InputError(f"{path}: the folder has no frames (no {'/'.join(e[1:] for e in IMAGE_EXTENSIONS)} images){hint}")
        files = list(files)
        if not files:
            raise InputError(f"{path}: no frames given")
        size = None
        for name in files:  # headers only: fail before any work on size or format problems
            wh, mode = image_header(path / name)
            error = unsupported_frame_error(path / name, mode)
            if error is not None:
                raise error
            hw = (wh[1], wh[0])
            if size is None:
                size = hw
            elif hw != size:
                raise InputError(f"{path}: frames have different sizes: {files[0]} is {size[1]}x{size[0]}, "
                                 f"{name} is {hw[1]}x{hw[0]}; all frames must have one size")
        self.files = files
        super().__init__(path, fps or DEFAULT_FPS, len(files), size)

    @classmethod
    def from_files(cls, paths: Sequence[PathLike], fps: Optional[float] = None) -> "FrameFolderSource":
        """The given image files, in this order, as one source; they must share one folder."""
        paths = [Path(os.fspath(p)) for p in paths]
        if not paths:
            raise InputError("no frames given")
        folders = {p.parent for p in paths}
        if len(folders) > 1:
            raise InputError(f"{paths[0].parent}: frames of one source must be in one folder (also {sorted(folders)[1]})")
        return cls(paths[0].parent, fps, files=[p.name for p in paths])

    def name(self, index: int) -> str:
        return self.files[index]

    def names(self) -> List[str]:
        return list(self.files)

    def read(self, index: int) -> np.ndarray:
        index = self._check_index(index)
        return self._check_size(read_frame(self.path / self.files[index]), index)

    def __iter__(self) -> Iterator[np.ndarray]:
        for i in range(len(self.files)):
            yield self.read(i)
