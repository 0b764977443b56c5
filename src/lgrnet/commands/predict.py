"""Segment videos, frame folders and DICOM cine loops; write masks, probability maps, an overlay
video and per-frame scores for each input.

Each INPUT gets its own folder OUT/<input name>/ (inputs whose names collide, exam.mp4 and exam.dcm,
get OUT/exam.mp4/ and OUT/exam.dcm/) with masks/, probs/ (one PNG per frame at the
frame's size; named after the input's frames for a frame folder, by index for a video or DICOM),
overlay.mp4, predictions.json and predictions.csv, and for DICOM inputs segmentation.dcm, a DICOM
Segmentation referencing the source frames (see docs/inference.md). A
video runs as one clip (the published behaviour) when it fits the memory budget, else in
overlapping windows. Inputs that fail are reported and skipped; the exit status is non-zero if
any failed, and no partial result folder is left behind. An input whose complete result folder
exists is skipped (--overwrite redoes it), so a killed run, started again with the same command,
does only what is left.

Many inputs: with more than one input (or several processes), OUT/index.csv and OUT/index.json
list every input (frames, frames with a lesion, max/mean score, seconds, status or error);
`lgrnet index OUT` rebuilds them. Started by torchrun or SLURM's srun, each process takes a
disjoint, size-balanced share of the inputs and its own GPU (its local rank) or its share of the
CPU cores; no process group is needed (see docs/inference.md).

examples:
  lgrnet predict exam.mp4 --weights sunseg_pvt.safetensors --out results/
  lgrnet predict frames/ loop.dcm clip.avi --weights lgrnet_sunseg.pth --preset sunseg_pvt --out results/
  lgrnet predict long.mkv --weights w.safetensors --out results/ --window 64 --overlap 8
  lgrnet predict cine.dcm --weights org/lgrnet-sunseg-pvt --out results/    # a hub id; writes segmentation.dcm too
  lgrnet predict --inputs exams.txt --weights w.safetensors --out results/
  lgrnet predict dicomweb:http://pacs:8042/dicom-web --study 1.2.3 --store --weights w.safetensors --out results/
                                         # cines of a study in a PACS, SEGs stored back (docs/pacs.md)
  torchrun --nproc_per_node 4 -m lgrnet predict videos/ --weights w.safetensors --out results/
"""
from __future__ import annotations

import argparse
import sys

from ..errors import UserError
from ..pacs.options import add_dicomweb_arguments
from .arguments import add_device_argument, add_precision_argument, add_weights_arguments


def add_arguments(p) -> None:
    p.add_argument("inputs", nargs="*", metavar="INPUT",
                   help="video file (mp4, avi, mov, mkv, ...), folder of frames, DICOM (multi-frame) file, or a folder "
                        "of video / DICOM files (each one an input); or dicomweb:URL, a PACS (with --study)")
    p.add_argument("--inputs", dest="input_lists", action="append", metavar="LIST.txt",
                   help="a text file of inputs, one path a line (may be given several times)")
    add_weights_arguments(p)
    p.add_argument("--out", required=True, metavar="DIR", help="folder for the results (one sub-folder per input)")
    add_device_argument(p)
    p.add_argument("--size", type=int, default=None,
                   help="model input size, a multiple of 32 (default: the size the weights record, as the shipped demo "
                        "model does; else 352, as published)")
    add_window_arguments(p)
    p.add_argument("--fps", type=float, default=None,
                   help="frame rate of the overlay for frame folders and DICOM files without timing (default: 25)")
    p.add_argument("--all-queries", action="store_true",
                   help="also write every query's probability maps and scores (queries/, queries.csv)")
    p.add_argument("--cuda-graphs", action="store_true",
                   help="on CUDA, replay one CUDA graph per window instead of launching every kernel (windowed videos; "
                        "meant for short windows, whose forward is bound by kernel launches)")
    p.add_argument("--compile", action="store_true",
                   help="torch.compile the model for the window shape (windowed videos; compiling takes minutes once per "
                        "window shape and machine, kept in lgrnet's cache folder for later runs; see docs/speed.md for "
                        "when it pays off)")
    add_precision_argument(p)
    add_tta_argument(p)
    p.add_argument("--no-overlay", action="store_true", help="do not write overlay.mp4")
    p.add_argument("--dicom-seg", action=argparse.BooleanOptionalAction, default=None,
                   help="for DICOM inputs also write segmentation.dcm, a DICOM Segmentation referencing the source "
                        "frames (default: when the source has the study/series identity it needs; --dicom-seg: "
                        "required; --no-dicom-seg: never)")
    p.add_argument("--dicom-seg-fractional", action="store_true",
                   help="segmentation.dcm holds the probability (FRACTIONAL, 8 bits) instead of the mask (BINARY)")
    p.add_argument("--overwrite", action="store_true", help="replace existing result folders")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument("--profile", action="store_true",
                   help="print each stage's share of the time (read, model, postprocess, encode, commit; also in "
                        "predictions.json as stage_seconds / stage_shares)")
    p.add_argument("--no-pipeline", action="store_true",
                   help="read, run and write in turn in one thread (default: a reader thread ahead of the model and a "
                        "writer pool behind it)")
    p.add_argument("--index-timeout", type=float, default=None, metavar="SECONDS",
                   help="with several processes: how long process 0 waits for the others before writing index.csv "
                        "(default: until they are done)")
    add_dicomweb_arguments(p)  # a dicomweb:URL input: lgrnet.pacs


