"""Many inputs, one or several processes: :func:`run_share` segments this process's share of the
inputs into one output folder, skipping inputs whose result folder is complete, and
:func:`finish_run` (rank 0) writes the run's index once every share is done.

Run state lives in ``OUT/.lgrnet-run/``:

    inputs.json              the run's inputs and their result folder names (every process writes
                             the same content, atomically)
    errors/<name>.json       why an input failed (removed when a later run completes it)
    done-<rank>-of-<N>.json  process <rank>'s share is finished (with the launcher's run id)

A result folder is published by one rename once complete (:mod:`lgrnet.results.folder`), so "the
folder exists" means "complete": a run killed at any moment and started again with the same
command redoes only the inputs without one, after removing the killed run's temporary folders
(``.<name>.partial-*``) of its share. The index (``index.csv``, ``index.json``,
:mod:`lgrnet.runs.run_index`) is rebuilt from these files, so ``lgrnet index OUT`` can write
it after a run died.
"""
from __future__ import annotations

import json
import os
import shutil
import sys
import time
import traceback
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable, List, Optional, Sequence

from ..errors import UserError
from ..files import write_text_atomic
from .run_index import run_dir
from .shard import Shard, balance, input_size

POLL_SECONDS = 1.0


@dataclass
class InputStatus:
    """What happened to one input in this run: ``status`` "done", "skipped" (its result folder
    was already complete) or "error" (``error``: the message); ``seconds`` spent on it."""

    input: str
    name: str
    status: str
    error: Optional[str] = None
    seconds: float = 0.0


def my_share(inputs: Sequence[str], shard: Shard) -> List[int]:
    """Positions of this process's inputs (:func:`~lgrnet.runs.shard.balance` by size)."""
    return balance([input_size(os.fspath(i)) for i in inputs], shard.world_size)[shard.rank]


def is_complete(out_dir: Path, name: str) -> bool:
    """A result folder is complete when it exists: it is renamed into place only when written."""
    from ..results.folder import is_result_folder  # lazy: the result writer pulls in OpenCV

    return is_result_folder(Path(out_dir) / name)


def remove_partials(out_dir: Path, name: str) -> None:
    """Remove temporary folders a killed run left for ``name`` (``.<name>.partial-*``)."""
    try:
        entries = list(os.scandir(out_dir))
    except OSError:
        return
    for e in entries:
        if e.name.startswith(f".{name}.partial-") and e.is_dir(follow_symlinks=False):
            shutil.rmtree(e.path, ignore_errors=True)


def _marker(out_dir: Path, shard: Shard) -> Path:
    return run_dir(out_dir) / f"done-{shard.rank}-of-{shard.world_size}.json"


def run_share(inputs: Sequence[str], names: Sequence[str], out_dir: Path, shard: Shard,
              predict: Callable[[str, str], str], *, overwrite: bool = False, record: bool = True,
              log: Callable[[str], None] = print) -> List[InputStatus]:
    """Segment this process's share of ``inputs`` into ``out_dir`` and mark the share done.

    predict(input, name) -> a one-line description: writes ``out_dir/<name>`` (raises
    :class:`~lgrnet.errors.UserError` for a bad input; any other exception is reported with its
    traceback and the run goes on). Inputs with a complete result folder are skipped unless
    ``overwrite``. ``record``: keep the run state (errors, the done marker) in ``OUT/.lgrnet-run``
    (a run over one input in one process leaves only its result folder). Returns the statuses of
    this process's inputs."""
    out_dir = Path(out_dir)
    marker = _marker(out_dir, shard)
    if record:
        marker.unlink(missing_ok=True)
    errors = run_dir(out_dir) / "errors"
    statuses: List[InputStatus] = []
    for i in my_share(inputs, shard):
        inp, name = os.fspath(inputs[i]), names[i]
        if not overwrite and is_complete(out_dir, name):
            statuses.append(InputStatus(inp, name, "skipped"))
            log(f"{out_dir / name}: already complete; skipped (--overwrite redoes it)")
            continue
        remove_partials(out_dir, name)
        t = time.perf_counter()
        try:
            log(predict(inp, name))
            statuses.append(InputStatus(inp, name, "done", seconds=round(time.perf_counter() - t, 3)))
            if record:
                (errors / f"{name}.json").unlink(missing_ok=True)
            continue
        except UserError as exc:
            message = str(exc)
            print(f"lgrnet predict: error: {message}", file=sys.stderr)
        except Exception as exc:  # a bug, not the input's fault: show it, go on with the other inputs
            traceback.print_exc()
            message = f"{inp}: failed with an unexpected error ({type(exc).__name__}: {exc})"
            print(f"lgrnet predict: error: {inp}: failed with an unexpected error (above)", file=sys.stderr)
        status = InputStatus(inp, name, "error", error=message, seconds=round(time.perf_counter() - t, 3))
        statuses.append(status)
        if record:
            write_text_atomic(errors / f"{name}.json", json.dumps(asdict(status)) + "\n")
    if record:
        write_text_atomic(marker, json.dumps({"run_id": shard.run_id, "statuses": [asdict(s) for s in statuses]}) + "\n")
    return statuses


