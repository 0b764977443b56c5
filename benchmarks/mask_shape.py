"""How predicted masks differ in shape from the ground truth: the area ratio and how much of the
ground-truth box's corners (the box minus the lesion) a prediction fills. A box-trained model that
fills its boxes scores high on both (docs/training.md, "Training from boxes").

usage: python -m benchmarks.mask_shape GT_DIR PRED_DIR [PRED_DIR ...]
       python -m benchmarks.mask_shape GT_DIR --box-shapes

GT_DIR holds <video>/<frame>.png masks (a split's GT/ folder), each PRED_DIR the same names (an
``lgrnet evaluate --out`` folder's masks/). Frames with an empty ground truth are left out. Prints,
per PRED_DIR: frames, median and mean area ratio (predicted / true pixels), the mean fraction of the
box corners filled, and the mean per-frame Dice (a check against the evaluation's own tables).
``--box-shapes``: what a mask drawn from each frame's true boxes alone would score, the mean
per-frame Dice against the mask of the filled boxes and of their inscribed ellipses (one box per
8-connected component, as training from boxes derives them).
"""
from __future__ import annotations

import sys
from pathlib import Path
from typing import Dict, Iterator, List, Tuple

import numpy as np
from PIL import Image


def _mask(path: Path) -> np.ndarray:
    return np.asarray(Image.open(path).convert("L")) > 127


def _lesion_masks(gt_dir: Path) -> Iterator[Tuple[Path, np.ndarray]]:
    """(path, mask) of every <video>/<frame>.png under ``gt_dir`` that shows a lesion."""
    for gt_path in sorted(gt_dir.glob("*/*.png")):
        gt = _mask(gt_path)
        if gt.any():
            yield gt_path, gt


def shape_stats(gt_dir: Path, pred_dir: Path) -> Dict[str, float]:
    ratios: List[float] = []
    corners: List[float] = []
    dices: List[float] = []
    for gt_path, gt in _lesion_masks(gt_dir):
        pred = _mask(pred_dir / gt_path.parent.name / gt_path.name)
        if pred.shape != gt.shape:
            raise SystemExit(f"{pred_dir / gt_path.parent.name / gt_path.name}: size {pred.shape} != {gt.shape}")
        ys, xs = np.nonzero(gt)
        box = np.zeros_like(gt)
        box[ys.min():ys.max() + 1, xs.min():xs.max() + 1] = True
        corner = box & ~gt
        ratios.append(pred.sum() / gt.sum())
        corners.append((pred & corner).sum() / max(1, corner.sum()))
        dices.append(2 * (pred & gt).sum() / (pred.sum() + gt.sum()))
    return {"frames": len(ratios), "area_ratio_median": float(np.median(ratios)),
            "area_ratio_mean": float(np.mean(ratios)), "corner_fill": float(np.mean(corners)),
            "dice": float(np.mean(dices))}


def box_shape_dice(gt_dir: Path) -> Dict[str, float]:
    """Mean per-frame Dice of the filled true boxes and of their inscribed ellipses against the masks."""
    from lgrnet.data.boxes import box_to_ellipse_mask, box_to_mask, mask_to_box

    box_dice: List[float] = []
    ellipse_dice: List[float] = []
    for _, gt in _lesion_masks(gt_dir):
        boxes = mask_to_box(gt)
        for shape, out in ((box_to_mask(boxes, gt.shape), box_dice), (box_to_ellipse_mask(boxes, gt.shape), ellipse_dice)):
            out.append(2 * (shape & gt).sum() / (shape.sum() + gt.sum()))
    return {"frames": len(box_dice), "box": float(np.mean(box_dice)), "ellipse": float(np.mean(ellipse_dice))}


def main(argv: List[str]) -> int:
    if len(argv) < 2:
        print(__doc__.split("\n\n")[1], file=sys.stderr)
        return 2
    gt = Path(argv[0])
    if argv[1] == "--box-shapes":
        s = box_shape_dice(gt)
        print(f"frames\tfilled_box_dice\tellipse_dice\n{s['frames']}\t{s['box']:.4f}\t{s['ellipse']:.4f}")
        return 0
    print("predictions\tframes\tarea_ratio_median\tarea_ratio_mean\tcorner_fill\tdice")
    for pred in argv[1:]:
        s = shape_stats(gt, Path(pred))
        print(f"{pred}\t{s['frames']}\t{s['area_ratio_median']:.3f}\t{s['area_ratio_mean']:.3f}\t"
              f"{s['corner_fill']:.3f}\t{s['dice']:.4f}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
