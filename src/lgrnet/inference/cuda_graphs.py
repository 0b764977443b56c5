"""The network's forward pass replayed as a CUDA graph, for clips of one fixed shape.

On a GPU, short clips are bound by kernel launches rather than arithmetic: an H100 ran
``sunseg_pvt`` at 129 frames/s for 6-frame clips but 621 frames/s for 300-frame clips
(docs/speed.md). Windowed prediction runs many clips of the same shape, so the predictor can record
the kernels of one forward once (a CUDA graph) and replay them with a single launch per window.

What makes the forward capturable (tested on the CPU with fake CUDA tensors,
tests/test_capture_safety.py): no host-device synchronisation (no ``.item()``, no boolean-mask
indexing) and no host-to-device copies (shape-only constants live on the device,
:mod:`lgrnet.ops.constants`).

:class:`GraphedClipForward` guards against what a test on the CPU cannot see: it checks its first
replay against the eager forward of the same clip and raises :class:`GraphMismatch` when they
differ, so that the caller can fall back to eager execution.
"""
from __future__ import annotations

from typing import Callable, Tuple

import torch

from ..models.lgrnet import LGRNetOutput

#: Relative tolerance of the replay check: bf16 autocast, float32.
REPLAY_RTOL = {torch.bfloat16: 2e-2, torch.float32: 1e-4}


class GraphMismatch(RuntimeError):
    """The replayed graph's output differs from the eager forward of the same clip."""


def _forward(model: Callable[[torch.Tensor], LGRNetOutput], x: torch.Tensor, autocast: bool) -> Tuple[torch.Tensor, torch.Tensor]:
    # cache_enabled=False: autocast's cast cache must not outlive a capture (torch.cuda.graph docs)
    with torch.autocast(device_type="cuda", dtype=torch.bfloat16, enabled=autocast, cache_enabled=False):
        out = model(x)
    return out.mask_logits, out.class_logits


def _max_abs(a: torch.Tensor) -> float:
    return float(a.abs().max()) if a.numel() else 0.0


class GraphedClipForward:
    """``model(x)`` for clips x of one shape (1, T, 3, h, w), captured as a CUDA graph (model: an
    :class:`LGRNet` in eval mode, or its ``torch.compile``'d version).

    Construction runs ``warmup`` eager forwards of ``example`` on a side stream (lazy initialisation,
    the optional kernels' one-off checks and the device constants happen there, outside the
    capture), captures one forward, replays it on ``example`` and compares it with the eager
    result (:data:`REPLAY_RTOL`); :class:`GraphMismatch` when they differ. The graph keeps its
    own memory pool (about one eager forward's peak) until it is deleted.

    Calling returns an :class:`LGRNetOutput` whose tensors are the graph's static outputs: read
    (or copy) them before the next call, which overwrites them.
    """

    def __init__(self, model: Callable[[torch.Tensor], LGRNetOutput], example: torch.Tensor, autocast: bool = True,
                 warmup: int = 2):
        if example.device.type != "cuda":
            raise ValueError(f"CUDA graphs need a CUDA tensor, got one on {example.device}")
        self.shape = tuple(example.shape)
        self.autocast = autocast
        self.model = model  # the graph reads the parameters' memory: keep them alive
        with torch.inference_mode():
            self.static_input = example.detach().clone()
        side = torch.cuda.Stream(device=example.device)
        side.wait_stream(torch.cuda.current_stream(example.device))
        with torch.inference_mode(), torch.cuda.stream(side):
            for _ in range(max(1, warmup)):
                eager = _forward(model, self.static_input, autocast)
        torch.cuda.current_stream(example.device).wait_stream(side)

        self.graph = torch.cuda.CUDAGraph()
        with torch.inference_mode(), torch.cuda.graph(self.graph, stream=side):
            self._static_output = _forward(model, self.static_input, autocast)
        self.graph.replay()
        self._check(eager)
        del eager

    def _check(self, eager: Tuple[torch.Tensor, torch.Tensor]) -> None:
        rtol = REPLAY_RTOL[torch.bfloat16 if self.autocast else torch.float32]
        for name, ref, got in zip(("mask logits", "class logits"), eager, self._static_output):
            scale = max(1.0, _max_abs(ref.float()))
            diff = _max_abs(got.float() - ref.float())
            if not diff <= rtol * scale:  # also catches NaN
                raise GraphMismatch(f"CUDA graph replay differs from the eager forward: {name} max |difference| "
                                    f"{diff:.3g} > {rtol:g} x {scale:.3g}")

    def __call__(self, x: torch.Tensor) -> LGRNetOutput:
        """x: (1, T, 3, h, w) of the captured shape, on any device -> the static outputs."""
        if tuple(x.shape) != self.shape:
            raise ValueError(f"clip of shape {tuple(x.shape)}; this graph was captured for {self.shape}")
        with torch.inference_mode():  # the static input is an inference tensor
            self.static_input.copy_(x)
        self.graph.replay()
        mask_logits, class_logits = self._static_output
        return LGRNetOutput(mask_logits=mask_logits, class_logits=class_logits)
