"""Optimizer and schedule of the published recipe.

Parameter groups follow the authors' ``get_optim_params_group``: every parameter under the
backbone gets ``lr * backbone_lr_mult``; parameters owned directly by a normalisation layer
(BatchNorm, GroupNorm, LayerNorm, InstanceNorm, ...) get ``weight_decay_norm``, those of an
``nn.Embedding`` ``weight_decay_embed``, names containing ``relative_position_bias_table`` or
``absolute_pos_embed`` 0; everything else ``weight_decay``. The rule looks at the owning MODULE
type only, so plain ``nn.Parameter`` tensors keep the full weight decay, as in the published
training: the encoder's ``level_embed`` (an ``nn.Parameter`` in the authors' code too), the
selective scan's ``A_logs`` and ``Ds`` (the authors mark them ``_no_weight_decay``, but their
grouping never reads that flag). The authors make one group per tensor; here tensors with the
same (lr, weight decay) share a group, which AdamW treats identically.

AdamW (default betas and eps), full-model gradient-norm clipping (all parameters together), and
a MultiStepLR stepped every iteration (milestones in iterations). Options of the small-data recipe
(``train.lr_schedule``): "cosine", a linear warm-up over ``warmup_iters`` from ``lr *
warmup_factor`` then a cosine to ``lr * min_lr_ratio`` at ``max_iters`` (:func:`lr_factor`);
"onecycle", torch's ``OneCycleLR`` (cosine warm-up and annealing, same start/peak/end lrs, no
momentum cycling); "multistep" with ``warmup_iters > 0`` adds the linear warm-up. Every group keeps
its ratio to ``lr`` (the backbone's ``backbone_lr_mult``).
"""
from __future__ import annotations

import math
from typing import Dict, List

import torch
from torch import nn

from ..config import TrainConfig

NORM_TYPES = (
    nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d, nn.SyncBatchNorm, nn.GroupNorm,
    nn.InstanceNorm1d, nn.InstanceNorm2d, nn.InstanceNorm3d, nn.LayerNorm, nn.LocalResponseNorm,
)
NO_DECAY_NAMES = ("relative_position_bias_table", "absolute_pos_embed")
BACKBONE_PREFIX = "backbone"


def param_settings(model: nn.Module, cfg: TrainConfig) -> Dict[str, Dict[str, float]]:
    """{parameter name: {"lr", "weight_decay", "backbone"}} for every trainable parameter."""
    out: Dict[str, Dict[str, float]] = {}
    seen = set()
    for module_name, module in model.named_modules():
        for pname, p in module.named_parameters(recurse=False):
            if not p.requires_grad or id(p) in seen:
                continue
            seen.add(id(p))
            full = f"{module_name}.{pname}" if module_name else pname
            backbone = module_name == BACKBONE_PREFIX or module_name.startswith(BACKBONE_PREFIX + ".")
            lr = cfg.lr * (cfg.backbone_lr_mult if backbone else 1.0)
            wd = cfg.weight_decay
            if any(n in pname for n in NO_DECAY_NAMES):
                wd = 0.0
            if isinstance(module, NORM_TYPES):
                wd = cfg.weight_decay_norm
            if isinstance(module, nn.Embedding):
                wd = cfg.weight_decay_embed
            out[full] = {"lr": lr, "weight_decay": wd, "backbone": backbone}
    return out


def param_groups(model: nn.Module, cfg: TrainConfig) -> List[Dict]:
    """Optimizer groups: one per (backbone?, weight decay) with a readable "name"."""
    settings = param_settings(model, cfg)
    params = dict(model.named_parameters())
    groups: Dict[tuple, Dict] = {}
    for name, s in settings.items():
        key = (s["backbone"], s["lr"], s["weight_decay"])
        if key not in groups:
            part = "backbone" if s["backbone"] else "head"
            kind = "decay" if s["weight_decay"] else "no_decay"
            groups[key] = {"name": f"{part}/{kind}", "params": [], "param_names": [], "lr": s["lr"],
                           "weight_decay": s["weight_decay"]}
        groups[key]["params"].append(params[name])
        groups[key]["param_names"].append(name)
    return sorted(groups.values(), key=lambda g: g["name"])


def build_optimizer(model: nn.Module, cfg: TrainConfig) -> torch.optim.AdamW:
    groups = param_groups(model, cfg)
    for g in groups:
        g.pop("param_names")
    return torch.optim.AdamW(groups, lr=cfg.lr, weight_decay=cfg.weight_decay)


SCHEDULES = ("multistep", "cosine", "onecycle")


def lr_factor(step: int, cfg: TrainConfig) -> float:
    """The lr at ``step`` (iterations done) as a fraction of ``cfg.lr``, for "cosine" and for
    "multistep" (with its optional warm-up)."""
    warm = cfg.warmup_iters
    if warm > 0 and step < warm:
        warmup = cfg.warmup_factor + (1.0 - cfg.warmup_factor) * step / warm
    else:
        warmup = 1.0
    if cfg.lr_schedule == "cosine":
        if step < warm:
            return warmup
        t = min(1.0, (step - warm) / max(1, cfg.max_iters - warm))
        return cfg.min_lr_ratio + (1.0 - cfg.min_lr_ratio) * 0.5 * (1.0 + math.cos(math.pi * t))
    if cfg.lr_schedule == "multistep":
        return warmup * cfg.lr_gamma ** sum(step >= m for m in cfg.lr_milestones)
    raise ValueError(f"train.lr_schedule must be one of {', '.join(SCHEDULES)}, got {cfg.lr_schedule!r}")


def build_scheduler(optimizer: torch.optim.Optimizer, cfg: TrainConfig) -> torch.optim.lr_scheduler.LRScheduler:
    """The schedule ``train.lr_schedule`` names, stepped once per iteration."""
    if cfg.lr_schedule == "multistep" and cfg.warmup_iters <= 0:  # the published schedule
        return torch.optim.lr_scheduler.MultiStepLR(optimizer, milestones=list(cfg.lr_milestones), gamma=cfg.lr_gamma)
    if cfg.lr_schedule == "onecycle":
        return torch.optim.lr_scheduler.OneCycleLR(
            optimizer, max_lr=[g["lr"] for g in optimizer.param_groups], total_steps=cfg.max_iters + 1,
            pct_start=max(1, cfg.warmup_iters) / cfg.max_iters, anneal_strategy="cos", cycle_momentum=False,
            div_factor=1.0 / cfg.warmup_factor, final_div_factor=cfg.warmup_factor / cfg.min_lr_ratio)
    lr_factor(0, cfg)  # the schedule's name is checked now
    return torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: lr_factor(step, cfg))


def clip_full_model_grad_norm(model: nn.Module, max_norm: float) -> torch.Tensor:
    """Clip the norm of ALL gradients together (the authors' "full_model" clipping); returns the
    norm before clipping. ``max_norm <= 0`` only measures."""
    params = [p for p in model.parameters() if p.grad is not None]
    if max_norm > 0:
        return torch.nn.utils.clip_grad_norm_(params, max_norm)
    return torch.nn.utils.clip_grad_norm_(params, float("inf"))
