"""The small-data recipe options of `lgrnet train`: clip augmentation applied identically to every
frame and to the masks (a known pixel lands where the affine map says), the weight EMA against a
naive loop and across a resume, and the cosine / one-cycle schedules at known steps."""
import math

import numpy as np
import pytest
import torch

from lgrnet.config import get_preset, override
from lgrnet.training.transforms import ClipRecipeParams, apply_recipe, draw_recipe_params
from lgrnet.training.optim import build_optimizer, build_scheduler, lr_factor
from lgrnet.training.trainer import Trainer, TrainOptions, build_ema

from test_train import FAST, make_dataset

S = 32


def test_recipe_is_identical_for_all_frames():
    rng = np.random.default_rng(0)
    frame = torch.rand(3, S, S)
    video = frame.expand(4, 3, S, S).clone()  # four identical frames
    mask = torch.zeros(S, S, dtype=torch.bool)
    mask[8:20, 10:14] = True
    masks = mask.expand(2, S, S).clone()
    cfg = override(get_preset("tiny").train, ["aug_brightness=0.3", "aug_contrast=0.3", "aug_saturation=0.3",
                                              "aug_hue=0.05", "aug_blur_prob=1.0", "aug_scale=0.2",
                                              "aug_rotate=20", "aug_translate=0.1"])
    p = draw_recipe_params(rng, cfg, S)
    assert p is not None and p.geometric and p.blur_sigma > 0 and p.brightness != 1.0
    out, moved = apply_recipe(video, masks, p)
    assert not torch.allclose(out[0], frame)
    for t in range(1, 4):
        assert torch.equal(out[t], out[0])
    assert torch.equal(moved[1], moved[0]) and moved.dtype == torch.bool and moved[0].any()
    assert draw_recipe_params(rng, get_preset("tiny").train, S) is None  # all off: the published clip


def _one_pixel():
    video = torch.zeros(2, 3, S, S)
    masks = torch.zeros(1, S, S, dtype=torch.bool)
    video[:, :, 15, 25] = 1.0
    masks[0, 15, 25] = True
    return video, masks


def test_translation_moves_frames_and_mask_by_the_offset():
    video, masks = _one_pixel()
    out, moved = apply_recipe(video, masks, ClipRecipeParams(translate=(5.0, 3.0)))  # dx 5, dy 3
    assert moved[0].nonzero().tolist() == [[18, 30]]
    for t in range(2):
        assert out[t, 0].argmax().item() == 18 * S + 30 and out[t, 0, 18, 30] == pytest.approx(1.0)


def test_rotation_moves_a_pixel_as_computed():
    # torchvision's affine turns clockwise (as displayed, y down) about the centre (15.5, 15.5):
    # offset (dx, dy) = (9.5, -0.5) becomes (-dy, dx) = (0.5, 9.5): pixel (x 25, y 15) -> (x 16, y 25).
    video, masks = _one_pixel()
    out, moved = apply_recipe(video, masks, ClipRecipeParams(angle=90.0))
    assert moved[0].nonzero().tolist() == [[25, 16]]
    assert out[1, 2].argmax().item() == 25 * S + 16


def test_ema_update_equals_a_naive_loop():
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(4, 3), torch.nn.BatchNorm1d(3))
    ema = build_ema(model, 0.9)
    naive = None
    for _ in range(4):
        with torch.no_grad():
            for p in model.parameters():
                p.add_(torch.randn_like(p))
        model.train()(torch.randn(8, 4))  # moves the BatchNorm running stats (buffers are averaged too)
        ema.update_parameters(model)
        cur = {k: v.detach().clone().float() for k, v in model.state_dict().items() if v.dtype.is_floating_point}
        naive = cur if naive is None else {k: 0.9 * naive[k] + 0.1 * cur[k] for k in cur}  # first update copies
    got = ema.module.state_dict()
    for k, v in naive.items():
        torch.testing.assert_close(got[k], v, atol=1e-6, rtol=1e-6)
    assert build_ema(model, 0.0) is None


def _sched_lrs(cfg, steps):
    model = torch.nn.Linear(2, 2)
    opt = build_optimizer(model, cfg)
    sched = build_scheduler(opt, cfg)
    lrs = []
    for _ in range(steps + 1):
        lrs.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    return lrs


