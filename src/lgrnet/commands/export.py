"""Export a model to ONNX for a fixed clip length and frame size (see docs/model.md, "ONNX").

The file takes `video` float32 (1, T, 3, S, S) RGB in [0, 1] and returns `mask_logits`
(1, T, Nq, S, S) and `class_logits` (1, Nq, 2). Exporting runs torch.onnx (dynamo) and, unless
--no-check, compares onnxruntime with PyTorch on one random clip.

examples:
  lgrnet export --format onnx --frames 6 --size 352 --weights lgrnet_sunseg_pvt.safetensors lgrnet_T6_352.onnx
  lgrnet export --format onnx --frames 6 --size 352 --weights org/lgrnet-sunseg-pvt out.onnx
  lgrnet export --format onnx --frames 6 --weights demo demo_T6.onnx     # at the size the weights record
"""
from __future__ import annotations

import os

from ..errors import UserError
from .arguments import add_weights_arguments, check_output_file


def add_arguments(p) -> None:
    p.add_argument("output", metavar="OUT.onnx", help="where to write the exported model")
    p.add_argument("--format", default="onnx", choices=["onnx"], help="export format (default: onnx)")
    add_weights_arguments(p)
    p.add_argument("--frames", type=int, required=True, metavar="T", help="clip length the file is built for")
    p.add_argument("--size", type=int, default=None, metavar="S",
                   help="frame size S x S, a multiple of 32 (default: the size the weights record, e.g. the demo model's; "
                        "else 352, as published)")
    p.add_argument("--opset", type=int, default=18, help="ONNX opset (default: 18)")
    p.add_argument("--no-check", action="store_true", help="do not compare onnxruntime with PyTorch after exporting")
    p.add_argument("--force", action="store_true", help="overwrite OUT.onnx if it exists")


def run(args) -> int:
    from ..export.onnx import check_shape, export_onnx
    from ..models.lgrnet import LGRNet

    check_output_file(args.output, ".onnx", args.force)
    if args.size is None:  # what the weights record, as every command (a model run at another size loses accuracy)
        from ..inference.loading import inference_size, resolve_weights

        h, w = inference_size(resolve_weights(args.weights))
        if h != w:
            raise UserError(f"{args.weights}: records the input size {w}x{h}; pass --size S for a square export")
        args.size = h
    try:
        check_shape(args.frames, args.size)
    except ValueError as exc:
        raise UserError(str(exc)) from None
    try:
        import onnxscript  # noqa: F401  (the dynamo exporter's translator)
    except ImportError:
        raise UserError('ONNX export needs onnx and onnxscript: pip install "lgrnet[onnx]"') from None
    try:
        model = LGRNet.from_pretrained(args.weights, preset=args.preset)
    except (FileNotFoundError, ValueError) as exc:
        raise UserError(str(exc)) from None
    check = not args.no_check
    if check:
        try:
            import onnxruntime  # noqa: F401
        except ImportError:
            print("lgrnet export: onnxruntime is not installed; skipping the check (pip install onnxruntime)")
            check = False
    report = export_onnx(model.eval(), args.output, frames=args.frames, size=args.size, opset=args.opset, check=check)
    size_mb = os.path.getsize(report.path) / 1e6
    print(f"wrote {report.path} ({size_mb:.1f} MB, T={args.frames}, {args.size}x{args.size}, {report.seconds:.0f} s)")
    if report.max_abs_diff is not None:
        diffs = ", ".join(f"{k} {v:.2e}" for k, v in report.max_abs_diff.items())
        print(f"onnxruntime vs PyTorch on a random clip, max abs difference: {diffs}")
    return 0
