"""The result folder of one input: its one owner. :class:`ResultFolderWriter` writes it as a stream and
publishes it atomically; :func:`load_result` / :func:`find_results` read it back (the review page,
the commands' summaries, the demo's scoring).

Layout of ``OUT/<name>/``::

    masks/<file>.png         uint8 0/255 mask at the frame's original size; <file>: the input
                             frame's name for a frame folder (frame_017.jpg -> frame_017.png, so
                             ``lgrnet score`` matches them with the ground truth), else the frame's
                             index <index:06d> (videos, DICOM, and frame folders whose names clash)
    probs/<file>.png         uint8 round(255 * p), p the chosen query's foreground probability
    overlay.mp4              the input with the lesion outline and the frame's score; same frame
                             count and frame rate (H.264; odd sizes padded by one black row/column)
    predictions.json         {"input", "kind", "num_frames", "fps", "width", "height", "settings",
                              "frames": [{"index", "name", "file", "score", "class_score",
                                          "mask_score", "clip_mask_score", "area",
                                          "bbox": [x0, y0, x1, y1] | null, "query"}, ...]}
                             (file: the PNG name in masks/ and probs/)
    predictions.csv          one row per frame: index, name, score, class_score, mask_score,
                             clip_mask_score, area, bbox_x0, bbox_y0, bbox_x1, bbox_y1 (empty when
                             no lesion), query
    sizes in mm              a DICOM source with a calibration adds "calibration" and
                             "largest_lesion" to predictions.json and area_mm2, long_axis_mm,
                             short_axis_mm to each frame (and CSV column); any other source has
                             "calibration": null and a "calibration_note" (:mod:`.sizes`)
    queries/q<NN>/<file>.png, queries.csv   only with all queries: every query's
                             probability map, and per frame and query its class_score,
                             mask_score, clip_mask_score, score and area (also under "queries" in
                             each JSON frame)

``score`` = class_score * mask_score * clip_mask_score (:mod:`lgrnet.inference.postprocess`); bbox
x1/y1 are exclusive. The folder is written as
``OUT/.<name>.partial-XXXX`` and renamed to ``OUT/<name>`` when complete; on error it is deleted.
Per-frame rows go to a temporary JSON-lines file and are copied into predictions.json at the end,
so memory does not grow with the number of frames. The output folder is checked to be writable
before anything runs (:func:`check_writable`), and an OS error while writing (a full disk, a
read-only or vanished folder) is a :class:`~lgrnet.errors.UserError` naming the path and the cause.
"""
from __future__ import annotations

import contextlib
import csv
import io
import json
import math
import os
import re
import shutil
import tempfile
import unicodedata
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, Iterator, List, Optional, Sequence, Tuple, Union

import numpy as np

from ..errors import InputError, UserError
from ..files import make_temp_dir, probe_writable
from .sizes import SizeTracker
from .writers import OverlayVideoWriter, draw_overlay, write_mask_png, write_prob_png

PREDICTIONS = "predictions.json"
REQUIRED_KEYS = ("num_frames", "frames")

CSV_COLUMNS = ["index", "name", "score", "class_score", "mask_score", "clip_mask_score", "area",
               "bbox_x0", "bbox_y0", "bbox_x1", "bbox_y1", "query", "time"]
QUERY_CSV_COLUMNS = ["index", "query", "class_score", "mask_score", "clip_mask_score", "score", "area"]


@dataclass
class EncodedFrame:
    """One frame, its PNG files written: its table ``row`` and its ``overlay`` frame (uint8 RGB or None)."""

    index: int
    row: Dict[str, Any]
    overlay: Optional[np.ndarray]


def _r(x: float) -> float:
    return round(float(x), 6)


def frame_key(index: int) -> str:
    """The stem frame ``index`` is named by: ``000012``; the key of its corrections
    (:mod:`.corrections`) and its PNG name when outputs are named by index."""
    return f"{int(index):06d}"


def index_file(index: int) -> str:
    """The PNG name of frame ``index`` when outputs are named by index: ``000012.png``."""
    return f"{frame_key(index)}.png"