def test_cosine_schedule_at_known_steps():
    cfg = override(get_preset("tiny").train, ["lr=1e-3", "lr_schedule=cosine", "warmup_iters=10",
                                              "warmup_factor=0.01", "max_iters=110", "min_lr_ratio=0.01"])
    lrs = _sched_lrs(cfg, 110)
    expected = {0: 0.01, 5: 0.505, 10: 1.0, 60: 0.505, 110: 0.01}
    for step, f in expected.items():
        assert lrs[step] == pytest.approx(1e-3 * f, rel=1e-9), step
        assert lr_factor(step, cfg) == pytest.approx(f, rel=1e-9)
    assert lrs[35] == pytest.approx(1e-3 * (0.01 + 0.99 * 0.5 * (1 + math.cos(math.pi * 0.25))), rel=1e-9)


def test_onecycle_and_multistep_warmup():
    cfg = override(get_preset("tiny").train, ["lr=1e-3", "lr_schedule=onecycle", "warmup_iters=20",
                                              "warmup_factor=0.04", "max_iters=100", "min_lr_ratio=0.001"])
    lrs = _sched_lrs(cfg, 100)
    assert lrs[0] == pytest.approx(4e-5, rel=1e-6)
    assert max(lrs) == pytest.approx(1e-3, rel=1e-3) and int(np.argmax(lrs)) in (19, 20, 21)
    assert lrs[-1] == pytest.approx(1e-6, rel=0.05)
    cfg = override(get_preset("tiny").train, ["lr=1e-3", "warmup_iters=4", "warmup_factor=0.2",
                                              "lr_milestones=[6]", "lr_gamma=0.5", "max_iters=10"])
    assert _sched_lrs(cfg, 8)[:8] == pytest.approx([2e-4, 4e-4, 6e-4, 8e-4, 1e-3, 1e-3, 5e-4, 5e-4], rel=1e-9)


def test_resume_keeps_the_ema(tmp_path):
    data = make_dataset(tmp_path / "data", videos=2, frames=3)
    cfg = override(get_preset("tiny"), [o.split("=", 1)[0] + "=" + o.split("=", 1)[1] for o in FAST]
                   + ["train.max_iters=4", "train.ema_decay=0.5", "train.checkpoint_every=2", "train.aug_rotate=10",
                      "train.aug_brightness=0.2"])
    opts = dict(data=[str(data)], tensorboard=False, progress=False, device="cpu")
    whole = Trainer(cfg, TrainOptions(out_dir=str(tmp_path / "whole"), **opts))
    whole.fit()
    part = Trainer(cfg, TrainOptions(out_dir=str(tmp_path / "part"), max_steps=2, **opts))
    part.fit()
    resumed = Trainer(cfg, TrainOptions(out_dir=str(tmp_path / "part"), resume=True, **opts))
    assert resumed.step == 2
    resumed.fit()
    a, b = whole.ema.module.state_dict(), resumed.ema.module.state_dict()
    for k in a:
        torch.testing.assert_close(b[k], a[k], atol=1e-6, rtol=1e-6, msg=k)
    w = whole.model.state_dict()
    assert any(not torch.allclose(a[k].float(), w[k].float()) for k in w if w[k].dtype.is_floating_point)


def test_recipe_flags_become_config_fields_that_key_value_overrides_beat():
    import argparse

    from lgrnet.commands import train as cmd
    from lgrnet.training.trainer import resolve_config

    p = argparse.ArgumentParser()
    cmd.add_arguments(p)
    a = p.parse_args(["--preset", "tiny", "--ema", "0.99", "--augment", "geometric", "--lr-schedule", "cosine",
                      "--warmup", "7", "train.aug_rotate=5"])
    cfg = resolve_config("tiny", cmd.recipe_overrides(a) + list(a.overrides))
    assert (cfg.train.ema_decay, cfg.train.lr_schedule, cfg.train.warmup_iters) == (0.99, "cosine", 7)
    assert cfg.train.aug_rotate == 5.0 and cfg.train.aug_scale == 0.15 and cfg.train.aug_brightness == 0.0
