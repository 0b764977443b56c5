"""One-shot GPU check of the network (run on a CUDA machine; prints a table at the end).

1. The authors' fixtures on CUDA in float32 (TF32 off): max |mask logit| difference per case.
2. bf16 autocast vs float32 on the same clip: mask agreement and logit error.
3. Throughput of sunseg_pvt at 352x352 in bf16 (inference_mode, frames batched in the backbone):
   frames/s for T = 6, 30, 120, timed with CUDA events (median of repeats).

usage: PYTHONPATH=src python benchmarks/gpu_smoke.py [--shared ../shared] [--out results.json]
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time

import torch


def load_official(preset: str, shared: str):
    sys.path.insert(0, os.path.join(shared, "official"))
    from make_weights import make_state_dict  # noqa: E402

    from lgrnet import LGRNet
    from lgrnet.models.checkpoint import _check_and_load, convert_authors_state_dict

    man = json.load(open(os.path.join(shared, "official", preset, "state_dict_manifest.json")))
    model = LGRNet.from_preset(preset).eval()
    _check_and_load(model, convert_authors_state_dict(make_state_dict(man), model.config.backbone.name), preset)
    return model


def time_cuda(fn, warmup=2, repeat=5):
    if not torch.cuda.is_available():  # CPU dry run of this script
        fn()
        t = time.perf_counter()
        fn()
        return time.perf_counter() - t
    for _ in range(warmup):
        fn()
    torch.cuda.synchronize()
    times = []
    for _ in range(repeat):
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        fn()
        end.record()
        torch.cuda.synchronize()
        times.append(start.elapsed_time(end) / 1000)
    return statistics.median(times)


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--shared", default=os.environ.get("LGRNET_SHARED", "../shared"))
    ap.add_argument("--out", default=None)
    ap.add_argument("--lengths", default="6,30,120")
    ap.add_argument("--size", type=int, default=352)
    ap.add_argument("--device", default="cuda")
    args = ap.parse_args()
    dev = torch.device(args.device)
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    rows = []
    report = {"device": torch.cuda.get_device_name() if dev.type == "cuda" else "cpu", "torch": torch.__version__}

    # 1. fixtures in fp32 on CUDA
    fixtures = {}
    for preset, case in [("sunseg_pvt", "A"), ("sunseg_pvt", "B"), ("fibroid_pvt", "A"), ("sunseg_res2net", "A")]:
        model = load_official(preset, args.shared).to(dev)
        data = torch.load(os.path.join(args.shared, "official", preset, f"case_{case}.pt"), weights_only=True)
        with torch.inference_mode():
            out = model(data["video"].to(dev))
        diff = (out.mask_logits.float().cpu() - data["mask_logits"]).abs().max().item()
        sure = data["mask_logits"].abs() > 1e-3
        flips = ((out.mask_logits.cpu() > 0) != data["final_masks"])[sure].sum().item()
        cdiff = (out.class_probs.cpu()[:, None] - data["class_probs"]).abs().max().item()
        fixtures[f"{preset}:{case}"] = {"mask_max_abs": diff, "flips": flips, "class_max_abs": cdiff}
        rows.append((f"fixture {preset}:{case} fp32", f"mask diff {diff:.2e}, flips {flips}, class {cdiff:.1e}"))
    report["fixtures_fp32_cuda"] = fixtures

    # 2. bf16 vs fp32 on one clip (sunseg_pvt weights of the fixtures, 352x352, T=6)
    model = load_official("sunseg_pvt", args.shared).to(dev)
    model.backbone.eval_frames_per_call = 0  # batch frames on the GPU
    g = torch.Generator().manual_seed(0)
    video = torch.rand(1, 6, 3, args.size, args.size, generator=g).to(dev)
    with torch.inference_mode():
        ref = model(video)
        with torch.autocast(dev.type, dtype=torch.bfloat16):
            low = model(video)
    q = ref.best_query()[0].item()
    a, b = ref.mask_logits[0, :, q].float(), low.mask_logits[0, :, q].float()
    agree = ((a > 0) == (b > 0)).float().mean().item()
    rel = ((a - b).norm() / a.norm()).item()
    report["bf16_vs_fp32"] = {"mask_agreement": agree, "rel_l2": rel, "same_best_query": int(low.best_query()[0]) == q}
    rows.append(("bf16 vs fp32 (T=6, 352)", f"mask agreement {agree:.4f}, rel L2 {rel:.2e}, same query {int(low.best_query()[0]) == q}"))

    # 3. throughput
    thr = {}
    for T in [int(t) for t in args.lengths.split(",")]:
        video = torch.rand(1, T, 3, args.size, args.size, device=dev)

        def run():
            with torch.inference_mode(), torch.autocast(dev.type, dtype=torch.bfloat16):
                model(video)

        try:
            sec = time_cuda(run)
            peak = float("nan")
            if dev.type == "cuda":
                torch.cuda.reset_peak_memory_stats()
                run()
                peak = torch.cuda.max_memory_allocated() / 2**30
            thr[T] = {"seconds": sec, "frames_per_s": T / sec, "peak_gib": peak}
            rows.append((f"bf16 forward T={T} {args.size}x{args.size}", f"{T / sec:8.1f} frames/s  ({sec * 1000:.1f} ms, peak {peak:.2f} GiB)"))
        except torch.cuda.OutOfMemoryError:
            rows.append((f"bf16 forward T={T}", "out of memory"))
            torch.cuda.empty_cache()
    report["throughput_bf16"] = thr

    print("\n== GPU smoke:", report["device"], "torch", report["torch"])
    for name, value in rows:
        print(f"{name:32s} {value}")
    if args.out:
        with open(args.out, "w") as f:
            json.dump(report, f, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
