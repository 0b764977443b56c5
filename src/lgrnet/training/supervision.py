"""What supervises each training frame: its mask, its box, or nothing (``train.supervision``).

Each frame gets a :class:`FrameTarget`: ``kind`` "mask" (the published loss on its mask), "box"
(the box loss of :mod:`lgrnet.losses.box_criterion` on its filled box), "fill" (its filled box
used as the mask: the naive baseline) or "ellipse" (the ellipse inscribed in each box used as the
mask, :func:`lgrnet.data.boxes.box_to_ellipse_mask`), read from ``source`` "mask" (the GT mask file) or
"box_file" (the Box/ file, :mod:`lgrnet.data.boxes`); frames with neither are context only.

``train.supervision``:

* ``masks`` (default): the mask where a frame has one, else its box file (box loss);
* ``boxes``: every annotated frame's box: its box file, else the boxes of its mask (one per
  8-connected component, :func:`lgrnet.data.boxes.mask_to_box`); nothing else of the mask is used;
* ``fill_boxes``: the same boxes, filled and used as masks;
* ``fill_ellipses``: the ellipses inscribed in the same boxes, used as masks (the published loss);
* ``mixed:F``: a fraction F (0 < F <= 1) of the frames with masks keep them, chosen by ``train.seed``
  (the same frames for every run with that seed); the others get the boxes of their masks (box
  loss); ``mixed:F:fill_boxes`` / ``mixed:F:fill_ellipses``: the others' boxes filled / their
  ellipses, as masks.

A frame whose boxes are empty (annotated, no lesion) is an exact empty mask, whatever the kind
(the training dataset supervises it as a mask frame).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import List, Optional, Sequence, Tuple

import numpy as np

from ..data.boxes import box_to_ellipse_mask, box_to_mask, mask_to_box, read_box_annotation
from ..data.datasets import TRAIN_MASK_THRESHOLD, VideoRecord
from ..errors import UserError
from ..io.images import read_mask

SUPERVISION_FORMS = ("masks, boxes, fill_boxes, fill_ellipses or mixed:F[:REST] (0 < F <= 1; REST boxes, "
                     "fill_boxes or fill_ellipses)")
#: What a frame supervised by its boxes gets, per mode: the box loss, the filled box, the ellipse.
BOX_KIND = {"boxes": "box", "fill_boxes": "fill", "fill_ellipses": "ellipse"}


@dataclass(frozen=True)
class FrameTarget:
    """How one frame is supervised: ``kind`` "mask" | "box" | "fill" | "ellipse"; ``source`` "mask" |
    "box_file"."""

    kind: str
    source: str


def parse_supervision(text: str) -> Tuple[str, float, str]:
    """``train.supervision`` -> (mode, mask fraction, the kind of the frames supervised by boxes):
    ("masks", 1, "box"), ("boxes", 0, "box"), ("fill_boxes", 0, "fill"), ("fill_ellipses", 0,
    "ellipse"), ("mixed", F, "box" | "fill" | "ellipse"). Raises :class:`UserError` for anything else."""
    if text == "masks":
        return "masks", 1.0, "box"
    if text in BOX_KIND:
        return text, 0.0, BOX_KIND[text]
    if text.startswith("mixed:"):
        frac_text, sep, rest = text[len("mixed:"):].partition(":")
        rest = rest if sep else "boxes"
        try:
            frac = float(frac_text)
        except ValueError:
            frac = -1.0
        if 0 < frac <= 1 and rest in BOX_KIND:
            return "mixed", frac, BOX_KIND[rest]
    raise UserError(f"train.supervision={text!r}: expected {SUPERVISION_FORMS}")


def plan_supervision(videos: Sequence[VideoRecord], supervision: str, seed: int) -> List[List[Optional[FrameTarget]]]:
    """One :class:`FrameTarget` (or None: context only) per frame of each video."""
    mode, frac, box_kind = parse_supervision(supervision)
    keep_mask = None
    if mode == "mixed":
        with_mask = [(vi, i) for vi, v in enumerate(videos) for i, m in enumerate(v.masks) if m is not None]
        k = int(round(frac * len(with_mask)))
        k = max(k, 1) if with_mask else 0
        chosen = np.random.default_rng([int(seed), 33]).choice(len(with_mask), size=k, replace=False)
        keep_mask = {with_mask[j] for j in chosen.tolist()}
    plan: List[List[Optional[FrameTarget]]] = []
    for vi, v in enumerate(videos):
        row: List[Optional[FrameTarget]] = []
        for i, m in enumerate(v.masks):
            box = v.box_file(i)
            if m is None and box is None:
                row.append(None)
            elif mode == "masks":
                row.append(FrameTarget("mask", "mask") if m is not None else FrameTarget("box", "box_file"))
            elif mode == "mixed" and m is not None and (vi, i) in keep_mask:
                row.append(FrameTarget("mask", "mask"))
            else:
                row.append(FrameTarget(box_kind, "box_file" if box is not None else "mask"))
        plan.append(row)
    return plan


def count_kinds(plan: Sequence[Sequence[Optional[FrameTarget]]]) -> dict:
    """{"mask": n, "box": n, "fill": n, "ellipse": n, "context": n} over a plan."""
    out = {"mask": 0, "box": 0, "fill": 0, "ellipse": 0, "context": 0}
    for row in plan:
        for t in row:
            out["context" if t is None else t.kind] += 1
    return out


#: Labels of a box frame's target when it carries its ellipse prior (``load_target(with_prior=True)``).
BOX_LABEL, ELLIPSE_LABEL = 1, 2


def load_target(video: VideoRecord, index: int, target: Optional[FrameTarget],
                with_prior: bool = False) -> Optional[np.ndarray]:
    """Frame ``index``'s supervision as a bool (H, W) mask (the filled boxes for "box" / "fill", their
    inscribed ellipses for "ellipse"), or None. ``with_prior``: a "box" frame's target is a uint8
    label map instead, :data:`BOX_LABEL` in the boxes and :data:`ELLIPSE_LABEL` inside their
    inscribed ellipses (the box loss's shape prior), so that both go through augmentation together."""
    if target is None:
        return None
    if target.source == "box_file":
        boxes, size = read_box_annotation(video.box_file(index))
    else:
        mask = read_mask(video.masks[index], TRAIN_MASK_THRESHOLD)
        if target.kind == "mask":
            return mask
        boxes, size = mask_to_box(mask), mask.shape
    if target.kind == "ellipse":
        return box_to_ellipse_mask(boxes, size)
    filled = box_to_mask(boxes, size)
    if not (with_prior and target.kind == "box"):
        return filled
    labels = filled.astype(np.uint8) * BOX_LABEL
    labels[box_to_ellipse_mask(boxes, size)] = ELLIPSE_LABEL  # the ellipse lies inside its box
    return labels
