"""COCO instance-segmentation JSON (``instances_*.json``): read the masks of one video, write them.

Read: ``images`` (``id``, ``file_name``, ``width``, ``height``), ``categories`` (``id``, ``name``)
and ``annotations`` (``image_id``, ``category_id``, ``segmentation``: polygons ``[[x0, y0, ...],
...]`` or RLE ``{"size": [H, W], "counts": [...] | "..."}``, whatever ``iscrowd`` says). Every
listed image is an annotated frame; its mask is the union of the annotations whose category is
one of the selected labels (none: an empty mask). A ``.zip`` holding exactly one JSON file (CVAT's
"COCO 1.0" download) is read as that file. A file whose selected annotations have a ``bbox``
(``[x, y, w, h]``) and no ``segmentation`` (absent or ``[]``) is a box file: every listed image is
a frame annotated with boxes (:mod:`lgrnet.data.boxes`; none: no lesion); each box must lie inside
its image and have a positive size. A file mixing both kinds for the selected labels is refused.

Written (pre-annotations for CVAT's or another tool's COCO import): one image per frame, one
annotation per frame with a lesion, category 1 = ``label``; ``shape="mask"`` writes uncompressed
RLE with ``iscrowd=1`` (exact), ``shape="polygon"`` polygons with ``iscrowd=0`` (holes filled,
see :data:`lgrnet.annotations.masks.POLYGON_TOLERANCE`). :func:`coco_boxes_document` writes boxes:
one annotation per box with ``bbox`` and no ``segmentation``, values as stored (exact).
"""
from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Union

import numpy as np

from ..data.boxes import json_number, validate_boxes
from ..files import write_text_atomic
from . import AnnotationError
from .frames import AnnotatedFrame, VideoMasks, select_labels
from .files import read_annotation_bytes
from .masks import bbox_xywh, coco_rle_decode, coco_rle_encode, mask_to_polygons, polygons_to_mask

PathLike = Union[str, os.PathLike]


def _load_json(path: Path) -> object:
    raw = read_annotation_bytes(path, "COCO", lambda n: n.lower().endswith(".json"), "exactly one .json file")
    try:
        return json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise AnnotationError(f"{path}: malformed: not valid JSON ({exc})") from None


def _int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def read_coco(path: PathLike, labels: Optional[Sequence[str]] = None) -> List[AnnotatedFrame]:
    """The annotated frames of a COCO JSON file (or zip). ``labels``: category names that make the
    mask (default: the file's only category). Raises :class:`AnnotationError` naming the file and
    the problem: not JSON, missing keys, an annotation of an unknown image or category, a broken
    polygon or RLE, an RLE whose size differs from its image's."""
    path = Path(path)
    data = _load_json(path)
    if not isinstance(data, dict) or not all(isinstance(data.get(k), list) for k in ("images", "annotations", "categories")):
        raise AnnotationError(f"{path}: malformed: a COCO file is an object with lists 'images', 'annotations' and 'categories'")
    cats: Dict[int, str] = {}
    for c in data["categories"]:
        if not isinstance(c, dict) or not _int(c.get("id")) or not isinstance(c.get("name"), str):
            raise AnnotationError(f"{path}: malformed category {c!r} (needs an integer 'id' and a 'name')")
        cats[c["id"]] = c["name"]
    chosen = set(select_labels(list(dict.fromkeys(cats.values())), labels, path))
    images: Dict[int, dict] = {}
    for im in data["images"]:
        if not (isinstance(im, dict) and _int(im.get("id")) and isinstance(im.get("file_name"), str)
                and _int(im.get("width")) and _int(im.get("height")) and im["width"] > 0 and im["height"] > 0):
            raise AnnotationError(f"{path}: malformed image {str(im)[:120]} (needs integer 'id', 'width', 'height' "
                                  f"and a 'file_name')")
        if im["id"] in images:
            raise AnnotationError(f"{path}: malformed: image id {im['id']} is listed twice")
        images[im["id"]] = im
    if not images:
        raise AnnotationError(f"{path}: lists no images")
    masks = {i: np.zeros((im["height"], im["width"]), bool) for i, im in images.items()}
    boxes: Dict[int, List[np.ndarray]] = {i: [] for i in images}
    kinds = set()
    for k, ann in enumerate(data["annotations"]):
        where = f"annotation {ann.get('id', k) if isinstance(ann, dict) else k}"
        if not isinstance(ann, dict) or not _int(ann.get("image_id")) or not _int(ann.get("category_id")):
            raise AnnotationError(f"{path}: malformed {where} (needs integer 'image_id' and 'category_id')")
        if ann["image_id"] not in images:
            raise AnnotationError(f"{path}: {where} refers to image id {ann['image_id']}, which is not in 'images'")
        if ann["category_id"] not in cats:
            raise AnnotationError(f"{path}: unknown label: {where} has category id {ann['category_id']}, "
                                  f"which is not in 'categories'")
        if cats[ann["category_id"]] not in chosen:
            continue
        im = images[ann["image_id"]]
        h, w = im["height"], im["width"]
        seg = ann.get("segmentation")
        if (seg is None or seg == []) and "bbox" in ann:
            kinds.add("boxes")
            boxes[ann["image_id"]].append(validate_boxes([ann["bbox"]], (h, w), f"{path}: {where} of {im['file_name']!r}",
                                                         single=True)[0])
            continue
        kinds.add("masks")
        try:
            if isinstance(seg, dict):
                if list(seg.get("size", [])) != [h, w]:
                    raise AnnotationError(f"{path}: size different: {where} has an RLE of size {seg.get('size')!r}, "
                                          f"but its image {im['file_name']!r} is {w}x{h} (RLE size is [height, width])")
                m = coco_rle_decode(seg)
            elif isinstance(seg, list) and seg:
                m = polygons_to_mask(seg, h, w)
            else:
                raise AnnotationError(f"{path}: malformed {where}: no 'segmentation' (polygons or RLE) and no 'bbox' "
                                      f"(a box)")
        except ValueError as exc:
            raise AnnotationError(f"{path}: malformed {where} of {im['file_name']!r}: {exc}") from None
        masks[ann["image_id"]] |= m
    if len(kinds) == 2:
        raise AnnotationError(f"{path}: mixes masks (segmentation) and boxes alone (bbox without segmentation) for the "
                              f"selected labels; import them apart (--label)")
    if kinds == {"boxes"}:
        return [AnnotatedFrame(im["file_name"], (im["height"], im["width"]), None,
                               np.array(boxes[i], np.float32).reshape(-1, 4)) for i, im in images.items()]
    return [AnnotatedFrame(im["file_name"], (im["height"], im["width"]), masks[i]) for i, im in images.items()]


