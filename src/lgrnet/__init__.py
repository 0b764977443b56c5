"""lgrnet: the LGRNet video lesion segmentation network (MICCAI 2024) as installable software."""
from .config import get_preset
from .models.lgrnet import LGRNet, LGRNetOutput
from .ops.hilbert import hilbert_order
from .runtime import tune_cpu_allocator
from .version import __version__


def __getattr__(name):  # lazy: the predictor pulls in video I/O
    if name == "VideoPredictor":
        from .inference.predictor import VideoPredictor

        return VideoPredictor
    raise AttributeError(f"module 'lgrnet' has no attribute {name!r}")


__all__ = ["LGRNet", "LGRNetOutput", "VideoPredictor", "get_preset", "hilbert_order", "tune_cpu_allocator", "__version__"]