def frame_file(meta: Dict[str, Any], index: int) -> str:
    """The PNG name of frame ``index`` in masks/ and probs/: the ``file`` predictions.json records
    for it (frame-folder inputs keep their frames' names) when that is a plain file name, else
    :func:`index_file` (older results, or an entry that does not say)."""
    rows = meta.get("frames")
    row = rows[index] if isinstance(rows, list) and 0 <= index < len(rows) and isinstance(rows[index], dict) else {}
    name = row.get("file")
    return name if isinstance(name, str) and _plain_file(name) else index_file(index)


def is_result_folder(path: Union[str, os.PathLike]) -> bool:
    """Whether ``path`` is a (complete) result folder: it holds predictions.json, which the writer
    adds last, just before the folder is renamed into place."""
    return (Path(path) / PREDICTIONS).is_file()


def output_files(names: Sequence[str]) -> Optional[List[str]]:
    """PNG names after a frame folder's frame names (``frame_017.jpg`` -> ``frame_017.png``), or None
    when two frames would get one name (``a.jpg`` and ``a.png``) or a name is not a plain file name."""
    files = [Path(n).stem + ".png" for n in names]
    if len(set(files)) != len(files) or not all(_plain_file(f) for f in files):
        return None
    return files


def _plain_file(name: str) -> bool:
    return bool(name) and "/" not in name and "\\" not in name and not name.startswith(".")


def _os_error_message(exc: OSError, where: Path) -> str:
    path = exc.filename if exc.filename else where
    cause = exc.strerror or str(exc)
    return f"{path}: cannot write the results ({cause})"


@contextlib.contextmanager
def writing(where: Union[str, os.PathLike]) -> Iterator[None]:
    """OS errors inside become a :class:`~lgrnet.errors.UserError` naming the path and the cause."""
    try:
        yield
    except OSError as exc:
        raise UserError(_os_error_message(exc, Path(os.fspath(where)))) from None


def check_writable(out_dir: Union[str, os.PathLike]) -> None:
    """Refuse, before any work, an output folder that cannot be created or written: the nearest
    existing folder of ``out_dir`` (itself, or the parent it will be created in) must take a new
    file (:func:`lgrnet.files.probe_writable`). Raises :class:`~lgrnet.errors.UserError` naming
    ``out_dir`` as given (not the probe) and the cause."""
    try:
        probe_writable(out_dir)
    except NotADirectoryError as exc:
        raise UserError(f"{exc.filename}: is a file, not a folder for the results") from None
    except OSError as exc:
        where = "" if os.path.abspath(exc.filename or out_dir) == os.path.abspath(out_dir) else f": {exc.filename}"
        raise UserError(f"{out_dir}: cannot write the results ({exc.strerror or exc}{where})") from None


def csv_row(row: dict) -> list:
    """The predictions.csv row (:data:`CSV_COLUMNS`) of one ``frames`` entry of predictions.json;
    the bounding box is split into four columns, empty when there is no lesion."""
    bbox = row.get("bbox")
    return [row.get("index"), row.get("name", ""), row.get("score"), row.get("class_score"), row.get("mask_score"),
            row.get("clip_mask_score", ""), row.get("area"), *(bbox if bbox else ["", "", "", ""]), row.get("query", ""),
            row.get("time", "")]


def _frame_time(source, index: int) -> float:
    """Frame ``index``'s time in seconds: the source's timestamp (:meth:`lgrnet.io.FrameSource.frame_time`),
    or ``index / fps`` for a source that only gives a rate."""
    timing = getattr(source, "frame_time", None)
    return timing(index) if timing is not None else index / source.fps


