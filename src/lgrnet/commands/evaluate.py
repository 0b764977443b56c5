"""Run a model over a dataset split and score it with the evaluation protocols.

Every video is segmented as one clip at --size (the published evaluation: 352) when it fits the
memory budget, else in overlapping windows (--window/--overlap/--memory-budget as for `lgrnet
predict`; config.json records how each video ran); the probability maps (uint8) and binary masks
are written in the SUN-SEG toolbox's prediction layout under
OUT/probs and OUT/masks, then scored: the SUN-SEG toolbox protocol on the maps, the authors'
Dice/IoU on the masks, and, for UFUV splits (fibroid_validate_temp8, temp8/test, ...) or a
fibroid_pvt model, the authors' UFUV evaluator on the masks (--protocol chooses instead). OUT gets
<protocol>.json/.csv for each and config.json.

--split is a folder under --data (TestHardDataset/Unseen, CVC-ClinicDB-612/Test) or one of the
authors' data-set names (polyp_hard_unseen_validate, 612-test, fibroid_validate_temp8, ...). The
split is checked first (missing/extra masks, sizes, unreadable files): problems are reported
together, naming the files.

examples:
  lgrnet evaluate --weights sunseg_pvt.safetensors --data SUN-SEG-Annotation --split TestHardDataset/Unseen --out runs/hard_unseen
  lgrnet evaluate --weights sunseg_pvt.pth --preset sunseg_pvt --data data --split polyp_easy_seen_validate --out runs/easy_seen
  lgrnet evaluate --weights ufuv.safetensors --data UFUV --split fibroid_validate_temp8 --out runs/ufuv
  lgrnet evaluate --preset tiny --random-init --data data --split CVC-ClinicDB-612/Test --size 128 --out /tmp/smoke
"""
from __future__ import annotations

import os
import sys
from pathlib import Path

from ..errors import UserError
from ..files import sha256_file
from .arguments import add_device_argument, add_precision_argument, add_weights_arguments, check_output_folder
from .predict import add_tta_argument, add_window_arguments


def add_arguments(p) -> None:
    add_weights_arguments(p, required=False, preset_help="the config of an authors' .pth, or with --random-init the architecture")
    p.add_argument("--random-init", action="store_true",
                   help="no weights: an untrained --preset model, for smoke tests only (its scores mean nothing)")
    p.add_argument("--seed", type=int, default=0, help="random seed of --random-init (default 0)")
    p.add_argument("--data", required=True, metavar="ROOT", help="the dataset root")
    p.add_argument("--split", metavar="NAME", help="the split under ROOT (a path or an authors' data-set name)")
    p.add_argument("--out", required=True, metavar="DIR", help="output folder (new or empty, unless --force)")
    p.add_argument("--size", type=int, default=None,
                   help="model input size, a multiple of 32 (default: the size the weights record, as the shipped demo "
                        "model does; else 352, as published)")
    add_window_arguments(p)
    add_causal_arguments(p)
    add_tta_argument(p)
    p.add_argument("--videos", nargs="+", metavar="NAME", help="evaluate only these videos")
    add_device_argument(p)
    add_precision_argument(p)
    p.add_argument("--protocol", action="append", choices=("sunseg", "authors", "fibroid"), metavar="NAME",
                   help="score with this protocol (repeatable: sunseg, authors, fibroid; default sunseg and "
                        "authors, and fibroid too for UFUV splits or a fibroid_pvt model)")
    p.add_argument("--keep-ends", action="store_true",
                   help="sunseg: score every frame (NOT the toolbox's protocol, which drops each video's first and last)")
    p.add_argument("--skip-mask-check", action="store_true", help="check masks from file headers only (faster)")
    p.add_argument("--force", action="store_true", help="write into an OUT that already holds files")
    p.add_argument("--quiet", action="store_true", help="no progress bars and no tables")


