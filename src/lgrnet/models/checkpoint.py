"""Checkpoints: our safetensors format, and conversion from the authors' ``.pth`` layout.

Our format: one ``.safetensors`` file holding the model's state dict and, in its metadata, the
model config as JSON (``lgrnet_config``) and a format version, beside what
:mod:`lgrnet.models.weight_metadata` records (input size, threshold, recipe, ...). Files are
written atomically.

The authors' checkpoints (``BackboneEncoderDecoder_WithScaleConsistency``) store a state dict,
bare or under ``'model'``; :func:`convert_authors_state_dict` maps its keys to ours (the rules
are listed in ``_AUTHORS_RULES``; tested against the published key manifests).
"""
from __future__ import annotations

import json
import os
import re
from typing import Any, Dict, List, Mapping, Optional, Tuple, Union

import torch

from ..config import ModelConfig, get_preset, model_config_from_dict, to_dict
from ..files import atomic_write
from .backbone import convert_imagenet_state_dict
from .weight_files import read_safetensors_file, read_torch_file
from .weight_metadata import RESERVED_KEYS, WeightMetadata, metadata_strings

#: written into every .safetensors we save and checked on load: a file from a newer lgrnet whose
#: layout this version cannot read is refused with a message instead of loading wrongly.
FORMAT_VERSION = "1"
_CONFIG_KEY, _FORMAT_KEY = RESERVED_KEYS

# (authors' regex, our replacement), applied in order, first match wins.
_ENC = r"^fusion_encoder\.transformer\.encoder\.layers\.(\d+)\."
_AUTHORS_RULES: List[Tuple[str, str]] = [
    (r"^fusion_encoder\.video_projs\.multiscale_projs\.(res\d)\.weight$", r"encoder.input_proj.\1.conv.weight"),
    (r"^fusion_encoder\.video_projs\.multiscale_projs\.(res\d)\.norm\.", r"encoder.input_proj.\1.norm."),
    (r"^fusion_encoder\.transformer\.level_embed$", "encoder.level_embed"),
    (r"^fusion_encoder\.transformer\.encoder\.frame_query_feats\.", "encoder.frame_query_feat."),
    (r"^fusion_encoder\.transformer\.encoder\.frame_query_poses\.", "encoder.frame_query_pos."),
    (_ENC + r"self_attn\.", r"encoder.layers.\1.deform_attn."),
    (_ENC + r"norm1\.", r"encoder.layers.\1.deform_norm."),
    (_ENC + r"norm2\.", r"encoder.layers.\1.ffn_norm."),
    (_ENC + r"(linear[12])\.", r"encoder.layers.\1.\2."),
    (_ENC + r"local_cnp\.self_attn\.q_linear\.", r"encoder.layers.\1.local.attn.q_proj."),
    (_ENC + r"local_cnp\.self_attn\.kv_linear\.", r"encoder.layers.\1.local.attn.kv_proj."),
    (_ENC + r"local_cnp\.self_attn\.proj\.", r"encoder.layers.\1.local.attn.out_proj."),
    (_ENC + r"local_cnp\.norm\.", r"encoder.layers.\1.local.norm."),
    (_ENC + r"frame_query_cross_multiscale\.", r"encoder.layers.\1.global_branch.collect."),
    (_ENC + r"global_hiss\.self_attn\.(\d+)\.homo\.", r"encoder.layers.\1.global_branch.scan.blocks.\2.mixer."),
    (_ENC + r"global_hiss\.self_attn\.(\d+)\.norm\.", r"encoder.layers.\1.global_branch.scan.blocks.\2.norm."),
    (_ENC + r"global_hiss\.ffn\.", r"encoder.layers.\1.global_branch.scan.ffn."),
    (_ENC + r"multiscale_cross_query\.", r"encoder.layers.\1.global_branch.distribute."),
    (r"^fusion_encoder\.adapter_1\.weight$", "encoder.fpn_lateral.conv.weight"),
    (r"^fusion_encoder\.adapter_1\.norm\.", "encoder.fpn_lateral.norm."),
    (r"^fusion_encoder\.layer_1\.weight$", "encoder.fpn_output.conv.weight"),
    (r"^fusion_encoder\.layer_1\.norm\.", "encoder.fpn_output.norm."),
    (r"^decoder\.level_embeds\.", "decoder.level_embed."),
    (r"^decoder\.(cross_layers|self_layers|ffn_layers)\.", r"decoder.\1."),
    (r"^decoder\.temporal_query_poses\.", "decoder.query_pos."),
    (r"^decoder\.temporal_query_feats\.", "decoder.query_feat."),
    (r"^decoder\.temporal_query_norm\.", "decoder.head_norm."),
    (r"^decoder\.query_mask\.", "decoder.mask_embed."),
    (r"^decoder\.query_class\.", "decoder.class_embed."),
]
_AUTHORS_DROPPED = (r"^decoder\.loss_module\.",)
_PVT_PREFIX = "video_backbone.image_homo.pvt_v2."
_RES2NET_PREFIX = "video_backbone.res2net."
# Said to both command-line and Python users: the same loader serves `lgrnet ... --preset` and `preset=`.
_PASS_PRESET = "pass --preset NAME (in Python: preset=NAME; `lgrnet presets` lists them)"


