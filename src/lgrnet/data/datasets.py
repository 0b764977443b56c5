"""Video segmentation datasets on disk: videos as ordered frames with their masks.

``find_videos(root, split)`` reads ``root/split`` in any of these layouts (detected in this order, see
:func:`resolve_split`):

1. frame folders (MICCAI VPS test sets, SUN-SEG, the authors' reorganised copies, generic)::

       <dir>/Frame/<video>/<frame>.<jpg|png>      <dir>/GT/<video>/<frame>.png
       <dir>/Box/<video>/<frame>.json             (boxes, optional: :mod:`lgrnet.data.boxes`)

2. an image set (Kvasir-SEG as ``images/`` + ``masks/``, IVPS): images directly in ``<dir>/Frame/``;
   every image is a one-frame video named by its file stem.
3. SUN-SEG's ``TestEasyDataset`` / ``TestHardDataset`` named without ``Seen``/``Unseen``: the union of
   ``<dir>/Seen`` and ``<dir>/Unseen`` (layout 1 each), as the authors' ``Combine`` folders hold.
4. per-video folders (the MICCAI VPS training sets as released)::

       <dir>/<video>/Frame/<frame>                <dir>/<video>/GT/<frame>.png   <dir>/<video>/Box/<frame>.json

``split`` is a path under ``root`` (``TestHardDataset/Unseen``, ``CVC-ClinicDB-612/Test``), or one of
the authors' data-set names (``polyp_hard_unseen_validate``, ``612-test``, the UFUV names
``fibroid_train_temp8``, ``fibroid_validate_temp8``, ... of :mod:`lgrnet.data.ufuv`; see
:data:`SPLIT_ALIASES`), resolved to the first of its known locations that exists. A SUN-SEG ``root``
may also be the folder above ``SUN-SEG-Annotation``.

Frames are ordered by the numbers in their names (natural sort), not as strings; masks are matched
to frames by file stem, and so are box files. A frame may have a mask, boxes, both, or neither (a
context frame). :func:`validate_videos` checks a split before use.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple, Union

import numpy as np

from ..errors import InputError
from ..io.images import UNSUPPORTED_FRAME_MODES, find_image, image_header, list_images, list_subdirs, read_mask_gray
from . import ufuv
from .boxes import BOX_DIR_NAME, BOX_SUFFIX, read_box_file

# Training reads a GT mask as "grey > 0", as the authors binarise training masks
# (polyp_utils.get_frames_mask); scoring uses the toolboxes' "> 128".
TRAIN_MASK_THRESHOLD = 0
FRAME_DIR_NAMES = ("Frame", "Frames", "Image", "Images", "images")
MASK_DIR_NAMES = ("GT", "Mask", "Masks", "masks", "Annotation")


class DatasetError(InputError):
    """A dataset folder cannot be used as is; the message lists the files concerned."""


@dataclass(frozen=True)
class VideoRecord:
    """One video: its frames in temporal order and, aligned with them, its masks.

    ``masks[i]`` is None where frame i has no mask (or the dataset has no GT at all);
    ``extra_masks`` are masks in the video's GT folder that match no frame (see :func:`validate_videos`).
    ``boxes[i]``: frame i's box file or None (``boxes`` is empty when the video has no Box/ folder);
    ``extra_boxes``: box files that match no frame.
    """

    name: str
    frames: Tuple[Path, ...]
    masks: Tuple[Optional[Path], ...]
    extra_masks: Tuple[Path, ...] = ()
    boxes: Tuple[Optional[Path], ...] = ()
    extra_boxes: Tuple[Path, ...] = ()

    def __len__(self) -> int:
        return len(self.frames)

    @property
    def has_masks(self) -> bool:
        return any(m is not None for m in self.masks)

    @property
    def has_boxes(self) -> bool:
        return any(b is not None for b in self.boxes)

    def box_file(self, i: int) -> Optional[Path]:
        """Frame i's box file, or None."""
        return self.boxes[i] if self.boxes else None

    def is_annotated(self, i: int) -> bool:
        """Frame i has a mask or a box file."""
        return self.masks[i] is not None or self.box_file(i) is not None


