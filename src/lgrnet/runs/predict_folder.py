"""One input -> one result folder: :func:`predict_to_folder` streams a
:class:`~lgrnet.inference.predictor.VideoPredictor`'s results into a
:class:`~lgrnet.results.folder.ResultFolderWriter` and returns a :class:`PredictionSummary`;
:func:`result_names` gives several inputs distinct folder names."""
from __future__ import annotations

import os
import sys
import time
import unicodedata
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Dict, List, Optional, Sequence, Union

from ..errors import UserError
from ..inference.pipeline import OrderedWriter, available_cores

if TYPE_CHECKING:
    from ..inference.predictor import VideoPredictor

ProgressFn = Callable[[int, Optional[int]], None]
MAX_PENDING = 32  # frames handed to the writer and not yet written, at most

#: what predictions.json's "settings" records of how the video ran (from PredictionStream.info)
RUN_KEYS = ("mode", "read_ahead", "window", "overlap", "num_windows", "auto_window", "memory_budget", "bytes_per_frame",
            "cuda_graph_windows", "seconds", "frames_per_second", "stage_seconds")


@dataclass
class PredictionSummary:
    """What :func:`predict_to_folder` wrote: ``path`` (the result folder), ``num_frames``, and
    ``settings`` (as in predictions.json: the predictor's settings and how the video ran)."""

    path: Path
    num_frames: int
    settings: Dict[str, object] = field(default_factory=dict)

    def __fspath__(self) -> str:
        return os.fspath(self.path)

    def describe(self) -> str:
        """One line for the terminal: where, how many frames, how the video ran, how fast."""
        s = self.settings
        if s.get("mode") == "whole-clip":
            clip = "one clip"
        else:
            clip = f"{s.get('num_windows')} windows of {s.get('window')} (overlap {s.get('overlap')})"
        return f"{self.path}: {self.num_frames} frames, {clip}, {s.get('frames_per_second')} frames/s"


def result_name(input_path: Union[str, os.PathLike]) -> str:
    """The result folder's name for an input: a file's stem, a folder's name, in Unicode NFC (a name
    typed, or read from macOS in NFD, gives one folder); every script's letters are kept."""
    p = Path(os.fspath(input_path))
    if p.is_dir():
        name = p.resolve().name or "frames"
    else:
        name = p.stem or p.name
    return unicodedata.normalize("NFC", name)


def result_names(inputs: Sequence[Union[str, os.PathLike]]) -> List[str]:
    """Distinct result folder names for inputs segmented into one output folder: each input's
    :func:`result_name`; inputs whose names collide (``exam.mp4`` and ``exam.dcm``) get their
    file name instead (``exam.mp4``, ``exam.dcm``), and ``-2``, ``-3``, ... if those collide too."""
    stems = [result_name(i) for i in inputs]
    counts = Counter(stems)
    names = [s if counts[s] == 1 else unicodedata.normalize("NFC", Path(os.fspath(i)).name or s)
             for s, i in zip(stems, inputs)]
    out: List[str] = []
    for n in names:
        candidate, k = n, 2
        while candidate in out or (candidate != n and candidate in names):
            candidate, k = f"{n}-{k}", k + 1
        out.append(candidate)
    return out


