"""Datasets on disk, clip sampling and augmentation."""
from .datasets import (DatasetError, SplitLayout, ValidationReport, VideoRecord, find_videos, natural_sorted,
                       read_frame, read_mask, resolve_split, validate_split, validate_videos)

__all__ = ["DatasetError", "SplitLayout", "ValidationReport", "VideoRecord", "find_videos", "natural_sorted",
           "read_frame", "read_mask", "resolve_split", "validate_split", "validate_videos"]
