"""Make training datasets from corrected results and annotation-tool files; export pre-annotations.

A dataset is the layout `lgrnet train --data` reads: DATASET/Frame/<video>/<frame> with masks in
DATASET/GT/<video>/<frame>.png and boxes in DATASET/Box/<video>/<frame>.json (lgrnet.data.boxes).
Every frame of a video is written (clips need the neighbours); masks and boxes only for the
annotated frames. Adding videos to an existing dataset is fine; a video that
is already there is replaced only with --overwrite. See docs/annotation.md.

examples:
  lgrnet dataset from-results results/exam1 results/exam2 --out data/ours --only all
  lgrnet dataset from-results results/exam3 --out data/ours-boxes --only boxed
  lgrnet dataset import --format coco instances_default.json --frames exam1.mp4 --out data/ours
  lgrnet dataset import --format cvat-video annotations.xml --frames frames/exam2 --out data/ours
  lgrnet dataset import --format cvat-masks export.zip --frames exam3.mp4 --out data/ours --label polyp
  lgrnet dataset export --format cvat-video results/exam4 --out exam4_preannotations.xml
  lgrnet dataset check data/ours
"""
from __future__ import annotations

import sys
from pathlib import Path

from ..errors import UserError

FORMATS_IN = ("coco", "cvat-video", "cvat-masks")
FORMATS_OUT = ("coco", "cvat-video")


def add_arguments(p) -> None:
    sub = p.add_subparsers(dest="dataset_command", metavar="SUBCOMMAND")
    fr = sub.add_parser("from-results", help="training layout from corrected result folders",
                        description="Write the frames (re-read from each result's input) and the reviewed "
                                    "frames' masks of result folders as a training dataset.")
    fr.add_argument("results", nargs="+", metavar="RESULT", help="result folder of `lgrnet predict` (with corrections/)")
    fr.add_argument("--out", required=True, metavar="DATASET", help="dataset folder (created; videos are added)")
    fr.add_argument("--only", choices=("checked", "edited", "boxed", "all"), default="all",
                    help="which reviewed frames are written: marked checked or edited (a mask in GT/), boxed "
                         "(their boxes in Box/), or all of them (default all)")
    fr.add_argument("--reviewer", metavar="NAME", default=None,
                    help="only the frames whose last change NAME made (the reviewer names status.json records)")
    fr.add_argument("--overwrite", action="store_true", help="replace videos of the same name in DATASET")

    im = sub.add_parser("import", help="training layout from a COCO, CVAT video or segmentation-mask export",
                        description="Read one video's masks from an annotation tool's file and write the video "
                                    "in the training layout.")
    im.add_argument("source", metavar="SRC", help="COCO .json, CVAT annotations.xml, a segmentation-mask export "
                                                   "folder, or the .zip the tool downloads")
    im.add_argument("--format", required=True, choices=FORMATS_IN)
    im.add_argument("--frames", required=True, metavar="DIR_OR_VIDEO", help="the video the file annotates (video file, "
                                                                            "DICOM file or folder of frames)")
    im.add_argument("--out", required=True, metavar="DATASET")
    im.add_argument("--video", metavar="NAME", help="video name in the dataset (default: the --frames name)")
    im.add_argument("--label", action="append", default=[], metavar="NAME",
                    help="label(s) that make the lesion mask (default: the file's only label); repeatable")
    im.add_argument("--overwrite", action="store_true", help="replace a video of the same name in DATASET")

    ex = sub.add_parser("export", help="masks as pre-annotations for CVAT or a COCO tool",
                        description="Write result masks (corrected where corrected) or a dataset's GT masks as "
                                    "a COCO JSON or CVAT for video 1.1 XML file to import into the tool.")
    ex.add_argument("inputs", nargs="+", metavar="RESULT", help="result folder(s) (or dataset split folders)")
    ex.add_argument("--format", required=True, choices=FORMATS_OUT)
    ex.add_argument("--out", required=True, metavar="FILE")
    ex.add_argument("--shape", choices=("mask", "polygon", "box"), default="mask",
                    help="mask: exact RLE masks (default); polygon: outlines (holes filled); box: a dataset split's "
                         "box files (Box/), as COCO boxes alone or CVAT rectangles (exact)")
    ex.add_argument("--label", default="lesion", help="label name (default lesion)")
    ex.add_argument("--video", action="append", default=[], metavar="NAME",
                    help="with a dataset input: only this video (repeatable)")
    ex.add_argument("--model-masks", action="store_true", help="the model's masks even where corrected")
    ex.add_argument("--overwrite", action="store_true", help="replace FILE if it exists")

    ck = sub.add_parser("check", help="the data check `lgrnet train` runs, as a report")
    ck.add_argument("dataset", metavar="DATASET")
    p.set_defaults(_parser=p)


