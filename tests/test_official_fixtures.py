"""The network reproduces the authors' implementation: their key layout loads through
``from_pretrained(..., preset=...)`` and every fixture case matches.

Tolerances (float32 on the CPU): mask logits 3e-4 max abs (MASK_LOGIT_ATOL, see there); thresholded masks identical wherever
|logit| > 1e-3; class probabilities 1e-5; Hilbert orders equal. Case B also checks the backbone
features (1e-5), the encoder outputs (1e-4), the frame queries (5e-4) and every decoder head (3e-4).
"""
from __future__ import annotations

import copy

import pytest
import torch

from lgrnet import LGRNet, hilbert_order

from tests.helpers.official_utils import authors_state_dict, load_case

CASES = [("sunseg_pvt", "A"), ("sunseg_pvt", "B"), ("fibroid_pvt", "A"), ("sunseg_res2net", "A")]
# fibroid_pvt thresholds attention at query . token < 0, and in case A one entry of encoder layer 2 is
# +3.7e-6 in exact arithmetic: float32 rounding (~1e-5 per op, kernel- and CPU-dependent) decides its
# side, and one flip spreads to a 0.057 logit difference. The authors' float32 run landed on the exact
# side; ours does on some CPUs and not on others (docs/model.md, "fibroid_pvt on other CPUs"). So this
# case checks the published math in float64, where every mask decision is the exact one; the float32
# paths of the same modules are checked by the other cases and by tests/test_oracle.py.
FLOAT64_CASES = {"fibroid_pvt"}
# Float32 rounding depends on the CPU's kernels. On an AVX-512 CPU ours lands within 1e-4 of the
# authors' mask logits; on an AVX2 CPU, measured against the exact (float64) run of the same
# weights, ours are further off than theirs (case A logits: ours 1.05e-4, theirs 9.2e-5 from exact;
# case B: logits 1.6e-4 vs 5.0e-5, layer-3 frame queries 4.1e-4 vs 1.0e-4), and ours differ from
# theirs by up to 1.73e-4 (logits, heads) and 3.23e-4 (frame queries). The limits allow that, with
# about 1.5x margin; the backbone (1e-5) and encoder outputs (1e-4) keep theirs.
MASK_LOGIT_ATOL = 3e-4
FRAME_QUERY_ATOL = 5e-4


@pytest.fixture(scope="module")
def models(shared_dir, tmp_path_factory):
    """One model per preset, loaded from an authors'-layout .pth file (state dict under 'model')."""
    out = {}
    for preset in sorted({p for p, _ in CASES}):
        path = tmp_path_factory.mktemp("ckpt") / f"{preset}.pth"
        torch.save({"model": authors_state_dict(shared_dir, preset)}, path)
        out[preset] = LGRNet.from_pretrained(str(path), preset=preset).eval()
    return out


@pytest.mark.parametrize("preset,case", CASES, ids=[f"{p}-{c}" for p, c in CASES])
def test_fixture_case(models, shared_dir, preset, case):
    data = load_case(shared_dir, preset, case)
    model = models[preset]
    T = data["video"].shape[1]
    assert torch.equal(hilbert_order(T, 20), data["hilbert_curve"].long())
    video = data["video"]
    if preset in FLOAT64_CASES:
        model, video = copy.deepcopy(model).double(), video.double()
    with torch.inference_mode():
        out = model(video, return_internals=True)
    ref = data["mask_logits"]
    assert out.mask_logits.shape == ref.shape
    diff = (out.mask_logits - ref).abs().max().item()
    assert diff <= MASK_LOGIT_ATOL, f"mask logits differ by {diff:.3g}"
    sure = ref.abs() > 1e-3
    assert torch.equal((out.mask_logits > 0)[sure], data["final_masks"][sure])
    probs = out.class_probs[:, None].expand_as(data["class_probs"]).float()
    assert (probs - data["class_probs"]).abs().max().item() <= 1e-5

    if data.get("backbone") is not None:  # case B: the intermediate results
        for name, feat in data["backbone"].items():
            d = (out.internals["backbone"][name] - feat).abs().max().item()
            assert d <= 1e-5, f"backbone {name} differs by {d:.3g}"
        for name, feat in data["encoder_multiscales"].items():
            d = (out.internals["encoder"][name] - feat).abs().max().item()
            assert d <= 1e-4, f"encoder {name} differs by {d:.3g}"
        # the authors' encoder returns the frame queries of every layer, last layer first, (Nf, T, C)
        ours = [q[0].transpose(0, 1) for q in out.internals["frame_queries"][::-1]]
        for i, (a, b) in enumerate(zip(ours, data["encoder_frame_queries"])):
            d = (a - b).abs().max().item()
            assert d <= FRAME_QUERY_ATOL, f"frame queries of encoder layer {len(ours) - i} differ by {d:.3g}"
        assert len(out.aux) == len(data["all_layers_mask_logits"])
        for i, (head, ref_head) in enumerate(zip(out.aux, data["all_layers_mask_logits"])):
            d = (head.mask_logits - ref_head).abs().max().item()
            assert d <= MASK_LOGIT_ATOL, f"decoder head {i} differs by {d:.3g}"


def test_bare_state_dict_and_missing_keys(shared_dir, tmp_path):
    sd = dict(authors_state_dict(shared_dir, "sunseg_pvt"))
    bare = tmp_path / "bare.pth"
    torch.save(sd, bare)
    LGRNet.from_pretrained(str(bare), preset="sunseg_pvt")  # a bare state dict loads too
    del sd["decoder.query_class.weight"]
    sd["decoder.something_new"] = torch.zeros(3)
    broken = tmp_path / "broken.pth"
    torch.save(sd, broken)
    with pytest.raises(ValueError) as err:
        LGRNet.from_pretrained(str(broken), preset="sunseg_pvt")
    msg = str(err.value)
    assert "decoder.class_embed.weight" in msg and "decoder.something_new" in msg and "broken.pth" in msg


def test_authors_checkpoint_needs_preset(shared_dir, tmp_path):
    path = tmp_path / "a.pth"
    torch.save({"model": authors_state_dict(shared_dir, "sunseg_res2net")}, path)
    with pytest.raises(ValueError, match="preset"):
        LGRNet.from_pretrained(str(path))
    with pytest.raises(ValueError, match="shape mismatch|does not fit"):
        LGRNet.from_pretrained(str(path), preset="sunseg_pvt")
