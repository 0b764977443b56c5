"""One-shot GPU check of lgrnet's fast paths and bf16 inference (self-contained, ~2-4 minutes).

Run on a CUDA machine from the repository root:

    PYTHONPATH=src python benchmarks/gpu_check.py [--shared ../shared] [--out gpu_check.json]

What it checks (TF32 off for every float32 comparison), then prints one table:

1. ops on the device, float32: each op's automatically chosen implementation (the built-in fast
   path, or NATTEN / mamba_ssm when installed and verified) against the reference on the same
   device, forward and backward, on the benchmark shapes; times (CUDA events, median) of both;
2. the model: ``sunseg_pvt`` (the authors' fixture weights when ``--shared`` has them, else a
   seeded random init) on one 6-frame 352x352 clip:
   a. float32 on the CPU, computed here (the reference),
   b. float32 on the GPU vs (a): max |mask logit| difference, mask agreement,
   c. bf16 autocast on the GPU vs (b) and vs (a): mask agreement of the query float32 chooses,
      relative L2 of its logits, class-probability difference, whether the chosen query is the same;
3. the authors' fixtures on the GPU in float32 (when ``--shared`` has them): max |mask logit|
   difference and mask flips (the fibroid config runs its published-numerics path);
4. throughput: bf16 autocast, inference mode, frames batched through the backbone: frames/s and
   peak memory for T = 6, 30, 120 (whole clip) and T = 120 in windows of 6, plus float32 at T = 6;
5. where the time goes: per-module CUDA time and the top kernels of one bf16 forward (T = 30);
6. torch.compile (only with --compile);
7. CUDA graphs (lgrnet.inference.cuda_graphs) for windows of 6 and 30 frames: a graph captured on one
   clip and replayed on another against the eager forward of that clip, eager vs replay frames/s,
   and ``VideoPredictor(cuda_graphs=True)`` on a 120-frame video against eager prediction.

Pass marks: ops within 1e-4 of the reference (float32, relative to the largest reference
value); model float32 GPU vs CPU within 1e-3 max abs (cuDNN/cuBLAS round differently than the
CPU; the network amplifies rounding ~30x) with >= 99.99% equal masks; bf16 masks of the float32
query agreeing on >= 99% of the pixels; CUDA graph replays with >= 99.9% of the eager masks and
the same chosen query. Throughput is reported, not marked (goal: >= 200 frames/s
at 352x352 on an H100).
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path
from typing import Callable, Dict, List, Tuple

REPO = Path(__file__).resolve().parents[1]

import torch  # noqa: E402

ROWS: List[Tuple[str, str, str]] = []  # (check, result, mark)


def row(name: str, result: str, ok=None) -> None:
    mark = "" if ok is None else ("PASS" if ok else "FAIL")
    ROWS.append((name, result, mark))
    print(f"  {name}: {result} {mark}", flush=True)


def sync(dev) -> None:
    if dev.type == "cuda":
        torch.cuda.synchronize()


def timed(fn: Callable[[], object], dev, warmup: int = 2, repeat: int = 5) -> float:
    """Median seconds (CUDA events on a GPU)."""
    for _ in range(warmup):
        fn()
    sync(dev)
    times = []
    for _ in range(repeat):
        if dev.type == "cuda":
            a, b = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            a.record()
            fn()
            b.record()
            torch.cuda.synchronize()
            times.append(a.elapsed_time(b) / 1000)
        else:
            t = time.perf_counter()
            fn()
            times.append(time.perf_counter() - t)
    return statistics.median(times)


def rel_err(a: torch.Tensor, b: torch.Tensor) -> float:
    return ((a.double() - b.double()).abs().max() / b.double().abs().max().clamp_min(1e-30)).item()


# ----------------------------------------------------------------------------- 1. ops

def check_ops(dev, report: Dict) -> None:
    from lgrnet.ops import chosen, force, ms_deform_attn, neighborhood_attention, selective_scan

    print("1. ops on the device (float32)", flush=True)
    g = torch.Generator().manual_seed(0)
    L, dim, n = 6000, 256, 16
    scan_args = [torch.randn(1, dim, L, generator=g), torch.randn(1, dim, L, generator=g) * 0.5,
                 -torch.exp(torch.randn(dim, n, generator=g) * 0.5), torch.randn(1, 2, n, L, generator=g),
                 torch.randn(1, 2, n, L, generator=g), torch.randn(dim, generator=g), torch.randn(dim, generator=g) * 0.1]
    na_args = [torch.randn(6, 8, 44, 44, 8, generator=g) for _ in range(3)]
    shapes = [(11, 11), (22, 22), (44, 44)]
    S = sum(h * w for h, w in shapes)
    md_args = [torch.randn(6, S, 8, 8, generator=g), torch.rand(6, S, 8, 3, 4, 2, generator=g) * 1.2 - 0.1,
               torch.rand(6, S, 8, 3, 4, generator=g).softmax(-1)]
    cases = [
        ("selective_scan", "scan L=6000 d=256 n=16", scan_args,
         lambda u, d, A, B, C, D, b: selective_scan(u, d, A, B, C, D, delta_bias=b, delta_softplus=True)),
        ("neighborhood_attention", "neighborhood attn 6x44x44 k5", na_args,
         lambda q, k, v: neighborhood_attention(q, k, v, 5, 1)),
        ("ms_deform_attn", "deformable attn core 6 frames", md_args,
         lambda v, loc, a: ms_deform_attn(v, shapes, loc, a)),
    ]
    out = {}
    for op, label, args, fn in cases:
        args = [a.to(dev) for a in args]
        impl = chosen(op, args[0])
        res = {"impl": impl}
        outs, grads = {}, {}
        for mode in ("fast", "reference"):
            leaves = [a.clone().requires_grad_(True) for a in args]
            ctx = force("reference") if mode == "reference" else force()
            with ctx:
                y = fn(*leaves)
                y.backward(torch.ones_like(y))
                outs[mode] = y.detach()
                grads[mode] = [t.grad for t in leaves]
                with torch.no_grad():
                    res[f"{mode}_fwd_ms"] = timed(lambda: fn(*args), dev) * 1000

                def fb():
                    z = fn(*leaves)
                    z.backward(torch.ones_like(z))
                res[f"{mode}_fwd_bwd_ms"] = timed(fb, dev, warmup=1, repeat=3) * 1000
        # bf16 autocast on bf16 inputs vs the float32 reference on the same (rounded) inputs
        rounded = [a.to(torch.bfloat16) for a in args]
        with torch.no_grad():
            with torch.autocast(dev.type, dtype=torch.bfloat16):
                low = fn(*rounded)
            with force("reference"):
                ref_rounded = fn(*[a.float() for a in rounded])
        res["bf16_autocast_rel_err"] = rel_err(low.float(), ref_rounded)
        row(f"{label} [{impl}] bf16 autocast", f"err vs fp32 reference {res['bf16_autocast_rel_err']:.1e}",
            res["bf16_autocast_rel_err"] <= 5e-2)
        res["fwd_rel_err"] = rel_err(outs["fast"], outs["reference"])
        res["grad_rel_err"] = max(rel_err(a, b) for a, b in zip(grads["fast"], grads["reference"]))
        ok = res["fwd_rel_err"] <= 1e-4 and res["grad_rel_err"] <= 1e-4
        row(f"{label} [{impl}]", f"err fwd {res['fwd_rel_err']:.1e} grad {res['grad_rel_err']:.1e}; "
            f"fwd {res['fast_fwd_ms']:.1f} ms (ref {res['reference_fwd_ms']:.1f}), fwd+bwd {res['fast_fwd_bwd_ms']:.1f} ms "
            f"(ref {res['reference_fwd_bwd_ms']:.1f})", ok)
        out[op] = res
    report["ops"] = out


# ----------------------------------------------------------------------------- 2. model

def build(preset: str, shared) -> Tuple[torch.nn.Module, str]:
    from lgrnet import LGRNet

    if shared is not None:
        import importlib.util

        spec = importlib.util.spec_from_file_location("make_weights", shared / "official" / "make_weights.py")
        make_weights = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(make_weights)
        make_state_dict = make_weights.make_state_dict
        from lgrnet.models.checkpoint import _check_and_load, convert_authors_state_dict

        man = json.loads((shared / "official" / preset / "state_dict_manifest.json").read_text())
        model = LGRNet.from_preset(preset).eval()
        _check_and_load(model, convert_authors_state_dict(make_state_dict(man), model.config.backbone.name), preset)
        return model, "authors' fixture weights"
    torch.manual_seed(0)
    return LGRNet.from_preset(preset).eval(), "seeded random weights"


def compare(a, b, q: int) -> Dict:
    """a, b: LGRNetOutput; q: the query to compare (chosen by the more exact run)."""
    la, lb = a.mask_logits[0, :, q].float().cpu(), b.mask_logits[0, :, q].float().cpu()
    all_a, all_b = a.mask_logits.float().cpu(), b.mask_logits.float().cpu()
    return {
        "max_abs": (all_a - all_b).abs().max().item(),
        "mask_agreement": ((la > 0) == (lb > 0)).float().mean().item(),
        "mask_agreement_all_queries": ((all_a > 0) == (all_b > 0)).float().mean().item(),
        "rel_l2": ((la - lb).norm() / lb.norm().clamp_min(1e-30)).item(),
        "class_prob_max_abs": (a.class_probs.float().cpu() - b.class_probs.float().cpu()).abs().max().item(),
        "same_query": int(b.best_query()[0]) == q,
    }


def check_model(dev, shared, size: int, report: Dict):
    print("2. model outputs: CPU float32 vs GPU float32 vs GPU bf16", flush=True)
    model, weights = build("sunseg_pvt", shared)
    video = torch.rand(1, 6, 3, size, size, generator=torch.Generator().manual_seed(0))
    t = time.perf_counter()
    with torch.inference_mode():
        cpu = model(video)
    cpu_s = time.perf_counter() - t
    model = model.to(dev)
    model.backbone.eval_frames_per_call = 0  # batch the frames through the backbone on the GPU
    v = video.to(dev)
    with torch.inference_mode():
        f32 = model(v)
        with torch.autocast(dev.type, dtype=torch.bfloat16):
            bf = model(v)
    q = int(cpu.best_query()[0])
    r = {"weights": weights, "cpu_fp32_forward_s": cpu_s, "query": q,
         "gpu_fp32_vs_cpu_fp32": compare(f32, cpu, q), "gpu_bf16_vs_gpu_fp32": compare(bf, f32, q),
         "gpu_bf16_vs_cpu_fp32": compare(bf, cpu, q)}
    a = r["gpu_fp32_vs_cpu_fp32"]
    row("GPU fp32 vs CPU fp32 (T=6, 352)", f"max |d logit| {a['max_abs']:.1e}, masks {a['mask_agreement_all_queries'] * 100:.3f}% equal, "
        f"same query {a['same_query']}", a["max_abs"] <= 1e-3 and a["mask_agreement_all_queries"] >= 0.9999)
    for key, label in (("gpu_bf16_vs_gpu_fp32", "GPU bf16 vs GPU fp32"), ("gpu_bf16_vs_cpu_fp32", "GPU bf16 vs CPU fp32")):
        b = r[key]
        row(label, f"mask agreement {b['mask_agreement'] * 100:.2f}% (all queries {b['mask_agreement_all_queries'] * 100:.2f}%), "
            f"rel L2 {b['rel_l2']:.1e}, class prob diff {b['class_prob_max_abs']:.1e}, same query {b['same_query']}",
            b["mask_agreement"] >= 0.99)
    report["model"] = r
    return model


def check_fixtures(dev, shared, report: Dict) -> None:
    print("3. the authors' fixtures on the GPU (float32)", flush=True)
    res = {}
    for preset, case in (("sunseg_pvt", "A"), ("sunseg_pvt", "B"), ("fibroid_pvt", "A"), ("sunseg_res2net", "A")):
        model, _ = build(preset, shared)
        model = model.to(dev)
        data = torch.load(shared / "official" / preset / f"case_{case}.pt", weights_only=True)
        with torch.inference_mode():
            out = model(data["video"].to(dev))
        d = (out.mask_logits.float().cpu() - data["mask_logits"]).abs().max().item()
        sure = data["mask_logits"].abs() > 1e-3
        flips = ((out.mask_logits.cpu() > 0) != data["final_masks"])[sure].sum().item()
        res[f"{preset}:{case}"] = {"mask_max_abs": d, "flips": flips}
        row(f"fixture {preset}:{case} fp32", f"max |d logit| {d:.1e}, flips {flips}", d <= 1e-3 and flips == 0)
        del model
    report["fixtures"] = res


# ----------------------------------------------------------------------------- 4. throughput

def check_throughput(dev, model, size: int, lengths: List[int], report: Dict) -> None:
    print("4. throughput", flush=True)
    res = []
    configs = [(T, 0, True) for T in lengths] + [(max(lengths), 6, True), (6, 0, False)]
    for T, window, bf16 in configs:
        video = torch.rand(1, T, 3, size, size, device=dev)

        def run():
            with torch.inference_mode(), torch.autocast(dev.type, dtype=torch.bfloat16, enabled=bf16):
                if window:
                    for s in range(0, T, window):
                        model(video[:, s:s + window])
                else:
                    model(video)

        name = f"{'bf16' if bf16 else 'fp32'} T={T} {size}px " + (f"windows of {window}" if window else "whole clip")
        try:
            if dev.type == "cuda":
                torch.cuda.empty_cache()
                torch.cuda.reset_peak_memory_stats()
            sec = timed(run, dev, warmup=2, repeat=5 if T <= 30 else 3)
            peak = torch.cuda.max_memory_allocated() / 2 ** 30 if dev.type == "cuda" else float("nan")
            res.append({"config": name, "T": T, "window": window, "bf16": bf16, "seconds": sec,
                        "frames_per_s": T / sec, "peak_gib": peak})
            row(name, f"{T / sec:8.1f} frames/s ({sec * 1000:.1f} ms, peak {peak:.2f} GiB)")
        except torch.cuda.OutOfMemoryError:
            row(name, "out of memory", False)
            torch.cuda.empty_cache()
    report["throughput"] = res


# ----------------------------------------------------------------------------- 5. where the time goes

def check_scan_impls(dev, report: Dict) -> None:
    """Every selective-scan implementation that can run here, at the model's clip lengths."""
    from lgrnet.ops import force, implementations, selective_scan

    print("1b. selective scan implementations (float32)", flush=True)
    res = {}
    g = torch.Generator().manual_seed(1)
    for L in (6 * 44 * 44 // 16 * 16, 30 * 44 * 44):
        dim, n = 256, 16
        args = [torch.randn(1, dim, L, generator=g), torch.randn(1, dim, L, generator=g) * 0.5,
                -torch.exp(torch.randn(dim, n, generator=g) * 0.5), torch.randn(1, 2, n, L, generator=g),
                torch.randn(1, 2, n, L, generator=g), torch.randn(dim, generator=g), torch.randn(dim, generator=g) * 0.1]
        args = [a.to(dev) for a in args]
        for impl in implementations("selective_scan"):
            if impl == "reference" and L > 20000:
                continue
            try:
                with force(selective_scan=impl), torch.no_grad():
                    ms = timed(lambda: selective_scan(*args[:6], delta_bias=args[6], delta_softplus=True), dev) * 1000
            except Exception as exc:  # an implementation that cannot run on this device
                row(f"scan {impl} L={L}", f"unavailable ({type(exc).__name__}: {str(exc)[:80]})")
                continue
            res[f"{impl}:{L}"] = ms
            row(f"scan {impl} L={L}", f"fwd {ms:.2f} ms")
    report["scan_impls"] = res


def profile_forward(dev, model, size: int, T: int, report: Dict) -> None:
    """Per-module CUDA time (forward hooks with CUDA events) and the top kernels of one bf16 forward."""
    print(f"5. where the time goes: bf16 T={T} {size}px", flush=True)
    video = torch.rand(1, T, 3, size, size, device=dev)
    events: Dict[str, List] = {}
    handles = []
    for name, mod in model.named_modules():
        if not name or name.count(".") > 3:
            continue

        def pre(m, inp, name=name):
            e = torch.cuda.Event(enable_timing=True)
            e.record()
            events.setdefault(name, []).append([e, None])

        def post(m, inp, out, name=name):
            e = torch.cuda.Event(enable_timing=True)
            e.record()
            events[name][-1][1] = e

        handles += [mod.register_forward_pre_hook(pre), mod.register_forward_hook(post)]

    def run():
        with torch.inference_mode(), torch.autocast(dev.type, dtype=torch.bfloat16):
            model(video)

    run()
    torch.cuda.synchronize()
    events.clear()
    a, b = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    a.record()
    run()
    b.record()
    torch.cuda.synchronize()
    for h in handles:
        h.remove()
    total = a.elapsed_time(b)
    mods = {n: sum(s.elapsed_time(e) for s, e in v if e is not None) for n, v in events.items()}
    print(f"  total {total:.1f} ms (with hooks)")
    for n, ms in sorted(mods.items(), key=lambda kv: -kv[1]):
        if ms >= 0.01 * total:
            print(f"  {ms:8.2f} ms {100 * ms / total:5.1f}%  {n}")
    report["profile_modules_ms"] = {"total": total, **mods}
    from torch.profiler import ProfilerActivity, profile

    with profile(activities=[ProfilerActivity.CPU, ProfilerActivity.CUDA]) as prof:
        run()
        torch.cuda.synchronize()
    table = prof.key_averages().table(sort_by="cuda_time_total", row_limit=30, max_name_column_width=60)
    print(table)
    report["profile_kernels"] = table


def check_compile(dev, model, size: int, T: int, report: Dict) -> None:
    """torch.compile of the whole model for one fixed clip size (optional: --compile)."""
    print(f"6. torch.compile, bf16 T={T} {size}px", flush=True)
    video = torch.rand(1, T, 3, size, size, device=dev)
    t = time.time()
    try:
        cmodel = torch.compile(model)

        def run():
            with torch.inference_mode(), torch.autocast(dev.type, dtype=torch.bfloat16):
                return cmodel(video)

        run()
        compile_s = time.time() - t
        sec = timed(run, dev, warmup=1, repeat=5)
        row(f"compiled bf16 T={T}", f"{T / sec:8.1f} frames/s (compile {compile_s:.0f} s)")
        report["compile"] = {"T": T, "frames_per_s": T / sec, "compile_s": compile_s}
    except Exception as exc:
        row(f"compiled bf16 T={T}", f"failed after {time.time() - t:.0f} s: {type(exc).__name__}: {str(exc)[:200]}")
        report["compile"] = {"error": f"{type(exc).__name__}: {exc}"[:2000]}


# ----------------------------------------------------------------------------- 7. CUDA graphs

def check_cuda_graphs(dev, model, size: int, windows: List[int], report: Dict) -> None:
    """lgrnet.inference.cuda_graphs for fixed window sizes: a graph captured on one clip, replayed on
    another, against the eager forward of that clip (bf16 autocast); eager vs replay frames/s; and
    VideoPredictor windowed prediction with and without graphs on a 120-frame video."""
    import numpy as np

    from lgrnet import VideoPredictor
    from lgrnet.inference.cuda_graphs import GraphedClipForward

    print("7. CUDA graphs (bf16)", flush=True)
    res = []
    g = torch.Generator().manual_seed(7)
    for T in windows:
        a, b = (torch.rand(1, T, 3, size, size, generator=g).to(dev) for _ in range(2))
        try:
            with torch.inference_mode():
                t = time.time()
                graph = GraphedClipForward(model, a, autocast=True)
                capture_s = time.time() - t
                with torch.autocast(dev.type, dtype=torch.bfloat16):
                    eager = model(b)
                replay = graph(b)
                ref = eager.mask_logits.float()
                q = int(eager.class_logits.softmax(-1)[0, :, 0].argmax())
                diff = float((replay.mask_logits.float() - ref).abs().max())
                agree = float(((replay.mask_logits[0, :, q] > 0) == (ref[0, :, q] > 0)).float().mean())
                same_q = q == int(replay.class_logits.softmax(-1)[0, :, 0].argmax())

                def run_eager():
                    with torch.autocast(dev.type, dtype=torch.bfloat16):
                        model(b)

                eager_s = timed(run_eager, dev, warmup=2, repeat=10)
                graph_s = timed(lambda: graph(b), dev, warmup=2, repeat=10)
            graph = None  # frees its memory pool
            torch.cuda.empty_cache()
            ok = agree >= 0.999 and same_q
            res.append({"T": T, "capture_s": capture_s, "max_abs_logit_diff": diff, "mask_agreement": agree,
                        "same_query": same_q, "eager_frames_per_s": T / eager_s, "graph_frames_per_s": T / graph_s})
            row(f"graph T={T} replay vs eager (new clip)", f"max |logit diff| {diff:.2e}, masks {100 * agree:.3f}% equal, "
                f"same query {same_q}", ok)
            row(f"graph T={T} frames/s", f"eager {T / eager_s:7.1f}, graph {T / graph_s:7.1f} "
                f"(x{eager_s / graph_s:.2f}; capture {capture_s:.1f} s)")
        except Exception as exc:
            row(f"graph T={T}", f"failed: {type(exc).__name__}: {str(exc)[:200]}", False)
            res.append({"T": T, "error": f"{type(exc).__name__}: {exc}"[:2000]})
    rng = np.random.default_rng(0)
    frames = rng.integers(0, 256, (120, size, size, 3), dtype=np.uint8)
    for window in windows:
        try:
            out = {}
            for graphs in (False, True):
                p = VideoPredictor(model, size=size, window=window, cuda_graphs=graphs)
                p.predict(frames[:2 * window])  # warm-up (and capture, with graphs)
                t = time.time()
                out[graphs] = p.predict(frames)
                out[graphs].info["wall_s"] = time.time() - t
            agree = float((out[True].masks == out[False].masks).mean())
            fps = {k: 120 / v.info["wall_s"] for k, v in out.items()}
            res.append({"predictor_window": window, "eager_frames_per_s": fps[False], "graph_frames_per_s": fps[True],
                        "graph_windows": out[True].info["cuda_graph_windows"], "num_windows": out[True].info["num_windows"],
                        "mask_agreement": agree})
            row(f"predict 120 frames, window {window}", f"eager {fps[False]:6.1f} frames/s, graphs {fps[True]:6.1f} "
                f"({out[True].info['cuda_graph_windows']}/{out[True].info['num_windows']} windows graphed), "
                f"masks {100 * agree:.3f}% equal", agree >= 0.999 and out[True].info["cuda_graph_windows"] > 0)
        except Exception as exc:
            row(f"predict window {window} with graphs", f"failed: {type(exc).__name__}: {str(exc)[:200]}", False)
    report["cuda_graphs"] = res


# ----------------------------------------------------------------------------- main

def find_shared(arg):
    for c in (arg, os.environ.get("LGRNET_SHARED"), REPO / "shared", REPO.parent / "shared", "/work/shared"):
        if c and (Path(c) / "official" / "make_weights.py").is_file():
            return Path(c)
    return None


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--shared", default=None, help="folder with official/ (the authors' fixtures)")
    ap.add_argument("--out", default="gpu_check.json")
    ap.add_argument("--size", type=int, default=352)
    ap.add_argument("--lengths", default="6,30,120")
    ap.add_argument("--device", default="cuda", help="cuda (or cpu for a dry run of this script)")
    ap.add_argument("--skip", default="", help="comma list of: ops, scan, model, fixtures, throughput, profile, graphs")
    ap.add_argument("--graph-windows", default="6,30", help="window sizes for the CUDA graph check")
    ap.add_argument("--compile", action="store_true", help="also time torch.compile (T=30)")
    args = ap.parse_args()
    t0 = time.time()
    dev = torch.device(args.device)
    if dev.type == "cuda" and not torch.cuda.is_available():
        print("no CUDA device: run on a GPU machine (or pass --device cpu for a dry run)")
        return 2
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    torch.set_num_threads(max(1, min(16, os.cpu_count() or 1)))
    skip = set(filter(None, args.skip.split(",")))
    shared = find_shared(args.shared)
    import importlib.util

    report: Dict = {"device": torch.cuda.get_device_name() if dev.type == "cuda" else "cpu", "torch": torch.__version__,
                    "natten": importlib.util.find_spec("natten") is not None,
                    "mamba_ssm": importlib.util.find_spec("mamba_ssm") is not None,
                    "shared": str(shared) if shared else None}
    print(f"== lgrnet GPU check on {report['device']}, torch {report['torch']}; natten installed: {report['natten']}, "
          f"mamba_ssm installed: {report['mamba_ssm']}; fixtures: {report['shared']}", flush=True)
    if "ops" not in skip:
        check_ops(dev, report)
    if "scan" not in skip:
        check_scan_impls(dev, report)
    model = None
    if "model" not in skip or "throughput" not in skip:
        model = check_model(dev, shared, args.size, report)
    if "fixtures" not in skip and shared is not None:
        check_fixtures(dev, shared, report)
    if "throughput" not in skip:
        check_throughput(dev, model, args.size, [int(t) for t in args.lengths.split(",")], report)
    if "graphs" not in skip and dev.type == "cuda":
        check_cuda_graphs(dev, model, args.size, [int(t) for t in args.graph_windows.split(",")], report)
    if "profile" not in skip and dev.type == "cuda":
        profile_forward(dev, model, args.size, 30, report)
    if args.compile:
        check_compile(dev, model, args.size, 30, report)
    report["wall_s"] = time.time() - t0

    print(f"\n== lgrnet GPU check: {report['device']} (torch {report['torch']}), {report['wall_s']:.0f} s")
    width = max(len(r[0]) for r in ROWS)
    for name, result, mark in ROWS:
        print(f"{name:{width}s}  {mark:4s}  {result}")
    fails = sum(1 for r in ROWS if r[2] == "FAIL")
    print(f"{fails} check(s) failed" if fails else "all marked checks passed")
    with open(args.out, "w") as f:
        json.dump(report, f, indent=2)
    print(f"JSON: {args.out}")
    return 1 if fails else 0


if __name__ == "__main__":
    sys.exit(main())