def is_authors_state_dict(state: Dict[str, torch.Tensor]) -> bool:
    return any(k.startswith(("video_backbone.", "fusion_encoder.")) for k in state)


def convert_authors_state_dict(state: Dict[str, torch.Tensor], backbone_name: str) -> Dict[str, torch.Tensor]:
    """Authors' key layout -> ours. Unknown keys are kept under their original name so that the
    strict load that follows reports them."""
    out: Dict[str, torch.Tensor] = {}
    backbone = {}
    for key, value in state.items():
        if any(re.match(p, key) for p in _AUTHORS_DROPPED):
            continue
        if key.startswith(_PVT_PREFIX):
            backbone[key[len(_PVT_PREFIX):]] = value
            continue
        if key.startswith(_RES2NET_PREFIX):
            backbone[key[len(_RES2NET_PREFIX):]] = value
            continue
        for pattern, repl in _AUTHORS_RULES:
            if re.match(pattern, key):
                new = re.sub(pattern, repl, key)
                if new.startswith("encoder.input_proj.") and new.endswith("conv.weight") and value.dim() == 5:
                    value = value[..., 0]  # Conv3d (d, C, 1, 1, 1) -> Conv2d (d, C, 1, 1)
                out[new] = value
                break
        else:
            out[key] = value
    for key, value in convert_imagenet_state_dict(backbone, backbone_name).items():
        out["backbone.body." + key] = value
    return out


def _check_and_load(model: torch.nn.Module, state: Dict[str, torch.Tensor], source: str) -> None:
    own = model.state_dict()
    missing = sorted(set(own) - set(state))
    unexpected = sorted(set(state) - set(own))
    if missing or unexpected:
        lines = [f"{source}: checkpoint does not fit the model ({getattr(model.config, 'preset', '') or 'custom config'})"]
        if missing:
            lines.append(f"  {len(missing)} missing keys: " + ", ".join(missing[:20]) + (" ..." if len(missing) > 20 else ""))
        if unexpected:
            lines.append(f"  {len(unexpected)} unexpected keys: " + ", ".join(unexpected[:20]) + (" ..." if len(unexpected) > 20 else ""))
        raise ValueError("\n".join(lines))
    bad = [f"{k}: file {tuple(state[k].shape)} vs model {tuple(own[k].shape)}"
           for k in own if tuple(state[k].shape) != tuple(own[k].shape)]
    if bad:
        raise ValueError(f"{source}: shape mismatch for {len(bad)} keys: " + "; ".join(bad[:10]))
    state = {k: v.to(own[k].dtype) if v.is_floating_point() else v for k, v in state.items()}
    model.load_state_dict(state, strict=True)


class FormatVersionError(ValueError):
    """A weight file in a format version this lgrnet does not read."""


