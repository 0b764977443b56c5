"""Test videos, encoded with PyAV directly (independent of lgrnet's own writer and reader)."""
from __future__ import annotations

import itertools
from fractions import Fraction
from pathlib import Path
from typing import Iterable, List, Optional

import av
import numpy as np


def encode_video(path, frames: Iterable[np.ndarray], fps=25, codec: str = "libx264", crf: Optional[int] = None,
                 gop: Optional[int] = None, faststart: bool = False) -> Path:
    """Encode uint8 RGB (H, W, 3) frames (any iterable: they are encoded as they come) to ``path``.

    ``crf``: libx264's quality (0: near-lossless); ``gop``: a key frame every ``gop`` frames, no
    B-frames and no scene-cut key frames (for seek tests); ``faststart``: moov atom first (mp4).
    """
    frames = iter(frames)
    first = next(frames)
    c = av.open(str(path), "w", container_options={"movflags": "+faststart"} if faststart else {})
    try:
        st = c.add_stream(codec, rate=Fraction(fps).limit_denominator(1001))
        st.height, st.width = first.shape[:2]
        st.pix_fmt = "yuv420p"
        options = {}
        if crf is not None:
            options["crf"] = str(crf)
        if gop:
            st.codec_context.gop_size = gop
            options.update(bf="0", sc_threshold="0")
        st.options = options
        for f in itertools.chain([first], frames):
            for pk in st.encode(av.VideoFrame.from_ndarray(np.ascontiguousarray(f), format="rgb24")):
                c.mux(pk)
        for pk in st.encode(None):
            c.mux(pk)
    finally:
        c.close()
    return Path(path)


def decode_video(path) -> List[np.ndarray]:
    """Every frame of ``path`` as uint8 RGB, as FFmpeg decodes it."""
    with av.open(str(path)) as c:
        return [f.to_ndarray(format="rgb24") for f in c.decode(video=0)]
