"""The local-global encoder and its branches."""
from .encoder import LocalGlobalEncoder
from .global_branch import GlobalBranch, HilbertSelectiveScan, SelectiveScan2D
from .local_branch import CyclicNeighborhoodPropagation

__all__ = ["LocalGlobalEncoder", "GlobalBranch", "HilbertSelectiveScan", "SelectiveScan2D",
           "CyclicNeighborhoodPropagation"]
