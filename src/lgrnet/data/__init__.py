"""Dataset layouts on disk (MICCAI VPS, SUN-SEG, UFUV): finding a split's videos with their frames
and masks, and checking them before use. The training side (clip sampling, augmentation) is
:mod:`lgrnet.training`; reading image files is :mod:`lgrnet.io.images`."""
from .datasets import DatasetError, SplitLayout, ValidationReport, VideoRecord, find_videos, resolve_split, validate_split, validate_videos

__all__ = ["DatasetError", "SplitLayout", "ValidationReport", "VideoRecord", "find_videos", "resolve_split",
           "validate_split", "validate_videos"]