def coco_document(videos: Sequence[VideoMasks], label: str = "lesion", shape: str = "mask") -> Dict[str, object]:
    """The COCO object for ``videos`` (see the module notes). Several videos: file names are
    ``<video>/<file name>``."""
    if shape not in ("mask", "polygon"):
        raise ValueError(f"shape must be 'mask' or 'polygon', got {shape!r}")
    images, anns = [], []
    for v in videos:
        for file_name, (h, w), mask in v.frames:
            if mask is None:
                continue
            image_id = len(images) + 1
            images.append({"id": image_id, "file_name": f"{v.name}/{file_name}" if len(videos) > 1 else file_name,
                           "width": int(w), "height": int(h)})
            box = bbox_xywh(mask)
            if box is None:
                continue
            seg = coco_rle_encode(mask) if shape == "mask" else mask_to_polygons(mask)
            anns.append({"id": len(anns) + 1, "image_id": image_id, "category_id": 1, "segmentation": seg,
                         "area": int(mask.sum()), "bbox": [float(b) for b in box],
                         "iscrowd": 1 if shape == "mask" else 0, "attributes": {"occluded": False}})
    return {"info": {"description": "lgrnet masks", "version": "1.0"}, "licenses": [],
            "categories": [{"id": 1, "name": label, "supercategory": ""}], "images": images, "annotations": anns}


def coco_boxes_document(videos: Sequence[VideoMasks], label: str = "lesion") -> Dict[str, object]:
    """The COCO object of box-annotated ``videos``: ``VideoMasks`` whose frames hold (N, 4) boxes
    ``[x, y, w, h]`` in place of masks (None: not annotated). One image per annotated frame, one
    annotation per box (``bbox``, ``area`` w * h, no ``segmentation``); several videos: file names
    ``<video>/<file name>``."""
    images, anns = [], []
    for v in videos:
        for file_name, (h, w), frame_boxes in v.frames:
            if frame_boxes is None:
                continue
            image_id = len(images) + 1
            images.append({"id": image_id, "file_name": f"{v.name}/{file_name}" if len(videos) > 1 else file_name,
                           "width": int(w), "height": int(h)})
            for box in validate_boxes(frame_boxes, (h, w), f"{v.name}: {file_name}"):
                bbox = [json_number(b) for b in box]
                anns.append({"id": len(anns) + 1, "image_id": image_id, "category_id": 1, "bbox": bbox,
                             "area": float(box[2]) * float(box[3]), "iscrowd": 0})
    return {"info": {"description": "lgrnet boxes", "version": "1.0"}, "licenses": [],
            "categories": [{"id": 1, "name": label, "supercategory": ""}], "images": images, "annotations": anns}


def write_coco(videos: Sequence[VideoMasks], path: PathLike, label: str = "lesion", shape: str = "mask") -> Path:
    """Write :func:`coco_document` (``shape="box"``: :func:`coco_boxes_document`) to ``path``
    atomically. Returns the path."""
    doc = coco_boxes_document(videos, label) if shape == "box" else coco_document(videos, label, shape)
    write_text_atomic(path, json.dumps(doc, separators=(",", ":")) + "\n")
    return Path(path)
