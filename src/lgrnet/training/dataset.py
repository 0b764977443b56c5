"""Training clips from dataset folders, reproducible per position in the sample stream.

Every ``reference_stride``-th annotated frame of every video is a reference frame (the published
SUN-SEG setting takes every 6th frame: 3,292 clips, 823 steps of 4 clips an epoch). A training
run consumes an endless stream of references: epoch e is a permutation of them seeded by
(seed, e), and stream position p holds the clip ``perm_{p // N}[p % N]``. All randomness of a
clip (which frames, the flips and rotation, and the seed of its loss's random points) is drawn
from a generator seeded by (seed, p). So a clip does not depend on the process, worker or batch
that builds it, a run resumed at step s continues exactly, and the global batch of step s is
positions ``[s * B, (s + 1) * B)`` whatever the number of processes.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Dict, Iterator, List, Optional, Sequence, Tuple

import numpy as np
import torch

from ..config import TrainConfig
from ..losses.criterion import ClipTarget
from .clip_sampler import sample_clip
from ..data.datasets import DatasetError, VideoRecord, validate_videos
from ..io.images import read_frame
from .supervision import ELLIPSE_LABEL, load_target, plan_supervision
from .transforms import apply_recipe, augment_clip, draw_params, draw_recipe_params

log = logging.getLogger(__name__)


@dataclass
class ClipBatch:
    """A collated batch: video (b, T, 3, S, S) float in [0, 1]; one target, loss seed and stream
    position per clip."""

    video: torch.Tensor
    targets: List[ClipTarget]
    seeds: List[int]
    positions: List[int]

    def to(self, device) -> "ClipBatch":
        non_blocking = torch.device(device).type == "cuda"
        return ClipBatch(self.video.to(device, non_blocking=non_blocking), [t.to(device) for t in self.targets],
                         self.seeds, self.positions)

    def pin_memory(self) -> "ClipBatch":
        targets = [ClipTarget(t.masks.pin_memory(), t.classes, t.has_ann, t.box_frames, t.box_priors) for t in self.targets]
        return ClipBatch(self.video.pin_memory(), targets, self.seeds, self.positions)


def _seed_int(*parts: int) -> int:
    return int(np.random.SeedSequence([int(p) for p in parts]).generate_state(1, np.uint64)[0] >> 1)


def check_videos(videos: Sequence[VideoRecord], root: str, need_masks: bool = True,
                 allow_boxes: bool = False) -> List[VideoRecord]:
    """Check what training (or validation) needs before step 1; return the usable videos.

    The files are checked by :func:`lgrnet.data.datasets.validate_videos` from their headers
    (pixels are not decoded): unreadable frames or masks, 16-bit, float or alpha frames, masks
    whose size differs from their frame's, frames of different sizes within a video, masks that
    match no frame, and videos without frames are errors, listed together in one
    :class:`DatasetError`. Frames without a mask are fine (they are not reference frames), and
    videos without any mask are skipped with a warning (an error if none is left). Masks are not
    checked for being binary: training binarises them with ``> 0``, as the authors do.
    ``allow_boxes`` (training): a box file annotates a frame as a mask does (box files are read
    and checked: :mod:`lgrnet.data.boxes`).
    """
    if not videos:
        raise DatasetError(f"{root}: no videos found")
    unannotated = [v.name for v in videos
                   if need_masks and len(v) and not v.has_masks and not (allow_boxes and v.has_boxes)]
    usable = [v for v in videos if v.name not in set(unannotated)]
    if usable:
        try:
            validate_videos(usable, require_masks=False, check_masks=False)
        except DatasetError as exc:
            raise DatasetError(f"{root}: {exc}") from None
    if unannotated:
        if not usable:
            raise DatasetError(f"{root}: no video has ground-truth masks (expected GT/<video>/<frame>.png "
                               f"next to Frame/<video>/<frame>" + (", or boxes in Box/<video>/<frame>.json)"
                                                                    if allow_boxes else ")"))
        log.warning("%s: skipping %d video(s) without any mask: %s%s", root, len(unannotated),
                    ", ".join(unannotated[:10]), " ..." if len(unannotated) > 10 else "")
    if need_masks:
        unmasked, total = count_unmasked_frames(usable, allow_boxes)
        if unmasked:
            log.warning("%s: %d of %d frames have no mask (they are context frames of clips, never reference "
                        "frames)", root, unmasked, total)
    return usable


def count_unmasked_frames(videos: Sequence[VideoRecord], allow_boxes: bool = False) -> Tuple[int, int]:
    """(frames without a mask (nor a box file, with ``allow_boxes``), all frames) over ``videos``."""
    unmasked = sum(1 for v in videos for i in range(len(v)) if not (v.is_annotated(i) if allow_boxes else v.masks[i]))
    return unmasked, sum(len(v.masks) for v in videos)


class TrainClipDataset(torch.utils.data.Dataset):
    """Clips for training. Index it with ``(reference_index, stream_position)`` (what
    :class:`StreamSampler` yields); ``len()`` is the number of reference frames.

    Each frame is supervised as ``cfg.supervision`` says (:mod:`.supervision`): by its mask, by its
    box (the clip's target marks those frames in ``box_frames``), by its box filled as a mask, or
    not at all (context). Every annotated frame (mask or box) can be a reference frame."""

    def __init__(self, videos: Sequence[VideoRecord], cfg: TrainConfig, seed: Optional[int] = None,
                 reference_stride: Optional[int] = None):
        self.videos = list(videos)
        self.cfg = cfg
        self.seed = cfg.seed if seed is None else seed
        stride = cfg.reference_stride if reference_stride is None else reference_stride
        if stride < 1:
            raise ValueError(f"reference_stride must be >= 1, got {stride}")
        self.plan = plan_supervision(self.videos, cfg.supervision, self.seed)
        self.references: List[Tuple[int, int]] = []
        for vi, v in enumerate(self.videos):
            annotated = [i for i, t in enumerate(self.plan[vi]) if t is not None]
            self.references += [(vi, i) for i in annotated[::stride]]
        if not self.references:
            raise DatasetError("no annotated frame to build training clips from")

    def __len__(self) -> int:
        return len(self.references)

    def __getitem__(self, key: Tuple[int, int]) -> Dict:
        index, position = key
        vi, ref = self.references[index]
        v = self.videos[vi]
        cfg = self.cfg
        with_prior = cfg.box_loss.ellipse_weight > 0  # box frames carry their ellipses (label maps)
        rng = np.random.default_rng([self.seed, int(position)])
        # As published: redraw a clip in which the object never shows (at most 3 draws in all).
        for attempt in range(3):
            idx = sample_clip(len(v), ref, cfg.clip_len, rng, cfg.num_local, cfg.local_max_gap)
            masks = [load_target(v, i, self.plan[vi][i], with_prior) for i in idx]
            if any(m is not None and m.any() for m in masks):
                break
        frames = [read_frame(v.frames[i]) for i in idx]
        for i, f, m in zip(idx, frames, masks):
            if m is not None and m.shape != f.shape[:2]:
                what = "mask" if self.plan[vi][i].source == "mask" else "box file's frame_size"
                where = v.masks[i] if self.plan[vi][i].source == "mask" else v.box_file(i)
                raise DatasetError(f"{where}: {what} is {m.shape[1]}x{m.shape[0]} but frame {v.frames[i]} "
                                   f"is {f.shape[1]}x{f.shape[0]}")
        is_box = [self.plan[vi][i] is not None and self.plan[vi][i].kind == "box" for i in idx]
        params = draw_params(rng, cfg.hflip, cfg.vflip, cfg.rot90)
        frames_a, masks_a = augment_clip(frames, masks, cfg.image_size, params)
        video = torch.from_numpy(frames_a).permute(0, 3, 1, 2).float().div_(255.0)  # (T, 3, S, S)
        recipe = draw_recipe_params(rng, cfg, cfg.image_size)  # None: the published augmentation only
        if recipe is not None:
            ann_idx = [i for i, m in enumerate(masks_a) if m is not None]
            video, moved = apply_recipe(video, torch.from_numpy(np.stack([masks_a[i] for i in ann_idx])), recipe)
            for k, i in enumerate(ann_idx):
                masks_a[i] = moved[k].numpy()
        has_ann = torch.tensor([m is not None for m in masks_a], dtype=torch.bool)
        # all False for a bool (mask) frame; only built when box frames carry ellipses
        priors = [torch.from_numpy(m == ELLIPSE_LABEL) for m in masks_a if m is not None] if with_prior else []
        masks_a = [None if m is None else m > 0 for m in masks_a]
        ann = [torch.from_numpy(m) for m in masks_a if m is not None]
        stacked = torch.stack(ann).float()[None]  # (1, T', S, S): one object, the lesion
        # box frames: the box loss; a box frame without a box (annotated, no lesion) is an exact empty mask
        box_frames = torch.tensor([b and bool(m.any()) for b, m in zip(is_box, masks_a) if m is not None])
        box_frames = box_frames if bool(box_frames.any()) else None
        box_priors = torch.stack(priors).float()[None] if with_prior and box_frames is not None else None
        if stacked.any():
            target = ClipTarget(stacked, torch.zeros(1, dtype=torch.int64), has_ann, box_frames, box_priors)
        else:  # a clip without the lesion: every query should say "no object"
            target = ClipTarget(stacked[:0], torch.zeros(0, dtype=torch.int64), has_ann)
        return {"video": video, "target": target, "seed": _seed_int(self.seed, position, 1), "position": int(position),
                "name": v.name, "frames": idx}


def collate_clips(items: Sequence[Dict]) -> ClipBatch:
    return ClipBatch(video=torch.stack([it["video"] for it in items]), targets=[it["target"] for it in items],
                     seeds=[it["seed"] for it in items], positions=[it["position"] for it in items])


class StreamSampler(torch.utils.data.Sampler):
    """This process's share of the sample stream, from ``start_step`` to ``total_steps``.

    Yields ``(reference_index, position)``; step s holds positions ``[s*B, (s+1)*B)`` with
    B = ``global_batch``; process r of W takes the r-th block of B / W of them.
    """

    def __init__(self, num_samples: int, global_batch: int, world_size: int = 1, rank: int = 0, seed: int = 0,
                 start_step: int = 0, total_steps: int = 0, shuffle: bool = True):
        if global_batch % world_size:
            raise ValueError(f"batch size {global_batch} is not divisible by the {world_size} processes")
        self.n = num_samples
        self.global_batch = global_batch
        self.per_rank = global_batch // world_size
        self.rank = rank
        self.seed = seed
        self.start_step = start_step
        self.total_steps = total_steps
        self.shuffle = shuffle
        self._perm: Tuple[int, Optional[np.ndarray]] = (-1, None)

    def epoch_permutation(self, epoch: int) -> np.ndarray:
        if self._perm[0] != epoch:
            perm = (np.random.default_rng([self.seed, epoch, 2]).permutation(self.n) if self.shuffle
                    else np.arange(self.n))
            self._perm = (epoch, perm)
        return self._perm[1]

    def index_at(self, position: int) -> int:
        return int(self.epoch_permutation(position // self.n)[position % self.n])

    def __iter__(self) -> Iterator[Tuple[int, int]]:
        for step in range(self.start_step, self.total_steps):
            first = step * self.global_batch + self.rank * self.per_rank
            for pos in range(first, first + self.per_rank):
                yield self.index_at(pos), pos

    def __len__(self) -> int:
        return max(0, self.total_steps - self.start_step) * self.per_rank
