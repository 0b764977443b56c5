"""Training engine: published parameter groups, data pipeline, bad data, exact resume after SIGKILL,
and two-process DDP (gloo) against one process on the same global batch."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from PIL import Image
from torch import nn

from lgrnet.config import get_preset, override
from lgrnet.training.clip_sampler import sample_clip
from lgrnet.data.datasets import DatasetError, find_videos
from lgrnet.training.dataset import StreamSampler, TrainClipDataset
from lgrnet.training.transforms import ClipAugParams, augment_clip, draw_params
from lgrnet.training.optim import build_optimizer, build_scheduler, clip_full_model_grad_norm, param_settings
from lgrnet.training.trainer import Trainer, TrainOptions
from lgrnet.models.lgrnet import LGRNet

REPO = Path(__file__).resolve().parents[1]

# A few steps of the tiny model on 2-frame 64x64 clips (multi-scale 64/96), 64 loss points.
FAST = ["train.clip_len=2", "train.image_size=64", "train.multiscale_sizes=[64,96]", "train.batch_size=2",
        "train.loss.num_points=64", "train.num_workers=0", "train.reference_stride=1", "train.log_every=1",
        "train.eval_every=0"]


def make_dataset(root: Path, videos: int = 3, frames: int = 5, size=(48, 56), seed: int = 0) -> Path:
    """Noise frames with a brighter moving box, its mask in GT/ (VPS layout)."""
    rng = np.random.default_rng(seed)
    h, w = size
    for v in range(videos):
        (root / "Frame" / str(v)).mkdir(parents=True, exist_ok=True)
        (root / "GT" / str(v)).mkdir(parents=True, exist_ok=True)
        for t in range(frames):
            img = (rng.random((h, w, 3)) * 120).astype(np.uint8)
            m = np.zeros((h, w), np.uint8)
            y, x = 6 + 2 * t, 8 + 4 * v
            m[y:y + h // 3, x:x + w // 3] = 255
            img[m > 0] += 120
            Image.fromarray(img).save(root / "Frame" / str(v) / f"{t + 1}.png")
            Image.fromarray(m).save(root / "GT" / str(v) / f"{t + 1}.png")
    return root


def subprocess_env():
    env = dict(os.environ)
    env["PYTHONPATH"] = str(REPO / "src") + os.pathsep + env.get("PYTHONPATH", "")
    env["OMP_NUM_THREADS"] = "1"
    return env


def read_log(run: Path):
    out = []
    with open(run / "log.jsonl", encoding="utf-8") as f:
        for line in f:
            try:
                out.append(json.loads(line))
            except json.JSONDecodeError:  # a line being written
                pass
    return out


# ----------------------------------------------------------------------------- optimizer


def test_param_groups_as_published():
    cfg = override(get_preset("tiny"), ["train.backbone_lr_mult=0.1", "train.weight_decay=1e-4"]).train
    model = LGRNet(get_preset("tiny").model)
    settings = param_settings(model, cfg)
    names = [n for n, p in model.named_parameters() if p.requires_grad]
    assert sorted(settings) == sorted(names)
    norm_types = (nn.LayerNorm, nn.GroupNorm, nn.BatchNorm2d)
    for name in names:
        owner = model.get_submodule(name.rsplit(".", 1)[0])
        lr = 1e-4 if name.startswith("backbone.") else 1e-3
        wd = 0.0 if isinstance(owner, norm_types + (nn.Embedding,)) else 1e-4
        assert settings[name]["lr"] == pytest.approx(lr), name
        assert settings[name]["weight_decay"] == wd, name
    # Spot checks of the published rule (module type only, never the parameter's own flags).
    assert settings["encoder.level_embed"]["weight_decay"] == 1e-4  # nn.Parameter, as in the authors' code
    a_logs = [n for n in names if n.endswith("A_logs")]
    assert a_logs and all(settings[n]["weight_decay"] == 1e-4 for n in a_logs)
    assert settings["decoder.query_feat.weight"]["weight_decay"] == 0.0
    assert settings["decoder.level_embed.weight"]["weight_decay"] == 0.0
    assert settings["decoder.head_norm.weight"]["weight_decay"] == 0.0
    bb_norm = [n for n in names if n.startswith("backbone.") and isinstance(model.get_submodule(n.rsplit(".", 1)[0]), nn.LayerNorm)]
    assert bb_norm and all(settings[n] == {"lr": pytest.approx(1e-4), "weight_decay": 0.0, "backbone": True} for n in bb_norm)

    opt = build_optimizer(model, cfg)
    assert isinstance(opt, torch.optim.AdamW)
    in_groups = [p for g in opt.param_groups for p in g["params"]]
    assert len(in_groups) == len(names) == len({id(p) for p in in_groups})
    by_name = {g["name"]: g for g in opt.param_groups}
    assert set(by_name) == {"backbone/decay", "backbone/no_decay", "head/decay", "head/no_decay"}


def test_published_schedule_and_clipping():
    cfg = get_preset("sunseg_pvt").train
    assert (cfg.lr, cfg.backbone_lr_mult, cfg.weight_decay, cfg.clip_grad_norm, cfg.batch_size) == (1e-3, 0.1, 1e-4, 0.01, 4)
    model = nn.Sequential(nn.Linear(3, 4), nn.LayerNorm(4))
    opt = build_optimizer(model, cfg)
    sched = build_scheduler(opt, cfg)
    lrs = []
    for it in range(823 * 6 + 1):
        lrs.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    assert lrs[823 * 3 - 1] == pytest.approx(1e-3) and lrs[823 * 3] == pytest.approx(5e-4)
    assert lrs[823 * 6] == pytest.approx(2.5e-4)
    for p in model.parameters():
        p.grad = torch.full_like(p, 3.0)
    before = torch.sqrt(sum((p.grad ** 2).sum() for p in model.parameters()))
    norm = clip_full_model_grad_norm(model, 0.01)
    after = torch.sqrt(sum((p.grad ** 2).sum() for p in model.parameters()))
    assert float(norm) == pytest.approx(float(before)) and float(after) == pytest.approx(0.01, rel=1e-5)


# ----------------------------------------------------------------------------- data


def test_clip_sampler_local_global():
    for seed in range(200):
        rng = np.random.default_rng(seed)
        n = int(rng.integers(8, 40))
        ref = int(rng.integers(0, n))
        clip = sample_clip(n, ref, 6, np.random.default_rng(seed), num_local=2, local_max_gap=3)
        assert len(clip) == 6 and clip == sorted(clip) and ref in clip
        assert all(0 <= i < n for i in clip)
        # A local neighbour 1-3 frames before and after (clamped at the ends: then a repeated end frame).
        assert any(max(0, ref - 3) <= i < ref for i in clip) or (ref == 0 and clip.count(0) >= 2)
        assert any(ref < i <= min(n - 1, ref + 3) for i in clip) or (ref == n - 1 and clip.count(n - 1) >= 2)
    # A video shorter than the clip repeats frames; a 1-frame clip is the reference.
    assert sample_clip(3, 1, 6, np.random.default_rng(0)) == sorted(sample_clip(3, 1, 6, np.random.default_rng(0)))
    assert len(sample_clip(3, 1, 6, np.random.default_rng(0))) == 6
    assert sample_clip(10, 4, 1, np.random.default_rng(0)) == [4]
    assert len(sample_clip(10, 4, 2, np.random.default_rng(0))) == 2


def test_augmentation_is_identical_for_all_frames():
    frames, masks = [], []
    for t in range(4):
        m = np.zeros((30, 40), bool)
        m[3 + t:12 + t, 5:20 + t] = True
        f = np.zeros((30, 40, 3), np.uint8)
        f[m, 0] = 255  # the mask in red
        f[0, 0, 1] = 255  # a green marker pixel: where it ends up tells the geometry
        frames.append(f)
        masks.append(m)
    masks[2] = None
    seen = set()
    for seed in range(20):
        p = draw_params(np.random.default_rng(seed))
        seen.add((p.hflip, p.vflip, p.rot90))
        fa, ma = augment_clip(frames, masks, 32, p)
        assert fa.shape == (4, 32, 32, 3) and ma[2] is None
        for t in range(4):
            # Each frame = its resized original under the clip's one flip/rotation (and the mask with it).
            exp = cv2.resize(frames[t], (32, 32), interpolation=cv2.INTER_LINEAR)
            exp_m = cv2.resize(masks[t].astype(np.uint8), (32, 32), interpolation=cv2.INTER_NEAREST) if masks[t] is not None else None
            if p.hflip:
                exp, exp_m = exp[:, ::-1], None if exp_m is None else exp_m[:, ::-1]
            if p.vflip:
                exp, exp_m = exp[::-1], None if exp_m is None else exp_m[::-1]
            exp, exp_m = np.rot90(exp, p.rot90), None if exp_m is None else np.rot90(exp_m, p.rot90)
            assert np.array_equal(fa[t], exp)
            assert (ma[t] is None) == (exp_m is None) and (exp_m is None or np.array_equal(ma[t], exp_m > 0))
        corners = [np.unravel_index(np.argmax(fa[t, ..., 1]), (32, 32)) for t in range(4)]
        assert len(set(corners)) == 1  # the marker moved to the same corner in every frame
    assert len(seen) > 4
    off = draw_params(np.random.default_rng(1), hflip=False, vflip=False, rot90=False)
    assert off == ClipAugParams(False, False, 0)


def test_stream_sampler_global_batch_independent_of_processes():
    single = list(StreamSampler(10, 4, 1, 0, seed=3, start_step=0, total_steps=7))
    ranks = [list(StreamSampler(10, 4, 2, r, seed=3, start_step=0, total_steps=7)) for r in range(2)]
    for step in range(7):
        glob = sorted(single[step * 4:(step + 1) * 4])
        split = sorted(ranks[0][step * 2:(step + 1) * 2] + ranks[1][step * 2:(step + 1) * 2])
        assert glob == split
    # Every epoch (10 consecutive positions) visits every clip once.
    assert sorted(i for i, _ in single[:10]) == list(range(10))
    resumed = list(StreamSampler(10, 4, 1, 0, seed=3, start_step=3, total_steps=7))
    assert resumed == single[12:]


def test_clip_dataset_reproducible_per_position(tmp_path):
    root = make_dataset(tmp_path / "d")
    cfg = override(get_preset("tiny"), FAST).train
    ds = TrainClipDataset(find_videos(root), cfg)
    assert len(ds) == 15
    a, b, c = ds[(4, 17)], ds[(4, 17)], ds[(4, 18)]
    assert torch.equal(a["video"], b["video"]) and a["seed"] == b["seed"] and a["frames"] == b["frames"]
    assert a["seed"] != c["seed"]
    assert a["video"].shape == (2, 3, 64, 64) and a["video"].dtype == torch.float32
    t = a["target"]
    assert t.masks.shape == (1, 2, 64, 64) and t.classes.tolist() == [0] and t.has_ann.tolist() == [True, True]


def test_frames_without_masks(tmp_path):
    root = make_dataset(tmp_path / "d", videos=1, frames=8)
    for t in (2, 3, 4):
        (root / "GT" / "0" / f"{t}.png").unlink()
    cfg = override(get_preset("tiny"), FAST + ["train.clip_len=4"]).train
    ds = TrainClipDataset(find_videos(root), cfg)
    assert len(ds) == 5  # reference frames: the annotated ones
    for pos in range(20):
        item = ds[(pos % 5, pos)]
        has = item["target"].has_ann
        assert item["target"].masks.shape[1] == int(has.sum()) >= 1
        assert [f + 1 not in (2, 3, 4) for f in item["frames"]] == has.tolist()


def test_validation_is_the_authors_dice(tmp_path, monkeypatch):
    """Validation scores each annotated frame with the authors' Dice ((2I + 1) / (|P| + |G| + 1), GT
    pixels > 0) and pools all frames; the model's masks are stubbed to known ones."""
    import lgrnet.training.validation as validation
    from types import SimpleNamespace

    root = make_dataset(tmp_path / "d", videos=2, frames=3)
    gt = {(v, t): np.asarray(Image.open(root / "GT" / str(v) / f"{t + 1}.png")) > 0 for v in range(2) for t in range(3)}
    Image.fromarray(gt[(1, 2)].astype(np.uint8) * 100).save(root / "GT" / "1" / "3.png")  # grey label: > 0 counts
    (root / "GT" / "0" / "2.png").unlink()  # an unannotated frame is not scored
    videos = find_videos(root)

    class FakePredictor:  # the model's masks are stubbed: video v's GT, frame 1 of each video empty
        def __init__(self, model, size, window=None):
            assert window is None  # whole videos, as lgrnet evaluate runs them

        def stream(self, source):
            name = calls.pop(0)
            for t in range(source.num_frames):
                mask = gt[(name, t)] & (t > 0)
                yield SimpleNamespace(index=t, mask=mask, score=0.5)  # validation also reads the score (the threshold)

    calls = [0, 1]
    monkeypatch.setattr(validation, "VideoPredictor", FakePredictor)
    model = nn.Linear(1, 1).train()
    res = validation.validate(model, videos, size=64)
    assert model.training  # restored
    empty = [1.0 / (gt[(v, 0)].sum() + 1.0) for v in range(2)]
    expected = [empty[0], 1.0, empty[1], 1.0, 1.0]  # video 0: frames 1, 3; video 1: frames 1, 2, 3
    assert res["frames"] == 5 and abs(res["dice"] - float(np.mean(expected))) < 1e-12


