"""CVAT "for video 1.1" XML (``annotations.xml`` of a video task): read the masks, write them.

The layout (CVAT's XML annotation format, interpolation mode)::

    <annotations>
      <version>1.1</version>
      <meta><task> <size>N</size> <mode>interpolation</mode> <start_frame>0</start_frame>
                   <stop_frame>N-1</stop_frame> <labels><label><name>polyp</name>...</label></labels>
                   <original_size><width>W</width><height>H</height></original_size> </task></meta>
      <track id="0" label="polyp" source="manual">
        <polygon frame="3" keyframe="1" outside="0" occluded="0" points="x0,y0;x1,y1;..." z_order="0"/>
        <mask frame="4" keyframe="1" outside="0" occluded="0" rle="r0, r1, ..." left="x" top="y"
              width="w" height="h" z_order="0"/>
        <polygon frame="5" outside="1" .../>
      </track>
    </annotations>

Tracks hold one shape per frame they change at; a shape lasts until the track's next shape (to
the last frame when there is none), and ``outside="1"`` ends it (the object left the view). CVAT's exporter writes every frame of a
polygon track (interpolated shapes included) and single shapes as one-frame tracks (the shape, then
``outside`` on the next frame), so those files need no interpolation here; a polygon track with
key frames further apart is refused (CVAT would interpolate between them; export the task again
from CVAT). Every frame from ``start_frame`` to ``stop_frame`` is an annotated frame; its mask is
the union of the selected labels' shapes on it. Frame f is frame f of the video (or the f-th
image of a frame folder). Points and polylines cannot make a mask and are refused when their
label is selected. A ``.zip`` holding ``annotations.xml`` (CVAT's download) is read as it.

Rectangles (``<box xtl ytl xbr ybr>``) make a box file instead (:mod:`lgrnet.data.boxes`): tracks
are interpolated as CVAT does (its ``TrackManager.get_interpolated_shapes``): between a visible key
frame and the track's next shape, every coordinate is the linear interpolation of the two (the
next shape's position counts even when it is ``outside``); the last visible shape lasts to the
end; ``outside="1"`` ends the box until the next shape. Every frame from ``start_frame`` to
``stop_frame`` is a frame annotated with boxes (none: no lesion). Each box must lie inside the frame
and have a positive size; rotated boxes are refused, as is a file whose selected labels mix boxes
with polygons or masks. :func:`cvat_video_boxes_xml` writes boxes (one one-frame track per box).

XML is parsed with the standard library (expat >= 2.4 refuses entity-expansion attacks; external
entities are never fetched).
"""
from __future__ import annotations

import os
from collections import OrderedDict
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple, Union
from xml.etree import ElementTree as ET

import numpy as np

from ..data.boxes import validate_boxes
from ..files import write_text_atomic
from . import AnnotationError
from .frames import AnnotatedFrame, VideoMasks, select_labels
from .files import read_annotation_bytes
from .masks import cvat_rle_decode, cvat_rle_encode, mask_to_polygons, polygons_to_mask

PathLike = Union[str, os.PathLike]
MASK_SHAPES = ("polygon", "mask")
BOX_SHAPE = "box"
OTHER_SHAPES = ("polyline", "points", "cuboid", "ellipse", "skeleton", "tag")


def _load_xml(path: Path) -> ET.Element:
    raw = read_annotation_bytes(path, "CVAT", lambda n: Path(n).name == "annotations.xml", "one annotations.xml")
    try:
        root = ET.fromstring(raw)
    except ET.ParseError as exc:
        raise AnnotationError(f"{path}: malformed XML ({exc})") from None
    if root.tag != "annotations":
        raise AnnotationError(f"{path}: malformed: the root element is <{root.tag}>, not <annotations> (not a CVAT XML file)")
    return root


def _meta_int(task: Optional[ET.Element], key: str) -> Optional[int]:
    if task is None:
        return None
    text = task.findtext(key)
    if text is None or not text.strip():
        return None
    try:
        return int(text.strip())
    except ValueError:
        return None


def _attr_int(path: Path, el: ET.Element, key: str, where: str) -> int:
    try:
        return int(float(el.attrib[key]))
    except KeyError:
        raise AnnotationError(f"{path}: malformed {where}: no {key!r} attribute") from None
    except ValueError:
        raise AnnotationError(f"{path}: malformed {where}: {key}={el.attrib[key]!r} is not a number") from None


