"""One clip of model inputs through the network, eagerly, ``torch.compile``'d or replayed as a CUDA
graph, in the run's precision: :class:`ClipRunner` returns a :class:`ClipOutput`.

The predictor calls it once per window; ``repeated=True`` says more clips of this shape follow,
which is when compiling (once per shape) or capturing a CUDA graph pays off. A whole-clip video
runs eagerly: one forward gains nothing, and each video length would compile again.
"""
from __future__ import annotations

import collections
import time
import warnings
from dataclasses import dataclass
from typing import TYPE_CHECKING, Callable, Dict, Optional, Sequence, Tuple, Union

import numpy as np
import torch

from ..errors import UserError
from ..models.bf16 import bfloat16_copy
from ..models.lgrnet import LGRNet
from ..precision import Precision, resolve_precision
from .clip import forward_clip
from .postprocess import choose_query

if TYPE_CHECKING:
    from .cuda_graphs import GraphedClipForward

MAX_GRAPHS = 2  # CUDA graphs kept per runner (each holds about one forward's peak memory)
# Test-time augmentation: the flips of a clip's (h, w) axes (identity, horizontal, vertical, both).
# The four form a group, so the averaged prediction is exactly flip-equivariant.
TTA_FLIPS: Tuple[Tuple[int, ...], ...] = ((), (-1,), (-2,), (-2, -1))


@dataclass
class ClipOutput:
    """What the predictor keeps of one clip's forward pass, on the CPU.

    query: the chosen query (highest foreground class probability); class_score: its foreground
    probability; logits: (T, h, w) float32, its mask logits at the model's input size;
    all_logits: (T, Nq, h, w) float32, every query's, and all_class_scores: (Nq,), only when the
    runner keeps all queries; graphed: a CUDA graph ran the clip; view_logits: (V, T, h, w)
    float32, the chosen query's flipped-back logits of each test-time-augmentation view (only
    with ``tta`` and the runner's ``keep_views``; ``logits`` is their mean).
    """

    query: int
    class_score: float
    logits: torch.Tensor
    all_logits: Optional[torch.Tensor] = None
    all_class_scores: Optional[np.ndarray] = None
    graphed: bool = False
    view_logits: Optional[torch.Tensor] = None


