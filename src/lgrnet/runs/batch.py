"""Many inputs, one or several processes, one mechanism: :func:`run_share` does this process's
share of a run's items (the inputs of ``lgrnet predict``, the videos of ``lgrnet evaluate``),
skipping items already done, and marks the share done; :func:`wait_for_shares` (rank 0) waits
for every process's mark; :func:`finish_run` then writes the index of a ``predict`` run.

Run state lives in ``OUT/.lgrnet-run/``:

    runs/<key>/inputs.json           the run's items and their result names (``predict``; every
                                     process writes the same content, atomically)
    runs/<key>/done-<rank>-of-<N>.json   process <rank>'s share is finished (the launcher's run
                                     id and the statuses of its items)
    errors/<name>.json               why an item failed (removed when a later run completes it)

``<key>`` names the run by its items (:func:`run_key`): the processes of one run, and a run
started again with the same command, share it; runs with other items into the same folder do
not. While a process works on an item it holds the item's lock (:mod:`lgrnet.runs.lock`), so
two runs into one folder never write one result at once (the second waits, then finds it done)
and a run removes only the temporary folders (``.<name>.partial-*``) of items it holds: those a
killed run left. A result folder is published by one rename once complete
(:mod:`lgrnet.results.folder`), so a run killed at any moment and started again with the same
command redoes only the items without one. The index (``index.csv``, ``index.json``,
:mod:`lgrnet.runs.run_index`) is rebuilt from these files, so ``lgrnet index OUT`` can write it
after a run died.
"""
from __future__ import annotations

import hashlib
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
from .lock import NameLock
from .run_index import run_dir
from .shard import Shard, balance, input_size

POLL_SECONDS = 1.0


@dataclass
class InputStatus:
    """What happened to one item in this run: ``status`` "done", "skipped" (already done) or
    "error" (``error``: the message); ``seconds`` spent on it."""

    input: str
    name: str
    status: str
    error: Optional[str] = None
    seconds: float = 0.0


def run_key(inputs: Sequence[str], names: Sequence[str]) -> str:
    """The name of a run by its items: the same for every process of a run and for a rerun of
    the same command, different for runs of other items."""
    items = [[os.path.abspath(os.fspath(i)), n] for i, n in zip(inputs, names)]
    return hashlib.sha256(json.dumps(items).encode()).hexdigest()[:16]


def my_share(inputs: Sequence[str], shard: Shard, sizes: Optional[Sequence[int]] = None) -> List[int]:
    """Positions of this process's items (:func:`~lgrnet.runs.shard.balance` by ``sizes``; by
    default the inputs' sizes on disk)."""
    if sizes is None:
        sizes = [input_size(os.fspath(i)) for i in inputs]
    return balance(sizes, shard.world_size)[shard.rank]


def is_complete(out_dir: Path, name: str) -> bool:
    """A result folder is complete when it exists: it is renamed into place only when written."""
    from ..results.folder import is_result_folder  # lazy: the result writer pulls in OpenCV

    return is_result_folder(Path(out_dir) / name)


def remove_partials(out_dir: Path, name: str) -> None:
    """Remove temporary folders a killed run left for ``name`` (``.<name>.partial-*``); call it
    only while holding the lock of ``name``."""
    try:
        entries = list(os.scandir(out_dir))
    except OSError:
        return
    for e in entries:
        if e.name.startswith(f".{name}.partial-") and e.is_dir(follow_symlinks=False):
            shutil.rmtree(e.path, ignore_errors=True)


def _marker(out_dir: Path, key: str, rank: int, world_size: int) -> Path:
    return run_dir(out_dir) / "runs" / key / f"done-{rank}-of-{world_size}.json"


