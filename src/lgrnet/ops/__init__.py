"""The network's special ops: a readable reference for each, plus fast paths chosen automatically."""
from .dense import conv_gelu, linear, use_dispatch_linear
from .dispatch import _ensure_registered, chosen, force, implementations
from .hilbert import gilbert2d, hilbert_order, scan_order, zigzag_order
from .ms_deform_attn import ms_deform_attn, ms_deform_attn_ref
from .neighborhood_attention import neighborhood_attention, neighborhood_attention_ref, window_indices
from .selective_scan import selective_scan, selective_scan_ref

_ensure_registered()  # now, not inside the first (possibly compiled) forward

__all__ = [
    "chosen", "conv_gelu", "force", "implementations", "linear", "use_dispatch_linear",
    "gilbert2d", "hilbert_order", "scan_order", "zigzag_order",
    "ms_deform_attn", "ms_deform_attn_ref", "neighborhood_attention", "neighborhood_attention_ref",
    "window_indices", "selective_scan", "selective_scan_ref",
]
