"""Device names from the command line ("auto", "cpu", "cuda", "cuda:N") -> :class:`torch.device`,
in one place for prediction, evaluation, the viewer and training."""
from __future__ import annotations

from typing import Optional, Union

import torch

from ..errors import UserError


def resolve_device(device: Union[str, torch.device, None], local_rank: Optional[int] = None) -> torch.device:
    """"auto" (or None) -> CUDA when available, else CPU; checks that a requested CUDA device exists.

    local_rank: for a training process started by torchrun: a bare "cuda" becomes
    ``cuda:<local_rank % device count>``."""
    name = str(device or "auto")
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    try:
        dev = torch.device(name)
    except RuntimeError:
        raise UserError(f"--device {name}: not a device (auto, cpu, cuda, cuda:N)") from None
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            raise UserError(f"--device {name}: CUDA is not available on this machine (use --device cpu)")
        if dev.index is None and local_rank is not None:
            dev = torch.device("cuda", local_rank % torch.cuda.device_count())
        elif dev.index is not None and dev.index >= torch.cuda.device_count():
            raise UserError(f"--device {name}: this machine has {torch.cuda.device_count()} CUDA device(s)")
    return dev
