"""Uploaded videos: checking that a file really is a video, and running the model on it in the background.

An upload is saved under a generated name in the viewer's work folder, opened with PyAV (the
container format and the video codec must be on the allow-lists below and the first frame must
decode) and never executed. Accepted videos are queued; one worker thread runs them one at a time
through a *job runner*::

    runner(input_path: Path, out_dir: Path, progress: Callable[[int, int], None]) -> None

which must write a result folder (``predictions.json``, ``masks/``, ...) at ``out_dir`` (a path
that does not exist yet) and may call ``progress(frames_done, total_or_None)``. The model's
runner (:func:`make_model_runner`) calls
``lgrnet.runs.predict_folder.predict_to_folder(predictor, input_path, out_dir.parent, progress, name=out_dir.name)``.
"""
from __future__ import annotations

import itertools
import os
import queue
import shutil
import sys
import threading
import time
import traceback
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable, Dict, Optional

from ..errors import UserError

ProgressFn = Callable[..., None]
JobRunner = Callable[[Path, Path, ProgressFn], None]
# FFmpeg demuxer names (PyAV's ``container.format.name`` is a comma-separated list of aliases).
ALLOWED_FORMATS = frozenset({"mov", "mp4", "m4a", "3gp", "3g2", "mj2", "avi", "matroska", "webm", "mpeg", "mpegts",
                             "mpegvideo", "asf", "ogg", "flv"})
ALLOWED_CODECS = frozenset({"h264", "hevc", "vp8", "vp9", "av1", "mpeg4", "mpeg1video", "mpeg2video", "mjpeg",
                            "msmpeg4v2", "msmpeg4v3", "wmv1", "wmv2", "wmv3", "vc1", "theora", "prores", "dnxhd",
                            "ffv1", "h263", "rawvideo"})


class UploadRejected(Exception):
    """The uploaded file is not acceptable; the message says why (shown on the page)."""


def check_video_file(path: Path, display_name: Optional[str] = None) -> Dict[str, object]:
    """Open ``path`` with PyAV and check that it is a video we can segment.

    Returns {"format", "codec", "width", "height", "frames", "fps"}. Raises :class:`UploadRejected`
    when the container or codec is not an allowed video one (images, text and audio files are
    rejected even when their name ends in .mp4) or when the first frame does not decode.
    """
    import av

    label = display_name or path.name
    try:
        container = av.open(str(path))
    except Exception:
        raise UploadRejected(f"{label}: not a video file (no video container could be read)") from None
    try:
        fmt_names = set(container.format.name.split(","))
        if not fmt_names & ALLOWED_FORMATS:
            raise UploadRejected(f"{label}: not a video file (the content is {container.format.long_name or container.format.name})")
        if not container.streams.video:
            raise UploadRejected(f"{label}: has no video stream")
        stream = container.streams.video[0]
        codec = stream.codec_context.name
        if codec not in ALLOWED_CODECS:
            raise UploadRejected(f"{label}: video codec {codec!r} is not supported")
        try:
            first = next(container.decode(stream), None)
        except Exception as exc:
            raise UploadRejected(f"{label}: the video does not decode ({exc})") from None
        if first is None:
            raise UploadRejected(f"{label}: the video has no frames")
        rate = stream.average_rate
        return {"format": container.format.name, "codec": codec, "width": first.width, "height": first.height,
                "frames": int(stream.frames or 0), "fps": float(rate) if rate else None}
    finally:
        container.close()


def user_message(exc: BaseException, saved: Path, filename: str) -> str:
    """``exc``'s message on one line, with the server's name for the upload (``saved``, a
    generated name in the work folder) replaced by the name the user gave it."""
    text = " ".join(str(exc).split("\n")).strip() or type(exc).__name__
    for name in {str(saved.resolve()), str(saved), os.path.abspath(saved)}:
        text = text.replace(name, filename)
    return text


@dataclass
class Job:
    """One uploaded video's prediction. ``state``: queued, running, done or error."""

    id: str
    filename: str
    state: str = "queued"
    done: int = 0
    total: int = 0
    message: str = ""
    result_id: Optional[str] = None
    started: Optional[float] = None
    finished: Optional[float] = None

    def to_dict(self) -> Dict[str, object]:
        return asdict(self)


