"""lgrnet: the LGRNet video lesion segmentation network (MICCAI 2024) as installable software.

The public names load on first use (PEP 562), so that ``import lgrnet.cli`` does not import PyTorch:
the ``lgrnet`` command sets OpenMP's wait policy before PyTorch loads its OpenMP runtime
(:func:`lgrnet.runtime.prepare_openmp`)."""
from .version import __version__

_LAZY = {
    "get_preset": ("config", "get_preset"),
    "LGRNet": ("models.lgrnet", "LGRNet"),
    "LGRNetOutput": ("models.lgrnet", "LGRNetOutput"),
    "hilbert_order": ("ops.hilbert", "hilbert_order"),
    "tune_cpu_allocator": ("runtime", "tune_cpu_allocator"),
    "VideoPredictor": ("inference.predictor", "VideoPredictor"),
}


def __getattr__(name):
    if name in _LAZY:
        import importlib

        module, attr = _LAZY[name]
        value = getattr(importlib.import_module(f".{module}", __name__), attr)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'lgrnet' has no attribute {name!r}")


__all__ = ["LGRNet", "LGRNetOutput", "VideoPredictor", "get_preset", "hilbert_order", "tune_cpu_allocator", "__version__"]
