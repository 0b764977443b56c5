"""CPU bfloat16 vs float32 in one run (issue 14): speed, agreement, training.

Sections (``--only`` picks some; default all):

* ``speed``: forward frames/s of ``--presets`` at ``--size`` for clip lengths ``--lengths``, float32
  model vs its bfloat16 copy (:func:`lgrnet.models.bf16.bfloat16_copy`), and the ``--variants``
  that take one lever away (issue 34), repeats interleaved in one process (the machine's speed
  drifts), plus the float32 and bfloat16 2048x2048 matmul rates measured in the same process;
* ``demo``: the shipped model (``--weights demo``) at its own input size on the real Test videos of
  ``<shared>/data/CVC-ClinicDB-612/Test``: the fraction of mask pixels equal between bf16 and fp32,
  and each video's Dice (pooled over its frames: 2 sum|P & G| / (sum|P| + sum|G|)) in both;
* ``fixture``: the authors' fixture weights (``<shared>/official``, sunseg_pvt case A): the
  fraction of confident mask pixels (|fp32 logit| > 1) whose sign bf16 keeps, and vs the authors'
  logits;
* ``train``: ``--train-preset`` training step time (forward, set-matching loss, backward, AdamW;
  default the shipped preset at 256, batch 2) float32 vs bfloat16 autocast (float32 master weights),
  the two models stepping alternately for ``--train-steps`` steps from the same initial weights on
  the same clips: median step times and both loss curves.

usage:
    python benchmarks/bf16.py --threads 2 --json benchmarks/results/bf16.json
    python benchmarks/bf16.py --only demo fixture
    python benchmarks/bf16.py --only speed --presets sunseg_pvt --lengths 6
    python benchmarks/bf16.py --only speed --presets sunseg_pvt --lengths 6 60 \
        --variants fp32 bf16 fp32_before bf16_before --repeat 5
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import time
from pathlib import Path
from typing import Callable, Dict, List

REPO = Path(__file__).resolve().parents[1]

import numpy as np  # noqa: E402
import torch  # noqa: E402

from lgrnet.runtime import tune_cpu_allocator  # noqa: E402


CLOCKS = {"wall": time.perf_counter, "process": time.process_time, "thread": time.thread_time}


def matmul_rate(dtype: torch.dtype, n: int = 2048, repeat: int = 5) -> float:
    a, b = torch.randn(n, n).to(dtype), torch.randn(n, n).to(dtype)
    a @ b
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        a @ b
        times.append(time.perf_counter() - t)
    return 2 * n ** 3 / statistics.median(times) / 1e9


def interleaved(fns: Dict[str, Callable[[], object]], repeat: int,
                clock: Callable[[], float] = time.perf_counter) -> Dict[str, List[float]]:
    """Seconds of each call by ``clock``, the calls alternating (one warm-up each first)."""
    for fn in fns.values():
        fn()
    times: Dict[str, List[float]] = {k: [] for k in fns}
    for _ in range(repeat):
        for k, fn in fns.items():
            t = clock()
            fn()
            times[k].append(clock() - t)
    return times


# The paths before issue 34's kernels (the op registry's previous fast paths, the backbone one frame
# at a time): "fp32_before" / "bf16_before" measure what the levers bought, in the same process.
BEFORE_OPS = {"ms_deform_attn": "fused", "neighborhood_attention": "shifted", "attention": "reference"}
VARIANTS = ("fp32", "bf16", "fp32_before", "bf16_before", "bf16_no_native", "bf16_frames1", "fp32_folded",
            "bf16_folded")


def _folded_fp32(model):
    """A float32 inference copy with its BatchNorms folded into the convolutions (what
    ``bfloat16_copy(fold=True)`` does before its cast)."""
    import copy

    from lgrnet.models.fuse import fold_batch_norms

    with torch.no_grad():
        twin = copy.deepcopy(model).eval()
    fold_batch_norms(twin)
    return twin


def _variant(name: str, fp32, bf16):
    """(model, context factory) of a named variant (see ``--variants``)."""
    import contextlib

    from lgrnet.ops import force

    def frames(model, n):
        @contextlib.contextmanager
        def ctx():
            old = model.backbone.eval_frames_per_call
            model.backbone.eval_frames_per_call = n
            try:
                yield
            finally:
                model.backbone.eval_frames_per_call = old
        return ctx

    def both(*factories):
        @contextlib.contextmanager
        def ctx():
            with contextlib.ExitStack() as stack:
                for f in factories:
                    stack.enter_context(f())
                yield
        return ctx

    old_ops = lambda: force(**BEFORE_OPS)  # noqa: E731
    if name == "fp32":
        return fp32, contextlib.nullcontext
    if name == "bf16":
        return bf16, contextlib.nullcontext
    if name == "fp32_before":
        return fp32, old_ops
    if name == "bf16_before":
        return bf16, both(old_ops, frames(bf16, 1))
    if name == "bf16_no_native":  # the fused C kernels off, everything else on
        return bf16, old_ops
    if name == "bf16_frames1":  # the backbone one frame at a time, everything else on
        return bf16, frames(bf16, 1)
    if name == "fp32_folded":  # float32 with the BatchNorms folded into the convolutions
        return _folded_fp32(fp32), contextlib.nullcontext
    if name == "bf16_folded":  # the bfloat16 copy with BatchNorms folded (bfloat16_copy(fold=True))
        from lgrnet.models.bf16 import bfloat16_copy

        return bfloat16_copy(fp32, fold=True), contextlib.nullcontext
    raise ValueError(name)


def section_speed(args) -> List[Dict]:
    from lgrnet import LGRNet
    from lgrnet.models.bf16 import bfloat16_copy

    rows = []
    rates = {"matmul_fp32_gflops": matmul_rate(torch.float32), "matmul_bf16_gflops": matmul_rate(torch.bfloat16)}
    print(f"matmul 2048: fp32 {rates['matmul_fp32_gflops']:.0f} GFLOP/s, bf16 {rates['matmul_bf16_gflops']:.0f} GFLOP/s",
          flush=True)
    clock = CLOCKS[args.clock]
    for preset in args.presets:
        torch.manual_seed(0)
        size = args.size
        if preset == "demo":  # the shipped model (lgrnet predict --weights demo) at its own input size
            from lgrnet import VideoPredictor

            predictor = VideoPredictor.from_pretrained("demo", device="cpu", precision="fp32")
            model, size = predictor.model.eval(), int(predictor.size[0])
        else:
            model = LGRNet.from_preset(preset).eval()
        twin = bfloat16_copy(model)
        for T in args.lengths:
            video = torch.rand(1, T, 3, size, size, generator=torch.Generator().manual_seed(0))
            fns = {}
            for name in args.variants:
                mod, ctx = _variant(name, model, twin)

                def run(mod=mod, ctx=ctx):
                    with ctx():
                        return mod(video)
                fns[name] = run
            with torch.inference_mode():
                t = interleaved(fns, args.repeat, clock)
            med = {k: statistics.median(v) for k, v in t.items()}
            row = {"preset": preset, "T": T, "size": size, "clock": args.clock,
                   "frames_per_s": {k: T / v for k, v in med.items()}, "seconds": t, "load": os.getloadavg()[0]}
            if "fp32" in med:
                row["speedup_vs_fp32"] = {k: med["fp32"] / v for k, v in med.items()}
                if "bf16" in med:
                    row["fp32_frames_per_s"], row["bf16_frames_per_s"] = T / med["fp32"], T / med["bf16"]
                    row["bf16_speedup"] = med["fp32"] / med["bf16"]
            rows.append(row)
            print(f"{preset} T={T} {size}px ({args.clock} clock, median of {args.repeat}, load {row['load']:.1f}): "
                  + ", ".join(f"{k} {T / v:.2f} frames/s" + (f" (x{med['fp32'] / v:.2f})" if "fp32" in med else "")
                              for k, v in med.items()), flush=True)
    rates.update({"matmul_fp32_gflops_after": matmul_rate(torch.float32),
                  "matmul_bf16_gflops_after": matmul_rate(torch.bfloat16)})
    return [rates] + rows


def _dice(p: np.ndarray, g: np.ndarray) -> float:
    s = p.sum() + g.sum()
    return float(2 * (p & g).sum() / s) if s else 1.0


def section_demo(args) -> Dict:
    from PIL import Image

    from lgrnet import VideoPredictor

    split = Path(args.shared) / "data" / "CVC-ClinicDB-612" / "Test"
    weights = "demo"  # the shipped model
    preds = {p: VideoPredictor.from_pretrained(weights, device="cpu", precision=p) for p in ("fp32", "bf16")}
    videos, equal, total = [], 0, 0
    for vdir in sorted((split / "Frame").iterdir(), key=lambda p: p.name):
        res = {p: pr.predict(str(vdir)) for p, pr in preds.items()}
        gt = np.stack([np.array(Image.open(split / "GT" / vdir.name / (Path(n).stem + ".png")).convert("L")) > 0
                       for n in res["fp32"].names])
        a, b = res["fp32"].masks > 0, res["bf16"].masks > 0
        equal += int((a == b).sum())
        total += a.size
        row = {"video": vdir.name, "frames": len(a), "pixels_equal": float((a == b).mean()),
               "dice_fp32": _dice(a, gt), "dice_bf16": _dice(b, gt)}
        row["dice_diff"] = abs(row["dice_fp32"] - row["dice_bf16"])
        videos.append(row)
        print(f"demo {vdir.name}: {row['frames']} frames, pixels equal {row['pixels_equal']:.4%}, Dice fp32 "
              f"{row['dice_fp32']:.4f} bf16 {row['dice_bf16']:.4f}", flush=True)
    out = {"size": list(preds["fp32"].size), "pixels_equal": equal / total,
           "max_dice_diff": max(v["dice_diff"] for v in videos), "videos": videos}
    print(f"demo: pixels equal {out['pixels_equal']:.4%}, max per-video Dice difference {out['max_dice_diff']:.4f} "
          f"(targets: >= 99.5 %, <= 0.005)", flush=True)
    return out


def section_fixture(args) -> Dict:
    import importlib.util

    from lgrnet import LGRNet
    from lgrnet.models.bf16 import bfloat16_copy
    from lgrnet.models.checkpoint import _check_and_load, convert_authors_state_dict

    official = Path(args.shared) / "official"
    spec = importlib.util.spec_from_file_location("make_weights", official / "make_weights.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    manifest = json.loads((official / "sunseg_pvt" / "state_dict_manifest.json").read_text())
    model = LGRNet.from_preset("sunseg_pvt").eval()
    _check_and_load(model, convert_authors_state_dict(mod.make_state_dict(manifest), model.config.backbone.name), "fixture")
    data = torch.load(official / "sunseg_pvt" / "case_A.pt", weights_only=True)
    twin = bfloat16_copy(model)
    with torch.inference_mode():
        ref, out = model(data["video"]).mask_logits, twin(data["video"]).mask_logits
    sure = ref.abs() > 1
    authors = data["mask_logits"]
    res = {"video": list(data["video"].shape), "confident_pixels": int(sure.sum()),
           "confident_equal_vs_fp32": float(((out > 0) == (ref > 0))[sure].float().mean()),
           "confident_equal_vs_authors": float(((out > 0) == (authors > 0))[authors.abs() > 1].float().mean()),
           "max_abs_logit_diff": float((out - ref).abs().max())}
    print(f"fixture sunseg_pvt A: confident pixels equal {res['confident_equal_vs_fp32']:.4%} (target >= 99 %), "
          f"max |logit diff| {res['max_abs_logit_diff']:.3g}", flush=True)
    return res


def section_train(args) -> Dict:
    from lgrnet.config import get_preset
    from lgrnet.losses.criterion import ClipTarget, SetCriterion
    from lgrnet.models.lgrnet import LGRNet
    from lgrnet.training.optim import build_optimizer

    cfg = get_preset(args.train_preset)
    torch.manual_seed(0)
    init = LGRNet(cfg.model).state_dict()
    g = torch.Generator().manual_seed(0)
    T, S, B = cfg.train.clip_len, args.train_size, args.train_batch
    # fixed pseudo-data: a blob per frame that moves, so the loss can fall
    videos, targets = [], []
    for i in range(8):
        v = torch.rand(B, T, 3, S, S, generator=g) * 0.3
        clip_targets = []
        for b in range(B):
            m = torch.zeros(T, S, S)
            for t in range(T):
                c = S // 4 + (i * 7 + b * 5 + t * 3) % (S // 2)
                m[t, c - S // 8:c + S // 8, c - S // 8:c + S // 8] = 1
            v[b, :, 0] += 0.6 * m
            clip_targets.append(ClipTarget(masks=m[None], classes=torch.zeros(1, dtype=torch.long),
                                           has_ann=torch.ones(T, dtype=torch.bool)))
        videos.append(v)
        targets.append(clip_targets)

    runs = {}
    for name in ("fp32", "bf16"):
        torch.manual_seed(0)
        model = LGRNet(cfg.model).train()
        model.load_state_dict(init)
        runs[name] = (model, SetCriterion(cfg.train.loss, cfg.model.decoder.num_classes), build_optimizer(model, cfg.train))
    clock = CLOCKS[args.clock]
    curves: Dict[str, List[float]] = {"fp32": [], "bf16": []}
    times: Dict[str, List[float]] = {"fp32": [], "bf16": []}
    for step in range(args.train_steps):
        for name in (("fp32", "bf16") if step % 2 == 0 else ("bf16", "fp32")):  # interleaved, alternating order
            model, crit, opt = runs[name]
            t0 = clock()
            with torch.autocast("cpu", dtype=torch.bfloat16, enabled=name == "bf16"):
                out = model(videos[step % len(videos)])
            loss = crit(out.aux, targets[step % len(videos)], [torch.Generator().manual_seed(step)] * B)["loss"]
            loss.backward()
            opt.step()
            opt.zero_grad(set_to_none=True)
            times[name].append(clock() - t0)
            curves[name].append(float(loss.detach()))
    step_s = {k: statistics.median(v[1:] or v) for k, v in times.items()}
    for name in ("fp32", "bf16"):
        print(f"train {args.train_preset} {S}px batch {B} T={T} {name}: {step_s[name]:.3f} s/step ({args.clock} clock), "
              f"loss {curves[name][0]:.3f} -> {curves[name][-1]:.3f}", flush=True)
    tail = max(1, args.train_steps // 10)
    print(f"bf16 step speed-up {step_s['fp32'] / step_s['bf16']:.2f}x; mean loss of the last {tail} steps "
          f"fp32 {statistics.mean(curves['fp32'][-tail:]):.3f}, bf16 {statistics.mean(curves['bf16'][-tail:]):.3f}")
    return {"preset": args.train_preset, "size": S, "batch": B, "T": T, "steps": args.train_steps, "clock": args.clock,
            "step_s": step_s, "bf16_speedup": step_s["fp32"] / step_s["bf16"], "loss": curves}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--only", nargs="+", choices=["speed", "demo", "fixture", "train"],
                    default=["speed", "demo", "fixture", "train"])
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--presets", nargs="+", default=["sunseg_pvt", "tiny"],
                    help="speed: presets (random weights) at --size; 'demo': the shipped model at its own size")
    ap.add_argument("--lengths", type=int, nargs="+", default=[6, 60])
    ap.add_argument("--size", type=int, default=352)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--variants", nargs="+", choices=VARIANTS, default=["fp32", "bf16"],
                    help="speed: what to interleave: fp32 / bf16 as they run now; *_before: the op paths "
                         "before issue 34's fused kernels and the backbone one frame at a time; bf16_no_native: "
                         "without the fused C kernels; bf16_frames1: the backbone one frame at a time; "
                         "fp32_folded / bf16_folded: with BatchNorms folded into the convolutions")
    ap.add_argument("--clock", choices=["wall", "process", "thread"], default="wall",
                    help="speed and train: wall time (default); process / thread CPU time (with --threads 1 on a busy "
                         "machine: immune to other programs taking the core, not to their cache traffic)")
    ap.add_argument("--train-preset", default="polyp_lite2", help="train: the preset (random init)")
    ap.add_argument("--train-size", type=int, default=256)
    ap.add_argument("--train-batch", type=int, default=2)
    ap.add_argument("--train-steps", type=int, default=200)
    ap.add_argument("--shared", default=str(REPO.parent / "shared"))
    ap.add_argument("--json", default=None, help="write the results here")
    args = ap.parse_args()
    tune_cpu_allocator()
    torch.set_num_threads(args.threads)
    from lgrnet.precision import resolve_precision

    report = {"threads": args.threads, "torch": torch.__version__,
              "precision_auto": resolve_precision("auto", "cpu").as_dict()}
    for name in args.only:
        report[name] = globals()[f"section_{name}"](args)
    if args.json:
        from lgrnet.files import write_text_atomic

        write_text_atomic(args.json, json.dumps(report, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
