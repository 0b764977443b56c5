"""The arguments several commands share, worded once: which model (``--weights``, ``--preset``), where
it runs (``--device``) and in what precision (``--precision``); and the checks of the outputs, which
every command that writes runs first, before any compute: a one-file output (``OUTPUT`` with
``--force``), and any output folder or file must be writable (:func:`check_output_folder`,
:func:`check_writable_file`: a read-only place is one line naming the user's path, exit 2)."""
from __future__ import annotations

import argparse
import os

from ..errors import UserError
from ..files import probe_writable
from ..precision import CHOICES

WEIGHTS_HELP = ("demo (the model shipped with lgrnet), our .safetensors checkpoint, a model folder (model.safetensors, "
                "config.json), a hub id org/name, or an authors' .pth with --preset")


def weights_argument(value: str) -> str:
    """``--weights`` as given, but ``demo``: the shipped model's file (:mod:`lgrnet.models.shipped`), so
    that every command records and hashes a real path."""
    from ..models.shipped import resolve_shipped

    return resolve_shipped(value)


def add_weights_arguments(p: argparse.ArgumentParser, required: bool = True, what: str = "",
                          preset_help: str = "the model config of an authors' .pth checkpoint (sunseg_pvt, ...)") -> None:
    """``--weights W`` (every form :meth:`lgrnet.VideoPredictor.from_pretrained` loads) and ``--preset P``.
    ``what`` says what the model is for in this command, e.g. "for the page's uploads"."""
    help_text = WEIGHTS_HELP + (f"; {what}" if what else "")
    p.add_argument("--weights", required=required, default=None, metavar="W", type=weights_argument, help=help_text)
    p.add_argument("--preset", default=None, metavar="P", help=preset_help)


def add_device_argument(p: argparse.ArgumentParser, default: str = "auto", what: str = "") -> None:
    """``--device`` in the form :func:`lgrnet.inference.device.resolve_device` parses."""
    prefix = f"{what}: " if what else ""
    p.add_argument("--device", default=default,
                   help=f"{prefix}auto (CUDA when available, else the CPU), cpu, cuda or cuda:N (default: {default})")


def add_precision_argument(p: argparse.ArgumentParser) -> None:
    """``--precision auto|fp32|bf16`` for an inference command's argument parser. Without it a
    run keeps the measured-fastest default: bf16 autocast on CUDA, float32 on a CPU (the CPU
    bfloat16 path is not yet faster enough than float32 end to end to be the default: docs/speed.md)."""
    p.add_argument("--precision", choices=CHOICES, default=None,
                   help="auto: bf16 on CUDA and on CPUs with native bfloat16 (avx512_bf16 / amx_bf16), else fp32; "
                        "bf16 on a CPU without it is an error (exit 2); default: bf16 on CUDA, fp32 on a CPU. "
                        "Recorded in predictions.json; `lgrnet info` shows what auto picks")


def check_output_file(path: str, suffix: str, force: bool) -> None:
    """A command's one-file output: it must end with ``suffix`` and, without ``--force``, not exist
    (nothing a user had is overwritten unasked). Raises :class:`~lgrnet.errors.UserError`."""
    if not path.endswith(suffix):
        raise UserError(f"{path}: output must end with {suffix}")
    if os.path.exists(path) and not force:
        raise UserError(f"{path}: exists; pass --force to overwrite it")
    check_writable_file(path)


def check_output_folder(path: "str | os.PathLike", what: str = "the results") -> None:
    """Refuse, before any work, an output folder (written into, or created) where no file can be
    created: read-only, on a read-only file system, under a file. The message names ``path`` as the
    user gave it (and the folder that refused, when that is a parent). Raises :class:`UserError`."""
    try:
        probe_writable(path)
    except NotADirectoryError as exc:
        raise UserError(f"{path}: cannot write {what} there ({exc.filename} is a file, not a folder)") from None
    except OSError as exc:
        cause = exc.strerror or str(exc)
        if exc.filename and os.path.abspath(exc.filename) != os.path.abspath(path):
            cause += f": {exc.filename}"
        raise UserError(f"{path}: cannot write {what} ({cause})") from None


def check_writable_file(path: "str | os.PathLike", what: str = "") -> None:
    """Refuse, before any work, an output file that cannot be created (or replaced) at ``path``: its
    folder must take a new file (outputs are written beside the target and renamed onto it)."""
    folder = os.path.dirname(os.path.abspath(os.fspath(path)))
    try:
        probe_writable(folder)
    except NotADirectoryError as exc:
        raise UserError(f"{path}: cannot write {what or 'the file'} there ({exc.filename} is a file, not a folder)") from None
    except OSError as exc:
        raise UserError(f"{path}: cannot write {what or 'the file'} ({exc.strerror or exc}: {exc.filename})") from None
