"""``lgrnet watch dicomweb:URL``: find new cines in a PACS, segment each once, store its SEG back,
and record it in a state file, so that a watch killed at any moment and started again neither
repeats nor skips an instance.

Finding new instances (a feed):

- :class:`OrthancChanges` (where the server is Orthanc: its ``/system`` answers): Orthanc's
  changes log (``/changes?since=SEQ``), whose NewInstance entries are looked up by SOP Instance
  UID (QIDO-RS) to keep the cines; the cursor is the last change's sequence number;
- :class:`QidoByDate` (any DICOMweb server): the instances (QIDO-RS) of the studies whose Study
  Date is on or after a day (``--since``, default: the day the watch first started); new means not
  in the state file. A study imported today with an older Study Date is found only with an
  early enough ``--since``.

The state file (``OUT/.lgrnet-watch.json``, replaced atomically on every change) holds the server,
the feed and its cursor, the instances found but not finished (``pending``) and those finished
(``done``: stored, or failed with the message). Found instances are written to ``pending`` in
the same write that moves the cursor past them, and each one moves to ``done`` only after its SEG
was stored; an instance interrupted between the two is done again after a restart: its complete
result folder is kept, and storing its SEG again keeps one copy in the PACS (same SOP Instance
UID; see :mod:`lgrnet.pacs.store`). Failed instances are not retried (``--retry-failed`` does).
"""
from __future__ import annotations

import datetime
import json
import os
import sys
import time
from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple
from urllib.parse import urlsplit, urlunsplit

from ..errors import UserError
from ..files import write_text_atomic
from .connection import Pacs, PacsError
from .instances import CineInstance, lookup_cine, parse_instance, search_instances

STATE = ".lgrnet-watch.json"
PAGE = 100  # Orthanc changes per request