class ResultFolderWriter:
    """Write one input's results into ``out_dir/name`` via a temporary sibling folder.

    >>> with ResultFolderWriter(out, "exam") as w:   # on an exception the partial folder is removed
    ...     w.start(source); [w.write(fp) for fp in stream]; path = w.finish(settings)

    ``extra_columns``: more per-frame fields, each read from the prediction's attribute of that
    name, added to the frame's entry in predictions.json and as the last columns of
    predictions.csv (``lgrnet live``: source_index, latency_ms, dropped).
    """

    def __init__(self, out_dir: Path, name: str, overwrite: bool = False, overlay: bool = True,
                 all_queries: bool = False, extra_columns: Sequence[str] = ()):
        if not name or name in (".", "..") or "/" in name or os.sep in name:
            raise UserError(f"{name!r}: not a valid result folder name")
        self.out_dir = Path(out_dir)
        self.name = name
        self.final = self.out_dir / name
        self.overwrite = overwrite
        self.overlay = overlay
        self.all_queries = all_queries
        self.extra_columns = list(extra_columns)  # more per-frame fields, read from the prediction (live: latency)
        self.tmp: Optional[Path] = None
        self.files: Optional[List[str]] = None  # PNG names per frame; None: by index
        self._created_out = False
        self._video: Optional[OverlayVideoWriter] = None
        self._csv_file = self._csv = self._qcsv_file = self._qcsv = self._rows = None
        self.count = 0

    def check(self) -> None:
        """Refuse a result folder that exists (unless overwriting) or an output path that is a file."""
        if self.out_dir.exists() and not self.out_dir.is_dir():
            raise UserError(f"{self.out_dir}: is a file, not a folder for the results")
        if self.final.exists() or self.final.is_symlink():
            if not self.overwrite:
                raise UserError(f"{self.final}: already exists; pass --overwrite to replace it")
            if not self.final.is_dir():
                raise UserError(f"{self.final}: exists and is not a result folder; remove it first")
        if self.tmp is None:
            check_writable(self.out_dir)

    def start(self, source) -> None:
        """Create the temporary folder. ``source``: the FrameSource (path, kind, fps, frame_size)."""
        self.check()
        self.files = output_files(source.names()) if getattr(source, "kind", "") == "frames" else None
        with writing(self.out_dir):
            self._start(source)

    def _start(self, source) -> None:
        if not self.out_dir.exists():
            self.out_dir.mkdir(parents=True)
            self._created_out = True
        self.tmp = make_temp_dir(self.out_dir, f".{self.name}.partial-")  # 0777 & ~umask: it becomes the result
        (self.tmp / "masks").mkdir()
        (self.tmp / "probs").mkdir()
        self.source = source
        self._csv_file = open(self.tmp / "predictions.csv", "w", newline="")
        self._csv = csv.writer(self._csv_file)
        self.sizes = SizeTracker.for_source(source)  # lesion sizes in mm when the source is calibrated
        self._csv.writerow(CSV_COLUMNS + self.sizes.columns + self.extra_columns)
        self._rows = open(self.tmp / ".frames.jsonl", "w")
        if self.all_queries:
            (self.tmp / "queries").mkdir()
            self._qcsv_file = open(self.tmp / "queries.csv", "w", newline="")
            self._qcsv = csv.writer(self._qcsv_file)
            self._qcsv.writerow(QUERY_CSV_COLUMNS)

    def write(self, fp) -> None:
        """Write one :class:`~lgrnet.inference.predictor.FramePrediction` (frames in order)."""
        self.commit(self.encode(fp))

    # write = encode (thread-safe: PNG files, the overlay frame drawn) + commit (in frame order: the
    # table rows and the overlay video); lgrnet.inference.pipeline runs encode in a pool of threads

    def encode(self, fp) -> "EncodedFrame":
        """Write frame ``fp``'s PNG files and draw its overlay frame; safe to call from several
        threads at once (after :meth:`start`). Pass the result to :meth:`commit` in frame order."""
        with writing(self.tmp):
            return self._encode(fp)

    def _encode(self, fp) -> "EncodedFrame":
        stem = self.files[fp.index] if self.files is not None else index_file(fp.index)
        write_mask_png(self.tmp / "masks" / stem, fp.mask)
        write_prob_png(self.tmp / "probs" / stem, fp.prob)
        area, bbox = fp.area, fp.bbox
        row = {"index": fp.index, "name": fp.name, "file": stem, "score": _r(fp.score), "class_score": _r(fp.class_score),
               "mask_score": _r(fp.mask_score), "clip_mask_score": _r(fp.clip_mask_score), "area": area, "bbox": bbox,
               "query": int(fp.query), "time": _r(_frame_time(self.source, fp.index))}
        row.update(self.sizes.row(fp.mask))
        row.update({k: getattr(fp, k) for k in self.extra_columns})
        if self.all_queries and fp.query_probs is not None:
            queries = []
            for q in range(fp.query_probs.shape[0]):
                qdir = self.tmp / "queries" / f"q{q:02d}"
                qdir.mkdir(exist_ok=True)
                write_prob_png(qdir / stem, fp.query_probs[q])
                cs, ms = float(fp.query_class_scores[q]), float(fp.query_mask_scores[q])
                qc = float(fp.query_clip_mask_scores[q])
                queries.append({"query": q, "class_score": _r(cs), "mask_score": _r(ms), "clip_mask_score": _r(qc),
                                "score": _r(cs * ms * qc),
                                "area": int(fp.query_areas[q])})
            row["queries"] = queries
        overlay = draw_overlay(fp.frame, fp.mask, fp.score, label=f"#{fp.index}") if self.overlay else None
        return EncodedFrame(index=fp.index, row=row, overlay=overlay)

    def commit(self, enc: "EncodedFrame") -> None:
        """Append an encoded frame's rows and overlay frame (frames in order)."""
        if enc.index != self.count:
            raise RuntimeError(f"frame {enc.index} written out of order (expected {self.count})")
        with writing(self.tmp):
            self._commit(enc)

    def _commit(self, enc: "EncodedFrame") -> None:
        row = enc.row
        self._csv.writerow(csv_row(row) + self.sizes.csv_values(row) + [row[k] for k in self.extra_columns])
        self.sizes.add(enc.index, row)
        for item in row.get("queries", ()):
            self._qcsv.writerow([enc.index, item["query"], item["class_score"], item["mask_score"],
                                 item["clip_mask_score"], item["score"], item["area"]])
        self._rows.write(json.dumps(row) + "\n")
        if enc.overlay is not None:
            if self._video is None:
                rate = getattr(self.source, "rate", None) or self.source.fps
                self._video = OverlayVideoWriter(self.tmp / "overlay.mp4", rate, enc.overlay.shape[:2])
            self._video.write(enc.overlay, time=row["time"])  # the input's timing, variable rates too
        self.count += 1

    def _close_files(self) -> None:
        for f in (self._csv_file, self._qcsv_file, self._rows):
            if f is not None and not f.closed:
                f.close()
        if self._video is not None:
            video, self._video = self._video, None
            video.close()

    def finish(self, settings: dict) -> Path:
        """Write predictions.json, then rename the folder into place. Returns the final path."""
        with writing(self.tmp):
            return self._finish(settings)

    def _finish(self, settings: dict) -> Path:
        self._close_files()
        src = self.source
        H, W = src.frame_size
        header = {"input": os.path.abspath(os.fspath(src.path)), "kind": src.kind, "num_frames": self.count,
                  "fps": _r(src.fps), "width": W, "height": H, **self.sizes.header(), "settings": settings}
        corrections = getattr(src, "input_corrections", None)  # what the reader changed in the frames
        if corrections:  # a display rotation applied, colours corrected
            header["input_corrections"] = dict(corrections)
        rows_path = self.tmp / ".frames.jsonl"
        with open(self.tmp / PREDICTIONS, "w") as out, open(rows_path) as rows:
            out.write("{\n")
            for key, value in header.items():
                out.write(f"  {json.dumps(key)}: {json.dumps(value)},\n")
            out.write('  "frames": [')
            for i, line in enumerate(rows):
                out.write(("\n    " if i == 0 else ",\n    ") + line.rstrip("\n"))
            out.write("\n  ]\n}\n")
        rows_path.unlink()
        self.check()
        old = None
        if self.final.exists():  # overwrite: move the old result aside, then swap
            old = Path(tempfile.mkdtemp(prefix=f".{self.name}.old-", dir=self.out_dir))
            os.replace(self.final, old / self.name)
        os.replace(self.tmp, self.final)
        self.tmp = None
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
        return self.final

    def abort(self) -> None:
        """Remove the temporary folder (and the output folder if this writer created it and it is empty)."""
        try:
            self._close_files()
        except Exception:
            pass
        if self.tmp is not None:
            shutil.rmtree(self.tmp, ignore_errors=True)
            self.tmp = None
        if self._created_out:
            try:
                self.out_dir.rmdir()  # only if empty
            except OSError:
                pass

    def __enter__(self) -> "ResultFolderWriter":
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is not None:
            self.abort()