class ClipRunner:
    """Run clips (T, 3, h, w) through ``model`` (in eval mode, on its device).

    precision: "auto", "fp32" or "bf16" (:func:`lgrnet.precision.resolve_precision` on the model's
    device): bf16 is autocast on CUDA and a bfloat16 copy of the model on a CPU
    (:mod:`lgrnet.models.bf16`; ``model`` itself is untouched); None (the default):
    bf16 on CUDA, fp32 on a CPU; all_queries: keep every query's logits;
    cuda_graphs: replay a CUDA graph for repeated shapes (:mod:`lgrnet.inference.cuda_graphs`; at most
    :data:`MAX_GRAPHS` kept; a graph whose first replay differs from the eager forward is dropped
    with a warning and that shape runs eagerly); compile: ``torch.compile(model, dynamic=False)``
    for repeated shapes (combines with ``cuda_graphs``); tta: test-time augmentation by flips
    (:meth:`_run_tta`, 4 forward passes a clip).
    """

    def __init__(self, model: LGRNet, precision: Optional[str] = None, all_queries: bool = False,
                 cuda_graphs: bool = False, compile: bool = False, tta: bool = False):
        if cuda_graphs and model.device.type != "cuda":
            raise UserError(f"CUDA graphs need the model on a CUDA device; it is on {model.device}")
        self.model = model
        if precision is None:
            precision = "bf16" if model.device.type == "cuda" else "fp32"
        self.precision: Precision = resolve_precision(precision, model.device)
        # derived, not a setting: bf16 on CUDA runs as autocast (on a CPU, as a bfloat16 model copy)
        self.autocast = self.precision.is_bf16 and model.device.type == "cuda"
        self._bf16_model: Optional[LGRNet] = None
        self.all_queries = all_queries
        self.cuda_graphs = cuda_graphs
        self.compile = compile
        self.tta = tta
        self.keep_views = False  # with tta: keep each view's chosen-query logits (ClipOutput.view_logits)
        self.compiled: Optional[Callable] = None
        # clip shape "TxHxW" -> seconds of its first compiled call (the compile, or a warm cache's load)
        self.compile_seconds: Dict[str, float] = {}
        self.compile_cache: Optional[str] = None  # Inductor's folder, and whether it was warm, at the first compile
        self.graphs: "collections.OrderedDict[Tuple[int, ...], GraphedClipForward]" = collections.OrderedDict()
        self.graph_errors: Dict[Tuple[int, ...], str] = {}

    @property
    def dtype(self) -> str:
        """The precision clips run in, as recorded in predictions.json."""
        if self.autocast and self.model.device.type == "cuda":
            return "bfloat16 (autocast)"
        return "bfloat16" if self._cpu_bf16 else "float32"

    @property
    def _cpu_bf16(self) -> bool:
        return self.precision.is_bf16 and self.model.device.type != "cuda"

    @property
    def run_model(self) -> LGRNet:
        """The model clips go through: ``model``, or its bfloat16 copy for CPU bf16 (made once)."""
        if not self._cpu_bf16:
            return self.model
        if self._bf16_model is None:
            self._bf16_model = bfloat16_copy(self.model)
        return self._bf16_model

    @torch.inference_mode()
    def __call__(self, clip: Union[torch.Tensor, Sequence[torch.Tensor]], repeated: bool = False) -> ClipOutput:
        """clip: (T, 3, h, w) model inputs in [0, 1] (a tensor or T tensors (3, h, w))."""
        x = (clip if isinstance(clip, torch.Tensor) else torch.stack(list(clip)))[None]
        if self.tta:
            return self._run_tta(x, repeated)
        out, graph = self._forward(x, repeated)
        q = choose_query(out)
        class_probs = out.class_probs[0, :, 0].float().cpu()
        result = ClipOutput(query=q, class_score=float(class_probs[q]), logits=out.mask_logits[0, :, q].float().cpu(),
                            graphed=graph is not None)
        if self.all_queries:
            result.all_logits = out.mask_logits[0].float().cpu()
            result.all_class_scores = class_probs.numpy()
        return result

    def _forward(self, x: torch.Tensor, repeated: bool):
        """One forward of x (1, T, 3, h, w) -> (LGRNetOutput, the CUDA graph that ran it or None)."""
        graph = self._graph_for(x) if repeated and self.cuda_graphs else None
        if graph is not None:
            return graph(x), graph
        if not (repeated and self.compile):
            return forward_clip(self.run_model, x, autocast=self.autocast), None
        key = "x".join(str(d) for d in (x.shape[1], *x.shape[-2:]))
        first = key not in self.compile_seconds
        t0 = time.perf_counter()
        out = forward_clip(self.run_model, x, autocast=self.autocast, module=self._compiled_model())
        if first:
            self.compile_seconds[key] = round(time.perf_counter() - t0, 2)
        return out, None

    def _run_tta(self, x: torch.Tensor, repeated: bool) -> ClipOutput:
        """Test-time augmentation (as nnU-Net mirrors): run the clip under each flip of
        :data:`TTA_FLIPS`, flip every query's mask logits back, and average per query index: the
        class probabilities (the chosen query is the argmax of the mean, so a query is a learned
        slot shared by all views) and the mask logits. ``view_logits`` keeps each view's
        flipped-back logits of the chosen query when ``keep_views`` is set (their agreement is a
        quality signal). Memory: one running sum of every query's logits, as ``all_queries``."""
        probs, views = [], []
        total: Optional[torch.Tensor] = None
        graphed = True
        for dims in TTA_FLIPS:
            out, graph = self._forward(x.flip(dims) if dims else x, repeated)
            graphed = graphed and graph is not None
            lg = out.mask_logits[0].float().cpu()  # (T, Nq, h, w)
            lg = lg.flip(dims) if dims else lg
            total = lg if total is None else total.add_(lg)  # a running sum: one view's logits kept
            if self.keep_views:
                views.append(lg.clone())
            probs.append(out.class_probs[0, :, 0].float().cpu())
        class_probs = torch.stack(probs).mean(0)  # (Nq,)
        q = int(class_probs.argmax())
        mean = total.div_(len(TTA_FLIPS))
        result = ClipOutput(query=q, class_score=float(class_probs[q]), logits=mean[:, q].contiguous(),
                            graphed=graphed)
        if views:
            result.view_logits = torch.stack([v[:, q] for v in views])
        if self.all_queries:
            result.all_logits = mean
            result.all_class_scores = class_probs.numpy()
        return result

    def _compiled_model(self) -> Callable:
        """``torch.compile(model, dynamic=False)``, made on first use (compiled per clip shape)."""
        if self.compiled is None:
            from .compile_cache import is_warm, use_inductor_cache

            folder = use_inductor_cache()
            self.compile_cache = f"{folder} ({'warm' if is_warm(folder) else 'empty'})"
            self.compiled = _quiet_compiled(torch.compile(self.run_model, dynamic=False))
        return self.compiled

    def _graph_for(self, x: torch.Tensor) -> Optional["GraphedClipForward"]:
        """The CUDA graph for clips of x's shape (captured on first use, at most MAX_GRAPHS kept);
        None if capturing it failed (warned once per shape)."""
        from . import cuda_graphs

        key = tuple(x.shape)
        if key in self.graph_errors:
            return None
        graph = self.graphs.get(key)
        if graph is not None:
            self.graphs.move_to_end(key)
            return graph
        while len(self.graphs) >= MAX_GRAPHS:
            self.graphs.popitem(last=False)
        try:
            module = self._compiled_model() if self.compile else self.model
            graph = cuda_graphs.GraphedClipForward(module, x.to(self.model.device), autocast=self.autocast)
        except (cuda_graphs.GraphMismatch, RuntimeError) as exc:  # RuntimeError: capture failed, out of memory
            self.graph_errors[key] = f"{type(exc).__name__}: {exc}"
            torch.cuda.empty_cache()
            warnings.warn(f"lgrnet: no CUDA graph for clips of {key[1]} frames at {key[-1]}x{key[-2]} "
                          f"({self.graph_errors[key]}); running them eagerly")
            return None
        self.graphs[key] = graph
        return graph


def _quiet_compiled(compiled: Callable) -> Callable:
    """``compiled`` without Dynamo's warning about ``functools.lru_cache``-wrapped functions: ours
    (scan orders, window indices) are pure functions of Python ints, traced to constants."""

    def call(x):
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message="Dynamo detected a call to a `functools.lru_cache`")
            return compiled(x)

    return call
