"""Training with the published recipe on CPU, one GPU, or several through ``torchrun``.

>>> from lgrnet.config import get_preset
>>> from lgrnet.training.trainer import TrainOptions, train
>>> summary = train(get_preset("tiny"), TrainOptions(data=["data/CVC-ClinicDB-612/Train"],
...                 val=["data/CVC-ClinicDB-612/Valid"], out_dir="runs/tiny"))

One step (docs/training.md, "The recipe"): a global batch of ``batch_size`` clips (split evenly over
the processes) is resized to a random square size from ``multiscale_sizes`` (the same size on
every process), the model runs (bf16/fp16 autocast on CUDA when ``amp``), the set-matching loss
supervises every decoder head (:class:`lgrnet.losses.SetCriterion`), gradients are averaged over
processes (DDP), clipped on their full-model norm, AdamW steps, and the multi-step LR schedule
advances. The run folder holds ``config.json`` (the resolved config, written before step 1),
``run.json`` (data folders and the command), ``last.pt`` (the checkpoint to resume from, every
``checkpoint_every`` steps and at the end), ``log.jsonl``, ``tensorboard/``,
``best.safetensors`` (best validation Dice) and ``model.safetensors`` (the latest weights); both
``.safetensors`` files load with ``lgrnet predict --weights``.
"""
from __future__ import annotations

import datetime
import json
import logging
import math
import os
import random
import signal
import sys
import time
from contextlib import nullcontext
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional, Sequence

import numpy as np
import torch
import torch.distributed as dist
import torch.nn.functional as F

from ..config import LGRNetConfig, config_from_dict, to_dict
from ..data.datasets import DatasetError, VideoRecord, find_videos
from .dataset import ClipBatch, StreamSampler, TrainClipDataset, check_videos, collate_clips
from ..errors import InputError, UserError
from ..losses.box import foreground_probability
from ..losses.box_criterion import BoxSupervisedCriterion, has_box_frames
from ..files import write_text_atomic
from ..models.lgrnet import LGRNet
from ..precision import resolve_precision
from ..inference.device import resolve_device
from ..runs.shard import Shard, shard_from_env
from .optim import build_optimizer, build_scheduler, clip_full_model_grad_norm
from .log import RunLogger
from .state import LAST, capture_rng, diff_dicts, load_checkpoint, restore_rng, save_checkpoint
from .validation import validate

log = logging.getLogger("lgrnet.train")


@dataclass
class TrainOptions:
    """Where the data is and how to run (the recipe itself is in :class:`lgrnet.config.TrainConfig`).

    data / val: dataset split folders (``<split>/Frame/<video>/...`` + ``GT/``), several allowed;
    out_dir: the run folder; resume: continue from ``<out_dir>/last.pt``;
    backbone_weights: where the backbone starts, when given: it takes the place of the config's
    ``train.backbone_weights`` (auto, imagenet, none, a file or a hub id: :mod:`lgrnet.models.imagenet`;
    read at step 0 only: a resumed run keeps its weights);
    device: "auto" (CUDA if available), "cpu", "cuda" or "cuda:N";
    precision: "auto" (CUDA: autocast as ``train.amp`` says; CPU: float32), "fp32" (no autocast),
    "bf16" (bfloat16 autocast on CUDA or on a CPU with native bfloat16; float32 master weights
    and optimizer state in every case);
    progress: progress bar (None: only on a terminal); time_limit_s: stop (checkpoint, validate)
    after this much wall time, 0 = no limit; max_steps: stop after this step (0 = ``max_iters``)
    without changing the schedule; init_weights: a trained model to start from (fine-tuning, see
    :mod:`lgrnet.training.finetune`; its architecture must be ``cfg.model``).
    """

    data: Sequence[str] = ()
    val: Sequence[str] = ()
    out_dir: str = "runs/train"
    resume: bool = False
    backbone_weights: Optional[str] = None
    device: str = "auto"
    precision: str = "auto"
    tensorboard: bool = True
    progress: Optional[bool] = None
    time_limit_s: float = 0.0
    max_steps: int = 0
    command: List[str] = field(default_factory=list)
    init_weights: Optional[str] = None  # start from this model (strict load; ignored when resuming)


# ----------------------------------------------------------------------------- helpers