def _shape_mask(path: Path, el: ET.Element, h: int, w: int, where: str) -> np.ndarray:
    try:
        if el.tag == "polygon":
            pts = el.attrib.get("points", "")
            flat = [float(v) for pair in pts.split(";") if pair.strip() for v in pair.split(",")]
            return polygons_to_mask([flat], h, w)
        counts = [int(v) for v in el.attrib.get("rle", "").split(",") if v.strip()]
        return cvat_rle_decode(counts, *(_attr_int(path, el, k, where) for k in ("left", "top", "width", "height")), h, w)
    except ValueError as exc:
        raise AnnotationError(f"{path}: malformed {where}: {exc}") from None


def read_cvat_video(path: PathLike, labels: Optional[Sequence[str]] = None,
                    frame_size: Optional[Tuple[int, int]] = None) -> List[AnnotatedFrame]:
    """The annotated frames of a CVAT for video 1.1 XML file (or zip), refs = frame numbers.

    ``frame_size``: (H, W) of the frames, used when the file has no ``original_size`` (and checked
    against it when it has). Raises :class:`AnnotationError` naming the file and the problem.
    """
    path = Path(path)
    root = _load_xml(path)
    task = root.find("meta/task")
    if task is None:
        task = root.find("meta/job")
    defined = [n.text.strip() for n in root.iterfind("meta/*/labels/label/name") if n.text]
    defined += [n.text.strip() for n in root.iterfind("meta/project/tasks/task/labels/label/name") if n.text]
    defined = list(dict.fromkeys(defined))
    used = list(dict.fromkeys(el.attrib.get("label", "") for el in root.iter()
                              if el.tag in ("track", BOX_SHAPE) + MASK_SHAPES + OTHER_SHAPES and "label" in el.attrib))
    if defined:
        unknown = [u for u in used if u not in defined]
        if unknown:
            raise AnnotationError(f"{path}: unknown label {unknown[0]!r}: used by a shape but not defined under <meta> "
                                  f"(labels: {', '.join(map(repr, defined))})")
    chosen = set(select_labels(defined or used, labels, path))
    if root.find("image") is not None and root.find("track") is None:
        raise AnnotationError(f"{path}: a CVAT for images file (<image> elements); export the task as 'CVAT for video 1.1'")
    size_el = task.find("original_size") if task is not None else None
    declared = None
    if size_el is not None:
        try:
            declared = (int(size_el.findtext("height")), int(size_el.findtext("width")))
        except (TypeError, ValueError):
            raise AnnotationError(f"{path}: malformed <original_size> (needs integer <width> and <height>)") from None
    if declared is None and frame_size is None:
        raise AnnotationError(f"{path}: has no <original_size>; the frame size is unknown")
    h, w = declared or frame_size
    start = _meta_int(task, "start_frame") or 0
    stop = _meta_int(task, "stop_frame")
    size = _meta_int(task, "size")
    if stop is None:
        stop = start + size - 1 if size else None
    tracks = root.findall("track")
    if stop is None:
        frames_seen = [_attr_int(path, s, "frame", "shape") for t in tracks for s in t]
        stop = max(frames_seen) if frames_seen else start - 1
    if stop < start:
        raise AnnotationError(f"{path}: annotates no frame (start_frame {start}, stop_frame {stop})")
    masks: Dict[int, np.ndarray] = OrderedDict((f, np.zeros((h, w), bool)) for f in range(start, stop + 1))
    boxes: Dict[int, List[np.ndarray]] = OrderedDict((f, []) for f in range(start, stop + 1))
    kinds = set()
    for t in tracks:
        label = t.attrib.get("label")
        tid = t.attrib.get("id", "?")
        if label is None:
            raise AnnotationError(f"{path}: malformed track {tid}: no label")
        if label not in chosen:
            continue
        shapes = sorted((s for s in t if s.tag != "attribute"), key=lambda s: _attr_int(path, s, "frame", f"track {tid} shape"))
        if any(s.tag == BOX_SHAPE for s in shapes):
            kinds.add("boxes")
            _box_track(path, tid, shapes, (h, w), start, stop, boxes)
            continue
        kinds.add("masks")
        for k, s in enumerate(shapes):
            f = _attr_int(path, s, "frame", f"track {tid} shape")
            where = f"track {tid} <{s.tag}> at frame {f}"
            if s.tag in OTHER_SHAPES:
                raise AnnotationError(f"{path}: {where}: a {s.tag} cannot make a mask; draw polygons or masks for label {label!r}")
            if s.tag not in MASK_SHAPES:
                raise AnnotationError(f"{path}: malformed {where}: unknown shape element")
            if s.attrib.get("outside", "0") == "1":
                continue
            if f not in masks:
                raise AnnotationError(f"{path}: frame missing: {where} is outside the task's frames {start}..{stop}")
            end = _attr_int(path, shapes[k + 1], "frame", where) if k + 1 < len(shapes) else stop + 1
            if s.tag == "polygon" and k + 1 < len(shapes) and end > f + 1 and shapes[k + 1].attrib.get("outside", "0") != "1":
                raise AnnotationError(f"{path}: {where}: polygon key frames {f} and {end} without the frames between "
                                      f"(CVAT interpolates them); export the task again from CVAT, which writes every frame")
            m = _shape_mask(path, s, h, w, where)
            for g in range(f, min(end, stop + 1)):
                masks[g] |= m
    if len(kinds) == 2:
        raise AnnotationError(f"{path}: the selected labels mix boxes with polygons or masks; import them apart (--label)")
    if kinds == {"boxes"}:
        return [AnnotatedFrame(f, (h, w), None, np.array(b, np.float32).reshape(-1, 4)) for f, b in boxes.items()]
    return [AnnotatedFrame(f, (h, w), m) for f, m in masks.items()]