def _trainer(tmp_path, data, extra=()):
    cfg = override(get_preset("tiny"), FAST + list(extra))
    return Trainer(cfg, TrainOptions(data=[str(data)], out_dir=str(tmp_path / "run"), tensorboard=False, progress=False))


def test_bad_data_fails_before_step_one(tmp_path):
    root = make_dataset(tmp_path / "d", videos=2)
    Image.fromarray(np.zeros((10, 10), np.uint8)).save(root / "GT" / "1" / "3.png")
    with pytest.raises(DatasetError, match=r"size differs from their frame's: \S*GT/1/3\.png \(10x10, frame 56x48\)"):
        _trainer(tmp_path, root)
    (root / "GT" / "1" / "3.png").unlink()
    Image.fromarray(np.zeros((48, 56, 4), np.uint8)).save(root / "Frame" / "1" / "4.png")
    with pytest.raises(DatasetError, match=r"Frame/1/4\.png: RGBA frames are not supported"):
        _trainer(tmp_path, root)
    Image.fromarray(np.zeros((48, 56, 3), np.uint8)).save(root / "Frame" / "1" / "4.png")
    (root / "Frame" / "0" / "2.png").write_bytes(b"not an image")
    with pytest.raises(DatasetError, match=r"Frame/0/2\.png: cannot read image"):
        _trainer(tmp_path, root)
    bare = make_dataset(tmp_path / "bare", videos=1)
    import shutil

    shutil.rmtree(bare / "GT")
    with pytest.raises(DatasetError, match="no GT/ folder"):
        _trainer(tmp_path, bare)
    with pytest.raises(DatasetError, match="no such dataset folder"):
        _trainer(tmp_path, tmp_path / "missing")
    assert not (tmp_path / "run" / "config.json").exists()