# ---------------------------------------------------------------------------------------- reading


def _default_fps() -> float:
    from ..io.source import DEFAULT_FPS  # lazy: io below results, kept out of import time

    return DEFAULT_FPS


@dataclass
class Result:
    """One result folder. ``id`` is the short name the server uses in its URLs."""

    id: str
    name: str
    root: Path
    meta: Dict[str, Any]
    warnings: List[str] = field(default_factory=list)

    @property
    def num_frames(self) -> int:
        return int(self.meta["num_frames"])

    @property
    def fps(self) -> float:
        fps = self.meta.get("fps")
        return float(fps) if isinstance(fps, (int, float)) and math.isfinite(fps) and fps > 0 else _default_fps()

    def source_path(self) -> Optional[Path]:
        """The source recorded in ``input`` (relative paths are taken from the result folder)."""
        src = self.meta.get("input")
        if not isinstance(src, str) or not src:
            return None
        p = Path(src)
        return p if p.is_absolute() else (self.root / p)

    def file(self, index: int) -> str:
        """The PNG name of frame ``index`` in masks/ and probs/ (``file`` in predictions.json; older
        results: by index)."""
        return frame_file(self.meta, index)

    def mask_path(self, index: int) -> Path:
        return self.root / "masks" / self.file(index)

    def prob_path(self, index: int) -> Path:
        return self.root / "probs" / self.file(index)

    def csv_bytes(self) -> bytes:
        """predictions.csv as written, or the same table rebuilt from predictions.json."""
        p = self.root / "predictions.csv"
        if p.is_file():
            return p.read_bytes()
        buf = io.StringIO()
        w = csv.writer(buf)
        w.writerow(CSV_COLUMNS)
        for f in self.meta["frames"]:
            w.writerow(csv_row(f))
        return buf.getvalue().encode("utf-8")

    def summary(self) -> Dict[str, Any]:
        """What the page's result list shows."""
        scores = [f.get("score") for f in self.meta["frames"] if isinstance(f.get("score"), (int, float))]
        return {"id": self.id, "name": self.name, "num_frames": self.num_frames, "kind": self.meta.get("kind"),
                "mean_score": float(np.mean(scores)) if scores else None}