def check_train_config(cfg: LGRNetConfig) -> None:
    """Errors a user can fix, raised before anything is built."""
    t = cfg.train
    problems = []
    for s in [t.image_size, *t.multiscale_sizes]:
        if s <= 0 or s % 32:
            problems.append(f"sizes must be positive multiples of 32, got {s} (train.image_size / train.multiscale_sizes)")
    if t.clip_len < 1:
        problems.append(f"train.clip_len must be >= 1, got {t.clip_len}")
    if t.batch_size < 1:
        problems.append(f"train.batch_size must be >= 1, got {t.batch_size}")
    if t.max_iters < 1:
        problems.append(f"train.max_iters must be >= 1, got {t.max_iters}")
    if t.checkpoint_every < 0 or t.eval_every < 0 or t.log_every < 1:
        problems.append("train.checkpoint_every and train.eval_every must be >= 0, train.log_every >= 1")
    if t.lr_schedule not in ("multistep", "cosine", "onecycle"):
        problems.append(f"train.lr_schedule must be multistep, cosine or onecycle, got {t.lr_schedule!r}")
    if not 0 <= t.ema_decay < 1:
        problems.append(f"train.ema_decay must be in [0, 1), got {t.ema_decay}")
    if t.warmup_iters < 0 or not 0 < t.warmup_factor <= 1 or not 0 < t.min_lr_ratio <= 1:
        problems.append("train.warmup_iters must be >= 0, train.warmup_factor and train.min_lr_ratio in (0, 1]")
    if min(t.aug_brightness, t.aug_contrast, t.aug_saturation, t.aug_hue, t.aug_blur_prob, t.aug_noise_std,
           t.aug_scale, t.aug_rotate, t.aug_translate) < 0 or max(t.aug_brightness, t.aug_contrast, t.aug_saturation,
                                                                  t.aug_scale) >= 1:
        problems.append("train.aug_* must be >= 0 (brightness, contrast, saturation and scale below 1)")
    if t.loss.num_points < 1:
        problems.append(f"train.loss.num_points must be >= 1, got {t.loss.num_points}")
    try:
        from .supervision import parse_supervision

        parse_supervision(t.supervision)
    except UserError as exc:
        problems.append(str(exc))
    b = t.box_loss
    if b.stride < 1 or b.pairwise_dilation < 1 or b.color_theta <= 0 or min(b.projection_weight, b.pairwise_weight,
                                                                             b.match_weight, b.ellipse_weight,
                                                                             b.teacher_weight) < 0:
        problems.append("train.box_loss: stride and pairwise_dilation must be >= 1, color_theta > 0, the weights >= 0")
    if b.teacher_weight > 0 and t.ema_decay <= 0:
        problems.append("train.box_loss.teacher_weight > 0 needs the weight EMA (train.ema_decay > 0): it is the teacher")
    if not (0 < b.teacher_threshold < 1 and 0 <= b.teacher_min_fit <= 1 and b.teacher_start >= 0):
        problems.append("train.box_loss: teacher_threshold must be in (0, 1), teacher_min_fit in [0, 1], "
                        "teacher_start >= 0")
    if problems:
        raise UserError("; ".join(problems))


def init_distributed(shard: Shard, device: torch.device) -> None:
    """Join the process group of a run with several processes (``shard`` from
    :func:`lgrnet.runs.shard.shard_from_env`): NCCL on CUDA, else gloo. torchrun provides the
    rendezvous address; the tasks of an ``srun`` step need ``MASTER_ADDR`` and ``MASTER_PORT``."""
    if shard.world_size == 1 or dist.is_initialized():
        return
    if not (os.environ.get("MASTER_ADDR") and os.environ.get("MASTER_PORT")):
        raise UserError(f"{shard.describe()}: training over several processes needs MASTER_ADDR and MASTER_PORT "
                        f"(the first task's host and a free port); start each node with torchrun, or export them")
    # Rank 0 validates while the others wait: allow a long validation before timing out.
    dist.init_process_group("nccl" if device.type == "cuda" else "gloo", rank=shard.rank,
                            world_size=shard.world_size, timeout=datetime.timedelta(hours=2))


def pick_device(name: str, local_rank: int) -> torch.device:
    """The training device (:func:`lgrnet.inference.device.resolve_device`); a CUDA device becomes current."""
    dev = resolve_device(name, local_rank=local_rank)
    if dev.type == "cuda":
        torch.cuda.set_device(dev)
    return dev


def training_autocast_dtype(precision: str, device: torch.device, amp: bool) -> Optional[torch.dtype]:
    """The autocast dtype of a training run (None: float32). The weights, their gradients and the
    optimizer state stay float32 whatever it is (autocast casts inside the forward only).

    "auto": on CUDA, bfloat16 (or float16 where bfloat16 is missing) when ``train.amp``; on a CPU,
    float32 (bfloat16 training on a CPU is asked for with "bf16"). "fp32": none. "bf16": bfloat16
    on CUDA, or on a CPU with native bfloat16 (else a clear error, exit status 2)."""
    if precision == "auto":
        if device.type == "cuda" and amp:
            return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
        return None
    chosen = resolve_precision(precision, device)
    return torch.bfloat16 if chosen.is_bf16 else None