def read_safetensors_config(path: str) -> Optional[ModelConfig]:
    from safetensors import safe_open

    try:
        with safe_open(path, framework="pt") as f:
            meta = f.metadata() or {}
    except Exception:
        return None  # read_safetensors_file says what is wrong with the file
    if _CONFIG_KEY not in meta:
        return None
    version = meta.get(_FORMAT_KEY, FORMAT_VERSION)
    if version != FORMAT_VERSION:
        raise FormatVersionError(f"weight-file format {version!r}, this lgrnet reads format {FORMAT_VERSION!r}: "
                         f"it was written by another lgrnet version; upgrade lgrnet")
    return model_config_from_dict(json.loads(meta[_CONFIG_KEY]))


def load_pretrained(cls, path: str, preset: Optional[str] = None, map_location: str = "cpu",
                    config: Optional[ModelConfig] = None):
    """``config``: the model config from a hub-layout folder's config.json; it takes the place of
    the config in the file's metadata (or of ``preset=``)."""
    if not os.path.isfile(path):
        raise FileNotFoundError(f"{path}: no such weight file")
    if path.endswith(".safetensors"):
        state = read_safetensors_file(path, device=str(map_location))
        try:
            cfg = config or read_safetensors_config(path)
        except FormatVersionError as exc:
            raise ValueError(f"{path}: {exc}") from None
        except (ValueError, TypeError, KeyError) as exc:
            raise ValueError(f"{path}: its lgrnet config metadata is invalid ({exc})") from None
        if cfg is None:
            if preset is None:
                raise ValueError(f"{path}: has no lgrnet config in its metadata; {_PASS_PRESET}")
            cfg = get_preset(preset).model
        elif preset is not None and cfg.preset and preset != cfg.preset:
            raise ValueError(f"{path}: holds a {cfg.preset!r} model, but preset {preset!r} was given")
        if is_authors_state_dict(state):
            state = convert_authors_state_dict(state, cfg.backbone.name)
        model = cls(cfg)
        _check_and_load(model, state, path)
        return model.to(map_location)

    state = read_torch_file(path)
    if isinstance(state, dict) and "model" in state and isinstance(state["model"], dict):
        state = state["model"]
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise ValueError(f"{path}: is not a state dict (a mapping of names to tensors)")
    if preset is None:
        if is_authors_state_dict(state):
            guess = "sunseg_res2net" if any(k.startswith(_RES2NET_PREFIX) for k in state) else "sunseg_pvt/cvc_pvt/fibroid_pvt"
            raise ValueError(f"{path}: an authors' checkpoint; name its config: {_PASS_PRESET} (likely {guess})")
        raise ValueError(f"{path}: a PyTorch state dict without a config; {_PASS_PRESET}")
    cfg = config or get_preset(preset).model
    if is_authors_state_dict(state):
        state = convert_authors_state_dict(state, cfg.backbone.name)
    model = cls(cfg)
    _check_and_load(model, state, path)
    return model.to(map_location)


def save_pretrained(model, path: str, dtype: Optional[torch.dtype] = None,
                    metadata: Union[WeightMetadata, Mapping[str, Any], None] = None) -> str:
    """Write ``model`` to ``path`` (.safetensors) with its config and ``metadata``
    (:func:`~lgrnet.models.weight_metadata.metadata_strings`), atomically; ``dtype``: cast floats."""
    from safetensors.torch import save_file

    if not path.endswith(".safetensors"):
        raise ValueError(f"{path}: our checkpoints are .safetensors files")
    state = {}
    for k, v in model.state_dict().items():
        v = v.detach().to("cpu")
        if dtype is not None and v.is_floating_point():
            v = v.to(dtype)
        state[k] = v.contiguous()
    meta = {**metadata_strings(metadata), _CONFIG_KEY: json.dumps(to_dict(model.config)), _FORMAT_KEY: FORMAT_VERSION}
    return atomic_write(path, lambda tmp: save_file(state, tmp, metadata=meta))