def load_result(root: Union[str, Path], rid: str = "0", name: Optional[str] = None) -> Result:
    """Read and check ``root/predictions.json``. Raises :class:`InputError` naming the file."""
    root = Path(root)
    path = root / PREDICTIONS
    try:
        meta = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise InputError(f"{path}: not found; is {root} a result folder of `lgrnet predict`?") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InputError(f"{path}: cannot read ({exc})") from None
    if not isinstance(meta, dict):
        raise InputError(f"{path}: expected a JSON object")
    missing = [k for k in REQUIRED_KEYS if k not in meta]
    if missing:
        raise InputError(f"{path}: missing {', '.join(missing)}")
    frames = meta["frames"]
    if not isinstance(frames, list) or not all(isinstance(f, dict) for f in frames):
        raise InputError(f"{path}: 'frames' must be a list of objects")
    warnings: List[str] = []
    n = meta["num_frames"]
    if not isinstance(n, int) or n < 0:
        raise InputError(f"{path}: 'num_frames' must be a non-negative integer")
    if len(frames) != n:
        warnings.append(f"{PREDICTIONS} lists {len(frames)} frames but says num_frames={n}; using {len(frames)}")
        meta["num_frames"] = n = len(frames)
    for i, f in enumerate(frames):
        f.setdefault("index", i)
        if f["index"] != i:
            raise InputError(f"{path}: frame entries must be in order; entry {i} has index {f['index']}")
        file = f.get("file")
        if file is not None and not (isinstance(file, str) and _plain_file(file)):
            raise InputError(f"{path}: frame {i} has a file name {file!r} that is not a plain file name")
        s = f.get("score")
        if s is not None and not (isinstance(s, (int, float)) and math.isfinite(s)):
            raise InputError(f"{path}: frame {i} has a non-numeric score {s!r}")
    masks_dir = root / "masks"
    if not masks_dir.is_dir():
        warnings.append("no masks/ folder: no outlines to show")
    else:
        have = sum(1 for i in range(n) if (masks_dir / frame_file(meta, i)).is_file())
        if have < n:
            warnings.append(f"masks/ has {have} of {n} masks")
    return Result(id=rid, name=name or root.resolve().name, root=root, meta=meta, warnings=warnings)