def run(args) -> int:
    cmd = getattr(args, "dataset_command", None)
    if cmd is None:
        args._parser.print_help()
        return 2
    _check_out(args)
    return {"from-results": _from_results, "import": _import, "export": _export, "check": _check}[cmd](args)


def _check_out(args) -> None:
    """A writing subcommand's --out must be writable: checked first, before any frame is read."""
    from .arguments import check_output_folder, check_writable_file

    if args.dataset_command == "export":
        check_writable_file(args.out, "the pre-annotations")
    elif args.dataset_command in ("from-results", "import"):
        check_output_folder(args.out, "the dataset")


def _say(text: str) -> None:
    print(text, file=sys.stderr)


def _from_results(args) -> int:
    from ..annotations.layout import check_video_name, video_exists, write_video
    from ..annotations.results import open_result_source, reviewed_frames, selected_boxes, selected_masks
    from ..results.folder import load_result, safe_filename

    results = [load_result(r) for r in args.results]
    folders = [Path(r.root).resolve() for r in results]
    names = [check_video_name(safe_filename(f.name, "video")) for f in folders]
    dup = sorted({n for n in names if names.count(n) > 1})
    if dup:
        same = ", ".join(str(f) for f, n in zip(folders, names) if n == dup[0])
        raise UserError(f"several results would make the dataset video {dup[0]!r} ({same}); a dataset video is "
                        f"named after its result folder: rename one of them")
    plans = []
    for r, name in zip(results, names):  # check everything before writing anything
        if video_exists(args.out, name) and not args.overwrite:
            raise UserError(f"{args.out}: already holds video {name!r}; pass --overwrite to replace it")
        source = open_result_source(r)
        reviewed = reviewed_frames(r)
        masks = selected_masks(reviewed, args.only, source.frame_size, reviewer=args.reviewer)
        boxes = selected_boxes(reviewed, args.only, source.frame_size, reviewer=args.reviewer)
        if not masks and not boxes:
            states = sorted(set(reviewed.states.values()))
            by = ""
            if args.reviewer is not None:
                found = set(reviewed.reviewers.values())
                names = sorted(n for n in found if n) + (["(no name)"] if "" in found else [])
                by = f" by {args.reviewer!r} (reviewers found: {', '.join(names) or 'none'})"
            raise UserError(f"{r.root}: no frame is marked {args.only if args.only != 'all' else 'checked, edited or boxed'}"
                            f"{by} (states found: {', '.join(states) or 'none; nothing reviewed yet'})")
        plans.append((name, source, masks, boxes))
    for name, source, masks, boxes in plans:
        w = write_video(args.out, name, source, masks, overwrite=args.overwrite, boxes=boxes)
        with_boxes = f", {w.box_frames} frames with boxes ({w.boxes} boxes)" if boxes else ""
        _say(f"{args.out}: video {w.name}: {w.frames} frames, {w.masks} masks ({w.nonempty} with a lesion){with_boxes}")
    return 0


def _import(args) -> int:
    from ..annotations.frames import match_annotations
    from ..annotations.layout import source_video_name, video_exists, write_video
    from ..io import open_source

    name = source_video_name(args.frames, args.video)
    if video_exists(args.out, name) and not args.overwrite:
        raise UserError(f"{args.out}: already holds video {name!r}; pass --overwrite to replace it, or --video NAME")
    src = Path(args.source)
    if not src.exists():
        raise UserError(f"{src}: no such file or folder")
    source = open_source(args.frames)
    labels = args.label or None
    if args.format == "coco":
        from ..annotations.coco import read_coco

        items = _one_video(read_coco(src, labels), name, src)
    elif args.format == "cvat-video":
        from ..annotations.cvat_video import read_cvat_video

        items = read_cvat_video(src, labels, frame_size=tuple(source.frame_size))
    else:
        from ..annotations.seg_masks import read_seg_masks

        items = read_seg_masks(src, labels)
    masks, boxes = match_annotations(items, source, src)  # COCO boxes alone, CVAT rectangles: boxes
    w = write_video(args.out, name, source, masks, overwrite=args.overwrite, boxes=boxes)
    if w.box_frames:
        _say(f"{args.out}: video {w.name}: {w.frames} frames, {w.box_frames} annotated with boxes ({w.boxes} boxes)"
             + (f", {w.masks} masks ({w.nonempty} with a lesion)" if w.masks else ""))
    else:
        _say(f"{args.out}: video {w.name}: {w.frames} frames, {w.masks} masks ({w.nonempty} with a lesion)")
    return 0


