"""Annotation files in and out: COCO instance JSON, CVAT "for video 1.1" XML, CVAT / Datumaro
segmentation-mask PNG exports, and the training layout (``Frame/<video>/`` + ``GT/<video>/``).

- :mod:`.masks`: binary masks <-> COCO RLE, polygons and CVAT's mask RLE;
- :mod:`.coco`, :mod:`.cvat_video`, :mod:`.seg_masks`: one reader (and writer) per format, each
  giving the masks of one video by frame;
- :mod:`.files`: an annotation file's bytes, from the file or the one member of its zip;
- :mod:`.layout`: writing a video's frames and masks in the training layout;
- :mod:`.results`: the masks of result folders (the model's, or the corrected ones).

Every reader raises :class:`AnnotationError` (an :class:`~lgrnet.errors.InputError`) with one
line naming the file and the problem. ``lgrnet dataset`` is the command line over these.
"""
from ..errors import InputError


class AnnotationError(InputError):
    """An annotation file cannot be used as is: malformed, or not matching the frames it describes."""


__all__ = ["AnnotationError"]