def _find_subdir(root: Path, candidates: Sequence[str]) -> Optional[Path]:
    for name in candidates:
        if (root / name).is_dir():
            return root / name
    return None


#: The authors' data-set names (their ``SET_NAME_TO_DIR``) -> known locations under the data root, first
#: that exists wins. Their root holds SUN-SEG's splits and ``MICCAI-VPS-dataset/``.
_VPS = "MICCAI-VPS-dataset/"
SPLIT_ALIASES: Dict[str, Tuple[str, ...]] = {
    "polyp_train": ("TrainDataset",),
    "polyp_easy_seen_validate": ("TestEasyDataset/Seen",),
    "polyp_easy_unseen_validate": ("TestEasyDataset/Unseen",),
    "polyp_hard_seen_validate": ("TestHardDataset/Seen",),
    "polyp_hard_unseen_validate": ("TestHardDataset/Unseen",),
    "polyp_easy_validate": ("TestEasyDataset/Combine", "TestEasyDataset/combine", "TestEasyDataset"),
    "polyp_hard_validate": ("TestHardDataset/Combine", "TestHardDataset/combine", "TestHardDataset"),
    "Kvasir-train": (_VPS + "Kvasir-SEG", "Kvasir-SEG"),
    "Mayo-train": (_VPS + "VPS-TrainSet/ASU-Mayo_Clinic/Train", "VPS-TrainSet/ASU-Mayo_Clinic/Train", "ASU-Mayo_Clinic/Train"),
    "300-train": (_VPS + "VPS-TrainSet/CVC-ColonDB-300/Train", "VPS-TrainSet/CVC-ColonDB-300/Train", "CVC-ColonDB-300/Train"),
    "612-train": (_VPS + "VPS-TrainSet/CVC-ClinicDB-612/Train", "VPS-TrainSet/CVC-ClinicDB-612/Train", "CVC-ClinicDB-612/Train"),
    "300-tv": (_VPS + "VPS-TestSet/CVC-ColonDB-300", "VPS-TestSet/CVC-ColonDB-300", "CVC-ColonDB-300/Test"),
    "612-test": (_VPS + "VPS-TestSet/CVC-ClinicDB-612-Test", "VPS-TestSet/CVC-ClinicDB-612-Test", "CVC-ClinicDB-612/Test"),
    "612-val": (_VPS + "VPS-TestSet/CVC-ClinicDB-612-Valid", "VPS-TestSet/CVC-ClinicDB-612-Valid", "CVC-ClinicDB-612/Valid"),
}
# UFUV: fibroid_train_temp8, fibroid_validate_temp8, ... (see lgrnet.data.ufuv)
SPLIT_ALIASES.update(ufuv.split_aliases())
_SUNSEG_PREFIX = "SUN-SEG-Annotation"


@dataclass(frozen=True)
class SplitLayout:
    """Where a split lives and how it is laid out: ``layout`` is one of "frame-folders", "images",
    "seen-unseen", "per-video"; ``parts`` are the folders that hold Frame/ (two for seen-unseen)."""

    path: Path
    layout: str
    parts: Tuple[Path, ...]


def _layout_of(base: Path) -> Optional[SplitLayout]:
    frame_dir = _find_subdir(base, FRAME_DIR_NAMES)
    if frame_dir is not None:
        has_videos = any((frame_dir / d).is_dir() for d in os.listdir(frame_dir) if not d.startswith("."))
        return SplitLayout(base, "frame-folders" if has_videos else "images", (base,))
    halves = tuple(base / h for h in ("Seen", "Unseen") if (base / h).is_dir() and _find_subdir(base / h, FRAME_DIR_NAMES))
    if halves:
        return SplitLayout(base, "seen-unseen", halves)
    subdirs = list_subdirs(base)
    with_frames = [d for d in subdirs if _find_subdir(base / d, FRAME_DIR_NAMES) is not None]
    if with_frames:
        without = [d for d in subdirs if d not in with_frames]
        if without:
            raise DatasetError(f"{base}: per-video layout (<video>/Frame/...), but {', '.join(without[:5])} "
                               f"{'has' if len(without) == 1 else 'have'} no Frame/ folder")
        return SplitLayout(base, "per-video", tuple(base / d for d in subdirs))
    return None