def find_results(root: Union[str, Path], max_depth: int = 2,
                 broken: Optional[List[Tuple[str, str]]] = None) -> List[Result]:
    """One result folder, or every result folder under ``root`` (at most ``max_depth`` levels down),
    in natural order of their relative paths. Raises :class:`InputError` when there is none.

    broken: when a list is given, a result whose predictions.json cannot be used is left out and
    listed there as (its relative name, the problem), so that one broken result does not hide the
    others; :class:`InputError` then only when no result is usable. Without it, the first
    problem is raised."""
    from ..io.images import natural_key

    root = Path(root)
    if not root.is_dir():
        raise InputError(f"{root}: not a folder")
    if is_result_folder(root):
        return [load_result(root, rid="0")]
    found: List[Path] = []

    def walk(folder: Path, depth: int) -> None:
        try:
            entries = sorted(os.scandir(folder), key=lambda e: natural_key(e.name))
        except OSError:
            return
        for e in entries:
            if e.name.startswith(".") or not e.is_dir():
                continue
            p = Path(e.path)
            if is_result_folder(p):
                found.append(p)
            elif depth < max_depth:
                walk(p, depth + 1)

    walk(root, 1)
    if not found:
        raise InputError(f"{root}: no {PREDICTIONS} here or in its subfolders; run `lgrnet predict` first")
    results: List[Result] = []
    for p in found:
        name = p.relative_to(root).as_posix()
        try:
            results.append(load_result(p, rid=str(len(results)), name=name))
        except InputError as exc:
            if broken is None:
                raise
            broken.append((name, str(exc)))
    if not results:
        raise InputError(f"{root}: no usable result: " + "; ".join(msg for _, msg in (broken or [])))
    return results


#: what no file name may hold on Linux, macOS or Windows: / \ : * ? " < > |, control characters, the
#: bidirectional overrides (which make a name display other than it is) and lone surrogates (undecodable
#: bytes of a name, which UTF-8 cannot write)
UNSAFE_IN_FILENAME = re.compile(r'[/\\:*?"<>|\x00-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069\ud800-\udfff]+')


def safe_filename(name: str, default: str = "result", max_len: Optional[int] = 80) -> str:
    """A name fit for a download or a folder on any system: ``name`` in Unicode NFC with each run of
    :data:`UNSAFE_IN_FILENAME` characters replaced by one '_', leading and trailing dots and spaces
    removed, at most ``max_len`` characters; ``default`` when nothing is left. Letters and digits of
    every script, spaces and other punctuation are kept ("検査 1" stays "検査 1")."""
    name = UNSAFE_IN_FILENAME.sub("_", unicodedata.normalize("NFC", name)).strip(" .")
    if max_len is not None:
        name = name[:max_len].rstrip(" .")
    return name or default