class WatchState:
    """The state file: ``cursor`` of the feed, ``pending`` and ``done`` instances by SOP Instance UID."""

    def __init__(self, path: Path, url: str, feed: str, cursor: Any = None,
                 pending: Optional[Dict[str, Dict]] = None, done: Optional[Dict[str, Dict]] = None):
        self.path, self.url, self.feed, self.cursor = Path(path), url, feed, cursor
        self.pending: Dict[str, Dict] = pending or {}
        self.done: Dict[str, Dict] = done or {}

    @classmethod
    def load(cls, out: Path, url: str) -> Optional["WatchState"]:
        path = Path(out) / STATE
        try:
            d = json.loads(path.read_text())
        except FileNotFoundError:
            return None
        except (OSError, ValueError) as exc:
            raise UserError(f"{path}: cannot read the watch state ({exc}); move it away to start afresh") from None
        if not isinstance(d, dict) or d.get("url") != url:
            raise UserError(f"{path}: the watch state of {d.get('url') if isinstance(d, dict) else '?'}, not of {url}; "
                            "use another --out for another server")
        return cls(path, url, d.get("feed"), d.get("cursor"), d.get("pending"), d.get("done"))

    def save(self) -> None:
        data = {"url": self.url, "feed": self.feed, "cursor": self.cursor, "pending": self.pending, "done": self.done}
        write_text_atomic(self.path, json.dumps(data, indent=1, sort_keys=True) + "\n")

    def add_pending(self, cines: List[CineInstance], cursor: Any) -> List[CineInstance]:
        """Remember the new ones among ``cines`` and move the cursor, in one write; returns the new ones."""
        new = [c for c in cines if c.sop not in self.done and c.sop not in self.pending]
        for c in new:
            self.pending[c.sop] = c.to_json()
        if new or cursor != self.cursor:
            self.cursor = cursor
            self.save()
        return new

    def finish(self, cine: CineInstance, status: str, error: Optional[str]) -> None:
        """Move ``cine`` from pending to done ("stored" or "failed")."""
        self.pending.pop(cine.sop, None)
        entry = {**cine.to_json(), "status": "stored" if status == "done" else "failed",
                 "time": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")}
        if error:
            entry["error"] = error
        self.done[cine.sop] = entry
        self.save()

    def pending_cines(self) -> List[CineInstance]:
        return [CineInstance.from_json(d) for d in self.pending.values()]


def orthanc_root(url: str) -> str:
    """Orthanc's REST root for its DICOMweb root: the URL without its last path part (``/dicom-web``)."""
    parts = urlsplit(url)
    path = parts.path.rstrip("/")
    return urlunsplit((parts.scheme, parts.netloc, path.rsplit("/", 1)[0] if "/" in path else "", "", ""))


def is_orthanc(pacs: Pacs) -> bool:
    """Whether the server answers Orthanc's ``/system`` (its name, version and API version)."""
    try:
        info = pacs.get_json(orthanc_root(pacs.url) + "/system", "asking whether the server is Orthanc")
    except PacsError as exc:
        if exc.server:
            raise
        return False
    return isinstance(info, dict) and "ApiVersion" in info and "Version" in info


class OrthancChanges:
    """New instances from Orthanc's changes log; the cursor is a change sequence number."""

    name = "orthanc"

    def __init__(self, pacs: Pacs):
        self.pacs = pacs
        self.root = orthanc_root(pacs.url)

    def start(self, everything: bool) -> int:
        """The first cursor: 0 (every instance in the archive) or the latest change (new ones only)."""
        if everything:
            return 0
        return int(self._changes(last=True)["Last"])

    def _changes(self, **params) -> Dict[str, Any]:
        answer = self.pacs.get_json(self.root + "/changes", "reading Orthanc's changes", **params)
        if not isinstance(answer, dict) or not isinstance(answer.get("Changes"), list) or "Last" not in answer:
            raise PacsError(f"{self.root}/changes: unexpected answer (not Orthanc's changes log)")
        return answer

    def poll(self, cursor: int) -> Tuple[List[CineInstance], int]:
        found: List[CineInstance] = []
        while True:
            page = self._changes(since=cursor, limit=PAGE)
            for change in page["Changes"]:
                if change.get("ChangeType") == "NewInstance":
                    cine = self._cine(change.get("ID"))
                    if cine is not None:
                        found.append(cine)
            cursor = max(int(page["Last"]), cursor)
            if page.get("Done", True) or not page["Changes"]:
                return found, cursor

    def _cine(self, orthanc_id: Any) -> Optional[CineInstance]:
        try:
            tags = self.pacs.get_json(f"{self.root}/instances/{orthanc_id}", "looking up a new instance")
        except PacsError as exc:
            if exc.server:
                raise
            return None  # deleted since
        sop = (tags.get("MainDicomTags") or {}).get("SOPInstanceUID") if isinstance(tags, dict) else None
        return lookup_cine(self.pacs, sop) if sop else None


class QidoByDate:
    """New instances by QIDO-RS over the studies dated on or after the cursor (YYYYMMDD)."""

    name = "qido"

    def __init__(self, pacs: Pacs):
        self.pacs = pacs

    def start(self, everything: bool, since: Optional[str] = None) -> str:
        if everything:
            return "19000101"
        return since or datetime.date.today().strftime("%Y%m%d")

    def poll(self, cursor: str) -> Tuple[List[CineInstance], str]:
        studies = self.pacs.call("searching for studies (QIDO-RS)", self.pacs.client.search_for_studies,
                                 search_filters={"StudyDate": f"{cursor}-"}, fields=["0020000D"], get_remaining=True)
        if not isinstance(studies, list):
            raise PacsError(f"{self.pacs.url}: unexpected answer to a QIDO-RS study search")
        found: List[CineInstance] = []
        for study in studies:
            uid = ((study.get("0020000D") or {}).get("Value") or [None])[0] if isinstance(study, dict) else None
            if uid:
                found += [c for c in (parse_instance(i, self.pacs.url) for i in search_instances(self.pacs, uid)) if c]
        return found, cursor


def make_feed(pacs: Pacs, kind: str):
    """The feed ``kind`` ("orthanc", "qido", or "auto": Orthanc's where the server is Orthanc)."""
    if kind == "auto":
        kind = "orthanc" if is_orthanc(pacs) else "qido"
    return OrthancChanges(pacs) if kind == "orthanc" else QidoByDate(pacs)


def run_watch(args) -> int:
    """The loop of ``lgrnet watch`` (see the module): poll, segment and store, record; ``--once``:
    one round, exit status 2 if anything failed."""
    from ..results.folder import check_writable
    from ..runs.run_index import build_index, write_index
    from .connection import is_dicomweb, parse_url
    from .predict import PacsJob, predictor_from_args

    if not is_dicomweb(args.source):
        raise UserError(f"{args.source}: expected dicomweb:URL (a DICOMweb root, e.g. dicomweb:http://host:8042/dicom-web)")
    if args.since is not None and not (len(args.since) == 8 and args.since.isdigit()):
        raise UserError(f"--since {args.since}: expected a date YYYYMMDD")
    url = parse_url(args.source)
    out = Path(args.out)
    if out.exists() and not out.is_dir():
        raise UserError(f"{out}: is a file, not a folder for the results (--out)")
    pacs = Pacs(url, ca_bundle=args.ca_bundle, timeout=args.pacs_timeout)
    state = WatchState.load(out, url)
    feed = make_feed(pacs, state.feed if state is not None and state.feed else args.feed)  # a state keeps its feed
    check_writable(out)
    if state is None:
        cursor = feed.start(args.all) if isinstance(feed, OrthancChanges) else feed.start(args.all, args.since)
        state = WatchState(out / STATE, url, feed.name, cursor)
        state.save()
    if args.retry_failed:
        retry = [CineInstance.from_json(d) for d in state.done.values() if d.get("status") == "failed"]
        for c in retry:
            del state.done[c.sop]
        state.add_pending(retry, state.cursor)
    predictor = predictor_from_args(args)
    job = PacsJob(pacs, predictor, out, store=True, overlay=not args.no_overlay, fractional=args.dicom_seg_fractional,
                  progress=not args.no_progress)
    print(f"lgrnet watch: {url} ({feed.name}, from {state.cursor}); state in {state.path}", flush=True)
    failures = 0
    while True:
        try:
            found, cursor = feed.poll(state.cursor)
            new = state.add_pending(found, cursor)
            if new:
                print(f"lgrnet watch: {len(new)} new cine(s)", flush=True)
            pending = state.pending_cines()
            if pending:
                statuses = job.run(pending, record=False, on_done=state.finish)
                failures += sum(s.status == "error" for s in statuses)
                write_index(out, build_index(out))
        except PacsError as exc:
            if args.once or not exc.server:
                raise
            print(f"lgrnet watch: warning: {exc}; trying again in {args.interval:g} s", file=sys.stderr, flush=True)
        if args.once:
            return 2 if failures else 0
        time.sleep(args.interval)


def state_summary(out: os.PathLike) -> Dict[str, int]:
    """Counts of a watch's state file: pending, stored, failed (for scripts and tests)."""
    d = json.loads((Path(out) / STATE).read_text())
    done = list(d.get("done", {}).values())
    return {"pending": len(d.get("pending", {})), "stored": sum(x.get("status") == "stored" for x in done),
            "failed": sum(x.get("status") == "failed" for x in done)}