def add_causal_arguments(p) -> None:
    """--causal and --stride: segment each video as a live stream would (lgrnet.inference.stream)."""
    p.add_argument("--causal", action="store_true",
                   help="causal, as `lgrnet live` runs: each frame from a window of the last --window frames "
                        "(default 2), the newest --stride (default 2) reported per window; no future frames")
    p.add_argument("--stride", type=int, default=None, help="with --causal: frames reported per window (default 2)")


def _causal_settings(args, settings: dict) -> dict:
    """--causal: the settings of a CausalPredictor (window, stride); the offline ones refused."""
    from ..inference.stream import DEFAULT_STRIDE, DEFAULT_WINDOW, check_causal

    if args.overlap is not None or args.memory_budget is not None or settings.get("tta"):
        raise UserError("--causal runs a window of the last --window frames: --overlap, --memory-budget and --tta do not apply")
    window = DEFAULT_WINDOW if args.window is None else args.window
    stride = DEFAULT_STRIDE if args.stride is None else args.stride
    check_causal(window, stride)
    return {"window": window, "stride": stride, "precision": settings["precision"]}


def load_predictor(args, device):
    """The predictor the arguments name: --weights [--preset] (through
    :meth:`~lgrnet.inference.predictor.VideoPredictor.from_pretrained`, at the size the weights record
    unless --size), or --preset with --random-init (at --size, else 352)."""
    import torch

    from ..config import get_preset
    from ..inference.loading import inference_size
    from ..inference.predictor import VideoPredictor
    from ..models.lgrnet import LGRNet

    settings = {"window": args.window, "overlap": args.overlap, "memory_budget": args.memory_budget,
                "precision": args.precision, "tta": bool(getattr(args, "tta", False))}
    predictor_class = VideoPredictor
    if getattr(args, "causal", False):
        from ..inference.stream import CausalPredictor

        predictor_class, settings = CausalPredictor, _causal_settings(args, settings)
    elif getattr(args, "stride", None) is not None:
        raise UserError("--stride needs --causal")
    if args.weights and args.random_init:
        raise UserError("--random-init and --weights exclude each other")
    if args.weights:
        return predictor_class.from_pretrained(args.weights, preset=args.preset, device=device, size=args.size,
                                               **settings)
    if not args.preset:
        raise UserError("--weights is required (or --preset P --random-init for an untrained smoke-test model)")
    if not args.random_init:
        raise UserError(f"--preset {args.preset} without --weights would evaluate an untrained model; "
                        f"pass --random-init if that is what you want (smoke tests only)")
    try:
        get_preset(args.preset)
    except ValueError as exc:
        raise UserError(str(exc)) from None
    size = inference_size(None, args.size)
    torch.manual_seed(args.seed)
    print(f"warning: evaluating an untrained {args.preset!r} model (--random-init): its scores mean nothing",
          file=sys.stderr)
    return predictor_class(LGRNet.from_preset(args.preset).to(device), size=size, **settings)


def choose_protocols(asked, split, split_path, preset: str = ""):
    """The protocols to score: those ``asked`` (in the order of ``PROTOCOL_INPUTS``), else sunseg and
    authors, plus fibroid for a UFUV split (:func:`lgrnet.data.ufuv.ufuv_folder`) or a fibroid_pvt model."""
    from ..data.ufuv import ufuv_folder
    from ..evaluation.evaluate import DEFAULT_PROTOCOLS, PROTOCOL_INPUTS

    if asked:
        return [p for p in PROTOCOL_INPUTS if p in set(asked)]
    extra = ["fibroid"] if ufuv_folder(split, split_path) or preset == "fibroid_pvt" else []
    return list(DEFAULT_PROTOCOLS) + extra