def load_split_videos(roots: Sequence[str], what: str, allow_boxes: bool = False) -> List[VideoRecord]:
    """The videos of dataset splits, checked (:func:`.dataset.check_videos`); ``allow_boxes``
    (training): frames annotated with box files count as annotated."""
    videos: List[VideoRecord] = []
    for root in roots:
        found = find_videos(root, require_masks=True)
        found = check_videos(found, str(root), need_masks=True, allow_boxes=allow_boxes)
        videos += found
    if not videos:
        raise DatasetError(f"no {what} videos given")
    return videos


def multiscale_size(seed: int, step: int, sizes: Sequence[int]) -> int:
    """The step's input size: one draw per step from a generator seeded by (seed, step), so every
    process and a resumed run pick the same."""
    return int(sizes[int(np.random.default_rng([seed, step, 3]).integers(0, len(sizes)))])


def consistency_size(size: int, factor: float) -> int:
    """The scale-consistency view's input size: ``factor`` x ``size`` rounded to a multiple of 32
    (at least 64)."""
    return max(64, int(round(size * factor / 32)) * 32)


def resize_clips(video: torch.Tensor, size: int) -> torch.Tensor:
    """(b, T, 3, H, W) -> (b, T, 3, size, size), bilinear (the same tensor when already that size)."""
    b, t, c, h, w = video.shape
    if (size, size) == (h, w):
        return video
    return F.interpolate(video.flatten(0, 1), size=(size, size), mode="bilinear", align_corners=False).view(
        b, t, c, size, size)


def build_ema(model: torch.nn.Module, decay: float) -> Optional[torch.optim.swa_utils.AveragedModel]:
    """The weight EMA (``decay > 0``), torch's ``AveragedModel``: after each optimizer step every
    parameter and buffer becomes ``decay * ema + (1 - decay) * current`` (the first update copies
    the weights). None when ``decay`` is 0."""
    if decay <= 0:
        return None
    if decay >= 1:
        raise UserError(f"train.ema_decay must be in [0, 1), got {decay}")
    from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn

    ema = AveragedModel(_unwrap(model), multi_avg_fn=get_ema_multi_avg_fn(decay), use_buffers=True)
    return ema.eval()


def _unwrap(model):
    return model.module if hasattr(model, "module") else model


class _StopRequest:
    """SIGTERM / first SIGINT -> finish the step, checkpoint, exit; a second SIGINT interrupts.
    ``signum``: the signal that asked (0: none)."""

    def __init__(self):
        self.signum = 0
        self._old = {}

    @property
    def requested(self) -> bool:
        return self.signum != 0

    def __enter__(self):
        if sys.platform != "win32":
            try:
                for sig in (signal.SIGTERM, signal.SIGINT):
                    self._old[sig] = signal.signal(sig, self._handle)
            except ValueError:  # not the main thread
                self._old = {}
        return self

    def _handle(self, signum, frame):
        if self.requested and signum == signal.SIGINT:
            raise KeyboardInterrupt
        self.signum = self.signum or signum

    def __exit__(self, *exc):
        for sig, old in self._old.items():
            signal.signal(sig, old)
        return False


# ----------------------------------------------------------------------------- trainer


