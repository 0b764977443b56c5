"""Segmenting cines from a PACS: :class:`PacsJob` fetches each cine (WADO-RS) into the output folder,
writes its usual result folder (:func:`lgrnet.runs.predict_folder.predict_to_folder`, with
segmentation.dcm) and stores the SEG back (STOW-RS), one instance after another under
:func:`lgrnet.runs.batch.run_share`; :func:`run_predict` is ``lgrnet predict dicomweb:URL``.

In the output folder, each cine's result folder is named by its SOP Instance UID and the fetched
file is kept as ``.dicomweb/<SOP Instance UID>.dcm`` (the result's ``input``; the review page reads
its frames). A run started again skips cines whose result folder is complete and stores those not
stored yet; a failure of the server as a whole (unreachable, refused, timed out) ends the run with
one line (exit status 2), leaving complete result folders and stored objects as they are.
"""
from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Callable, Optional, Sequence

from ..errors import UserError
from .connection import Pacs, PacsError, PacsUnavailable, is_dicomweb
from .instances import CineInstance, fetch_cine, find_cines
from .store import store_result, stored_record

CACHE = ".dicomweb"
DoneFn = Callable[[CineInstance, str, Optional[str]], None]  # (cine, "done" | "failed", error)


def predictor_from_args(args):
    """The :class:`~lgrnet.inference.predictor.VideoPredictor` that ``lgrnet predict``'s options
    describe (options a command lacks take predict's defaults)."""
    from ..inference.predictor import VideoPredictor
    from ..runs.shard import process_device, shard_from_env

    device = process_device(args.device, shard_from_env())
    return VideoPredictor.from_pretrained(
        args.weights, preset=args.preset, device=device, size=args.size, window=args.window, overlap=args.overlap,
        memory_budget=args.memory_budget, all_queries=getattr(args, "all_queries", False),
        cuda_graphs=getattr(args, "cuda_graphs", False), compile=getattr(args, "compile", False),
        precision=args.precision, pipeline=not getattr(args, "no_pipeline", False), tta=args.tta)


class PacsJob:
    """Cines of one server -> result folders in ``out`` (and, with ``store``, SEGs in the PACS)."""

    def __init__(self, pacs: Pacs, predictor, out: os.PathLike, *, store: bool, overlay: bool = True,
                 fps: Optional[float] = None, fractional: bool = False, overwrite: bool = False,
                 progress: bool = True):
        self.pacs, self.predictor, self.out = pacs, predictor, Path(out)
        self.store, self.overlay, self.fps, self.fractional = store, overlay, fps, fractional
        self.overwrite, self.progress = overwrite, progress

    def cache_path(self, cine: CineInstance) -> Path:
        return self.out / CACHE / f"{cine.sop}.dcm"

    def process(self, cine: CineInstance, name: str) -> str:
        """Fetch (unless fetched before), predict, store: one line for the terminal."""
        from ..progress import ProgressBar
        from ..runs.predict_folder import predict_to_folder

        path = self.cache_path(cine)
        if not path.is_file():
            fetch_cine(self.pacs, cine, path)
        bar = ProgressBar(name, unit="frame", enabled=self.progress)
        try:
            summary = predict_to_folder(self.predictor, path, self.out, progress=bar.callback(), name=name,
                                        overwrite=self.overwrite, overlay=self.overlay, fps=self.fps,
                                        dicom_seg=True if self.store else None, dicom_seg_fractional=self.fractional)
        finally:
            bar.close()
        line = summary.describe()
        if self.store:
            line += "; " + self._store(cine, summary.path)
        return line

    def _store(self, cine: CineInstance, folder: Path) -> str:
        record = store_result(self.pacs, folder, cine)
        kinds = " and ".join("SEG" if s["file"] == "segmentation.dcm" else "SR" for s in record["stored"])
        return f"stored {kinds} in study {cine.study}"

    def run(self, cines: Sequence[CineInstance], record: bool, on_done: Optional[DoneFn] = None):
        """Every cine through :func:`~lgrnet.runs.batch.run_share`; returns its statuses. Raises
        :class:`PacsError` when the server as a whole fails (the run stops there)."""
        from ..runs.batch import run_share
        from ..runs.shard import Shard

        by_name = {c.sop: c for c in cines}
        names = list(by_name)
        inputs = [os.fspath(self.cache_path(by_name[n])) for n in names]

        def predict(_input: str, name: str) -> str:
            cine = by_name[name]
            try:
                line = self.process(cine, name)
            except PacsError as exc:
                if exc.server:
                    raise PacsUnavailable(exc) from None
                self._done(on_done, cine, "failed", str(exc))
                raise
            except UserError as exc:
                self._done(on_done, cine, "failed", str(exc))
                raise
            except Exception as exc:  # a bug: run_share shows it; the instance is not tried again and again
                self._done(on_done, cine, "failed", f"{type(exc).__name__}: {exc}")
                raise
            self._done(on_done, cine, "done", None)
            return line

        try:
            statuses = run_share(inputs, names, self.out, Shard(), predict, overwrite=self.overwrite, record=record)
            for s in statuses:  # complete before this run: store what was not stored yet
                if s.status != "skipped":
                    continue
                folder = self.out / s.name
                if self.store and stored_record(folder) is None:
                    print(f"{folder}: {self._store(by_name[s.name], folder)}")
                self._done(on_done, by_name[s.name], "done", None)
        except PacsUnavailable as stop:
            raise stop.args[0] from None
        return statuses

    @staticmethod
    def _done(on_done: Optional[DoneFn], cine: CineInstance, status: str, error: Optional[str]) -> None:
        if on_done is not None:
            on_done(cine, status, error)


