"""Datasets on disk, clip sampling and augmentation."""
from .datasets import DatasetError, VideoRecord, find_videos, natural_sorted, read_frame, read_mask

__all__ = ["DatasetError", "VideoRecord", "find_videos", "natural_sorted", "read_frame", "read_mask"]
