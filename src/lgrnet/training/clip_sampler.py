"""Which frames of a video form a training clip (the published "local-global" sampler).

Around a reference frame r: ``num_local`` neighbours alternately before and after it, each 1 to
``local_max_gap`` frames further out (clamped at the video's ends), then the rest of the clip
drawn without replacement from the frames outside [first local, last local) ("global" frames),
and all indices sorted by time. As in the authors' ``Naive_ReferenceFrame_FrameSampler``:

* the global pool is ``frames[:min(local)] + frames[max(local):]``: the last local frame is in
  it, so it may be drawn twice; clamping at the ends may repeat the reference frame;
* a pool smaller than what is needed is replaced by the whole video, and a video shorter than
  the clip repeats frames.

Differences: the authors' sampler always adds both neighbours (a 2-frame clip would get 3
frames); here a clip never has more than ``clip_len`` frames (a 2-frame clip = reference + the
frame before it).
"""
from __future__ import annotations

from typing import List

import numpy as np


def sample_clip(num_frames: int, ref: int, clip_len: int, rng: np.random.Generator,
                num_local: int = 2, local_max_gap: int = 3) -> List[int]:
    """Sorted frame indices (length ``clip_len``, repeats possible) of a clip around ``ref``."""
    if num_frames < 1:
        raise ValueError("a video needs at least one frame")
    if not 0 <= ref < num_frames:
        raise ValueError(f"reference frame {ref} outside a {num_frames}-frame video")
    if clip_len < 1:
        raise ValueError(f"clip_len must be >= 1, got {clip_len}")
    if local_max_gap < 1:
        raise ValueError(f"local_max_gap must be >= 1, got {local_max_gap}")
    picked = [ref]
    lo = hi = ref
    for k in range(min(num_local, clip_len - 1)):
        gap = int(rng.integers(1, local_max_gap + 1))
        if k % 2 == 0:  # before
            lo = max(0, lo - gap)
            picked.append(lo)
        else:  # after
            hi = min(num_frames - 1, hi + gap)
            picked.append(hi)
    need = clip_len - len(picked)
    if need > 0:
        everything = list(range(num_frames))
        pool = everything[:min(picked)] + everything[max(picked):]
        if len(pool) > need:
            picked += [pool[i] for i in rng.choice(len(pool), size=need, replace=False)]
        elif num_frames >= need:
            picked += [int(i) for i in rng.choice(num_frames, size=need, replace=False)]
        else:
            reps, rest = divmod(need, num_frames)
            picked += everything * reps + [int(i) for i in rng.choice(num_frames, size=rest, replace=False)]
    return sorted(int(i) for i in picked)
