"""The memory budget of a forward pass: how many frames fit in one clip.

:func:`estimate_bytes_per_frame` says what one more frame of a clip costs, :func:`default_memory_budget`
what the machine gives, :func:`plan_window` turns both into a :class:`WindowPlan` (the window the
predictor uses when none is asked for).
"""
from __future__ import annotations

import os
import re
from dataclasses import dataclass
from typing import Optional, Tuple, Union

import torch

from ..errors import UserError
from ..models.lgrnet import LGRNet
from .windows import default_overlap

MIN_AUTO_WINDOW = 4
MAX_DEFAULT_BUDGET = 8 << 30
_MODEL_MARGIN = 1.25


@dataclass
class WindowPlan:
    """How a video is split. window: frames per forward pass (the whole video when it has at most
    that many frames); overlap: frames shared by consecutive windows; auto: window derived from
    the memory budget; bytes_per_frame: the estimate used; budget: the memory budget in bytes."""

    window: int
    overlap: int
    auto: bool
    bytes_per_frame: int
    budget: int


def parse_bytes(text: Union[str, int, float]) -> int:
    """'8G', '8GiB', '8GB', '512M', '1.5g' or a number of bytes -> bytes (units are binary: G = 2**30)."""
    if isinstance(text, (int, float)):
        return int(text)
    m = re.fullmatch(r"\s*([0-9]*\.?[0-9]+)\s*([kKmMgGtT]?)(i?[bB])?\s*", str(text))
    if not m:
        raise UserError(f"memory size {text!r}: expected a number with an optional unit, e.g. 6G or 512M")
    power = {"": 0, "k": 1, "m": 2, "g": 3, "t": 4}[m.group(2).lower()]
    return int(float(m.group(1)) * (1024 ** power))


def _available_ram() -> Optional[int]:
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return None


def default_memory_budget(device: torch.device) -> int:
    """80 % of the free GPU memory on CUDA; half the available RAM, at most 8 GiB, on the CPU."""
    if device.type == "cuda":
        free, _ = torch.cuda.mem_get_info(device)
        return int(free * 0.8)
    avail = _available_ram()
    return int(min(MAX_DEFAULT_BUDGET, avail // 2)) if avail else 4 << 30


def estimate_bytes_per_frame(model: LGRNet, size: Tuple[int, int], frame_size: Tuple[int, int],
                             all_queries: bool = False) -> int:
    """Memory one more frame of a clip costs, in bytes, for inference at model input ``size``
    (h, w) with original frames of ``frame_size`` (H, W).

    The forward pass costs a fixed number of bytes per input pixel and frame (backbone features
    kept for all frames, encoder tokens with their neighbourhood and deformable samples, the FPN
    map, the decoder heads' (Nq, h, w) logits). The formula ``4 * (2 * (layers + 1) * Nq + 24)``
    bytes per pixel is an empirical fit to peak-RSS slopes measured with torch 2.14 on the CPU
    (eval mode, only the last head kept): sunseg_pvt 391 B/px at 352x352 (formula 416), tiny
    228 B/px at 352x352 and 253 at 128x128 (formula 256); 25 % is added as a margin. The
    predictor's own buffers add the original frame (3 B/px of the frame), the model input
    (12 B/px) and the kept logits (4 B/px, x Nq with ``all_queries``). Not counted: the weights
    and a fixed working set (one backbone call, ~0.1 GB for PVTv2-B2 at 352x352).
    """
    h, w = size
    H, W = frame_size
    cfg = model.config.decoder
    heads = cfg.num_layers + 1
    forward_px = 4 * (2 * heads * cfg.num_queries + 24)
    kept_px = 4 * (cfg.num_queries if all_queries else 1) + 12
    return int(_MODEL_MARGIN * forward_px * h * w) + kept_px * h * w + 3 * H * W


def plan_window(model: LGRNet, size: Tuple[int, int], frame_size: Tuple[int, int], window: Optional[int] = None,
                overlap: Optional[int] = None, budget: Optional[int] = None, all_queries: bool = False) -> WindowPlan:
    """The window and overlap for frames of ``frame_size`` (H, W) at model input ``size``:
    ``window`` when given, else the largest clip that fits ``budget`` bytes (None:
    :func:`default_memory_budget` of the model's device); ``overlap`` when given, else
    :func:`~lgrnet.inference.windows.default_overlap`."""
    bpf = estimate_bytes_per_frame(model, size, frame_size, all_queries)
    budget = budget if budget is not None else default_memory_budget(model.device)
    if window is not None:
        auto = False
    else:
        window, auto = int(budget // bpf), True
        if window < MIN_AUTO_WINDOW:
            raise UserError(f"memory budget {budget / 2**20:.0f} MiB fits only {window} frames of {frame_size[1]}x"
                            f"{frame_size[0]} at model size {size[1]}x{size[0]} (~{bpf / 2**20:.0f} MiB a "
                            f"frame); raise the budget, lower the size, or set a window")
    if overlap is None:
        overlap = default_overlap(window, model.config.encoder.num_layers)
    if overlap >= window:
        raise UserError(f"overlap {overlap}: must be less than the window ({window})")
    return WindowPlan(window=window, overlap=overlap, auto=auto, bytes_per_frame=bpf, budget=budget)
