"""Inputs: reading frames from videos, frame folders and DICOM cine loops, one reader per source
kind (:mod:`.video_file`, :mod:`.frame_folder`, :mod:`.dicom`) behind one interface
(:class:`.source.FrameSource`) and one dispatcher (:func:`.dispatch.open_source`), and the image
helpers they share (:mod:`.images`). Outputs are :mod:`lgrnet.results`.

>>> from lgrnet.io import open_source
>>> src = open_source("exam.mp4")          # or a folder of frames, or a DICOM multi-frame file
>>> src.kind, src.num_frames, src.fps, src.frame_size
('video', 300, 25.0, (288, 384))
>>> for frame in src:                        # uint8 RGB (H, W, 3), one at a time
...     ...
"""
from .dispatch import open_source
from .source import FrameSource

__all__ = ["FrameSource", "open_source"]