def dicomweb_source(inputs: Sequence[str], input_lists: Sequence[str]) -> Optional[str]:
    """The one ``dicomweb:URL`` among ``lgrnet predict``'s inputs, or None when there is none."""
    urls = [i for i in inputs if is_dicomweb(i)]
    if not urls:
        return None
    if len(urls) != 1 or len(inputs) != 1 or input_lists:
        raise UserError("a dicomweb:URL input goes alone (one server, one --study per run; no other inputs or --inputs)")
    return urls[0]


def predict_from_pacs(args) -> Optional[int]:
    """``lgrnet predict dicomweb:URL --study UID [--series UID] [--store]``: the exit status, or None
    when the inputs are not a DICOMweb source (then the DICOMweb options must not be given)."""
    if dicomweb_source(args.inputs, args.input_lists or ()) is None:
        given = [o for o, v in (("--study", args.study), ("--series", args.series), ("--store", args.store)) if v]
        if given:
            raise UserError(f"{', '.join(given)}: only for a dicomweb:URL input")
        return None
    return run_predict(args)


def run_predict(args) -> int:
    """``lgrnet predict dicomweb:URL ...`` (see :func:`predict_from_pacs`)."""
    from ..results.folder import check_writable
    from ..runs.run_index import build_index, write_index

    source = dicomweb_source(args.inputs, args.input_lists or ())
    if not args.study:
        raise UserError(f"{source}: give the study to segment with --study UID (and optionally --series UID)")
    if args.fps is not None and args.fps <= 0:
        raise UserError(f"--fps {args.fps}: must be positive")
    if os.path.exists(args.out) and not os.path.isdir(args.out):
        raise UserError(f"{args.out}: is a file, not a folder for the results (--out)")
    pacs = Pacs(source, ca_bundle=args.ca_bundle, timeout=args.pacs_timeout)
    cines = find_cines(pacs, args.study, args.series)  # the server's errors before the model loads
    check_writable(args.out)
    predictor = predictor_from_args(args)
    job = PacsJob(pacs, predictor, args.out, store=args.store, overlay=not args.no_overlay, fps=args.fps,
                  fractional=args.dicom_seg_fractional, overwrite=args.overwrite, progress=not args.no_progress)
    many = len(cines) > 1
    statuses = job.run(cines, record=many)
    if many:
        print(f"index of {len(cines)} cines: {write_index(args.out, build_index(args.out))}")
    failed = sum(s.status == "error" for s in statuses)
    if failed:
        print(f"lgrnet predict: {failed} of {len(statuses)} cines failed", file=sys.stderr)
        return 2
    return 0