class Trainer:
    """Builds everything a run needs; :meth:`fit` trains. Split into :meth:`forward_backward` and
    :meth:`optimizer_step` so that a step's gradients can be inspected."""

    def __init__(self, cfg: LGRNetConfig, opts: TrainOptions):
        self.opts = opts
        self.shard = shard_from_env()  # torchrun or srun: this process's rank (one process without them)
        self.world, self.rank, self.local_rank = self.shard.world_size, self.shard.rank, self.shard.local_rank
        self.out_dir = os.path.abspath(opts.out_dir)
        resume_state = None
        if opts.resume and not os.path.isfile(os.path.join(self.out_dir, LAST)):
            log.warning("%s: no checkpoint yet; starting the run from step 0", self.out_dir)
        elif opts.resume:
            resume_state = load_checkpoint(os.path.join(self.out_dir, LAST))
            saved = json.loads(resume_state["config"])
            changed = diff_dicts(saved["model"], to_dict(cfg.model))
            if changed:
                raise UserError(f"{self.out_dir}/{LAST}: the model config differs from the checkpoint's: "
                                + ", ".join(f"model.{k}: {a!r} -> {b!r}" for k, (a, b) in list(changed.items())[:8]))
            for k, (a, b) in diff_dicts(saved["train"], to_dict(cfg.train)).items():
                log.warning("resuming with train.%s changed: %r -> %r", k, a, b)
        elif os.path.isfile(os.path.join(self.out_dir, LAST)):
            raise UserError(f"{self.out_dir}: already holds a run (last.pt); pass --resume to continue it "
                            f"or choose another --out")
        check_train_config(cfg)
        self.cfg = cfg
        tc = cfg.train
        if tc.batch_size % self.world:
            raise UserError(f"train.batch_size={tc.batch_size} is not divisible by the {self.world} processes")
        self.device = pick_device(opts.device, self.local_rank)
        self.amp_dtype = training_autocast_dtype(opts.precision, self.device, tc.amp)
        init_distributed(self.shard, self.device)
        self.is_main = self.rank == 0

        if not opts.data:
            raise UserError("no training data: pass --data ROOT (a split folder with Frame/ and GT/)")
        self.train_videos = load_split_videos(opts.data, "training", allow_boxes=True)
        self.val_videos = load_split_videos(opts.val, "validation") if opts.val else []
        self.dataset = TrainClipDataset(self.train_videos, tc)
        from .supervision import count_kinds

        kinds = count_kinds(self.dataset.plan)
        self.box_supervised = kinds["box"] > 0  # the log gains the box terms
        if self.rank == 0 and (kinds["box"] or kinds["fill"] or kinds["ellipse"] or tc.supervision != "masks"):
            log.info("supervision %s: %d frame(s) with a mask, %d with a box (box loss), %d with a filled box, "
                     "%d with a box's ellipse, %d context only", tc.supervision, kinds["mask"], kinds["box"],
                     kinds["fill"], kinds["ellipse"], kinds["context"])

        # Same initial weights on every process, then per-process streams (as the authors do).
        random.seed(tc.seed)
        np.random.seed(tc.seed)
        torch.manual_seed(tc.seed)
        self.model = LGRNet(cfg.model)
        # what the backbone started from: set up now, or (resuming) as the run recorded it
        self.backbone_init = self._init_backbone() if resume_state is None else self._recorded_backbone_init()
        if opts.init_weights and resume_state is None:
            from .finetune import load_init_model

            init = load_init_model(opts.init_weights, cfg.model.preset or None)
            try:
                self.model.load_state_dict(init.state_dict(), strict=True)  # same keys and shapes, checked on load
            except RuntimeError as exc:
                raise InputError(f"{opts.init_weights}: does not fit the run's model config ({str(exc).splitlines()[0]})") from None
            del init
        self.model.to(self.device).train()
        # the published loss; frames supervised by boxes (train.supervision, Box/ files) add the box terms
        self.criterion = BoxSupervisedCriterion(tc.loss, tc.box_loss, cfg.model.decoder.num_classes).to(self.device)
        self.optimizer = build_optimizer(self.model, tc)
        self.scheduler = build_scheduler(self.optimizer, tc)
        self.ema = build_ema(self.model, tc.ema_decay)
        cuda = self.device.type == "cuda"
        self.scaler = torch.amp.GradScaler("cuda", enabled=self.amp_dtype == torch.float16)
        self.step = 0
        self._last_logged: Optional[int] = None
        self.best: Optional[Dict[str, float]] = None
        self.validated_threshold: Optional[tuple] = None  # (threshold, where derived) of the last validation
        random.seed(tc.seed + self.rank)
        np.random.seed(tc.seed + self.rank)
        torch.manual_seed(tc.seed + self.rank)
        if resume_state is not None:
            self._load_state(resume_state)
        if self.world > 1:
            self.model = torch.nn.parallel.DistributedDataParallel(
                self.model, device_ids=[self.device.index] if cuda else None, broadcast_buffers=False)
        self.total_steps = tc.max_iters if not opts.max_steps else min(tc.max_iters, opts.max_steps)
        self.loader = self._make_loader(self.step)
        if self.is_main and self.step < self.total_steps:  # a finished run's folder is left as it is
            os.makedirs(self.out_dir, exist_ok=True)
            self._write_run_files(resumed=resume_state is not None)

    # ------------------------------------------------------------------ setup

    def _init_backbone(self) -> Dict[str, Any]:
        """Load the backbone's starting weights (``--backbone-weights``, else ``train.backbone_weights``)
        and say in one line which they are. Returns the record that run.json and the saved weights keep."""
        from ..models.imagenet import how_to_get, normalisation_mismatch, resolve_backbone_weights

        name = self.cfg.model.backbone.name
        if self.opts.init_weights:  # the whole model comes from there (loaded next)
            return {"kind": "init", "source": f"the model {self.opts.init_weights}",
                    "path": os.path.abspath(self.opts.init_weights)}
        spec = self.opts.backbone_weights or self.cfg.train.backbone_weights
        try:
            found = resolve_backbone_weights(spec, name)
            if found is not None:
                self.model.backbone.load_imagenet(found.path)
        except (ValueError, FileNotFoundError) as exc:
            raise InputError(str(exc)) from None
        if found is None:
            why = "--backbone-weights none" if spec == "none" else f"none on this machine; {how_to_get(name)}"
            if self.is_main:
                log.info("backbone %s starts from random weights, no ImageNet weights (%s)", name, why)
            return {"kind": "scratch", "source": "random weights", "requested": spec}
        if self.is_main:
            log.info("backbone %s starts from ImageNet weights: %s (%s)", name, found.source, found.path)
            if normalisation_mismatch(found, self.cfg.model.pixel_mean, self.cfg.model.pixel_std):
                log.warning("the backbone's weights were trained on inputs normalised with mean %s, std %s; this "
                            "config normalises with mean %s, std %s (set model.pixel_mean / model.pixel_std to match)",
                            list(found.pixel_mean), list(found.pixel_std), list(self.cfg.model.pixel_mean),
                            list(self.cfg.model.pixel_std))
        return {**found.record(), "requested": spec}

    def _recorded_backbone_init(self) -> Optional[Dict[str, Any]]:
        """A resumed run's backbone record, from its run.json (None when it has none)."""
        try:
            with open(os.path.join(self.out_dir, "run.json"), encoding="utf-8") as f:
                return json.load(f).get("backbone_init")
        except (OSError, ValueError, AttributeError):
            return None

    def _weights_metadata(self, val_dice: Optional[float] = None):
        """What the saved .safetensors record besides the config (:func:`.finetune.run_weight_metadata`):
        input size, step, validation Dice, the backbone's start, the init weights, the threshold."""
        from .finetune import run_weight_metadata

        return run_weight_metadata(self.cfg.train.image_size, self.step, val_dice, self.backbone_init,
                                   self.opts.init_weights, self.validated_threshold)

    def _make_loader(self, start_step: int) -> torch.utils.data.DataLoader:
        tc = self.cfg.train
        sampler = StreamSampler(len(self.dataset), tc.batch_size, self.world, self.rank, tc.seed,
                                start_step=start_step, total_steps=self.total_steps)
        return torch.utils.data.DataLoader(
            self.dataset, batch_size=tc.batch_size // self.world, sampler=sampler, num_workers=tc.num_workers,
            collate_fn=collate_clips, pin_memory=self.device.type == "cuda",
            # Its own generator: creating the iterator must not draw from the global torch RNG.
            generator=torch.Generator().manual_seed(tc.seed),
            persistent_workers=False)

    def _write_run_files(self, resumed: bool) -> None:
        cfg_text = json.dumps(to_dict(self.cfg), indent=2)
        write_text_atomic(os.path.join(self.out_dir, "config.json"), cfg_text + "\n")
        run_path = os.path.join(self.out_dir, "run.json")
        run = {}
        if resumed and os.path.isfile(run_path):
            with open(run_path, encoding="utf-8") as f:
                run = json.load(f)
        run.setdefault("started", time.strftime("%Y-%m-%d %H:%M:%S"))
        run.update({"data": [os.path.abspath(p) for p in self.opts.data],
                    "val": [os.path.abspath(p) for p in self.opts.val],
                    "backbone_weights": self.opts.backbone_weights or self.cfg.train.backbone_weights,
                    "backbone_init": self.backbone_init, "init_weights": self.opts.init_weights,
                    "world_size": self.world,
                    "device": str(self.device),
                    "precision": "fp32" if self.amp_dtype is None else str(self.amp_dtype).removeprefix("torch."),
                    "precision_requested": self.opts.precision,
                    "num_train_videos": len(self.train_videos),
                    "num_train_clips_per_epoch": len(self.dataset), "num_val_videos": len(self.val_videos),
                    "torch": torch.__version__})
        run.setdefault("commands", []).append({"command": list(self.opts.command) or sys.argv,
                                               "start_step": self.step,
                                               "time": time.strftime("%Y-%m-%d %H:%M:%S")})
        text = json.dumps(run, indent=2)
        write_text_atomic(run_path, text + "\n")

    # ------------------------------------------------------------------ state

    def state_dict(self) -> Dict[str, Any]:
        """The checkpoint (rank 0's view; every process's RNG state gathered)."""
        rng = capture_rng()
        if self.world > 1:
            gathered: List[Any] = [None] * self.world
            dist.all_gather_object(gathered, rng)
            rngs = {r: s for r, s in enumerate(gathered)}
        else:
            rngs = {0: rng}
        return {
            "step": self.step,
            "data_position": self.step * self.cfg.train.batch_size,
            "model": _unwrap(self.model).state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(),
            "scaler": self.scaler.state_dict(),
            **({"ema": self.ema.state_dict()} if self.ema is not None else {}),
            "rng": rngs,
            "world_size": self.world,
            "best": self.best,
            "config": json.dumps(to_dict(self.cfg)),
        }

    def _load_state(self, state: Dict[str, Any]) -> None:
        _unwrap(self.model).load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        # The schedule's milestones and gamma come from the current config (they may be changed).
        sched = dict(state["scheduler"])
        sched.pop("milestones", None)
        sched.pop("gamma", None)
        self.scheduler.load_state_dict(sched)
        if state.get("scaler"):
            self.scaler.load_state_dict(state["scaler"])
        if self.ema is not None and "ema" in state:
            self.ema.load_state_dict(state["ema"])
        elif self.ema is not None:
            log.warning("the checkpoint has no weight EMA; starting it from the current weights")
        self.step = int(state["step"])
        self.best = state.get("best")
        rngs = state.get("rng", {})
        if self.rank in rngs:
            restore_rng(rngs[self.rank])
        else:
            log.warning("checkpoint has no RNG state for process %d (it ran with %s processes); "
                        "continuing with fresh seeds", self.rank, state.get("world_size"))

    def save(self) -> None:
        state = self.state_dict()  # collective when distributed
        if self.is_main:
            save_checkpoint(os.path.join(self.out_dir, LAST), state)
        if self.world > 1:
            dist.barrier()

    # ------------------------------------------------------------------ one step

    def forward_backward(self, batch: ClipBatch, step: int) -> Dict[str, float]:
        """Forward, loss and backward of one step (gradients accumulate in ``.grad``)."""
        tc = self.cfg.train
        batch = batch.to(self.device)
        video = batch.video
        size = multiscale_size(tc.seed, step, tc.multiscale_sizes) if tc.multiscale_sizes else video.shape[-2]
        amp = torch.autocast(self.device.type, dtype=self.amp_dtype) if self.amp_dtype else nullcontext()
        self.criterion.set_step(step)
        bc = tc.box_loss
        teacher_maps = None
        if (bc.teacher_weight > 0 and step >= bc.teacher_start and self.ema is not None
                and any(has_box_frames(tg) for tg in batch.targets)):
            teacher_maps = self.teacher_maps(video, size)

        def run(at: int):
            """The model and the loss on the clips at ``at`` x ``at`` pixels: (output, losses)."""
            clips = resize_clips(video, at)
            with amp:
                out = self.model(clips)
            gens = [torch.Generator(device=self.device).manual_seed(s) for s in batch.seeds]
            return out, self.criterion(out.aux, batch.targets, gens, images=clips, teacher_maps=teacher_maps)

        out, losses = run(size)
        loss = losses["loss"]
        sc = torch.zeros(())
        if bc.scale_consistency_weight > 0 and any(has_box_frames(tg) for tg in batch.targets):
            # WeakPolyp's second view: the same clips smaller; both views' losses averaged
            out_b, losses_b = run(consistency_size(size, bc.scale_consistency_factor))
            sc = self.criterion.scale_consistency(out, out_b, batch.targets)
            loss = 0.5 * (loss + losses_b["loss"]) + bc.scale_consistency_weight * sc
            losses = {k: 0.5 * (v + losses_b[k]) if k.startswith("loss") else v for k, v in losses.items()}
        if not torch.isfinite(loss):
            raise FloatingPointError(f"loss is {loss.item()} at step {step + 1} (clips at stream positions "
                                     f"{batch.positions}); lower train.lr or check the data")
        self.scaler.scale(loss).backward()
        return {"loss": float(loss.detach()), "loss_bce": float(losses["loss_bce"]),
                "loss_dice": float(losses["loss_dice"]), "loss_class": float(losses["loss_class"]),
                "loss_box_proj": float(losses["loss_box_proj"]), "loss_box_pair": float(losses["loss_box_pair"]),
                "loss_box_sc": float(sc.detach()), "loss_box_ellipse": float(losses["loss_box_ellipse"]),
                "loss_box_teacher": float(losses["loss_box_teacher"]),
                "num_objects": float(losses["num_objects"]), "size": size}

    @torch.no_grad()
    def teacher_maps(self, video: torch.Tensor, size: int) -> torch.Tensor:
        """(b, T, 3, H, W) clips -> (b, T, size, size): the weight EMA's lesion maps of them at the
        step's size (the box loss's mean teacher, train.box_loss.teacher_weight)."""
        clips = resize_clips(video, size)
        amp = torch.autocast(self.device.type, dtype=self.amp_dtype) if self.amp_dtype else nullcontext()
        with amp:
            out = self.ema.module(clips)
        return foreground_probability(out.mask_logits, out.class_logits)

    def optimizer_step(self) -> float:
        """Clip (full-model norm), AdamW step, schedule step. Returns the gradient norm before clipping."""
        self.scaler.unscale_(self.optimizer)
        norm = clip_full_model_grad_norm(self.model, self.cfg.train.clip_grad_norm)
        self.scaler.step(self.optimizer)
        self.scaler.update()
        self.optimizer.zero_grad(set_to_none=True)
        self.scheduler.step()
        if self.ema is not None:
            self.ema.update_parameters(_unwrap(self.model))
        return float(norm)

    def shipped_model(self) -> torch.nn.Module:
        """What validation scores and the run's .safetensors hold: the weight EMA when
        ``train.ema_decay > 0``, else the trained weights."""
        return self.ema.module if self.ema is not None else _unwrap(self.model)

    # ------------------------------------------------------------------ loop

    def _mean_over_processes(self, values: Dict[str, float]) -> Dict[str, float]:
        if self.world == 1:
            return values
        keys = sorted(values)
        t = torch.tensor([values[k] for k in keys], dtype=torch.float64, device=self.device)
        dist.all_reduce(t)
        return {k: float(v) / self.world for k, v in zip(keys, t.tolist())}

    def _max_over_processes(self, value: int) -> int:
        if self.world == 1:
            return value
        t = torch.tensor([float(value)], device=self.device)
        dist.all_reduce(t, op=dist.ReduceOp.MAX)
        return int(t.item())

    def run_validation(self, logger: RunLogger, elapsed: float) -> Optional[float]:
        """Validate on rank 0 (others wait); keep the best weights. Returns the Dice."""
        dice = None
        if self.is_main and self.val_videos:
            res = validate(self.shipped_model(), self.val_videos, self.cfg.train.image_size, self.cfg.train.val_clip_len)
            dice = res["dice"]
            if res.get("flag_threshold") is not None:
                self.validated_threshold = (res["flag_threshold"], f"flag_threshold (Youden's J) on the validation videos "
                                            f"({', '.join(self.opts.val)}) at step {self.step}")
            logger.record({"event": "val", "step": self.step, "val_dice": dice, "val_frames": res["frames"],
                           "elapsed": round(elapsed, 3)})
            if self.best is None or (not math.isnan(dice) and dice > self.best["val_dice"]):
                self.best = {"val_dice": dice, "step": self.step}
                self.shipped_model().save_pretrained(os.path.join(self.out_dir, "best.safetensors"),
                                                    metadata=self._weights_metadata(val_dice=dice))
        if self.world > 1:
            box = [self.best]
            dist.broadcast_object_list(box, src=0)
            self.best = box[0]
        return dice

    def fit(self) -> Dict[str, Any]:
        """Train from the current step to ``total_steps``. The summary's ``stopped``: None (the last
        step was reached), "time limit", "signal" (``signal``: its number, e.g. SIGINT; any
        process's, so every process reports it) or "finished" (a resumed run that had already
        reached its last step: nothing trained)."""
        tc = self.cfg.train
        start = self.step
        if start >= self.total_steps:
            return {"out_dir": self.out_dir, "step": self.step, "total_steps": self.total_steps, "stopped": "finished",
                    "signal": 0, "best": self.best, "seconds": 0.0, "last_validated": -1}
        logger = RunLogger(self.out_dir, self.total_steps, start, enabled=self.is_main,
                           tensorboard=self.opts.tensorboard, progress=self.opts.progress)
        if self.is_main:
            logger.message(f"training {self.cfg.model.preset or 'custom'} on {len(self.train_videos)} videos "
                           f"({len(self.dataset)} clips an epoch), {self.world} process(es) on {self.device}, "
                           f"steps {start + 1}..{self.total_steps}, run folder {self.out_dir}")
        t_start = time.time()
        t_last = t_start
        stopped = None
        signum = 0
        last_saved = last_validated = -1
        try:
            with _StopRequest() as stop:
                it = iter(self.loader)
                for step in range(start, self.total_steps):
                    batch = next(it)
                    stats = self.forward_backward(batch, step)
                    grad_norm = self.optimizer_step()
                    self.step = step + 1
                    now = time.time()
                    if self.step % tc.log_every == 0 or self.step == self.total_steps:
                        keys = ["loss", "loss_bce", "loss_dice", "loss_class"] + (
                            ["loss_box_proj", "loss_box_pair"] if self.box_supervised else []) + (
                            ["loss_box_sc"] if self.box_supervised and tc.box_loss.scale_consistency_weight > 0 else []) + (
                            ["loss_box_ellipse"] if self.box_supervised and tc.box_loss.ellipse_weight > 0 else []) + (
                            ["loss_box_teacher"] if self.box_supervised and tc.box_loss.teacher_weight > 0 else [])
                        mean = self._mean_over_processes({k: stats[k] for k in keys})
                        lrs = {g.get("name", str(i)): g["lr"] for i, g in enumerate(self.optimizer.param_groups)}
                        rec = {"event": "train", "step": self.step, **{k: round(v, 7) for k, v in mean.items()},
                               "lr": lrs.get("head/decay", next(iter(lrs.values()))),
                               "lr_backbone": lrs.get("backbone/decay", lrs.get("backbone/no_decay")),
                               "grad_norm": round(grad_norm, 6), "size": stats["size"],
                               "sec_per_step": round((now - t_last) / max(1, self.step - (self._last_logged or start)), 4),
                               "elapsed": round(now - t_start, 3)}
                        self._last_logged = self.step
                        t_last = now
                        logger.record(rec)
                        logger.advance(self.step, rec["loss"], rec["lr"])
                    else:
                        logger.advance(self.step, stats["loss"], self.optimizer.param_groups[0]["lr"])
                    out_of_time = bool(self.opts.time_limit_s) and (now - t_start) > self.opts.time_limit_s
                    # one all-reduce: a signal to any process (SIGINT 2, SIGTERM 15) stops them all, as does the time
                    code = self._max_over_processes(2 * stop.signum + int(out_of_time))
                    signum, out_of_time = code // 2, bool(code % 2)
                    halt = code > 0
                    done = self.step == self.total_steps
                    due = (tc.eval_every and self.step % tc.eval_every == 0) or done or (halt and not signum)
                    if self.val_videos and due and not signum:
                        self.run_validation(logger, time.time() - t_start)
                        last_validated = self.step
                    if (tc.checkpoint_every and self.step % tc.checkpoint_every == 0) or done or halt:
                        self.save()
                        last_saved = self.step
                    if halt:
                        stopped = "signal" if signum else "time limit"
                        logger.message(f"stopping after step {self.step} ({stopped}); resume with --resume")
                        break
                if self.step > start and last_saved != self.step:
                    self.save()
            if self.is_main and self.step > start:
                self.shipped_model().save_pretrained(os.path.join(self.out_dir, "model.safetensors"),
                                                    metadata=self._weights_metadata())
        finally:
            logger.close()
        return {"out_dir": self.out_dir, "step": self.step, "total_steps": self.total_steps, "stopped": stopped,
                "signal": signum, "best": self.best, "seconds": time.time() - t_start, "last_validated": last_validated}


