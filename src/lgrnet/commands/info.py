"""Show this installation: versions, devices, CPU threads (how many, who chose, OpenMP's wait
policy), optional packages (DICOM decoders, annotation formats, ...), and which implementation of each
special op the model would run on each device (the dispatcher's automatic choice, or what
LGRNET_OPS / LGRNET_OPS_<OP> force), and the precision `--precision auto` picks on each device
(bf16 on CUDA and on CPUs with native bfloat16, else fp32). Include its output when reporting a
problem.

examples:
  lgrnet info
  lgrnet info --json
"""
from __future__ import annotations

import importlib.metadata
import json
import platform
from typing import Dict, List, Optional

OPTIONAL_PACKAGES = {
    "av": "video files (PyAV)",
    "pydicom": "DICOM files",
    "pillow": "images; DICOM JPEG baseline / extended",
    "pylibjpeg": "DICOM compressed pixel data (optional: lgrnet[dicom])",
    "pylibjpeg-libjpeg": "DICOM JPEG lossless / JPEG-LS (optional: lgrnet[dicom])",
    "pylibjpeg-openjpeg": "DICOM JPEG 2000 / HTJ2K (optional: lgrnet[dicom])",
    "pylibjpeg-rle": "DICOM RLE, faster (optional: lgrnet[dicom])",
    "highdicom": "DICOM SEG output (optional)",
    "huggingface_hub": "models by hub id (optional)",
    "pycocotools": "COCO masks in lgrnet dataset import/export (optional: lgrnet[annotation])",
    "onnxscript": "ONNX export (optional)",
    "onnxruntime": "running exported ONNX files (optional)",
    "timm": "backbones",
    "natten": "neighborhood attention kernels (CUDA, optional)",
    "mamba_ssm": "selective scan kernel (CUDA, optional)",
    "tensorboard": "training logs (optional)",
}


def add_arguments(p) -> None:
    p.add_argument("--json", action="store_true", help="print one JSON object instead of the table")


def _version(dist: str) -> Optional[str]:
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return None


def _sample_inputs(device, dtype) -> Dict[str, "object"]:
    """A small input of each registered op, of the kind the model passes (only device, dtype and
    the scan length decide the choice): the scan of a 6-frame clip (6 x 20 frame queries), the
    neighbourhood attention of 44x44 tokens, the deformable attention's values, a dense layer's
    input, the attention of (B, heads, L, 32) queries, a LayerNorm's (tokens, channels) input."""
    import torch

    def t(*shape):
        return torch.zeros(*shape, device=device, dtype=dtype)

    return {"selective_scan": t(1, 16, 120), "neighborhood_attention": t(1, 2, 8, 8, 8),
            "ms_deform_attn": t(1, 64, 2, 8), "linear": t(4, 8), "conv_gelu": t(1, 4, 8, 8),
            "conv_relu6": t(1, 4, 8, 8), "attention": t(1, 2, 64, 32), "layer_norm": t(64, 32)}


def chosen_implementations(device, dtype) -> Dict[str, str]:
    """{op: implementation} the dispatcher picks for inference on ``device`` in ``dtype``."""
    import torch

    from ..ops import chosen

    with torch.inference_mode():
        return {op: chosen(op, x) for op, x in _sample_inputs(device, dtype).items()}


def collect() -> Dict[str, object]:
    import torch

    from ..version import __version__
    from ..precision import resolve_precision
    from ..runtime import thread_settings, tune_cpu_allocator

    precision = {"cpu": resolve_precision("auto", "cpu").as_dict()}
    targets: List = [("cpu", torch.float32)]
    if precision["cpu"]["precision"] == "bf16":
        targets.append(("cpu", torch.bfloat16))
    devices = []
    if torch.cuda.is_available():
        for i in range(torch.cuda.device_count()):
            p = torch.cuda.get_device_properties(i)
            devices.append({"device": f"cuda:{i}", "name": p.name, "memory_gib": round(p.total_memory / 2**30, 1),
                            "capability": f"{p.major}.{p.minor}"})
        targets += [("cuda", torch.float32), ("cuda", torch.bfloat16)]
        precision["cuda"] = resolve_precision("auto", "cuda").as_dict()
    return {
        "lgrnet": __version__, "python": platform.python_version(), "platform": platform.platform(),
        "torch": torch.__version__, "torch_cuda": torch.version.cuda,
        "cpu_capability": torch.backends.cpu.get_cpu_capability(), "threads": torch.get_num_threads(),
        "thread_settings": thread_settings(),  # how many, who chose, OpenMP's wait policy, the load
        "cpu_allocator_tuned": tune_cpu_allocator(),
        "cuda_devices": devices,
        "precision": precision,  # what --precision auto picks on each device, and why
        "packages": {name: _version(name) for name in OPTIONAL_PACKAGES},
        "ops": {f"{dev} {str(dtype).replace('torch.', '')}": chosen_implementations(dev, dtype) for dev, dtype in targets},
    }


def run(args) -> int:
    info = collect()
    if args.json:
        print(json.dumps(info, indent=2))
        return 0
    print(f"lgrnet {info['lgrnet']}, Python {info['python']}, torch {info['torch']} "
          f"(CUDA build {info['torch_cuda'] or 'none'}), {info['platform']}")
    print(f"CPU: {info['cpu_capability']}, {info['threads']} threads, allocator tuned: {info['cpu_allocator_tuned']}")
    t = info["thread_settings"]
    omp = t["openmp"]
    print(f"threads: {t['threads']} ({t['reason']}; {t['usable_cores']} usable cores, load average {t['load_average']}); "
          f"OMP_WAIT_POLICY {omp.get('OMP_WAIT_POLICY')} ({omp['source']}"
          + (f", GOMP_SPINCOUNT {omp['GOMP_SPINCOUNT']}" if omp.get("GOMP_SPINCOUNT") else "")
          + "): idle threads sleep instead of spinning, so other programs' load slows a run fairly; "
            "--threads N or LGRNET_THREADS=N to choose (docs/speed.md)")
    if info["cuda_devices"]:
        for d in info["cuda_devices"]:
            print(f"{d['device']}: {d['name']}, {d['memory_gib']} GiB, compute capability {d['capability']}")
    else:
        print("CUDA: not available")
    for dev, p in info["precision"].items():
        print(f"precision auto on {dev}: {p['precision']} ({p['reason']})")
    print("packages:")
    for name, what in OPTIONAL_PACKAGES.items():
        print(f"  {name:19s} {info['packages'][name] or '-':10s} {what}")
    columns = list(info["ops"])
    print("op implementations (inference):")
    print("  " + f"{'op':24s}" + "".join(f"{c:18s}" for c in columns))
    for op in info["ops"][columns[0]]:
        print("  " + f"{op:24s}" + "".join(f"{info['ops'][c][op]:18s}" for c in columns))
    return 0