class JobManager:
    """Runs uploaded videos through ``runner`` one at a time, in a daemon thread.

    ``on_result(job, out_dir)`` is called after a job's runner returned, to register the result
    folder; it returns the new result's id.
    """

    def __init__(self, runner: JobRunner, work_dir: Path, on_result: Callable[[Job, Path], str],
                 max_queued: int = 4) -> None:
        self.runner = runner
        self.work_dir = Path(work_dir)
        self.on_result = on_result
        self.max_queued = max_queued
        self._jobs: Dict[str, Job] = {}
        self._queue: "queue.Queue[Optional[tuple]]" = queue.Queue()
        self._ids = itertools.count(1)
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._work, name="lgrnet-view-jobs", daemon=True)
        self._thread.start()

    def pending(self) -> int:
        with self._lock:
            return sum(j.state in ("queued", "running") for j in self._jobs.values())

    def submit(self, video: Path, filename: str) -> Job:
        with self._lock:
            if sum(j.state in ("queued", "running") for j in self._jobs.values()) >= self.max_queued:
                raise UploadRejected(f"{self.max_queued} videos are already waiting; try again when one has finished")
            job = Job(id=f"j{next(self._ids)}", filename=filename)
            self._jobs[job.id] = job
        self._queue.put((job, video))
        return job

    def get(self, job_id: str) -> Optional[Job]:
        with self._lock:
            return self._jobs.get(job_id)

    def close(self) -> None:
        self._queue.put(None)

    def _work(self) -> None:
        while True:
            item = self._queue.get()
            if item is None:
                return
            job, video = item
            out_dir = self.work_dir / "results" / f"{job.id}_{Path(job.filename).stem}"
            for k in itertools.count(2):  # a kept --upload-dir may hold results of an earlier session
                if not out_dir.exists():
                    break
                out_dir = out_dir.with_name(f"{job.id}_{Path(job.filename).stem}_{k}")
            job.state, job.started = "running", time.time()

            def progress(done=None, total=None, *_, **__) -> None:
                if isinstance(done, (int, float)):
                    job.done = int(done)
                if isinstance(total, (int, float)) and total:
                    job.total = int(total)

            try:
                self.runner(video, out_dir, progress)
                job.result_id = self.on_result(job, out_dir)
                job.done = max(job.done, job.total)
                job.message = "finished"
                job.state = "done"  # last: a reader that sees the state sees the rest
            except UserError as exc:  # the input's fault: the user's file name and the problem, one line
                shutil.rmtree(out_dir, ignore_errors=True)  # before the state says the job has ended
                job.message = user_message(exc, video, job.filename)
                print(f"lgrnet view: upload {job.filename}: {job.message}", file=sys.stderr)
                job.state = "error"
            except Exception as exc:  # a bug: the page shows the message; the terminal gets the traceback
                traceback.print_exc(file=sys.stderr)
                shutil.rmtree(out_dir, ignore_errors=True)
                job.message = f"{type(exc).__name__}: {user_message(exc, video, job.filename)}"
                job.state = "error"
            finally:
                job.finished = time.time()


def make_model_runner(weights: Path, preset: Optional[str] = None, device: str = "cpu", size: Optional[int] = None,
                      window: Optional[int] = None, overlap: Optional[int] = None,
                      memory_budget: Optional[str] = None, precision: Optional[str] = None) -> JobRunner:
    """The job runner for ``lgrnet view --weights``: load the model once
    (:meth:`~lgrnet.inference.predictor.VideoPredictor.from_pretrained`), then segment each upload with
    :func:`lgrnet.runs.predict_folder.predict_to_folder` (whole video as one clip when it fits the
    memory budget, else overlapping windows; see :class:`~lgrnet.inference.predictor.VideoPredictor`).

    ``size``: the model's input size (multiple of 32; None: the size the weights record, else 352);
    ``window``, ``overlap``, ``memory_budget``, ``precision``: as for ``lgrnet predict``. Loading errors propagate
    (``lgrnet view`` reports them naming the file).
    """
    from ..runs.predict_folder import predict_to_folder
    from ..inference.predictor import VideoPredictor

    predictor = VideoPredictor.from_pretrained(weights, preset=preset, device=device, size=size, window=window,
                                               overlap=overlap, memory_budget=memory_budget, precision=precision)
    lock = threading.Lock()

    def run(input_path: Path, out_dir: Path, progress: ProgressFn) -> None:
        with lock:
            predict_to_folder(predictor, input_path, out_dir.parent, progress, name=out_dir.name)

    run.predictor = predictor  # type: ignore[attr-defined]  # what the uploads run with (size, weights)
    return run