def test_refuses_to_overwrite_a_run(tmp_path):
    root = make_dataset(tmp_path / "d")
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "last.pt").write_bytes(b"x")
    from lgrnet.errors import UserError

    with pytest.raises(UserError, match="already holds a run"):
        _trainer(tmp_path, root)


# ----------------------------------------------------------------------------- resume after SIGKILL


def _cli(out: Path, data: Path, *extra: str):
    return [sys.executable, "-m", "lgrnet.cli", "train", "--preset", "tiny", "--data", str(data), "--out", str(out),
            "--no-tensorboard", "--progress", "off", *FAST, *extra]


def test_sigkill_then_resume_equals_uninterrupted_run(tmp_path):
    data = make_dataset(tmp_path / "d")
    # drop_path > 0 makes the model itself draw from torch's RNG: resume must restore it.
    common = ["train.max_iters=12", "train.checkpoint_every=4", "model.backbone.drop_path_rate=0.1",
              "train.lr_milestones=[6]"]
    env = subprocess_env()
    full = tmp_path / "full"
    subprocess.run(_cli(full, data, *common, "--val", str(data), "train.eval_every=6"), env=env, check=True,
                   capture_output=True, timeout=300)

    killed = tmp_path / "killed"
    # This run uses a data-loader worker: clips must not depend on where they are built.
    proc = subprocess.Popen(_cli(killed, data, *common, "train.num_workers=1"), env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.time() + 240
    seen = 0
    while time.time() < deadline and proc.poll() is None:
        if (killed / "log.jsonl").exists():
            steps = [r["step"] for r in read_log(killed) if r["event"] == "train"] if (killed / "log.jsonl").stat().st_size else []
            seen = max(steps, default=0)
            if seen >= 5:
                break
        time.sleep(0.005)
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=60)
    assert proc.returncode == -signal.SIGKILL, "the run finished before it could be killed"
    ckpt = torch.load(killed / "last.pt", map_location="cpu", weights_only=True)
    assert ckpt["step"] in (4, 8) and ckpt["step"] < 12
    lost = max(r["step"] for r in read_log(killed) if r["event"] == "train")
    assert lost > ckpt["step"]  # the kill really cost steps after the checkpoint

    res = subprocess.run([sys.executable, "-m", "lgrnet.cli", "train", "--out", str(killed), "--resume",
                          "--progress", "off", "--no-tensorboard"], env=env, capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr[-3000:]
    a = [r for r in read_log(full) if r["event"] == "train"]
    b = [r for r in read_log(killed) if r["event"] == "train"]
    assert [r["step"] for r in a] == [r["step"] for r in b] == list(range(1, 13))
    for ra, rb in zip(a, b):
        for key in ("loss", "loss_bce", "loss_dice", "loss_class", "lr", "size"):
            assert ra[key] == pytest.approx(rb[key], rel=1e-6, abs=1e-9), (ra["step"], key)
    assert a[-1]["lr"] == pytest.approx(5e-4)  # the schedule crossed its milestone
    final = torch.load(killed / "last.pt", map_location="cpu", weights_only=True)
    ref = torch.load(full / "last.pt", map_location="cpu", weights_only=True)
    assert final["step"] == ref["step"] == 12
    for k, v in ref["model"].items():
        torch.testing.assert_close(final["model"][k], v, rtol=1e-5, atol=1e-7)

    # The run folder of the uninterrupted run: resolved config, validation, exported weights.
    saved = json.loads((full / "config.json").read_text())
    assert saved["train"]["max_iters"] == 12 and saved["model"]["backbone"]["drop_path_rate"] == 0.1
    vals = [r for r in read_log(full) if r["event"] == "val"]
    assert [r["step"] for r in vals] == [6, 12] and all(0 <= r["val_dice"] <= 1 for r in vals)
    best = LGRNet.from_pretrained(str(full / "best.safetensors"))
    assert best.config.preset == "tiny"
    # model.safetensors holds the final weights, exactly those of the step-12 checkpoint
    exported = LGRNet.from_pretrained(str(full / "model.safetensors")).state_dict()
    assert exported.keys() == ref["model"].keys()
    for k, v in ref["model"].items():
        assert torch.equal(exported[k], v), k


# ----------------------------------------------------------------------------- DDP (gloo)

DDP_SCRIPT = textwrap.dedent("""
    import json, os, sys
    import torch
    torch.set_num_threads(1)
    from lgrnet.config import get_preset, override
    from lgrnet.training.trainer import Trainer, TrainOptions

    overrides, data, out = json.loads(sys.argv[1]), sys.argv[2], sys.argv[3]
    tr = Trainer(override(get_preset("tiny"), overrides),
                 TrainOptions(data=[data], out_dir=out, tensorboard=False, progress=False))
    batch = next(iter(tr.loader))
    stats = tr.forward_backward(batch, 0)
    model = tr.model.module if hasattr(tr.model, "module") else tr.model
    grads = {n: p.grad.detach().clone() for n, p in model.named_parameters() if p.grad is not None}
    torch.save({"grads": grads, "positions": batch.positions, "stats": stats, "world": tr.world},
               os.path.join(out, f"grads_rank{tr.rank}.pt"))
    tr.optimizer_step()
    tr.step = 1
    tr.loader = tr._make_loader(1)
    tr.fit()  # steps 2.. through the normal loop (DDP must accept a second backward)
    params = {n: p.detach().clone() for n, p in model.named_parameters()}
    torch.save(params, os.path.join(out, f"params_rank{tr.rank}.pt"))
    if tr.world > 1:
        torch.distributed.destroy_process_group()
""")


def test_torchrun_two_processes_match_one_process(tmp_path):
    data = make_dataset(tmp_path / "d", videos=4)
    script = tmp_path / "ddp_step.py"
    script.write_text(DDP_SCRIPT)
    overrides = json.dumps(FAST + ["train.max_iters=3", "train.checkpoint_every=2"])
    env = subprocess_env()
    one = tmp_path / "one"
    two = tmp_path / "two"
    for out in (one, two):
        out.mkdir()
    r = subprocess.run([sys.executable, str(script), overrides, str(data), str(one)], env=env, capture_output=True,
                       text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-3000:]
    r = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
                        str(script), overrides, str(data), str(two)], env=env, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-3000:]

    single = torch.load(one / "grads_rank0.pt", weights_only=True)
    ranks = [torch.load(two / f"grads_rank{k}.pt", weights_only=True) for k in range(2)]
    assert single["world"] == 1 and ranks[0]["world"] == 2
    # The same global batch: stream positions 0 and 1, split over the two processes.
    assert sorted(single["positions"]) == sorted(ranks[0]["positions"] + ranks[1]["positions"]) == [0, 1]
    assert single["stats"]["size"] == ranks[0]["stats"]["size"] == ranks[1]["stats"]["size"]
    g1 = single["grads"]
    assert set(g1) == set(ranks[0]["grads"]) and len(g1) == sum(1 for _ in LGRNet(get_preset("tiny").model).parameters())
    num = den = 0.0
    for name, g in g1.items():
        for rk in ranks:
            torch.testing.assert_close(rk["grads"][name], g, rtol=1e-3, atol=1e-6 * (1 + float(g.abs().max())), msg=name)
        num += float(((ranks[0]["grads"][name] - g) ** 2).sum())
        den += float((g ** 2).sum())
    assert (num / den) ** 0.5 < 1e-4  # relative difference of the whole gradient
    # The loss the single process saw is the mean of the two processes' (one object per clip).
    assert single["stats"]["loss"] == pytest.approx((ranks[0]["stats"]["loss"] + ranks[1]["stats"]["loss"]) / 2, rel=1e-4)

    # Rank 0 wrote the checkpoint with both processes' RNG states; both ranks hold the same weights.
    ckpt = torch.load(two / "last.pt", map_location="cpu", weights_only=True)
    assert ckpt["step"] == 3 and sorted(ckpt["rng"]) == [0, 1] and ckpt["world_size"] == 2
    p0, p1 = (torch.load(two / f"params_rank{k}.pt", weights_only=True) for k in range(2))
    for k in p0:
        assert torch.equal(p0[k], p1[k]), k
    assert [r["step"] for r in read_log(two) if r["event"] == "train"] == [2, 3]


