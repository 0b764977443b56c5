"""The network's special ops: a readable reference for each, plus fast paths chosen automatically.

Each op module registers its reference with :mod:`.dispatch` (the registry, a leaf module) and
each fast-path module registers itself; importing them all here fills the
registry at import time, not inside the first (possibly compiled) forward.
"""
# fast paths: each registers itself with the registry on import
from . import (  # noqa: F401
    attention_native,
    dense_onednn,
    ms_deform_attn_fast,
    ms_deform_attn_native,
    neighborhood_attention_fast,
    neighborhood_attention_native,
    neighborhood_attention_natten,
    norm_native,
    selective_scan_chunked,
    selective_scan_mamba,
    selective_scan_parallel,
)
from .attention import attention, attention_ref
from .dense import conv_gelu, linear, use_dispatch_linear
from .dispatch import Implementation, chosen, force, implementations, records
from .hilbert import gilbert2d, hilbert_order, scan_order, zigzag_order
from .ms_deform_attn import ms_deform_attn, ms_deform_attn_ref
from .neighborhood_attention import neighborhood_attention, neighborhood_attention_ref, window_indices
from .selective_scan import selective_scan, selective_scan_ref

__all__ = [
    "Implementation", "attention", "attention_ref", "chosen", "conv_gelu", "force", "gilbert2d", "hilbert_order", "implementations", "linear",
    "ms_deform_attn", "ms_deform_attn_ref", "neighborhood_attention", "neighborhood_attention_ref", "records",
    "scan_order", "selective_scan", "selective_scan_ref", "use_dispatch_linear", "window_indices", "zigzag_order",
]
