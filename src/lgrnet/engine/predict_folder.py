"""One input -> one result folder: :func:`predict_to_folder` streams a
:class:`~lgrnet.engine.predictor.VideoPredictor`'s results into a
:class:`~lgrnet.io.results.ResultFolderWriter` and returns a :class:`PredictionSummary`;
:func:`result_names` gives several inputs distinct folder names."""
from __future__ import annotations

import os
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Dict, List, Optional, Sequence, Union

from ..errors import UserError

if TYPE_CHECKING:
    from .predictor import VideoPredictor

ProgressFn = Callable[[int, Optional[int]], None]

#: what predictions.json's "settings" records of how the video ran (from PredictionStream.info)
RUN_KEYS = ("mode", "window", "overlap", "num_windows", "auto_window", "memory_budget", "bytes_per_frame",
            "cuda_graph_windows", "seconds", "frames_per_second")


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
    """The result folder's name for an input: a file's stem, a folder's name."""
    p = Path(os.fspath(input_path))
    if p.is_dir():
        return p.resolve().name or "frames"
    return p.stem or p.name


def result_names(inputs: Sequence[Union[str, os.PathLike]]) -> List[str]:
    """Distinct result folder names for inputs segmented into one output folder: each input's
    :func:`result_name`; inputs whose names collide (``exam.mp4`` and ``exam.dcm``) get their
    file name instead (``exam.mp4``, ``exam.dcm``), and ``-2``, ``-3``, ... if those collide too."""
    stems = [result_name(i) for i in inputs]
    counts = Counter(stems)
    names = [s if counts[s] == 1 else (Path(os.fspath(i)).name or s) for s, i in zip(stems, inputs)]
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
                      fps: Optional[float] = None) -> PredictionSummary:
    """Segment one input and write ``out_dir/<name>/`` (name: :func:`result_name` of the input).

    The folder's layout is :mod:`lgrnet.io.results`'s (masks/, probs/, overlay.mp4,
    predictions.json/.csv; see docs/inference.md). It is written under a hidden temporary name in
    ``out_dir`` and renamed when complete; on any error the temporary folder is removed. An
    existing result folder is an error unless ``overwrite``. Before the model runs, the input is
    opened and ``out_dir`` is checked to be writable; an OS error while writing (a full disk, a
    read-only folder) is a :class:`~lgrnet.errors.UserError` naming the path and the cause.
    progress: called as ``progress(frames_done, total_or_None)``.
    """
    from ..io.results import ResultFolderWriter
    from ..io.video import open_source

    out_dir = Path(os.fspath(out_dir))
    if out_dir.exists() and not out_dir.is_dir():
        raise UserError(f"{out_dir}: is a file, not a folder for the results")
    name = name or result_name(input_path)
    source = open_source(input_path, fps=fps)  # input errors first, before anything is created
    writer = ResultFolderWriter(out_dir, name, overwrite=overwrite, overlay=overlay, all_queries=predictor.all_queries)
    writer.check()  # refuse an existing result or an output that cannot be written, before any work
    stream = predictor.stream(source, progress)
    with writer:
        writer.start(source)
        for fp in stream:
            writer.write(fp)
        settings = predictor.settings()
        settings["requested_window"] = settings.pop("window")
        settings["requested_overlap"] = settings.pop("overlap")
        settings.update({k: stream.info.get(k) for k in RUN_KEYS})
        path = writer.finish(settings)
    return PredictionSummary(path=path, num_frames=writer.count, settings=settings)
