"""The ``lgrnet`` command line: one entry point, one module per subcommand.

Each subcommand lives in ``lgrnet/commands/<name>.py`` and provides ``add_arguments(parser)``
and ``run(args) -> int``. Errors a user can fix (bad paths, unreadable files) are raised as
:class:`lgrnet.errors.UserError` and printed as one line, without a traceback.
"""
from __future__ import annotations

import argparse
import contextlib
import importlib
import sys
import warnings
from typing import List, Optional

from .errors import InputWarning, UserError

COMMANDS = {
    "demo": "run the shipped demo model on the shipped demo clip",
    "predict": "segment videos, frame folders or DICOM cine loops",
    "watch": "watch a PACS (DICOMweb) for new cine loops; segment each once and store its SEG back",
    "evaluate": "run a model over a dataset split and score it (SUN-SEG and authors' protocols)",
    "index": "write the index (index.csv/json) of a run of `lgrnet predict` over many inputs",
    "score": "score prediction folders against ground truth",
    "train": "train LGRNet with the published recipe",
    "view": "review a prediction folder in the browser",
    "live": "segment a live video (capture device, stream, file) causally, on a live page; record it",
    "dataset": "datasets from corrected results and annotation tools (COCO, CVAT); pre-annotation export",
    "convert": "convert an authors' .pth checkpoint to our .safetensors format",
    "export": "export a model to ONNX for a fixed clip length and frame size",
    "presets": "list the model presets and their configs",
    "info": "versions, devices, optional packages and the op implementations in use",
}


def build_parser() -> argparse.ArgumentParser:
    from .version import __version__

    parser = argparse.ArgumentParser(prog="lgrnet", description="LGRNet video lesion segmentation")
    parser.add_argument("--version", action="version", version=f"lgrnet {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, help_text in COMMANDS.items():
        try:
            module = importlib.import_module(f"lgrnet.commands.{name}")
        except ModuleNotFoundError as exc:
            if exc.name == f"lgrnet.commands.{name}":
                continue  # not part of this build
            raise
        p = sub.add_parser(name, help=help_text, description=getattr(module, "__doc__", None),
                           formatter_class=argparse.RawDescriptionHelpFormatter)
        module.add_arguments(p)
        add_threads_argument(p)
        p.set_defaults(_run=module.run)
    return parser


THREADS_HELP = ("CPU threads for the model (default: $LGRNET_THREADS, else $OMP_NUM_THREADS, else auto: the cores "
                "this process may use; idle threads sleep, so a busy machine is shared fairly: docs/speed.md)")


def add_threads_argument(p: argparse.ArgumentParser) -> None:
    """``--threads N|auto`` on a command's parser and on its subcommands' (``lgrnet dataset from-results
    --threads 1``); a subcommand's copy leaves the value alone unless given."""
    p.add_argument("--threads", default=None, metavar="N", help=THREADS_HELP)
    for action in p._actions:
        if isinstance(action, argparse._SubParsersAction):
            for sub in action.choices.values():
                sub.add_argument("--threads", default=argparse.SUPPRESS, metavar="N", help=THREADS_HELP)


def main(argv: Optional[List[str]] = None) -> int:
    from .runtime import configure_threads, prepare_openmp, tune_cpu_allocator

    prepare_openmp()  # idle OpenMP threads sleep: before the commands import torch (lgrnet.runtime)
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "_run", None):
        parser.print_help()
        return 2
    try:
        configure_threads(getattr(args, "threads", None))  # before any compute
    except ValueError as exc:
        print(f"lgrnet {args.command}: error: {exc}", file=sys.stderr)
        return 2
    tune_cpu_allocator()  # glibc: reuse freed tensor memory (see lgrnet.runtime)
    with _input_warnings_as_lines(args.command):
        return _run(args)


def _run(args) -> int:
    try:
        return int(args._run(args) or 0)
    except UserError as exc:
        print(f"lgrnet {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"lgrnet {args.command}: interrupted", file=sys.stderr)
        return 130


@contextlib.contextmanager
def _input_warnings_as_lines(command: str):
    """Print :class:`InputWarning` as ``lgrnet COMMAND: warning: ...`` (not Python's file:line form)."""
    default = warnings.showwarning

    def show(message, category, filename, lineno, file=None, line=None):
        if issubclass(category, InputWarning):
            print(f"lgrnet {command}: warning: {message}", file=sys.stderr)
        else:
            default(message, category, filename, lineno, file, line)

    warnings.showwarning = show
    try:
        yield
    finally:
        warnings.showwarning = default


if __name__ == "__main__":
    sys.exit(main())
