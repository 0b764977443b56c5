"""Segment videos, frame folders and DICOM cine loops; write masks, probability maps, an overlay
video and per-frame scores for each input.

Each INPUT gets its own folder OUT/<input name>/ (inputs whose names collide, exam.mp4 and exam.dcm,
get OUT/exam.mp4/ and OUT/exam.dcm/) with masks/, probs/ (one PNG per frame at the
frame's size; named after the input's frames for a frame folder, by index for a video or DICOM),
overlay.mp4, predictions.json and predictions.csv (see docs/inference.md). A
video runs as one clip (the published behaviour) when it fits the memory budget, else in
overlapping windows. Inputs that fail are reported and skipped; the exit status is non-zero if
any failed, and no partial result folder is left behind.

examples:
  lgrnet predict exam.mp4 --weights sunseg_pvt.safetensors --out results/
  lgrnet predict frames/ loop.dcm clip.avi --weights lgrnet_sunseg.pth --preset sunseg_pvt --out results/
  lgrnet predict long.mkv --weights w.safetensors --out results/ --window 64 --overlap 8
"""
from __future__ import annotations

import sys
import traceback

from ..errors import UserError


def add_arguments(p) -> None:
    p.add_argument("inputs", nargs="+", metavar="INPUT",
                   help="video file (mp4, avi, mov, mkv, ...), folder of frames, or DICOM (multi-frame) file")
    p.add_argument("--weights", required=True, help="our .safetensors checkpoint, or an authors' .pth with --preset")
    p.add_argument("--preset", default=None, help="the model config for an authors' checkpoint (sunseg_pvt, ...)")
    p.add_argument("--out", required=True, metavar="DIR", help="folder for the results (one sub-folder per input)")
    p.add_argument("--device", default="auto", help="auto (CUDA when available), cpu, cuda or cuda:N (default: auto)")
    p.add_argument("--size", type=int, default=None,
                   help="model input size, a multiple of 32 (default: the size the weights record, e.g. 192 for the demo "
                        "model; else 352, as published)")
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
                        "window shape; see docs/speed.md for when it pays off)")
    add_tta_argument(p)
    p.add_argument("--no-overlay", action="store_true", help="do not write overlay.mp4")
    p.add_argument("--overwrite", action="store_true", help="replace existing result folders")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")


def add_tta_argument(p) -> None:
    """--tta of :class:`~lgrnet.engine.predictor.VideoPredictor` (``lgrnet predict`` and ``lgrnet evaluate``)."""
    p.add_argument("--tta", action="store_true",
                   help="test-time augmentation: average the logits of the four flips (none, horizontal, vertical, "
                        "both) of each clip; 4x the forward time (docs/inference.md)")


def add_window_arguments(p) -> None:
    """--window, --overlap and --memory-budget of :class:`~lgrnet.engine.predictor.VideoPredictor`
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

    from ..engine.predictor import VideoPredictor, predict_to_folder, result_names
    from ..io.results import check_writable
    from ..progress import ProgressBar

    if args.fps is not None and args.fps <= 0:
        raise UserError(f"--fps {args.fps}: must be positive")
    if os.path.exists(args.out) and not os.path.isdir(args.out):
        raise UserError(f"{args.out}: is a file, not a folder for the results (--out)")
    check_writable(args.out)  # before the model loads and runs
    predictor = VideoPredictor.from_pretrained(
        args.weights, preset=args.preset, device=args.device, size=args.size, window=args.window,
        overlap=args.overlap, memory_budget=args.memory_budget, all_queries=args.all_queries,
        cuda_graphs=args.cuda_graphs, compile=args.compile, tta=args.tta)

    failed = 0
    for inp, name in zip(args.inputs, result_names(args.inputs)):
        bar = ProgressBar(name, unit="frame", enabled=not args.no_progress)
        try:
            summary = predict_to_folder(predictor, inp, args.out, progress=bar.callback(), name=name,
                                        overwrite=args.overwrite, overlay=not args.no_overlay, fps=args.fps)
        except UserError as exc:
            bar.close()
            print(f"lgrnet predict: error: {exc}", file=sys.stderr)
            failed += 1
            continue
        except Exception:  # a bug, not the input's fault: show it, go on with the other inputs
            bar.close()
            traceback.print_exc()
            print(f"lgrnet predict: error: {inp}: failed with an unexpected error (above)", file=sys.stderr)
            failed += 1
            continue
        bar.close()
        print(summary.describe())
    if failed:
        print(f"lgrnet predict: {failed} of {len(args.inputs)} inputs failed", file=sys.stderr)
        return 2
    return 0