def resolve_split(root: Union[str, Path], split: Optional[str] = None) -> SplitLayout:
    """Find ``split`` under ``root`` (a path, or an authors' data-set name) and detect its layout."""
    root = Path(root)
    if not root.is_dir():
        raise DatasetError(f"{root}: no such dataset folder")
    names = [split] + [n for n in SPLIT_ALIASES.get(split, ()) if n != split] if split else []
    candidates = [root / n for n in names] if split else [root]
    candidates += [root / _SUNSEG_PREFIX / n for n in names] if split else []
    tried = []
    for base in candidates:
        if not base.is_dir():
            tried.append(str(base))
            continue
        found = _layout_of(base)
        if found is not None:
            return found
        tried.append(f"{base} (no Frame/ folder)")
    if split and not any(c.is_dir() for c in candidates):
        raise DatasetError(f"{root}: no split {split!r} (looked for {', '.join(tried)})")
    hint = ""
    if not split and any((root / p / f).is_dir() for p in ufuv.UFUV_PREFIXES for f in ufuv.UFUV_VIDEO_COUNTS):
        hint = " (this looks like a UFUV root: name a split, e.g. --split fibroid_train_temp8 or temp8/train)"
    raise DatasetError(f"{', '.join(tried)}: not a dataset split: expected <split>/Frame/<video>/<frame> with "
                       f"<split>/GT/<video>/<frame>.png, images in <split>/Frame/, Seen/ + Unseen/, "
                       f"or <split>/<video>/Frame/{hint}")


def find_videos(root: Union[str, Path], split: Optional[str] = None, require_masks: bool = False) -> List[VideoRecord]:
    """All videos of a split, in natural order of their names (see the module notes for the layouts).

    Masks are matched to frames by file stem (``12.jpg`` <-> ``12.png``); ``require_masks`` makes a
    split without any GT folder an error.
    """
    info = resolve_split(root, split)
    if info.layout == "per-video":
        records = [_video_from_folders(d.name, _find_subdir(d, FRAME_DIR_NAMES), _find_subdir(d, MASK_DIR_NAMES),
                                       d / BOX_DIR_NAME)
                   for d in info.parts]
        if require_masks and all(_find_subdir(d, MASK_DIR_NAMES) is None and not (d / BOX_DIR_NAME).is_dir()
                                 for d in info.parts):
            raise DatasetError(f"{info.path}: no <video>/GT/ folder with masks (nor a <video>/Box/ folder with boxes)")
        return records
    records: List[VideoRecord] = []
    seen: Dict[str, Path] = {}
    for base in info.parts:
        for rec in _frame_folder_videos(base, require_masks):
            if rec.name in seen:
                raise DatasetError(f"video {rec.name!r} is in both {seen[rec.name]} and {base}")
            seen[rec.name] = base
            records.append(rec)
    return records


def _frame_folder_videos(base: Path, require_masks: bool) -> List[VideoRecord]:
    frame_dir = _find_subdir(base, FRAME_DIR_NAMES)
    mask_dir = _find_subdir(base, MASK_DIR_NAMES)
    box_dir = base / BOX_DIR_NAME if (base / BOX_DIR_NAME).is_dir() else None
    if require_masks and mask_dir is None and box_dir is None:
        raise DatasetError(f"{base}: has no GT/ folder with masks (nor a Box/ folder with boxes)")
    videos = list_subdirs(frame_dir)
    if not videos:
        # A flat folder of images: every image is a one-frame video (e.g. Kvasir-SEG).
        images = list_images(frame_dir)
        if not images:
            raise DatasetError(f"{frame_dir}: contains no videos and no images")
        records = []
        for img in images:
            mask = None
            if mask_dir is not None:
                mask = find_image(mask_dir, img.stem)
            box = box_dir / (img.stem + BOX_SUFFIX) if box_dir is not None else None
            boxes = (box if box is not None and box.is_file() else None,) if box_dir is not None else ()
            records.append(VideoRecord(img.stem, (img,), (mask,), boxes=boxes))
        return records
    return [_video_from_folders(v, frame_dir / v, mask_dir / v if mask_dir is not None else None,
                                box_dir / v if box_dir is not None else None) for v in videos]