def _box_corners(path: Path, el: ET.Element, where: str) -> np.ndarray:
    """(xtl, ytl, xbr, ybr) float64 of a <box>; a rotated box is refused."""
    if el.tag != BOX_SHAPE:
        raise AnnotationError(f"{path}: malformed {where}: a rectangle track holds a <{el.tag}>")
    try:
        if float(el.attrib.get("rotation", "0")) % 360 != 0:
            raise AnnotationError(f"{path}: {where}: a rotated box (rotation={el.attrib['rotation']}) is not supported")
        return np.array([float(el.attrib[k]) for k in ("xtl", "ytl", "xbr", "ybr")], np.float64)
    except KeyError as exc:
        raise AnnotationError(f"{path}: malformed {where}: no {exc.args[0]!r} attribute") from None
    except ValueError:
        raise AnnotationError(f"{path}: malformed {where}: a coordinate is not a number") from None


def _box_track(path: Path, tid: str, shapes: List[ET.Element], size: Tuple[int, int], start: int, stop: int,
               boxes: Dict[int, List[np.ndarray]]) -> None:
    """Add a rectangle track's boxes (interpolated as CVAT does, see the module notes) to ``boxes``."""
    frames = [_attr_int(path, s, "frame", f"track {tid} shape") for s in shapes]
    for k in range(1, len(frames)):
        if frames[k] == frames[k - 1]:
            raise AnnotationError(f"{path}: malformed track {tid}: two shapes at frame {frames[k]}")
    corners = [_box_corners(path, s, f"track {tid} <{s.tag}> at frame {f}") for s, f in zip(shapes, frames)]
    for k, (s, f) in enumerate(zip(shapes, frames)):
        where = f"track {tid} <box> at frame {f}"
        if not start <= f <= stop:
            raise AnnotationError(f"{path}: frame missing: {where} is outside the task's frames {start}..{stop}")
        if s.attrib.get("outside", "0") == "1":
            continue
        end = frames[k + 1] if k + 1 < len(frames) else stop + 1
        for g in range(f, min(end, stop + 1)):
            c = corners[k] if g == f or k + 1 == len(frames) else \
                corners[k] + (corners[k + 1] - corners[k]) * ((g - f) / (end - f))
            box = [c[0], c[1], c[2] - c[0], c[3] - c[1]]
            boxes[g].append(validate_boxes([box], size, f"{path}: track {tid} <box> at frame {g}", single=True)[0])


