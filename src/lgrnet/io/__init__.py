"""Inputs: reading frames from videos, frame folders and DICOM cine loops (one reader per source
kind), and the image helpers they share. Outputs are :mod:`lgrnet.results`.

>>> from lgrnet.io import open_source
>>> src = open_source("exam.mp4")          # or a folder of frames, or a DICOM multi-frame file
>>> src.kind, src.num_frames, src.fps, src.frame_size
('video', 300, 25.0, (288, 384))
>>> for frame in src:                        # uint8 RGB (H, W, 3), one at a time
...     ...
"""
from .video import FrameSource, open_source

__all__ = ["FrameSource", "open_source"]
