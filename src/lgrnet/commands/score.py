"""Score any method's prediction folders against ground truth.

Both folders hold <video>/<frame>.png (GT_DIR may also be a split root holding GT/; a folder of images
without video folders is a set of one-frame videos). Predictions may be probability maps (uint8
0..255) or binary masks; a missing prediction is an error that names it.

protocols (not comparable with each other):
  sunseg   (default) exactly the SUN-SEG toolbox (github GewelsJI/VPS, eval/): GT > 128, prediction
           resized to the GT bilinearly, /255 and min-max normalised; each video's first and last
           frame dropped; 256 thresholds; mean per video, unweighted mean over videos, then max /
           mean over thresholds. Keys: S_alpha E_phi_mean E_phi_max E_phi_adp F_w F_mean F_max F_adp
           Dice_mean Dice_max IoU_mean IoU_max Sen_mean Sen_max Spe_mean Spe_max MAE
  authors  the LGRNet authors' evaluator: binary masks (GT > 0, prediction > 127), every frame,
           Dice = (2I+1)/(|P|+|G|+1), IoU = (I+1)/(U+1), mean over all frames pooled. Keys: Dice IoU
  fibroid  the LGRNet authors' UFUV evaluator (fibroid_other_medi): binary masks (GT > 0, prediction
           > 127), every frame; per-frame Dice and IoU without smoothing (NaN when prediction and GT
           are both empty), mean over all frames pooled; overall_iou over all pixels pooled; per-frame
           recall and precision (1 when undefined), averaged; F = 2PR/(P+R).
           Keys: dice mean_iou overall_iou recall precision F

examples:
  lgrnet score runs/probs data/CVC-ClinicDB-612/Test/GT
  lgrnet score runs/masks data/CVC-ClinicDB-612/Test --protocol authors --json authors.json
  lgrnet score runs/masks UFUV/temp8/test --protocol fibroid --json fibroid.json
"""
from __future__ import annotations

import os
import sys

from ..errors import UserError
from .arguments import check_writable_file


def add_arguments(p) -> None:
    p.add_argument("pred_dir", metavar="PRED_DIR", help="predictions: <video>/<frame>.png")
    p.add_argument("gt_dir", metavar="GT_DIR", help="ground truth: <video>/<frame>.png (or a split root with GT/)")
    p.add_argument("--protocol", choices=("sunseg", "authors", "fibroid"), default="sunseg",
                   help="sunseg: the SUN-SEG toolbox (default); authors: the LGRNet authors' Dice/IoU; "
                        "fibroid: the authors' UFUV evaluator (dice, mean_iou, overall_iou, recall, precision, F)")
    p.add_argument("--json", metavar="OUT", help="write the results as JSON (metrics, per_video, frames, videos)")
    p.add_argument("--csv", metavar="OUT", help="write one row per video and an ALL row as CSV")
    p.add_argument("--overwrite", action="store_true", help="replace existing --json / --csv files")
    p.add_argument("--videos", nargs="+", metavar="NAME", help="score only these videos")
    p.add_argument("--keep-ends", action="store_true",
                   help="sunseg: score every frame instead of dropping each video's first and last "
                        "(NOT the toolbox's protocol; for image data sets of one-frame videos)")
    p.add_argument("--quiet", action="store_true", help="no table and no progress bar")


def check_outputs(paths, overwrite: bool) -> None:
    """Refuse, before any scoring, output files that exist (unless ``overwrite``), folders, and one
    file given twice."""
    given = [p for p in paths if p]
    if len({os.path.abspath(p) for p in given}) < len(given):
        raise UserError(f"{given[0]}: --json and --csv name the same file")
    for p in given:
        if os.path.isdir(p):
            raise UserError(f"{p}: is a folder; give a file name")
        if os.path.lexists(p) and not overwrite:
            raise UserError(f"{p}: exists; pass --overwrite to replace it")
        check_writable_file(p)


def run(args) -> int:
    from ..evaluation.scoring import format_table, pair_folders, score, unscored_predictions, write_csv, write_json

    check_outputs((args.json, args.csv), args.overwrite)
    videos = pair_folders(args.pred_dir, args.gt_dir, videos=args.videos)
    for warning in unscored_predictions(args.pred_dir, videos, args.videos):
        print(f"lgrnet score: warning: {warning}", file=sys.stderr)
    result = score(videos, protocol=args.protocol, drop_ends=not args.keep_ends,
                   progress=not args.quiet and sys.stderr.isatty())
    result.info.update({"pred_dir": str(args.pred_dir), "gt_dir": str(args.gt_dir)})
    if args.json:
        write_json(result, args.json)
    if args.csv:
        write_csv(result, args.csv)
    if not args.quiet:
        print(format_table(result))
    return 0