def add_tta_argument(p) -> None:
    """--tta of :class:`~lgrnet.inference.predictor.VideoPredictor` (``lgrnet predict`` and ``lgrnet evaluate``)."""
    p.add_argument("--tta", action="store_true",
                   help="test-time augmentation: average the logits of the four flips (none, horizontal, vertical, "
                        "both) of each clip; 4x the forward time (docs/inference.md)")


def add_window_arguments(p) -> None:
    """--window, --overlap and --memory-budget of :class:`~lgrnet.inference.predictor.VideoPredictor`
    (shared by ``lgrnet predict`` and ``lgrnet evaluate``)."""
    p.add_argument("--window", type=int, default=None,
                   help="frames per forward pass (default: the whole video if it fits --memory-budget, else the "
                        "largest window that does)")
    p.add_argument("--overlap", type=int, default=None,
                   help="frames shared by consecutive windows (default: max(2 x encoder layers, window / 8))")
    p.add_argument("--memory-budget", default=None, metavar="BYTES",
                   help="memory for one clip, e.g. 6G or 512M (default: half the available RAM, at most 8G; on CUDA "
                        "80%% of the free GPU memory)")


def run(args) -> int:
    import os
    import time

    import torch

    from ..runs.batch import expand_inputs, finish_run, run_key, run_share
    from ..runs.run_index import write_manifest
    from ..runs.predict_folder import predict_to_folder, result_names
    from ..inference.predictor import VideoPredictor
    from ..runs.shard import process_device, process_threads, shard_from_env
    from ..results.folder import check_writable
    from ..progress import ProgressBar

    from ..pacs.predict import predict_from_pacs

    status = predict_from_pacs(args)  # a dicomweb:URL input (lgrnet.pacs); None: not one
    if status is not None:
        return status
    if args.fps is not None and args.fps <= 0:
        raise UserError(f"--fps {args.fps}: must be positive")
    if not args.inputs and not args.input_lists:
        raise UserError("no inputs: give INPUT paths or --inputs LIST.txt")
    if os.path.exists(args.out) and not os.path.isdir(args.out):
        raise UserError(f"{args.out}: is a file, not a folder for the results (--out)")
    started = time.time()
    shard = shard_from_env()
    inputs = expand_inputs(args.inputs, args.input_lists or ())
    names = result_names(inputs)
    check_writable(args.out)  # before the model loads and runs
    device = process_device(args.device, shard)
    if shard.local_world_size > 1 and not str(device).startswith("cuda"):
        torch.set_num_threads(process_threads(shard))  # the machine's cores shared by its processes
    predictor = VideoPredictor.from_pretrained(
        args.weights, preset=args.preset, device=device, size=args.size, window=args.window,
        overlap=args.overlap, memory_budget=args.memory_budget, all_queries=args.all_queries,
        cuda_graphs=args.cuda_graphs, compile=args.compile, precision=args.precision, pipeline=not args.no_pipeline, tta=args.tta)
    many = len(inputs) > 1 or shard.world_size > 1
    key = run_key(inputs, names)  # this run's records in OUT/.lgrnet-run (other runs into OUT have theirs)
    if many:
        os.makedirs(args.out, exist_ok=True)
        write_manifest(args.out, inputs, names, key)
    prefix = f"[{shard.rank}/{shard.world_size}] " if shard.world_size > 1 else ""

    def predict(inp: str, name: str) -> str:
        bar = ProgressBar(prefix + name, unit="frame", enabled=not args.no_progress)
        try:
            summary = predict_to_folder(predictor, inp, args.out, progress=bar.callback(), name=name,
                                        overwrite=args.overwrite, overlay=not args.no_overlay, fps=args.fps,
                                        dicom_seg=args.dicom_seg, dicom_seg_fractional=args.dicom_seg_fractional)
        finally:
            bar.close()
        line = prefix + summary.describe()
        if args.profile:
            line += "\n" + prefix + profile_line(summary.settings)
        return line

    statuses = run_share(inputs, names, args.out, shard, predict, key=key, overwrite=args.overwrite, record=many)
    failed = sum(s.status == "error" for s in statuses)
    if many and shard.rank == 0:
        index, missing = finish_run(args.out, shard, since=started - 60, key=key, timeout=args.index_timeout)
        if missing:
            print(f"lgrnet predict: processes {', '.join(map(str, missing))} did not finish within --index-timeout; "
                  f"the index lists their inputs as missing (rerun the same command, or `lgrnet index {args.out}` "
                  f"once they are done)", file=sys.stderr)
        print(f"{prefix}index of {len(inputs)} inputs: {index}")
    if failed:
        print(f"lgrnet predict: {prefix}{failed} of {len(statuses)} inputs failed", file=sys.stderr)
        return 2
    return 0


def profile_line(settings: dict) -> str:
    """Each stage's busy time as a share of the wall time (stages overlap: shares can add up past 100 %)."""
    shares = settings.get("stage_shares") or {}
    parts = [f"{k} {100 * v:.0f}%" for k, v in sorted(shares.items(), key=lambda kv: -kv[1])]
    return f"stages (busy share of {settings.get('seconds')} s): " + ", ".join(parts)