def _box_files(box_dir: Optional[Path], frames: Sequence[Path]) -> Tuple[Tuple[Optional[Path], ...], Tuple[Path, ...]]:
    """(box file of each frame or None, box files matching no frame); ((), ()) without a box folder."""
    if box_dir is None or not box_dir.is_dir():
        return (), ()
    files = {p.stem: p for p in sorted(box_dir.iterdir()) if p.suffix == BOX_SUFFIX and not p.name.startswith(".")}
    stems = {f.stem for f in frames}
    return tuple(files.get(f.stem) for f in frames), tuple(p for s, p in files.items() if s not in stems)


def _video_from_folders(name: str, frame_dir: Optional[Path], mask_dir: Optional[Path],
                        box_dir: Optional[Path] = None) -> VideoRecord:
    frames = list_images(frame_dir) if frame_dir is not None else []
    masks: List[Optional[Path]] = [None] * len(frames)
    extra: Tuple[Path, ...] = ()
    if mask_dir is not None and mask_dir.is_dir():
        masks = [find_image(mask_dir, f.stem) for f in frames]
        stems = {f.stem for f in frames}
        extra = tuple(m for m in list_images(mask_dir) if m.stem not in stems)
    boxes, extra_boxes = _box_files(box_dir, frames)
    return VideoRecord(name, tuple(frames), tuple(masks), extra, boxes, extra_boxes)


@dataclass
class ValidationReport:
    """What :func:`validate_videos` found that is not an error. ``nonbinary_masks``: masks with grey
    levels other than 0 and 255 (used after thresholding at 128, as the SUN-SEG toolbox does)."""

    videos: int
    frames: int
    masks: int
    nonbinary_masks: List[Path]
    box_frames: int = 0  # frames with a box file
    boxes: int = 0  # boxes in them
    box_only_frames: int = 0  # frames with a box file and no mask

    def summary(self) -> str:
        text = f"{self.videos} video(s), {self.frames} frame(s), {self.masks} mask(s)"
        if self.box_frames:
            text += (f", {self.box_frames} frame(s) with a box file ({self.boxes} box(es); "
                     f"{self.box_only_frames} frame(s) with boxes and no mask)")
        if self.nonbinary_masks:
            text += (f"; {len(self.nonbinary_masks)} mask(s) are not binary and are thresholded at 128 "
                     f"(e.g. {self.nonbinary_masks[0]})")
        return text


_MAX_NAMED = 5