def test_cli_accepts_options_after_overrides_and_checks_keys(tmp_path):
    from lgrnet.cli import build_parser
    from lgrnet.commands.train import _merge_trailing_options
    from lgrnet.training.trainer import resolve_config
    from lgrnet.errors import UserError

    args = build_parser().parse_args(["train", "--preset", "tiny", "--data", "a", "train.lr=1e-4", "--val", "v",
                                      "--data", "b", "train.clip_len=2", "--max-steps", "3"])
    _merge_trailing_options(args)
    assert args.data == ["a", "b"] and args.val == ["v"] and args.max_steps == 3
    assert args.overrides == ["train.lr=1e-4", "train.clip_len=2"]
    cfg = resolve_config("tiny", args.overrides)
    assert cfg.train.lr == 1e-4 and cfg.train.clip_len == 2
    with pytest.raises(UserError, match="unknown config key 'train.lrr'"):
        resolve_config("tiny", ["train.lrr=1"])
    with pytest.raises(UserError, match="--preset"):
        resolve_config(None, [])


def _train_until(proc, run: Path, step: int) -> None:
    deadline = time.time() + 240
    while time.time() < deadline and proc.poll() is None:
        if (run / "log.jsonl").exists() and any(r["event"] == "train" and r["step"] >= step for r in read_log(run)):
            return
        time.sleep(0.01)