def run_share(inputs: Sequence[str], names: Sequence[str], out_dir: Path, shard: Shard,
              work: Callable[[str, str], str], *, key: Optional[str] = None, sizes: Optional[Sequence[int]] = None,
              is_done: Optional[Callable[[str], bool]] = None, overwrite: bool = False, record: bool = True,
              keep_going: bool = True, command: str = "predict",
              log: Callable[[str], None] = print) -> List[InputStatus]:
    """Do this process's share of the items (``inputs[i]``, named ``names[i]``) and mark it done.

    work(input, name) -> a one-line description: does one item (for ``predict``, writes
    ``out_dir/<name>``). ``is_done(name)``: whether an item is done already (default: its result
    folder is complete); such items are skipped unless ``overwrite``. Each item is worked on
    while holding its lock: an item another process holds is left for last, then waited for
    (and usually found done). ``keep_going``: a :class:`~lgrnet.errors.UserError` is reported on
    one line, any other exception with its traceback, and the run goes on with the other items;
    else the exception propagates. ``record``: keep the run state (errors, the done marker of
    run ``key``, by default :func:`run_key`) in ``OUT/.lgrnet-run`` (a run over one input in one
    process leaves only its result folder). ``sizes``: the items' sizes for balancing. Returns
    the statuses of this process's items."""
    out_dir = Path(out_dir)
    is_done = is_done or (lambda name: is_complete(out_dir, name))
    key = key or run_key(inputs, names)
    marker = _marker(out_dir, key, shard.rank, shard.world_size)
    created = not out_dir.exists()
    try:
        out_dir.mkdir(parents=True, exist_ok=True)  # for the locks
    except OSError as exc:
        raise UserError(f"{out_dir}: cannot create the output folder ({exc.strerror or exc})") from None
    if record:
        marker.unlink(missing_ok=True)
    errors = run_dir(out_dir) / "errors"

    def one(i: int, wait: bool) -> Optional[InputStatus]:
        inp, name = os.fspath(inputs[i]), names[i]
        if not overwrite and is_done(name):
            log(f"{out_dir / name}: already complete; skipped (--overwrite redoes it)")
            return InputStatus(inp, name, "skipped")
        lock = NameLock(out_dir, name)
        try:
            if not lock.acquire(wait=wait):
                return None
        except OSError as exc:
            raise UserError(f"{lock.path}: cannot create the lock of this result ({exc.strerror or exc})") from None
        try:
            if not overwrite and is_done(name):  # another run finished it while we waited
                log(f"{out_dir / name}: completed by another run; skipped")
                return InputStatus(inp, name, "skipped")
            remove_partials(out_dir, name)  # only a killed run's: a live one would hold the lock
            return _work(inp, name)
        finally:
            lock.release()

    def _work(inp: str, name: str) -> InputStatus:
        t = time.perf_counter()
        try:
            log(work(inp, name))
            if record:
                (errors / f"{name}.json").unlink(missing_ok=True)
            return InputStatus(inp, name, "done", seconds=round(time.perf_counter() - t, 3))
        except UserError as exc:
            if not keep_going:
                raise
            message = str(exc)
            print(f"lgrnet {command}: error: {message}", file=sys.stderr)
        except Exception as exc:  # a bug, not the input's fault: show it, go on with the other inputs
            if not keep_going:
                raise
            traceback.print_exc()
            message = f"{inp}: failed with an unexpected error ({type(exc).__name__}: {exc})"
            print(f"lgrnet {command}: error: {inp}: failed with an unexpected error (above)", file=sys.stderr)
        status = InputStatus(inp, name, "error", error=message, seconds=round(time.perf_counter() - t, 3))
        if record:
            write_text_atomic(errors / f"{name}.json", json.dumps(asdict(status)) + "\n")
        return status

    statuses: List[InputStatus] = []
    busy: List[int] = []
    try:
        for i in my_share(inputs, shard, sizes):
            status = one(i, wait=False)
            if status is None:
                busy.append(i)
                log(f"{out_dir / names[i]}: being written by another run; coming back to it")
            else:
                statuses.append(status)
        statuses += [one(i, wait=True) for i in busy]  # type: ignore[misc]
    finally:
        if created:
            try:
                out_dir.rmdir()  # only if nothing was written: a failed single input leaves no folder
            except OSError:
                pass
    if record:
        write_text_atomic(marker, json.dumps({"run_id": shard.run_id, "statuses": [asdict(s) for s in statuses]}) + "\n")
    return statuses


def share_statuses(out_dir: Path, key: str, world_size: int) -> List[InputStatus]:
    """The statuses every process's done marker of run ``key`` records (missing markers: none)."""
    out: List[InputStatus] = []
    for r in range(world_size):
        try:
            record = json.loads(_marker(out_dir, key, r, world_size).read_text())
        except (OSError, ValueError):
            continue
        out += [InputStatus(**s) for s in record.get("statuses", [])]
    return out


def wait_for_shares(out_dir: Path, shard: Shard, since: float, key: str,
                    timeout: Optional[float] = None) -> List[int]:
    """Wait until every process's done marker of run ``key`` is there: written after ``since``
    (a time.time()) and, when the launcher names the run, with its run id. Returns the ranks still
    missing after ``timeout`` seconds (None: wait as long as it takes)."""
    deadline = None if timeout is None else time.monotonic() + timeout
    while True:
        missing = [r for r in range(shard.world_size) if not _marker_is_current(
            _marker(out_dir, key, r, shard.world_size), shard.run_id, since)]
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


def finish_run(out_dir: Path, shard: Shard, since: float, key: str, timeout: Optional[float] = None):
    """Rank 0, after its share: wait for the other processes' markers of run ``key``
    (:func:`wait_for_shares`), then write the index (of every result in the folder, whichever run
    wrote it: :func:`~lgrnet.runs.run_index.build_index`). Returns (the index.csv path, the ranks
    that did not finish in time)."""
    from .run_index import build_index, write_index

    missing = wait_for_shares(Path(out_dir), shard, since, key, timeout) if shard.world_size > 1 else []
    run_dir(out_dir).mkdir(parents=True, exist_ok=True)
    with NameLock(run_dir(out_dir), "index"):  # runs finishing together: the last to build writes last
        return write_index(out_dir, build_index(out_dir)), missing
