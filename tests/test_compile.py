"""torch.compile: the dispatcher picks traceable implementations while compiling, the whole model
traces to one graph (no graph breaks), and VideoPredictor(compile=True) gives the eager results for
windowed videos (whole-clip videos stay eager), kept in the cache folder. The windowed test compiles into
an empty cache folder: minutes on a 2-core CPU (docs/speed.md, "torch.compile")."""
import os

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from lgrnet import LGRNet, VideoPredictor
from lgrnet.ops import chosen
from lgrnet.ops.dense import conv_gelu, linear

from test_predict_api import SIZE, video


def test_dense_ops_compile_to_one_graph():
    """fullgraph=True fails on any graph break, e.g. an untraceable oneDNN call. Eager CPU float32
    inference runs the oneDNN kernels (where this PyTorch has oneDNN); the compiled graph holds the
    references (F.linear, conv2d + gelu) and no oneDNN call, so Inductor generates its own kernels."""
    torch._dynamo.reset()
    g = torch.Generator().manual_seed(0)
    x, w, b = torch.randn(3, 7, 16, generator=g), torch.randn(8, 16, generator=g), torch.randn(8, generator=g)
    conv = torch.nn.Conv2d(8, 8, 3, padding=1, groups=8)
    img = torch.randn(1, 8, 5, 6, generator=g)

    def fn(x, img):
        return linear(x, w, b), conv_gelu(img, conv)

    graphs = []

    def capture(gm, example_inputs):  # a backend that records the traced graph and runs it as is
        graphs.append(gm)
        return gm.forward

    expected_eager = "onednn" if torch.backends.mkldnn.is_available() else "reference"
    with torch.inference_mode():
        assert chosen("linear", x) == expected_eager and chosen("conv_gelu", img) == expected_eager
        out, out_img = torch.compile(fn, fullgraph=True, dynamic=False)(x, img)
        torch._dynamo.reset()
        torch.compile(fn, backend=capture, fullgraph=True, dynamic=False)(x, img)
    torch.testing.assert_close(out, F.linear(x, w, b), rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(out_img, F.gelu(conv(img)), rtol=1e-5, atol=1e-5)
    (gm,) = graphs
    calls = [n.target for n in gm.graph.nodes if n.op == "call_function"]
    assert calls == [F.linear, torch.conv2d, F.gelu], calls


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    return LGRNet.from_preset("tiny").eval()


def test_compiled_windows_equal_eager(model, tmp_path, monkeypatch):
    """... and the compile is kept in lgrnet's cache folder (Inductor's FX graph cache there), its
    time recorded per clip shape in the run's settings."""
    monkeypatch.delenv("TORCHINDUCTOR_CACHE_DIR", raising=False)
    monkeypatch.setenv("LGRNET_CACHE_DIR", str(tmp_path / "cache"))
    torch._dynamo.reset()
    frames = video(9)
    ref = VideoPredictor(model, size=SIZE, window=4, overlap=1).predict(frames)
    p = VideoPredictor(model, size=SIZE, window=4, overlap=1, compile=True)
    whole = p.predict(video(3))
    assert whole.info["mode"] == "whole-clip" and p.runner.compiled is None  # one forward: not worth a compile
    res = p.predict(frames)
    assert p.runner.compiled is not None and res.info["num_windows"] == 3
    np.testing.assert_allclose(res.probs, ref.probs, atol=1e-4)
    assert (res.masks == ref.masks).mean() > 0.999
    assert (res.query == ref.query).all()
    settings = p.settings()
    assert settings["compile"] is True
    ((shape, seconds),) = settings["compile_seconds"].items()  # one windowed shape: 4 frames at SIZE
    assert shape == f"4x{SIZE}x{SIZE}" and seconds > 0
    folder = tmp_path / "cache" / "inductor"
    assert settings["compile_cache"] == f"{folder} (empty)"
    assert any((folder / "fxgraph").iterdir())  # the compiled graph, for the next process


@pytest.mark.parametrize("overrides", [[], ["model.encoder.global.attn_mask=true"]])
def test_model_traces_to_one_graph(overrides):
    """A graph break (a data-dependent op, an untraceable call, a lazy import) splits the compiled
    model into pieces that cannot be fused; the forward has none, first call included."""
    from lgrnet.config import get_preset, override

    torch._dynamo.reset()
    torch.manual_seed(0)
    m = LGRNet(override(get_preset("tiny"), overrides).model).eval()
    with torch.inference_mode():
        explained = torch._dynamo.explain(m)(torch.rand(1, 3, 3, 64, 64))
    assert explained.graph_break_count == 0, [str(b.reason).split("\n")[0] for b in explained.break_reasons]
    assert explained.graph_count == 1


def test_inductor_cache_folder_choice(tmp_path, monkeypatch):
    """lgrnet's cache folder unless the user named another: torch fills TORCHINDUCTOR_CACHE_DIR with
    its own default on import, which is not a choice."""
    from torch._inductor.runtime.cache_dir_utils import default_cache_dir

    from lgrnet.inference.compile_cache import inductor_cache_dir, use_inductor_cache

    monkeypatch.setenv("LGRNET_CACHE_DIR", str(tmp_path / "lg"))
    monkeypatch.setenv("TORCHINDUCTOR_CACHE_DIR", default_cache_dir())
    assert inductor_cache_dir() == tmp_path / "lg" / "inductor"
    monkeypatch.delenv("TORCHINDUCTOR_CACHE_DIR")
    assert use_inductor_cache() == tmp_path / "lg" / "inductor"
    assert os.environ["TORCHINDUCTOR_CACHE_DIR"] == str(tmp_path / "lg" / "inductor")
    monkeypatch.setenv("TORCHINDUCTOR_CACHE_DIR", str(tmp_path / "mine"))
    assert use_inductor_cache() == tmp_path / "mine"