def run(args) -> int:
    from ..config import to_dict
    from ..data.datasets import resolve_split, validate_split
    from ..data.ufuv import count_note, ufuv_folder
    from ..inference.device import resolve_device
    from ..evaluation.evaluate import evaluate_split
    from ..models.input_size import check_input_size
    from ..inference.memory import parse_bytes
    from ..runs.shard import process_device, process_threads, shard_from_env
    from ..inference.windows import check_window

    if args.size is not None:
        check_input_size(args.size, "--size")
    if not args.causal:  # --causal: a window of the last K frames, K >= 1 (checked by _causal_settings)
        check_window(args.window, args.overlap)  # option errors before any work
    if args.memory_budget is not None:
        parse_bytes(args.memory_budget)
    check_output_folder(args.out)  # a read-only OUT: one line now, not after the predictions
    shard = shard_from_env()  # torchrun / srun: each process predicts a share, process 0 scores
    device = resolve_device(process_device(args.device or "auto", shard))
    if shard.local_world_size > 1 and device.type == "cpu":
        import torch

        torch.set_num_threads(process_threads(shard))
    out = Path(args.out)
    if out.exists() and not out.is_dir():
        raise UserError(f"{out}: exists and is not a folder")
    if shard.world_size == 1 and out.is_dir() and any(out.iterdir()) and not args.force:  # several: resumable
        raise UserError(f"{out}: already holds files; choose a new folder or pass --force")
    info = resolve_split(args.data, args.split)
    videos, report = validate_split(args.data, args.split, require_masks=True, check_masks=not args.skip_mask_check)
    ufuv = ufuv_folder(args.split, info.path)
    ufuv_note = count_note(ufuv, len(videos)) if ufuv else None
    if ufuv_note and not args.quiet:
        print(f"note: {ufuv_note}", file=sys.stderr)
    if args.videos:
        names = [v.name for v in videos]
        unknown = [v for v in args.videos if v not in names]
        if unknown:
            raise UserError(f"{info.path}: no video(s) {', '.join(unknown)}")
        videos = [v for v in videos if v.name in set(args.videos)]
    predictor = load_predictor(args, device)
    model = predictor.model
    progress = not args.quiet and sys.stderr.isatty()
    if not args.quiet:
        print(f"{info.path} ({info.layout}): {report.summary()}", file=sys.stderr)
    config = {
        "command": "evaluate",
        "weights": os.path.abspath(args.weights) if args.weights else None,
        "weights_sha256": sha256_file(args.weights) if args.weights else None,
        "preset": args.preset, "random_init": bool(args.random_init),
        "seed": args.seed if args.random_init else None,
        "model": to_dict(model.config),
        "data": os.path.abspath(args.data), "split": args.split, "split_path": str(info.path), "layout": info.layout,
        "device": str(device), "nonbinary_masks": len(report.nonbinary_masks),
    }
    if args.causal:
        config["causal"] = {"window": predictor.window, "stride": predictor.stride}
    protocols = choose_protocols(args.protocol, args.split, info.path, getattr(model.config, "preset", ""))
    if ufuv:
        config["ufuv_split"] = ufuv
        config["ufuv_note"] = ufuv_note
    result = evaluate_split(predictor, videos, out, drop_ends=not args.keep_ends, config=config, progress=progress,
                            protocols=protocols, shard=shard)
    if result is None:  # not process 0: its share is predicted; process 0 scores
        if not args.quiet:
            print(f"{shard.describe()}: share predicted into {out}", file=sys.stderr)
        return 0
    if result.windowed:
        print(f"note: {len(result.windowed)} video(s) ran in overlapping windows, not as one clip (the published "
              f"protocol; see --window and --memory-budget): {', '.join(result.windowed[:5])}"
              f"{' ...' if len(result.windowed) > 5 else ''}; see 'inference' in {out / 'config.json'}", file=sys.stderr)
    if not args.quiet:
        print(result.tables())
        print(f"wrote {result.frames} maps and masks, tables and config to {out} "
              f"(predict {result.seconds_predict:.1f} s, score {result.seconds_score:.1f} s)")
    return 0