def cvat_video_boxes_xml(video: VideoMasks, label: str = "lesion", task_name: str = "") -> str:
    """The CVAT for video 1.1 XML of one box-annotated video (``video.frames[i] = (name, (H, W),
    (N, 4) boxes)``): each box a one-frame rectangle track (the box, then ``outside`` on the next
    frame), corners written exactly (``xbr = x + w``, so reading gives back the same boxes)."""
    n = len(video.frames)
    h, w = video.frames[0][1] if video.frames else (0, 0)
    root = _task_root(video, label, n, h, w, task_name)
    track_id = 0
    for f, (name, size, frame_boxes) in enumerate(video.frames):
        if frame_boxes is None:
            continue
        for x, y, bw, bh in validate_boxes(frame_boxes, size, f"{video.name}: {name}").astype(np.float64):
            t = ET.SubElement(root, "track", {"id": str(track_id), "label": label, "source": "manual"})
            track_id += 1
            corners = {k: repr(float(v)) for k, v in (("xtl", x), ("ytl", y), ("xbr", x + bw), ("ybr", y + bh))}
            for frame, outside in [(f, "0")] + ([(f + 1, "1")] if f + 1 < n else []):
                ET.SubElement(t, BOX_SHAPE, {"frame": str(frame), "keyframe": "1", "outside": outside, "occluded": "0",
                                             **corners, "z_order": "0"})
    ET.indent(root, space="  ")
    return '<?xml version="1.0" encoding="utf-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n"


def _task_root(video: VideoMasks, label: str, n: int, h: int, w: int, task_name: str) -> ET.Element:
    """<annotations> with the version and the task's <meta> (one label, the frame size)."""
    root = ET.Element("annotations")
    ET.SubElement(root, "version").text = "1.1"
    task = ET.SubElement(ET.SubElement(root, "meta"), "task")
    for key, value in (("id", "0"), ("name", task_name or video.name), ("size", str(n)), ("mode", "interpolation"),
                       ("overlap", "0"), ("start_frame", "0"), ("stop_frame", str(max(n - 1, 0))), ("frame_filter", "")):
        ET.SubElement(task, key).text = value
    lab = ET.SubElement(ET.SubElement(task, "labels"), "label")
    ET.SubElement(lab, "name").text = label
    ET.SubElement(lab, "type").text = "any"
    ET.SubElement(lab, "attributes")
    osz = ET.SubElement(task, "original_size")
    ET.SubElement(osz, "width").text = str(w)
    ET.SubElement(osz, "height").text = str(h)
    return root


def cvat_video_xml(video: VideoMasks, label: str = "lesion", shape: str = "mask", task_name: str = "") -> str:
    """The CVAT for video 1.1 XML of one video: each frame's mask as a one-frame track (the shape,
    then ``outside`` on the next frame), the form CVAT exports single shapes in."""
    if shape not in ("mask", "polygon"):
        raise ValueError(f"shape must be 'mask' or 'polygon', got {shape!r}")
    n = len(video.frames)
    h, w = video.frames[0][1] if video.frames else (0, 0)
    root = _task_root(video, label, n, h, w, task_name)
    track_id = 0
    for f, (_, _, mask) in enumerate(video.frames):
        if mask is None or not mask.any():
            continue
        if shape == "mask":
            counts, (x, y, bw, bh) = cvat_rle_encode(mask)
            shapes = [("mask", {"rle": ", ".join(map(str, counts)), "left": str(x), "top": str(y),
                                "width": str(bw), "height": str(bh)})]
        else:
            shapes = [("polygon", {"points": ";".join(f"{p[i]:.2f},{p[i + 1]:.2f}" for i in range(0, len(p), 2))})
                      for p in mask_to_polygons(mask)]
        for tag, attrs in shapes:
            t = ET.SubElement(root, "track", {"id": str(track_id), "label": label, "source": "auto"})
            track_id += 1
            frames = [(f, "0")] + ([(f + 1, "1")] if f + 1 < n else [])
            for frame, outside in frames:
                ET.SubElement(t, tag, {"frame": str(frame), "keyframe": "1", "outside": outside, "occluded": "0",
                                       **attrs, "z_order": "0"})
    ET.indent(root, space="  ")
    return '<?xml version="1.0" encoding="utf-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n"


def write_cvat_video(video: VideoMasks, path: PathLike, label: str = "lesion", shape: str = "mask") -> Path:
    """Write :func:`cvat_video_xml` (``shape="box"``: :func:`cvat_video_boxes_xml`) to ``path`` atomically."""
    write_text_atomic(path, cvat_video_boxes_xml(video, label) if shape == "box" else cvat_video_xml(video, label, shape))
    return Path(path)
