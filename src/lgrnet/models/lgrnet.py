"""LGRNet: backbone -> local-global encoder -> video mask decoder.

>>> model = LGRNet.from_preset("tiny").eval()
>>> out = model(torch.rand(1, 6, 3, 224, 224))      # video in [0, 1], H and W multiples of 32
>>> out.mask_logits.shape, out.class_logits.shape   # (1, 6, Nq, 224, 224), (1, Nq, 2)
"""
from __future__ import annotations

import contextlib
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Dict, List, Optional

import torch
from torch import nn

from ..config import ModelConfig, get_preset, set_value
from ..ops.dense import use_dispatch_linear
from ..ops.dispatch import force
from ..ops.norm import use_dispatch_layer_norm
from .backbone import FrameBackbone
from .decoder import HeadOutput, VideoMaskDecoder
from .encoder.encoder import LocalGlobalEncoder

if TYPE_CHECKING:
    from .hub import ModelCardInfo


@dataclass
class LGRNetOutput:
    """What :meth:`LGRNet.forward` returns.

    mask_logits: (b, T, Nq, H, W) last decoder head, at the input resolution;
    class_logits: (b, Nq, num_classes + 1) (the last logit is "no object"), same for all frames;
    aux: every head's output, first (before the first decoder layer) to last (deep supervision);
        by default only in training mode (``return_aux``), else just the last head;
    internals: intermediate features, only with ``return_internals=True``.
    """

    mask_logits: torch.Tensor
    class_logits: torch.Tensor
    aux: List[HeadOutput] = field(default_factory=list)
    internals: Optional[Dict[str, object]] = None

    @property
    def class_probs(self) -> torch.Tensor:
        """(b, Nq, num_classes + 1) softmax of the class logits."""
        return self.class_logits.softmax(-1)

    def best_query(self) -> torch.Tensor:
        """(b,) index of the query with the highest foreground probability (class 0)."""
        return self.class_probs[..., 0].argmax(-1)


