"""ONNX export of sunseg_pvt with the authors' fixture weights: accuracy against PyTorch, and
onnxruntime CPU speed against PyTorch float32 in the same process (issue 18).

1. accuracy: sunseg_pvt with the deterministic weights of shared/official (make_weights.py, the
   weights the authors' fixture outputs came from), exported for case A's shape (T=6, 160x160),
   run on case A's video in onnxruntime; compared with our eager PyTorch model (and with the
   authors' own outputs): max abs mask-logit difference (target 1e-3) and mask agreement wherever
   |logit| > 1e-2.
2. speed: the same weights exported for T=6, 352x352; onnxruntime (CPU execution provider) and
   PyTorch eager float32 take turns on one clip, --repeat times each; frames/s = T / median seconds.

usage: python benchmarks/onnx_check.py [--shared ../shared] [--threads 2] [--repeat 3] [--skip-speed] [--json out.json]
Exporting takes minutes (torch.export + onnxscript on the 2-core CPU).
"""
from __future__ import annotations

import argparse
import importlib.util
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path


def fixture_model(shared: Path):
    import torch

    from lgrnet import LGRNet
    from lgrnet.models.checkpoint import _check_and_load, convert_authors_state_dict

    spec = importlib.util.spec_from_file_location("make_weights", shared / "official" / "make_weights.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    manifest = json.loads((shared / "official" / "sunseg_pvt" / "state_dict_manifest.json").read_text())
    model = LGRNet.from_preset("sunseg_pvt")
    state = convert_authors_state_dict(mod.make_state_dict(manifest), model.config.backbone.name)
    _check_and_load(model, state, "fixture weights")
    torch.manual_seed(0)
    return model.eval()


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--shared", default=str(Path(__file__).resolve().parents[1].parent / "shared"))
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--skip-speed", action="store_true")
    ap.add_argument("--skip-accuracy", action="store_true")
    ap.add_argument("--keep", default=None, help="folder to keep the .onnx files in")
    ap.add_argument("--json", default=None)
    args = ap.parse_args()

    import torch

    torch.set_num_threads(args.threads)
    shared = Path(args.shared)
    model = fixture_model(shared)
    tmp = args.keep or tempfile.mkdtemp(prefix="lgrnet-onnx-")
    result = {"threads": args.threads, "torch": torch.__version__}
    import onnxruntime as ort

    result["onnxruntime"] = ort.__version__

    if not args.skip_accuracy:
        result["accuracy"] = accuracy(model, shared, tmp, args.threads)
    if not args.skip_speed:
        result["speed"] = speed(model, tmp, args.threads, args.repeat)
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=1) + "\n")
    return 0


def accuracy(model, shared: Path, tmp: str, threads: int) -> dict:
    import numpy as np
    import torch

    from lgrnet.export.onnx import export_onnx, onnx_session

    case = torch.load(shared / "official" / "sunseg_pvt" / "case_A.pt", weights_only=True)
    video = case["video"]
    T, S = video.shape[1], video.shape[-1]
    path = os.path.join(tmp, f"sunseg_pvt_T{T}_{S}.onnx")
    rep = export_onnx(model, path, frames=T, size=S, check=False)
    print(f"exported case A shape T={T} {S}x{S} in {rep.seconds:.0f} s", flush=True)
    got_masks, got_cls = onnx_session(path, threads).run(None, {"video": video.numpy()})
    with torch.no_grad():
        ref = model(video)
    ours = ref.mask_logits.numpy()
    authors = case["mask_logits"].numpy()
    sure = np.abs(ours) > 1e-2
    acc = {
        "case": "sunseg_pvt A", "frames": int(T), "size": int(S), "export_seconds": round(rep.seconds, 1),
        "max_abs_mask_logits_vs_pytorch": float(np.abs(got_masks - ours).max()),
        "max_abs_class_logits_vs_pytorch": float(np.abs(got_cls - ref.class_logits.numpy()).max()),
        "mask_flips_where_abs_logit_gt_1e-2": int(((got_masks > 0) != (ours > 0))[sure].sum()),
        "pixels_with_abs_logit_gt_1e-2": int(sure.sum()),
        "max_abs_mask_logits_vs_authors": float(np.abs(got_masks - authors).max()),
        "pytorch_vs_authors": float(np.abs(ours - authors).max()),
    }
    print(json.dumps(acc, indent=1), flush=True)
    return acc


def speed(model, tmp: str, threads: int, repeat: int, T: int = 6, S: int = 352) -> dict:
    import torch

    from lgrnet.export.onnx import export_onnx, onnx_session

    path = os.path.join(tmp, f"sunseg_pvt_T{T}_{S}.onnx")
    rep = export_onnx(model, path, frames=T, size=S, check=False)
    print(f"exported T={T} {S}x{S} in {rep.seconds:.0f} s", flush=True)
    sess = onnx_session(path, threads)
    clip = torch.rand(1, T, 3, S, S, generator=torch.Generator().manual_seed(0))
    x = clip.numpy()
    sess.run(None, {"video": x})  # warm-up both
    with torch.inference_mode():
        model(clip)
    times = {"onnxruntime": [], "pytorch": []}
    for _ in range(repeat):  # interleaved: the machine's speed drifts
        t0 = time.perf_counter()
        sess.run(None, {"video": x})
        times["onnxruntime"].append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        with torch.inference_mode():
            model(clip)
        times["pytorch"].append(time.perf_counter() - t0)
    out = {k: {"seconds": [round(t, 3) for t in v], "frames_per_second": round(T / statistics.median(v), 3)}
           for k, v in times.items()}
    out["ratio_onnxruntime_over_pytorch"] = round(
        out["onnxruntime"]["frames_per_second"] / out["pytorch"]["frames_per_second"], 3)
    out.update({"frames": T, "size": S, "export_seconds": round(rep.seconds, 1)})
    print(json.dumps(out, indent=1), flush=True)
    return out


if __name__ == "__main__":
    sys.exit(main())
