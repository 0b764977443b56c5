"""The result folder of one input, written as a stream and published atomically.

Layout of ``OUT/<name>/`` (the review page reads it)::

    masks/<index:06d>.png    uint8 0/255 mask at the frame's original size
    probs/<index:06d>.png    uint8 round(255 * p), p the chosen query's foreground probability
    overlay.mp4              the input with the lesion outline and the frame's score; same frame
                             count and frame rate (H.264; odd sizes padded by one black row/column)
    predictions.json         {"input", "kind", "num_frames", "fps", "width", "height", "settings",
                              "frames": [{"index", "name", "score", "class_score", "mask_score",
                                          "area", "bbox": [x0, y0, x1, y1] | null, "query"}, ...]}
    predictions.csv          one row per frame: index, name, score, class_score, mask_score, area,
                             bbox_x0, bbox_y0, bbox_x1, bbox_y1 (empty when no lesion), query
    queries/q<NN>/<index:06d>.png, queries.csv   only with all queries: every query's
                             probability map, and per frame and query its class_score,
                             mask_score, score and area (also under "queries" in each JSON frame)

``score`` = class_score * mask_score; bbox x1/y1 are exclusive. The folder is written as
``OUT/.<name>.partial-XXXX`` and renamed to ``OUT/<name>`` when complete; on error it is deleted.
Per-frame rows go to a temporary JSON-lines file and are copied into predictions.json at the end,
so memory does not grow with the number of frames.
"""
from __future__ import annotations

import csv
import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Optional

from ..errors import UserError
from ..files import make_temp_dir
from .writers import OverlayVideoWriter, draw_overlay, write_mask_png, write_prob_png

CSV_COLUMNS = ["index", "name", "score", "class_score", "mask_score", "area",
               "bbox_x0", "bbox_y0", "bbox_x1", "bbox_y1", "query"]
QUERY_CSV_COLUMNS = ["index", "query", "class_score", "mask_score", "score", "area"]


def _r(x: float) -> float:
    return round(float(x), 6)


def csv_row(row: dict) -> list:
    """The predictions.csv row (:data:`CSV_COLUMNS`) of one ``frames`` entry of predictions.json;
    the bounding box is split into four columns, empty when there is no lesion."""
    bbox = row.get("bbox")
    return [row.get("index"), row.get("name", ""), row.get("score"), row.get("class_score"), row.get("mask_score"),
            row.get("area"), *(bbox if bbox else ["", "", "", ""]), row.get("query", "")]


class ResultFolderWriter:
    """Write one input's results into ``out_dir/name`` via a temporary sibling folder.

    >>> with ResultFolderWriter(out, "exam") as w:   # on an exception the partial folder is removed
    ...     w.start(source); [w.write(fp) for fp in stream]; path = w.finish(settings)
    """

    def __init__(self, out_dir: Path, name: str, overwrite: bool = False, overlay: bool = True,
                 all_queries: bool = False):
        if not name or name in (".", "..") or "/" in name or os.sep in name:
            raise UserError(f"{name!r}: not a valid result folder name")
        self.out_dir = Path(out_dir)
        self.name = name
        self.final = self.out_dir / name
        self.overwrite = overwrite
        self.overlay = overlay
        self.all_queries = all_queries
        self.tmp: Optional[Path] = None
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

    def start(self, source) -> None:
        """Create the temporary folder. ``source``: the FrameSource (path, kind, fps, frame_size)."""
        self.check()
        if not self.out_dir.exists():
            self.out_dir.mkdir(parents=True)
            self._created_out = True
        self.tmp = make_temp_dir(self.out_dir, f".{self.name}.partial-")  # 0777 & ~umask: it becomes the result
        (self.tmp / "masks").mkdir()
        (self.tmp / "probs").mkdir()
        self.source = source
        self._csv_file = open(self.tmp / "predictions.csv", "w", newline="")
        self._csv = csv.writer(self._csv_file)
        self._csv.writerow(CSV_COLUMNS)
        self._rows = open(self.tmp / ".frames.jsonl", "w")
        if self.all_queries:
            (self.tmp / "queries").mkdir()
            self._qcsv_file = open(self.tmp / "queries.csv", "w", newline="")
            self._qcsv = csv.writer(self._qcsv_file)
            self._qcsv.writerow(QUERY_CSV_COLUMNS)

    def write(self, fp) -> None:
        """Write one :class:`~lgrnet.engine.predictor.FramePrediction` (frames in order)."""
        if fp.index != self.count:
            raise RuntimeError(f"frame {fp.index} written out of order (expected {self.count})")
        stem = f"{fp.index:06d}.png"
        write_mask_png(self.tmp / "masks" / stem, fp.mask)
        write_prob_png(self.tmp / "probs" / stem, fp.prob)
        area, bbox = fp.area, fp.bbox
        row = {"index": fp.index, "name": fp.name, "score": _r(fp.score), "class_score": _r(fp.class_score),
               "mask_score": _r(fp.mask_score), "area": area, "bbox": bbox, "query": int(fp.query)}
        self._csv.writerow(csv_row(row))
        if self.all_queries and fp.query_probs is not None:
            queries = []
            for q in range(fp.query_probs.shape[0]):
                qdir = self.tmp / "queries" / f"q{q:02d}"
                if fp.index == 0:
                    qdir.mkdir(exist_ok=True)
                write_prob_png(qdir / stem, fp.query_probs[q])
                cs, ms = float(fp.query_class_scores[q]), float(fp.query_mask_scores[q])
                item = {"query": q, "class_score": _r(cs), "mask_score": _r(ms), "score": _r(cs * ms),
                        "area": int(fp.query_areas[q])}
                queries.append(item)
                self._qcsv.writerow([fp.index, q, item["class_score"], item["mask_score"], item["score"], item["area"]])
            row["queries"] = queries
        self._rows.write(json.dumps(row) + "\n")
        if self.overlay:
            if self._video is None:
                rate = getattr(self.source, "rate", None) or self.source.fps
                self._video = OverlayVideoWriter(self.tmp / "overlay.mp4", rate, fp.frame.shape[:2])
            self._video.write(draw_overlay(fp.frame, fp.mask, fp.score, label=f"#{fp.index}"))
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
        self._close_files()
        src = self.source
        H, W = src.frame_size
        header = {"input": os.path.abspath(os.fspath(src.path)), "kind": src.kind, "num_frames": self.count,
                  "fps": _r(src.fps), "width": W, "height": H, "settings": settings}
        rows_path = self.tmp / ".frames.jsonl"
        with open(self.tmp / "predictions.json", "w") as out, open(rows_path) as rows:
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