class LGRNet(nn.Module):
    float32_names = ("pixel_mean", "pixel_std")  # kept float32 by lgrnet.models.bf16.to_bfloat16

    def __init__(self, config: ModelConfig):
        super().__init__()
        self.config = config
        self.backbone = FrameBackbone(config.backbone.name, config.backbone.drop_path_rate)
        self.encoder = LocalGlobalEncoder(self.backbone.channels, config.d_model, config.encoder)
        self.decoder = VideoMaskDecoder(config.d_model, config.decoder)
        self.register_buffer("pixel_mean", torch.tensor(config.pixel_mean).view(1, 1, 3, 1, 1), persistent=False)
        self.register_buffer("pixel_std", torch.tensor(config.pixel_std).view(1, 1, 3, 1, 1), persistent=False)
        use_dispatch_linear(self)  # linear layers go through lgrnet.ops.linear (same parameters)
        use_dispatch_layer_norm(self)  # and LayerNorms through lgrnet.ops.layer_norm
        # The fast paths of lgrnet.ops (chunked scan, shifted-view neighborhood attention, oneDNN
        # GEMMs, ...) equal the reference ops up to float32 rounding. A config that thresholds
        # query . token at 0 for an attention mask (fibroid) turns rounding into discrete mask
        # changes (in the authors' fibroid fixture a logit of +2.5e-5 carries ~7e-5 of float32
        # error), so by default it runs the reference ops, which follow the published code operation
        # for operation and reproduce its outputs; set False to use the fast paths anyway.
        self.published_numerics: bool = bool(config.encoder.global_.attn_mask)

    # ------------------------------------------------------------------ construction

    @classmethod
    def from_preset(cls, name: str, **overrides) -> "LGRNet":
        """A randomly initialised model with a named preset's architecture; ``overrides`` set model
        config fields, checked like ``key=value`` on the command line (``d_model=128``; dotted keys
        through a dict: ``**{"encoder.local.kernel_size": 7}``)."""
        cfg = get_preset(name).model
        for key, value in overrides.items():
            set_value(cfg, key, value)
        return cls(cfg)

    @classmethod
    def from_pretrained(cls, path: str, preset: Optional[str] = None, map_location: str = "cpu",
                        revision: Optional[str] = None) -> "LGRNet":
        """Load weights from ``path``: our ``.safetensors`` (config inside), an authors' ``.pth``
        checkpoint (a bare state dict, or one under 'model') with ``preset=`` naming its config, a
        folder in the hub layout, or a hub id ``org/name`` at ``revision`` (see :mod:`lgrnet.models.hub`).

        The model comes back in eval mode, ready for ``model(video)`` (as transformers'
        ``from_pretrained`` does): in training mode BatchNorm (``sunseg_res2net``) would normalise
        with the clip's statistics and update its running ones. Call ``.train()`` to fine-tune."""
        from .checkpoint import load_pretrained
        from .hub import resolve

        resolved = resolve(path, revision=revision)
        return load_pretrained(cls, resolved.path, preset=preset, map_location=map_location,
                               config=resolved.config).eval()

    def save_pretrained(self, path: str, dtype: Optional[torch.dtype] = None, metadata: Optional[dict] = None,
                        card: Optional["ModelCardInfo"] = None) -> str:
        """Write the model, atomically: ``path`` ending in .safetensors: one file (weights + config);
        otherwise a folder in the hub layout (model.safetensors, config.json, README.md model card;
        ``card`` fills the card, default: the preset's published settings). Returns the path."""
        if str(path).endswith(".safetensors"):
            from .checkpoint import save_pretrained

            return save_pretrained(self, path, dtype=dtype, metadata=metadata)
        from .hub import save_folder

        return save_folder(self, path, info=card, dtype=dtype, metadata=metadata)

    def push_to_hub(self, repo_id: str, card: Optional["ModelCardInfo"] = None, private: bool = False,
                    revision: Optional[str] = None, commit_message: str = "Upload LGRNet weights",
                    token: Optional[str] = None) -> str:
        """Upload the hub layout of :meth:`save_pretrained` to ``repo_id`` with huggingface_hub."""
        from .hub import push_to_hub

        return push_to_hub(self, repo_id, info=card, private=private, revision=revision,
                           commit_message=commit_message, token=token)

    @property
    def device(self) -> torch.device:
        return self.pixel_mean.device

    @property
    def num_queries(self) -> int:
        return self.decoder.query_feat.num_embeddings

    # ------------------------------------------------------------------ forward

    def forward(self, video: torch.Tensor, return_internals: bool = False,
                return_aux: Optional[bool] = None) -> LGRNetOutput:
        """video: (b, T, 3, H, W) float in [0, 1]; H and W multiples of 32.

        ``return_aux`` (default: in training mode, or with ``return_internals``) keeps every decoder
        head's output in ``.aux``; otherwise only the last head is kept, which saves memory.
        """
        if video.dim() != 5 or video.shape[2] != 3:
            raise ValueError(f"expected a video tensor (b, T, 3, H, W), got shape {tuple(video.shape)}")
        b, T, _, H, W = video.shape
        if H % 32 or W % 32:
            raise ValueError(f"frame size {H}x{W} must be a multiple of 32 (resize or pad the frames)")
        x = ((video - self.pixel_mean) / self.pixel_std).reshape(b * T, 3, H, W)
        x = x.to(self.backbone.dtype)  # a bfloat16 model (lgrnet.models.bf16) runs on bfloat16 frames
        if return_aux is None:
            return_aux = self.training or return_internals
        with force("reference") if self.published_numerics else contextlib.nullcontext():
            # eval on a CPU: frames through the backbone as the published wrapper does (bit-identical
            # float32); on a GPU all frames at once (one launch sequence instead of T)
            per_call = 0 if self.training or x.device.type != "cpu" else self.backbone.eval_frames_per_call
            feats = self.backbone(x, frames_per_call=per_call)
            encoded, frame_queries = self.encoder(feats, T)
            if not return_internals:
                del feats  # the backbone features are not needed by the decoder (memory of long clips)
            heads = self.decoder(encoded, b, T, keep_all_heads=return_aux)
        out = LGRNetOutput(mask_logits=heads[-1].mask_logits, class_logits=heads[-1].class_logits, aux=heads)
        if return_internals:
            def clip(t):  # (b*T, C, h, w) -> (b, C, T, h, w), the authors' layout
                return t.view(b, T, *t.shape[1:]).transpose(1, 2)
            out.internals = {
                "backbone": {k: clip(v) for k, v in feats.items()},
                "encoder": {k: clip(v) for k, v in encoded.items()},
                "frame_queries": [q.view(b, T, *q.shape[1:]) for q in frame_queries],  # (b, T, Nf, C)
            }
        return out

    # ------------------------------------------------------------------ forward in two parts (causal streaming)

    def frame_features(self, frames: torch.Tensor) -> Dict[str, torch.Tensor]:
        """The first part of :meth:`forward`, which is per frame: frames (N, 3, H, W) in [0, 1] ->
        the backbone's multi-scale features {level: (N, C, h, w)}. A frame's features do not depend
        on the other frames, so a stream can compute them once per frame and keep them
        (:mod:`lgrnet.inference.stream`)."""
        x = ((frames[None] - self.pixel_mean) / self.pixel_std)[0].to(self.backbone.dtype)
        with force("reference") if self.published_numerics else contextlib.nullcontext():
            return self.backbone(x, frames_per_call=0 if self.training or x.device.type != "cpu" else
                                 self.backbone.eval_frames_per_call)

    def forward_features(self, feats: Dict[str, torch.Tensor], b: int, T: int,
                         return_aux: bool = False) -> LGRNetOutput:
        """The rest of :meth:`forward`: the clip's backbone features {level: (b*T, C, h, w)} (frames
        in order, from :meth:`frame_features`) -> encoder -> decoder. ``model.forward_features(
        model.frame_features(video[0]), 1, T)`` equals ``model(video)`` up to float rounding."""
        with force("reference") if self.published_numerics else contextlib.nullcontext():
            encoded, _ = self.encoder(feats, T)
            heads = self.decoder(encoded, b, T, keep_all_heads=return_aux)
        return LGRNetOutput(mask_logits=heads[-1].mask_logits, class_logits=heads[-1].class_logits, aux=heads)