def validate_videos(videos: Sequence[VideoRecord], require_masks: bool = True, check_masks: bool = True) -> ValidationReport:
    """Check videos before use and raise one :class:`DatasetError` that lists every problem, naming
    files: empty videos, frames without a mask (when ``require_masks``: scoring needs masks), masks or
    box files without a frame, malformed box files or boxes (outside the frame, non-positive size, a
    ``frame_size`` other than the frame's),
    unreadable frames (their headers are read) or masks, 16-bit, float or alpha frames
    (:data:`UNSUPPORTED_FRAME_MODES`), frames of different sizes within a video, masks whose size
    differs from their frame's, and masks that thresholding at 128 would empty (e.g. {0, 1} label
    maps). Masks that are not binary are reported, not rejected.

    ``check_masks=False`` skips decoding the masks (sizes are then read from headers only and the
    binary check is skipped).
    """
    problems: Dict[str, List[str]] = {}

    def add(kind: str, item: str) -> None:
        problems.setdefault(kind, []).append(item)

    if not videos:
        raise DatasetError("no videos to validate")
    n_frames = n_masks = n_box_frames = n_boxes = n_box_only = 0
    nonbinary: List[Path] = []
    for rec in videos:
        if not rec.frames:
            add("videos without frames", rec.name)
            continue
        for m in rec.extra_masks:
            add("masks without a frame", str(m))
        for b in rec.extra_boxes:
            add("box files without a frame", str(b))
        sizes = {}
        for k, (frame, mask) in enumerate(zip(rec.frames, rec.masks)):
            n_frames += 1
            try:
                size, mode = image_header(frame)
            except InputError as exc:
                add("unreadable frames", str(exc))
                continue
            if mode in UNSUPPORTED_FRAME_MODES:
                add("frames that are not 8-bit grey or RGB (16-bit, float or with alpha: convert them)",
                    f"{frame}: {mode} frames are not supported")
            sizes.setdefault(size, frame)
            box = rec.box_file(k)
            if box is not None:
                n_box_frames += 1
                n_box_only += mask is None
                try:
                    n_boxes += len(read_box_file(box, (size[1], size[0])))
                except InputError as exc:
                    add("bad box files", str(exc))
            if mask is None:
                if require_masks:
                    add("frames without a mask", str(frame))
                continue
            n_masks += 1
            try:
                if check_masks:
                    grey = read_mask_gray(mask)
                    msize = (grey.shape[1], grey.shape[0])
                else:
                    msize = image_header(mask)[0]
            except InputError as exc:
                add("unreadable masks", str(exc))
                continue
            if msize != size:
                add("masks whose size differs from their frame's",
                    f"{mask} ({msize[0]}x{msize[1]}, frame {size[0]}x{size[1]})")
                continue
            if check_masks:
                counts = np.bincount(grey.ravel(), minlength=256)
                levels = np.flatnonzero(counts)
                if levels.max() > 0 and levels.max() <= 128:
                    add("masks that are empty after thresholding at 128 (grey levels "
                        f"{{0..{int(levels.max())}}}: rescale them to 0/255)", str(mask))
                elif not set(levels.tolist()) <= {0, 255}:
                    nonbinary.append(mask)
        if len(sizes) > 1:
            shown = ", ".join(f"{w}x{h} ({p.name})" for (w, h), p in list(sizes.items())[:3])
            add("videos whose frames differ in size", f"{rec.name}: {shown}")
    if problems:
        parts = []
        for kind, items in problems.items():
            shown = "; ".join(items[:_MAX_NAMED]) + (f"; and {len(items) - _MAX_NAMED} more" if len(items) > _MAX_NAMED else "")
            parts.append(f"{len(items)} {kind}: {shown}")
        raise DatasetError("dataset check failed: " + " | ".join(parts))
    return ValidationReport(len(videos), n_frames, n_masks, nonbinary, n_box_frames, n_boxes, n_box_only)


def validate_split(root: Union[str, Path], split: Optional[str] = None, require_masks: bool = True,
                   check_masks: bool = True) -> Tuple[List[VideoRecord], ValidationReport]:
    """:func:`find_videos` then :func:`validate_videos`, and also reject GT video folders that have no
    frame folder. Returns the videos and the report."""
    info = resolve_split(root, split)
    videos = find_videos(root, split, require_masks=require_masks)
    orphans: List[str] = []
    if info.layout in ("frame-folders", "seen-unseen"):
        for base in info.parts:
            frame_dir, mask_dir = _find_subdir(base, FRAME_DIR_NAMES), _find_subdir(base, MASK_DIR_NAMES)
            if mask_dir is not None:
                orphans += [str(mask_dir / d) for d in list_subdirs(mask_dir) if not (frame_dir / d).is_dir()]
            if (base / BOX_DIR_NAME).is_dir():
                orphans += [str(base / BOX_DIR_NAME / d) for d in list_subdirs(base / BOX_DIR_NAME)
                            if not (frame_dir / d).is_dir()]
    elif info.layout == "images":
        frame_dir, mask_dir = _find_subdir(info.path, FRAME_DIR_NAMES), _find_subdir(info.path, MASK_DIR_NAMES)
        if mask_dir is not None:
            stems = {r.name for r in videos}
            orphans += [str(m) for m in list_images(mask_dir) if m.stem not in stems]
    try:
        report = validate_videos(videos, require_masks=require_masks, check_masks=check_masks)
    except DatasetError as exc:
        if orphans:
            raise DatasetError(f"{exc} | {len(orphans)} masks or GT folders without frames: "
                               f"{'; '.join(orphans[:_MAX_NAMED])}") from None
        raise
    if orphans:
        raise DatasetError(f"dataset check failed: {len(orphans)} masks or GT folders without frames: "
                           f"{'; '.join(orphans[:_MAX_NAMED])}")
    return videos, report


