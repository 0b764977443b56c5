"""ONNX export of LGRNet for a fixed clip length and frame size.

>>> export_onnx(model, "lgrnet.onnx", frames=6, size=352)
>>> session = onnxruntime.InferenceSession("lgrnet.onnx")
>>> mask_logits, class_logits = session.run(None, {"video": video})   # video (1, 6, 3, 352, 352)

The graph takes ``video`` (1, T, 3, S, S) float32 RGB in [0, 1] (the ImageNet normalisation is
inside) and returns ``mask_logits`` (1, T, Nq, S, S) and ``class_logits`` (1, Nq, 2), the
last decoder head as :meth:`LGRNet.forward` returns it. T and S are fixed: the Hilbert scan order,
the clip-wide GroupNorm and the neighbourhood windows are built for them (export once per
shape, as TensorRT engines are built anyway).

Exporter: ``torch.onnx.export(..., dynamo=True)`` (torch.export, then onnxscript's translation
and optimiser). The TorchScript exporter stops at ``aten::addcdiv`` and in-place boolean ops that
it has no symbolic for; the dynamo exporter handles the whole model unchanged. Under export the op
dispatcher (:mod:`lgrnet.ops.dispatch`) chooses the reference implementations: plain PyTorch
(grid_sample for deformable attention, unrolled scan steps), which the exporter supports; the
CPU cache blocking (:mod:`lgrnet.models.blocking`) is off, so each part is one call.
"""
from __future__ import annotations

import contextlib
import copy
import os
import time
from dataclasses import dataclass
from typing import Dict, Optional, Tuple

import torch
from torch import nn

from ..files import atomic_write
from ..models.blocking import blocking

INPUT_NAME = "video"
OUTPUT_NAMES = ("mask_logits", "class_logits")
DEFAULT_OPSET = 18


class ExportableLGRNet(nn.Module):
    """LGRNet with tensor outputs: video (1, T, 3, S, S) -> (mask_logits, class_logits)."""

    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model

    def forward(self, video: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
        out = self.model(video, return_aux=False)
        return out.mask_logits, out.class_logits


@dataclass
class ExportReport:
    """What :func:`export_onnx` did: ``path``, ``seconds`` to export, ``max_abs_diff`` between
    onnxruntime and PyTorch on one random clip per output (None without ``check``)."""

    path: str
    frames: int
    size: int
    seconds: float
    max_abs_diff: Optional[Dict[str, float]] = None


def check_shape(frames: int, size: int) -> None:
    if frames < 1:
        raise ValueError(f"--frames {frames}: a clip has at least one frame")
    if size <= 0 or size % 32:
        raise ValueError(f"--size {size}: must be a positive multiple of 32 (e.g. 352)")


def export_onnx(model: nn.Module, path: str, frames: int, size: int, opset: int = DEFAULT_OPSET,
                check: bool = True, batched_backbone: bool = True) -> ExportReport:
    """Export ``model`` for clips of ``frames`` frames of ``size`` x ``size`` to ``path`` (written
    atomically). ``check``: run the file in onnxruntime on a random clip and compare with PyTorch.

    batched_backbone: run all frames through the backbone in one call (on a CPU the eager model
    calls it once per frame, as the published wrapper does, for bit-identical float32; batched, the
    backbone's matrix products round differently, ~1e-6 relative). One call gives a smaller graph
    and lets the runtime batch the frames.
    """
    check_shape(frames, size)
    eager = ExportableLGRNet(model).eval()  # the comparison: the model as the caller runs it
    model = copy.deepcopy(model).float().cpu().eval()
    if batched_backbone and hasattr(model, "backbone"):
        model.backbone.eval_frames_per_call = 0
    wrapper = ExportableLGRNet(model).eval()
    video = torch.rand(1, frames, 3, size, size, generator=torch.Generator().manual_seed(0))
    t0 = time.perf_counter()
    # one call over all frames and rows: the CPU cache blocking of lgrnet.models.blocking would
    # become dozens of slice-and-copy nodes in the graph (the runtime does its own tiling).
    # optimize=False: onnxscript's rewriter matches its patterns node by node over the whole graph;
    # on sunseg_pvt it ran for over 20 minutes without finishing. onnxruntime optimises the graph
    # itself when it loads it: on `tiny` (T=4, 128) the unoptimised file exported in 24 s instead of
    # 39 s and ran as fast (0.074 vs 0.080 s per clip) with the same outputs.
    with torch.no_grad(), _quiet(), blocking(frames=0, rows=0):
        program = torch.onnx.export(wrapper, (video,), dynamo=True, opset_version=opset, input_names=[INPUT_NAME],
                                    output_names=list(OUTPUT_NAMES), optimize=False, verbose=False)
    _add_metadata(program, model, frames, size)
    atomic_write(path, lambda tmp: program.save(tmp))
    report = ExportReport(path=os.path.abspath(path), frames=frames, size=size, seconds=time.perf_counter() - t0)
    if check:
        with torch.no_grad():
            expected = eager(video.to(next(eager.parameters()).device))
        got = run_onnx(path, video.numpy())
        report.max_abs_diff = {name: float((torch.from_numpy(g) - e.float().cpu()).abs().max())
                               for name, g, e in zip(OUTPUT_NAMES, got, expected)}
    return report


def run_onnx(path: str, video, threads: Optional[int] = None):
    """Run an exported file in onnxruntime on the CPU: video (1, T, 3, S, S) float32 numpy ->
    [mask_logits, class_logits] numpy."""
    return onnx_session(path, threads).run(list(OUTPUT_NAMES), {INPUT_NAME: video})


def onnx_session(path: str, threads: Optional[int] = None):
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.log_severity_level = 3  # errors only: its constant folding warns about every CastLike it leaves
    if threads:
        opts.intra_op_num_threads = threads
    return ort.InferenceSession(path, sess_options=opts, providers=["CPUExecutionProvider"])


def _add_metadata(program, model: nn.Module, frames: int, size: int) -> None:
    from ..version import __version__

    props = getattr(getattr(program, "model", None), "metadata_props", None)
    if props is None:
        return
    cfg = getattr(model, "config", None)
    props.update({"lgrnet_version": __version__, "preset": getattr(cfg, "preset", "") or "custom",
                  "frames": str(frames), "size": str(size),
                  "input": f"{INPUT_NAME}: float32 (1, {frames}, 3, {size}, {size}) RGB in [0, 1]",
                  "outputs": "mask_logits (1, T, Nq, S, S); class_logits (1, Nq, 2), last logit = no object"})


@contextlib.contextmanager
def _quiet():
    """The exporter prints progress lines and warns about every constant it folds; keep them out
    of the command line's output (errors still raise)."""
    import io
    import logging
    import warnings

    sink = io.StringIO()
    loggers = [logging.getLogger(n) for n in ("torch.onnx", "onnxscript", "onnx_ir")]
    levels = [lg.level for lg in loggers]
    for lg in loggers:
        lg.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings(), contextlib.redirect_stdout(sink):
            warnings.simplefilter("ignore")
            yield
    finally:
        for lg, level in zip(loggers, levels):
            lg.setLevel(level)