def test_sigterm_checkpoints_the_current_step(tmp_path):
    data = make_dataset(tmp_path / "d")
    run = tmp_path / "run"
    proc = subprocess.Popen(_cli(run, data, "train.max_iters=500", "train.checkpoint_every=400"), env=subprocess_env(),
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    _train_until(proc, run, 3)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 128 + signal.SIGTERM, err[-2000:]  # 143: `train && next` does not go on
    assert "(signal); resume with --resume" in err and "by a signal (SIGTERM); checkpoint saved" in err
    last = max(r["step"] for r in read_log(run) if r["event"] == "train")
    ckpt = torch.load(run / "last.pt", map_location="cpu", weights_only=True)
    assert 3 <= ckpt["step"] == last < 500  # nothing lost


def test_ctrl_c_exits_130_after_the_checkpoint_resume_finishes_then_says_finished(tmp_path):
    """Ctrl-C (SIGINT): the step's checkpoint is saved and the exit status is 130, as for `lgrnet
    predict`; --resume trains the rest; --resume of the finished run says so in one line, trains
    nothing and exits 0."""
    data = make_dataset(tmp_path / "d")
    run = tmp_path / "run"
    env = subprocess_env()
    proc = subprocess.Popen(_cli(run, data, "train.max_iters=6", "train.checkpoint_every=100"), env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    _train_until(proc, run, 2)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err[-2000:]
    ckpt = torch.load(run / "last.pt", map_location="cpu", weights_only=True)
    stopped = max(r["step"] for r in read_log(run) if r["event"] == "train")
    assert 2 <= ckpt["step"] == stopped < 6, "the run finished before Ctrl-C reached it"

    resume = [sys.executable, "-m", "lgrnet", "train", "--out", str(run), "--resume", "--progress", "off",
              "--no-tensorboard"]
    r = subprocess.run(resume, env=env, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-2000:]
    assert [x["step"] for x in read_log(run) if x["event"] == "train"] == list(range(1, 7))
    assert torch.load(run / "last.pt", map_location="cpu", weights_only=True)["step"] == 6

    before = (run / "last.pt").stat().st_mtime_ns, (run / "log.jsonl").read_text(), (run / "run.json").read_text()
    r = subprocess.run(resume, env=env, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-2000:]
    lines = [line for line in r.stderr.splitlines() if "finished" in line]
    assert len(lines) == 1 and "the run is finished (step 6 of train.max_iters=6)" in lines[0]
    assert "train.max_iters=12" in lines[0]  # how to train longer
    assert "steps 7..6" not in r.stderr and "training tiny" not in r.stderr
    after = (run / "last.pt").stat().st_mtime_ns, (run / "log.jsonl").read_text(), (run / "run.json").read_text()
    assert after == before  # nothing trained, nothing rewritten