def predict_to_folder(predictor: "VideoPredictor", input_path: Union[str, os.PathLike],
                      out_dir: Union[str, os.PathLike], progress: Optional[ProgressFn] = None, *,
                      name: Optional[str] = None, overwrite: bool = False, overlay: bool = True,
                      fps: Optional[float] = None, dicom_seg: Optional[bool] = None,
                      dicom_seg_fractional: bool = False) -> PredictionSummary:
    """Segment one input and write ``out_dir/<name>/`` (name: :func:`result_name` of the input).

    The folder's layout is :mod:`lgrnet.results.folder`'s (masks/, probs/, overlay.mp4,
    predictions.json/.csv; see docs/inference.md). It is written under a hidden temporary name in
    ``out_dir`` and renamed when complete; on any error the temporary folder is removed. An
    existing result folder is an error unless ``overwrite``. Before the model runs, the input is
    opened and ``out_dir`` is checked to be writable; an OS error while writing (a full disk, a
    read-only folder) is a :class:`~lgrnet.errors.UserError` naming the path and the cause.
    progress: called as ``progress(frames_done, total_or_None)``.
    dicom_seg: for a DICOM input also write ``segmentation.dcm`` (:mod:`lgrnet.results.dicom_seg`) into the
    folder before it is published; None: when the source allows it (else a one-line note on
    stderr), True: required (checked before any work), False: never. ``dicom_seg_fractional``: the
    probability (FRACTIONAL) instead of the mask (BINARY).
    """
    from ..results.folder import ResultFolderWriter
    from ..io import open_source
    from ..io.source import warn_frame_size

    out_dir = Path(os.fspath(out_dir))
    if out_dir.exists() and not out_dir.is_dir():
        raise UserError(f"{out_dir}: is a file, not a folder for the results")
    name = name or result_name(input_path)
    source = open_source(input_path, fps=fps)  # input errors first, before anything is created
    warn_frame_size(source, predictor.size)  # tiny or extreme-aspect frames: results are doubtful
    write_seg = _want_dicom_seg(source, dicom_seg)
    writer = ResultFolderWriter(out_dir, name, overwrite=overwrite, overlay=overlay, all_queries=predictor.runner.all_queries)
    writer.check()  # refuse an existing result or an output that cannot be written, before any work
    t0 = time.perf_counter()
    stream = predictor.stream(source, progress)
    clock = stream.clock
    with writer:
        writer.start(source)
        if getattr(predictor, "pipeline", False):  # PNGs and overlay frames in a pool, rows and video in order
            on_cpu = getattr(getattr(predictor, "device", None), "type", "cpu") == "cpu"
            with OrderedWriter(writer.encode, writer.commit, workers=writer_threads(), max_pending=MAX_PENDING,
                               clock=clock, low_priority=on_cpu) as pool:  # see pipeline.background_priority
                for fp in stream:
                    with clock("wait_write"):
                        pool.submit(fp)
                with clock("wait_write"):
                    pool.drain()
        else:
            for fp in stream:
                with clock("write"):
                    writer.write(fp)
        settings = predictor.settings()
        settings["requested_window"] = settings.pop("window")
        settings["requested_overlap"] = settings.pop("overlap")
        settings.update({k: stream.info.get(k) for k in RUN_KEYS})
        if write_seg:
            from ..results.dicom_seg import write_dicom_seg_for_results
            from ..results.folder import writing

            with writing(writer.tmp):  # a full disk: one line, as for the other files
                write_dicom_seg_for_results(source.path, writer.tmp, fractional=dicom_seg_fractional)
                from ..results.dicom_sr import write_measurement_report_for_results

                if write_measurement_report_for_results(source.path, writer.tmp):  # calibrated: sizes in a DICOM SR
                    settings["dicom_sr"] = "measurements.dcm"
            settings["dicom_seg"] = "FRACTIONAL" if dicom_seg_fractional else "BINARY"
        wall = time.perf_counter() - t0  # read to written: the stream's time plus draining the writer
        settings.update(seconds=round(wall, 3), frames_per_second=round(writer.count / wall, 3) if wall > 0 else None)
        path = writer.finish(_with_stages(settings, clock, wall))
    return PredictionSummary(path=path, num_frames=writer.count, settings=settings)


def _want_dicom_seg(source, dicom_seg: Optional[bool]) -> bool:
    """Whether to write segmentation.dcm for ``source`` (see :func:`predict_to_folder`)."""
    if source.kind != "dicom" or dicom_seg is False:
        return False
    from ..results.dicom_seg import why_no_dicom_seg

    reason = why_no_dicom_seg(source.path)
    if reason is None:
        return True
    if dicom_seg:
        raise UserError(reason)
    print(f"lgrnet: note: {reason}; no segmentation.dcm (--no-dicom-seg skips this check)", file=sys.stderr)
    return False


def writer_threads() -> int:
    """Threads that encode PNGs and draw overlay frames: the cores this process may use
    (``LGRNET_WRITER_THREADS`` overrides; at most 4: beyond that the ordered commit is the limit)."""
    env = os.environ.get("LGRNET_WRITER_THREADS")
    if env:
        return max(1, int(env))
    return max(1, min(4, available_cores()))


def _with_stages(settings: Dict[str, object], clock, wall: float) -> Dict[str, object]:
    """``settings`` plus ``stage_seconds`` (busy seconds per stage, reading to writing) and
    ``stage_shares`` (each as a share of the run's wall time)."""
    from ..inference.pipeline import shares

    stages = clock.seconds()
    settings["stage_seconds"] = stages
    settings["stage_shares"] = shares(stages, wall)
    return settings
