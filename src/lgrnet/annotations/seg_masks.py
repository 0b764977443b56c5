"""CVAT "Segmentation mask 1.1" (Pascal VOC style, also Datumaro's ``voc_segmentation``) exports.

The export (a folder, or the ``.zip`` CVAT downloads)::

    labelmap.txt                     # label:color_rgb:parts:actions
                                     background:0,0,0::
                                     polyp:250,50,83::
    SegmentationClass/<frame>.png    RGB, each pixel the colour of its label
    SegmentationObject/<frame>.png   (instances; not needed here)
    ImageSets/Segmentation/*.txt     (the frame list; not needed here)

Every PNG of ``SegmentationClass/`` is an annotated frame, named by its stem (CVAT names a video's
frames ``frame_000012``). Its mask: the pixels whose colour is one of the selected labels'. A
colour that no label of ``labelmap.txt`` has is an error (an unknown label), and so is a palette
or grey PNG whose values are not colours of the label map.
"""
from __future__ import annotations

import io
import os
import zipfile
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple, Union

import numpy as np
from PIL import Image

from . import AnnotationError
from .frames import AnnotatedFrame, select_labels

PathLike = Union[str, os.PathLike]
CLASS_DIR = "SegmentationClass"
LABELMAP = "labelmap.txt"


class _Tree:
    """Files of an export folder or zip, by their path relative to the export's root."""

    def __init__(self, path: Path):
        self.path = path
        self.zip: Optional[zipfile.ZipFile] = None
        if path.is_file():
            try:
                self.zip = zipfile.ZipFile(path)
            except (OSError, zipfile.BadZipFile) as exc:
                raise AnnotationError(f"{path}: not a folder or a readable zip ({exc})") from None
            names = [n for n in self.zip.namelist() if not n.endswith("/")]
            prefix = ""
            hits = [n for n in names if Path(n).name == LABELMAP]
            if len(hits) == 1:
                prefix = hits[0][: -len(LABELMAP)]
            self.files = {n[len(prefix):]: n for n in names if n.startswith(prefix)}
        elif path.is_dir():
            self.files = {p.relative_to(path).as_posix(): str(p) for p in path.rglob("*") if p.is_file()}
        else:
            raise AnnotationError(f"{path}: no such folder or zip")

    def read(self, rel: str) -> bytes:
        src = self.files[rel]
        try:
            return self.zip.read(src) if self.zip is not None else Path(src).read_bytes()
        except OSError as exc:
            raise AnnotationError(f"{self.path}/{rel}: cannot read ({exc})") from None

    def where(self, rel: str) -> str:
        return f"{self.path}:{rel}" if self.zip is not None else str(self.path / rel)


def _code(rgb) -> int:
    """An RGB colour as one int (r << 16 | g << 8 | b)."""
    return (int(rgb[0]) << 16) | (int(rgb[1]) << 8) | int(rgb[2])


def parse_labelmap(text: str, where: str) -> Dict[str, Tuple[int, int, int]]:
    """``labelmap.txt`` -> {label: (r, g, b)} (comment lines start with '#')."""
    out: Dict[str, Tuple[int, int, int]] = {}
    for n, line in enumerate(text.splitlines(), 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        parts = line.split(":")
        try:
            rgb = tuple(int(v) for v in parts[1].split(","))
            if len(parts) < 2 or len(rgb) != 3 or not all(0 <= v <= 255 for v in rgb):
                raise ValueError
        except (IndexError, ValueError):
            raise AnnotationError(f"{where}: malformed line {n}: {line!r} (expected name:r,g,b:parts:actions)") from None
        if parts[0] in out:
            raise AnnotationError(f"{where}: malformed: label {parts[0]!r} is listed twice")
        out[parts[0]] = rgb  # type: ignore[assignment]
    if not out:
        raise AnnotationError(f"{where}: empty label map")
    return out


def read_seg_masks(path: PathLike, labels: Optional[Sequence[str]] = None) -> List[AnnotatedFrame]:
    """The annotated frames of a segmentation-mask export (folder or zip), refs = file names."""
    path = Path(path)
    tree = _Tree(path)
    if LABELMAP not in tree.files:
        raise AnnotationError(f"{path}: no {LABELMAP} (not a CVAT 'Segmentation mask' export)")
    raw = tree.read(LABELMAP)
    if not raw.strip():
        raise AnnotationError(f"{tree.where(LABELMAP)}: empty file")
    try:
        labelmap = parse_labelmap(raw.decode("utf-8"), tree.where(LABELMAP))
    except UnicodeDecodeError:
        raise AnnotationError(f"{tree.where(LABELMAP)}: malformed: not UTF-8 text") from None
    chosen = select_labels(list(labelmap), labels, tree.where(LABELMAP), background=("background",))
    colours = {rgb: name for name, rgb in labelmap.items()}
    known = np.array(sorted(_code(c) for c in colours), dtype=np.int64)
    fg = np.array(sorted(_code(labelmap[n]) for n in chosen), dtype=np.int64)
    pngs = sorted(r for r in tree.files if r.startswith(CLASS_DIR + "/") and r.lower().endswith(".png"))
    if not pngs:
        raise AnnotationError(f"{path}: no {CLASS_DIR}/*.png masks")
    out: List[AnnotatedFrame] = []
    for rel in pngs:
        where = tree.where(rel)
        data = tree.read(rel)
        if not data:
            raise AnnotationError(f"{where}: empty file")
        try:
            with Image.open(io.BytesIO(data)) as im:
                im.load()
                if im.mode in ("I;16", "I;16B", "I;16L", "I", "F"):
                    raise AnnotationError(f"{where}: malformed: a {im.mode} image; class masks are RGB colours")
                rgb = np.asarray(im.convert("RGB"))
        except AnnotationError:
            raise
        except Exception as exc:
            raise AnnotationError(f"{where}: malformed: cannot read the PNG ({exc})") from None
        codes = (rgb[..., 0].astype(np.int64) << 16) | (rgb[..., 1].astype(np.int64) << 8) | rgb[..., 2]
        unknown = ~np.isin(codes, known)
        if unknown.any():
            y, x = (int(v[0]) for v in np.nonzero(unknown))
            raise AnnotationError(f"{where}: unknown label: colour {tuple(int(v) for v in rgb[y, x])} at x={x}, y={y} "
                                  f"is not in {LABELMAP}")
        out.append(AnnotatedFrame(Path(rel).name, rgb.shape[:2], np.isin(codes, fg)))
    return out