def wait_for_shares(out_dir: Path, shard: Shard, since: float, timeout: Optional[float] = None) -> List[int]:
    """Wait until every process's done marker of this run is there: written after ``since``
    (a time.time()) and, when the launcher names the run, with its run id. Returns the ranks still
    missing after ``timeout`` seconds (None: wait as long as it takes)."""
    deadline = None if timeout is None else time.monotonic() + timeout
    while True:
        missing = [r for r in range(shard.world_size) if not _marker_is_current(
            _marker(out_dir, Shard(rank=r, world_size=shard.world_size)), shard.run_id, since)]
        if not missing or (deadline is not None and time.monotonic() >= deadline):
            return missing
        time.sleep(POLL_SECONDS)


def _marker_is_current(path: Path, run_id: Optional[str], since: float) -> bool:
    try:
        if path.stat().st_mtime < since:
            return False
        record = json.loads(path.read_text())
    except (OSError, ValueError):
        return False
    return run_id is None or record.get("run_id") == run_id


def expand_inputs(inputs: Sequence[str], lists: Sequence[str] = ()) -> List[str]:
    """The inputs of a run: each path given, where a folder holding video or DICOM files (and no
    images) stands for those files in natural order, plus the lines of each ``--inputs`` list
    (one path a line; blank lines and lines starting with # ignored; relative paths are taken
    from the current folder). Other folders are frame folders, as for one input."""
    from ..io.images import natural_key
    from ..io.dicom import DICOM_EXTENSIONS
    from ..io.images import IMAGE_EXTENSIONS
    from ..io.video_file import VIDEO_EXTENSIONS

    paths: List[str] = list(inputs)
    for lst in lists:
        try:
            text = Path(lst).read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise UserError(f"{lst}: cannot read the list of inputs ({getattr(exc, 'strerror', None) or exc})") from None
        paths += [line.strip() for line in text.splitlines() if line.strip() and not line.strip().startswith("#")]
    out: List[str] = []
    for p in paths:
        if os.path.isdir(p):
            files = [e for e in os.scandir(p) if e.is_file() and not e.name.startswith(".")]
            media = [e for e in files if os.path.splitext(e.name)[1].lower() in (*VIDEO_EXTENSIONS, *DICOM_EXTENSIONS)]
            images = [e for e in files if os.path.splitext(e.name)[1].lower() in IMAGE_EXTENSIONS]
            if media and not images:
                out += [os.path.join(p, e.name) for e in sorted(media, key=lambda e: natural_key(e.name))]
                continue
        out.append(p)
    if not out:
        raise UserError("no inputs: the lists given are empty")
    return out


def finish_run(out_dir: Path, shard: Shard, since: float, timeout: Optional[float] = None):
    """Rank 0, after its share: wait for the other processes' markers (:func:`wait_for_shares`),
    then write the index. Returns (the index.csv path, the ranks that did not finish in time)."""
    from .run_index import build_index, write_index

    missing = wait_for_shares(Path(out_dir), shard, since, timeout) if shard.world_size > 1 else []
    return write_index(out_dir, build_index(out_dir)), missing
