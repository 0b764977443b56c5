"""The network: backbone, local-global encoder, video mask decoder."""
from .lgrnet import LGRNet, LGRNetOutput

__all__ = ["LGRNet", "LGRNetOutput"]
