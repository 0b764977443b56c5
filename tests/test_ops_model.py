"""The fast paths inside the model: outputs equal to the all-reference model to float rounding
(T = 1 and an odd T, non-square frames), the dense-layer dispatch, inference-then-training with
cached tensors, and the published-numerics default of the thresholded-mask config.

Tolerance on mask logits: 1e-4 max abs for the random ``tiny`` model (float32 rounding through
the whole network; typical values ~1e-5)."""
from __future__ import annotations

import pytest
import torch

from lgrnet import LGRNet
from lgrnet.models.blocking import BLOCKING, blocking
from lgrnet.ops import chosen, force, linear
from lgrnet.ops.dense import DispatchLinear


@pytest.fixture(autouse=True)
def _one_thread(one_thread):
    """Every test here runs thousands of tiny ops (conftest's ``one_thread``)."""


@pytest.fixture(scope="module")
def tiny():
    torch.manual_seed(0)
    return LGRNet.from_preset("tiny").eval()


@pytest.mark.parametrize("T,H,W", [(1, 64, 64), (3, 64, 96)])
def test_fast_paths_match_reference_model(tiny, T, H, W):
    video = torch.rand(1, T, 3, H, W, generator=torch.Generator().manual_seed(T))
    with torch.inference_mode():
        fast = tiny(video, return_aux=True)
        with force("reference"):
            ref = tiny(video, return_aux=True)
    for a, b in zip(fast.aux, ref.aux):
        assert (a.mask_logits - b.mask_logits).abs().max().item() <= 1e-4
        assert (a.class_logits - b.class_logits).abs().max().item() <= 1e-4


def test_without_aux_only_the_last_head_and_same_result(tiny):
    video = torch.rand(1, 3, 3, 64, 64, generator=torch.Generator().manual_seed(5))
    with torch.inference_mode():
        full = tiny(video, return_aux=True)
        last = tiny(video)
    assert len(last.aux) == 1
    # the intermediate heads' masks come from a composite resize: equal to rounding
    assert (last.mask_logits - full.mask_logits).abs().max().item() <= 1e-4


def test_dense_dispatch():
    x, w, b = torch.randn(4, 7, 16), torch.randn(8, 16), torch.randn(8)
    with torch.inference_mode():
        assert chosen("linear", x) in ("onednn", "reference")
        y = linear(x, w, b)
    assert chosen("linear", x) == "reference"  # autograd on: the reference path
    assert (y - torch.nn.functional.linear(x, w, b)).abs().max().item() <= 1e-5
    lin = torch.nn.Linear(16, 8)
    lin.__class__ = DispatchLinear
    assert set(lin.state_dict()) == {"weight", "bias"}


def test_inference_then_training(tiny):
    model = LGRNet.from_preset("tiny")
    model.load_state_dict(tiny.state_dict())
    with torch.inference_mode():
        model.eval()(torch.rand(1, 2, 3, 64, 64))  # fills the shape caches inside inference mode
    out = model.train()(torch.rand(1, 2, 3, 64, 64))
    sum(h.mask_logits.square().mean() + h.class_logits.square().mean() for h in out.aux).backward()
    assert all(p.grad is not None for p in model.parameters())


def test_thresholded_mask_config_defaults_to_published_numerics():
    assert LGRNet.from_preset("fibroid_pvt").published_numerics
    assert not LGRNet.from_preset("sunseg_pvt").published_numerics


@pytest.mark.parametrize("preset", ["tiny", "fibroid_tiny"])
def test_long_clip_frame_groups_equal_whole_clip(tiny, preset):
    """CPU cache blocking (lgrnet.models.blocking: groups of 8 frames, blocks of 512 FFN rows)
    gives the unblocked result; 10 frames make two groups, one of them short."""
    model = tiny
    if preset == "fibroid_tiny":  # the thresholded collect mask, per frame group
        torch.manual_seed(1)
        model = LGRNet.from_preset("tiny", encoder=tiny.config.encoder).eval()
        model.encoder.layers[0].global_branch.use_attn_mask = True
    video = torch.rand(2, 5, 3, 64, 64, generator=torch.Generator().manual_seed(11))  # 10 frames > 8
    assert (BLOCKING.frames, BLOCKING.rows) == (8, 512)
    with torch.inference_mode():
        grouped = model(video)
        with blocking(frames=0, rows=0):
            whole = model(video)
        with blocking(frames=3, rows=100):  # uneven groups everywhere
            small = model(video)
    assert (BLOCKING.frames, BLOCKING.rows) == (8, 512)  # restored
    for other in (whole, small):
        assert (grouped.mask_logits - other.mask_logits).abs().max().item() <= 1e-4
        assert torch.equal(grouped.best_query(), other.best_query())


def test_training_runs_the_same_blocked_code(tiny):
    """Blocking applies with autograd too (training and CPU inference run one code path): loss and
    gradients equal the unblocked ones to float rounding."""
    model = LGRNet.from_preset("tiny")
    model.load_state_dict(tiny.state_dict())
    model.train()
    video = torch.rand(1, 5, 3, 64, 64, generator=torch.Generator().manual_seed(3))
    grads = []
    for frames, rows in ((2, 64), (0, 0)):
        model.zero_grad()
        with blocking(frames=frames, rows=rows):
            out = model(video)
            loss = sum(h.mask_logits.square().mean() + h.class_logits.square().mean() for h in out.aux)
        loss.backward()
        grads.append((loss.item(), [p.grad.clone() for p in model.parameters()]))
    (l0, g0), (l1, g1) = grads
    assert abs(l0 - l1) <= 1e-4 * max(1.0, abs(l1))
    for a, b in zip(g0, g1):
        assert (a - b).abs().max().item() <= 1e-4 * max(1.0, b.abs().max().item())
