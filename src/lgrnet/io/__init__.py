"""Reading frames from videos, frame folders and DICOM cine loops; writing prediction outputs.

>>> from lgrnet.io import open_source
>>> src = open_source("exam.mp4")          # or a folder of frames, or a DICOM multi-frame file
>>> src.kind, src.num_frames, src.fps, src.frame_size
('video', 300, 25.0, (288, 384))
>>> for frame in src:                        # uint8 RGB (H, W, 3), one at a time
...     ...
"""
from .video import FrameSource, open_source
from .writers import OverlayVideoWriter, draw_overlay, write_mask_png, write_prob_png

__all__ = ["FrameSource", "OverlayVideoWriter", "draw_overlay", "open_source", "write_mask_png", "write_prob_png"]
