"""The per-frame score's clip factor (lgrnet.inference.postprocess.clip_mask_score): against a naive
loop with numpy's median, and its effect (a frame's score depends on how sure its clip is)."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from lgrnet.inference.postprocess import clip_mask_score, clip_maps


def naive_clip_mask_score(logits: np.ndarray) -> float:
    """logits (T, h, w) -> median over frames with a mask of the mean sigmoid inside (0 if none)."""
    inside = []
    for frame in logits.astype(np.float64):
        mask = frame > 0
        if mask.any():
            inside.append((1 / (1 + np.exp(-frame[mask]))).mean())
    return float(np.median(inside)) if inside else 0.0


@pytest.mark.parametrize("T", [1, 2, 5, 8])
def test_clip_mask_score_matches_a_naive_loop(T):
    gen = torch.Generator().manual_seed(T)
    logits = torch.randn(T, 3, 12, 10, generator=gen) * 3 - 1       # (T, Nq, h, w)
    logits[0, 1] = -5.0                                               # query 1: frame 0 has no mask
    logits[:, 2] = -1.0                                               # query 2: no mask in any frame
    got = clip_mask_score(logits)
    assert got.shape == (3,)
    for q in range(3):
        want = naive_clip_mask_score(logits[:, q].numpy())
        assert float(got[q]) == pytest.approx(want, abs=1e-6), q
        assert float(clip_mask_score(logits[:, q])) == pytest.approx(want, abs=1e-6), q
    assert float(got[2]) == 0.0


def test_a_frame_scores_lower_in_an_unsure_clip():
    """The same frame 0 in two clips: its score is lower where the other frames' masks are less sure,
    and score = class_score * mask_score * clip_mask_score frame by frame."""
    frame0 = torch.full((16, 16), -6.0)
    frame0[4:12, 4:12] = 4.0
    sure = frame0.clone()
    unsure = torch.full((16, 16), -6.0)
    unsure[4:12, 4:12] = 0.3
    a = clip_maps(torch.stack([frame0, sure, sure]), 0.9, 0, (32, 32))
    b = clip_maps(torch.stack([frame0, unsure, unsure]), 0.9, 0, (32, 32))
    assert a.mask_score[0] == b.mask_score[0]
    assert b.clip_mask_score < a.clip_mask_score and b.score[0] < a.score[0]
    np.testing.assert_allclose(b.score, b.class_score * b.mask_score * b.clip_mask_score, rtol=1e-6)
    # a slice given the clip's factor is the whole clip's result for those frames
    part = clip_maps(torch.stack([frame0, unsure, unsure])[1:], 0.9, 0, (32, 32), clip_score=b.clip_mask_score)
    np.testing.assert_array_equal(part.score, b.score[1:])
