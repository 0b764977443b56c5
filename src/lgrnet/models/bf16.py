"""bfloat16 inference on the CPU: the model with bfloat16 weights and activations, float32 islands.

Autocast around a float32 model gains little on a CPU (it casts every weight at every call and
leaves the norms' outputs in float32, so activations go back and forth). Here the weights are cast
once and the activations stay bfloat16 from the backbone's input to the decoder, with float32
kept where the math needs it:

* the selective scan's recurrence, its exp / cumulative terms and its parameters (``A_logs``,
  ``Ds``, ``dt_projs_bias``): :func:`lgrnet.ops.selective_scan.compute_dtype` upcasts;
* softmax statistics (attention: PyTorch's CPU SDPA accumulates in float32; neighbourhood and
  deformable attention weights: softmax in float32);
* norm statistics (PyTorch's CPU LayerNorm / GroupNorm accumulate bfloat16 inputs in float32);
* the deformable attention's sampling locations (float32: a bfloat16 location on a 44-pixel map
  is off by up to 0.17 pixel);
* the decoder's heads (LayerNorm, class, mask embedding, mask logits): their outputs are
  thresholded (masks at 0, attention masks at 0.5), so they run in float32 on float32 copies of
  the mask features;
* the input normalisation (``pixel_mean`` / ``pixel_std``).

A module lists the parameters / buffers / submodules it keeps in float32 in a class attribute
``float32_names`` (names relative to the module); :func:`to_bfloat16` reads them.
"""
from __future__ import annotations

import copy
from typing import Iterator, Tuple

import torch
from torch import nn

from .fuse import fold_batch_norms


def float32_tensors(model: nn.Module) -> Iterator[Tuple[nn.Module, str]]:
    """(module, tensor name) of every parameter / buffer that stays float32."""
    for module in model.modules():
        for name in getattr(module, "float32_names", ()):
            target = getattr(module, name)
            if isinstance(target, nn.Module):
                for sub in target.modules():
                    for pname, _ in list(sub.named_parameters(recurse=False)) + list(sub.named_buffers(recurse=False)):
                        yield sub, pname
            else:
                yield module, name


def to_bfloat16(model: nn.Module) -> nn.Module:
    """Cast ``model`` to bfloat16 in place, except its float32 islands. Returns ``model``.
    Modules with a ``bf16_frames_per_call`` attribute (the backbone) get it as their
    ``eval_frames_per_call``."""
    keep = list(float32_tensors(model))
    model.to(torch.bfloat16)
    for module in model.modules():
        if hasattr(module, "bf16_frames_per_call") and hasattr(module, "eval_frames_per_call"):
            module.eval_frames_per_call = module.bf16_frames_per_call
    for module, name in keep:
        t = getattr(module, name)
        if t is not None and t.is_floating_point():
            t.data = t.data.float()
    return model


def bfloat16_copy(model: nn.Module, fold: bool = False) -> nn.Module:
    """A bfloat16 copy of ``model`` for inference (eval mode, no gradients); ``model`` is untouched.

    ``fold``: fold BatchNorms into the convolutions before them first, in float32
    (:func:`lgrnet.models.fuse.fold_batch_norms`). Off by default: it is faster (the shipped
    EfficientNet-Lite2 model: 1.95x instead of 1.75x float32's speed, docs/speed.md) but the folded
    biases rounded to bfloat16 moved one Test video's Dice by 0.006 (limit 0.005), while the
    unfolded copy stays within 0.001."""
    with torch.no_grad():
        twin = copy.deepcopy(model).eval()
        if fold:
            fold_batch_norms(twin)
    twin.requires_grad_(False)
    return to_bfloat16(twin)


def is_bfloat16(model: nn.Module) -> bool:
    """True for a model made by :func:`to_bfloat16` (its backbone's weights are bfloat16)."""
    return any(p.dtype == torch.bfloat16 for p in model.parameters())