def _one_video(items, name: str, src: Path):
    """COCO files of several videos name their images ``<video>/<file>``: keep video ``name``'s.
    Images all in one folder (``images/frame_000001.png``) are one video: all are kept."""
    from ..annotations import AnnotationError

    dirs = {str(i.ref).replace("\\", "/").rpartition("/")[0] for i in items}
    if len(dirs) == 1:
        return items
    kept = [i for i in items if str(i.ref).replace("\\", "/").rpartition("/")[0] == name]
    if not kept:
        raise AnnotationError(f"{src}: frame missing: no image of video {name!r} (the file's images are under "
                              f"{', '.join(sorted(dirs)[:5])}/...); pass --video NAME")
    return kept


def _export(args) -> int:
    from ..annotations.results import dataset_video_boxes, dataset_video_masks, result_video_masks
    from ..results.folder import is_result_folder, load_result

    out = Path(args.out)
    if (out.exists() or out.is_symlink()) and not args.overwrite:
        raise UserError(f"{out}: already exists; pass --overwrite to replace it")
    if out.is_dir():
        raise UserError(f"{out}: is a folder; --out names the file to write")
    videos = []
    for p in args.inputs:
        if args.shape == "box" and not (Path(p).is_dir() and not is_result_folder(p)):
            raise UserError(f"{p}: --shape box exports a dataset split's box files (Frame/ + Box/)")
        if is_result_folder(p):
            videos.append(result_video_masks(load_result(p), corrected=not args.model_masks))
        elif Path(p).is_dir():
            found = dataset_video_boxes(p) if args.shape == "box" else dataset_video_masks(p)
            if args.video:
                missing = sorted(set(args.video) - {v.name for v in found})
                if missing:
                    raise UserError(f"{p}: has no video {missing[0]!r} (videos: {', '.join(v.name for v in found[:10])})")
                found = [v for v in found if v.name in args.video]
            videos += found
        else:
            raise UserError(f"{p}: neither a result folder (predictions.json) nor a dataset split (Frame/ + GT/)")
    if args.format == "cvat-video":
        if len(videos) != 1:
            raise UserError(f"a CVAT video task holds one video, but the inputs hold {len(videos)}; export them one by one")
        from ..annotations.cvat_video import write_cvat_video

        write_cvat_video(videos[0], out, args.label, args.shape)
    else:
        from ..annotations.coco import write_coco

        write_coco(videos, out, args.label, args.shape)
    n = sum(1 for v in videos for f in v.frames if f[2] is not None)
    _say(f"{out}: {len(videos)} video(s), {n} annotated frames ({'boxes' if args.shape == 'box' else args.shape + 's'}, "
         f"label {args.label!r})")
    return 0


def _check(args) -> int:
    from ..data.datasets import find_videos, validate_videos
    from ..training.dataset import check_videos

    videos = find_videos(args.dataset, require_masks=True)
    # what `lgrnet train` runs before step 1 (box files are read and checked)
    usable = check_videos(videos, str(args.dataset), need_masks=True, allow_boxes=True)
    report = validate_videos(usable, require_masks=False, check_masks=False)
    skipped = [v.name for v in videos if v not in usable]
    print(f"{args.dataset}: usable for training: {report.summary()}")
    for v in usable:
        annotated = sum(1 for m in v.masks if m is not None)
        with_boxes = sum(1 for i in range(len(v)) if v.box_file(i) is not None)
        print(f"  {v.name}: {len(v)} frames, {annotated} with a mask" + (f", {with_boxes} with boxes" if with_boxes else ""))
    if skipped:
        print(f"  skipped (no mask or box at all): {', '.join(skipped)}")
    return 0
