"""The backbone runs a long clip a few frames at a time in CPU inference (EfficientNet: 4 frames in
float32, 8 in a bfloat16 copy; PVT: 1 and 3; Res2Net: all at once, as published), so that T=60 is as
fast per frame as T=6 (docs/speed.md). Chunking must not change what the frames give: each chunk's
features are the frames' own (BatchNorm in eval mode, convolutions per frame), compared here with
the whole clip at once within float32 rounding (the products' blocking differs with the batch)."""
from __future__ import annotations

import pytest
import torch

from lgrnet import LGRNet
from lgrnet.config import get_preset, override
from lgrnet.models.bf16 import bfloat16_copy


def _lite(preset: str = "polyp_lite0") -> LGRNet:
    cfg = get_preset(preset)
    override(cfg, ["model.encoder.num_layers=1", "model.decoder.num_layers=1"])
    torch.manual_seed(0)
    return LGRNet(cfg.model).eval()


def test_chunk_sizes_per_backbone():
    m = _lite()
    assert m.backbone.eval_frames_per_call == 4
    assert bfloat16_copy(m).backbone.eval_frames_per_call == 8
    assert LGRNet.from_preset("tiny").backbone.eval_frames_per_call == 1  # PVT, as published


@pytest.mark.parametrize("T", [3, 9])  # fewer frames than a chunk; chunks of 4, 4, 1
def test_chunked_backbone_equals_the_whole_clip(T):
    m = _lite()
    x = torch.rand(1, T, 3, 64, 64, generator=torch.Generator().manual_seed(T))
    with torch.inference_mode():
        chunked = m(x)
        m.backbone.eval_frames_per_call = 0
        whole = m(x)
    scale = whole.mask_logits.abs().max().item()
    torch.testing.assert_close(chunked.mask_logits, whole.mask_logits, rtol=0, atol=1e-5 * scale)
    torch.testing.assert_close(chunked.class_logits, whole.class_logits, rtol=0, atol=1e-5)