def train(cfg: LGRNetConfig, opts: TrainOptions) -> Dict[str, Any]:
    """Build a :class:`Trainer` and run it; the summary dict says where it stopped."""
    trainer = Trainer(cfg, opts)
    try:
        return trainer.fit()
    finally:
        if trainer.world > 1 and dist.is_initialized():
            dist.destroy_process_group()


def resolve_config(preset: Optional[str], overrides: Sequence[str], out_dir: Optional[str] = None,
                   resume: bool = False) -> LGRNetConfig:
    """The config of a run: a preset (or, when resuming, the run folder's config.json) with
    ``key=value`` overrides (``train.lr=1e-4``, ``model.encoder.local.dilation=2``)."""
    from ..config import get_preset, override

    if resume and out_dir and os.path.isfile(os.path.join(out_dir, "config.json")):
        with open(os.path.join(out_dir, "config.json"), encoding="utf-8") as f:
            cfg = config_from_dict(json.load(f))
        if preset and cfg.model.preset and preset != cfg.model.preset:
            raise UserError(f"{out_dir}: the run used preset {cfg.model.preset!r}, not {preset!r}")
    elif preset:
        try:
            cfg = get_preset(preset)
        except ValueError as exc:
            raise UserError(str(exc)) from None
    else:
        raise UserError("pass --preset NAME (or --resume with an --out folder that holds a run)")
    try:
        return override(cfg, list(overrides))
    except ValueError as exc:
        raise UserError(f"{exc} (keys look like train.lr, train.loss.num_points, model.encoder.local.dilation)") from None
