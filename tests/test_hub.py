"""Models by id: hub-layout folders, a Hugging Face cache read offline, clear errors when an id is
neither cached nor reachable, the model card, and push_to_hub (with a mock: no network here)."""
import json
import os
from pathlib import Path

import pytest
import torch

from lgrnet import LGRNet
from lgrnet.models.hub import CARD_NAME, CONFIG_NAME, WEIGHTS_NAME, ModelCardInfo, is_hub_id
from tests.helpers.hub_cache import COMMIT, fill_hub_cache, offline_hub_cache

hf = pytest.importorskip("huggingface_hub")



@pytest.fixture(scope="module")
def tiny():
    torch.manual_seed(0)
    return LGRNet.from_preset("tiny").eval()


@pytest.fixture
def offline_cache(tmp_path, monkeypatch):
    return offline_hub_cache(tmp_path, monkeypatch)


def fill_cache(cache, repo_id, folder, commit=COMMIT, ref="main"):
    """The files of ``folder`` as repo ``repo_id`` in the cache (:func:`fill_hub_cache`)."""
    return fill_hub_cache(cache, repo_id, {p.name: p.read_bytes() for p in Path(folder).iterdir()}, commit, ref)


def same_weights(a, b):
    sa, sb = a.state_dict(), b.state_dict()
    return sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)


def test_save_pretrained_folder_and_model_card(tmp_path, tiny):
    card = ModelCardInfo(input_size=224, training_data="CVC-ClinicDB-612 Train", data_terms="research use only",
                         scores={"CVC-ClinicDB-612-Test Dice": 0.8125})
    out = tiny.save_pretrained(str(tmp_path / "model"), card=card)
    assert sorted(os.listdir(out)) == sorted([WEIGHTS_NAME, CONFIG_NAME, CARD_NAME])
    cfg = json.loads((tmp_path / "model" / CONFIG_NAME).read_text())
    assert cfg["preset"] == "tiny" and cfg["input_size"] == [224, 224] and cfg["model"]["d_model"] == 32
    text = (tmp_path / "model" / CARD_NAME).read_text()
    for needle in ("library_name: lgrnet", "`tiny`", "224 x 224", "CVC-ClinicDB-612 Train", "research use only",
                   "| CVC-ClinicDB-612-Test Dice | 0.812 |"):
        assert needle in text, needle
    parsed = hf.ModelCard.load(tmp_path / "model" / CARD_NAME)  # the hub's own parser reads the front matter
    assert parsed.data.library_name == "lgrnet" and "tiny" in parsed.data.tags
    back = LGRNet.from_pretrained(out)
    assert same_weights(back, tiny) and back.config == tiny.config
    default = json.loads((Path(tiny.save_pretrained(str(tmp_path / "default"))) / CONFIG_NAME).read_text())
    assert default["input_size"] == [224, 224]  # tiny's training size, when no card is given
    single = tiny.save_pretrained(str(tmp_path / "one.safetensors"))  # the single-file form still works
    assert os.path.isfile(single) and same_weights(LGRNet.from_pretrained(single), tiny)


def test_published_preset_card_lists_the_authors_scores(tmp_path):
    model = LGRNet.from_preset("tiny")
    model.config.preset = "sunseg_pvt"  # only the card's defaults are looked at
    from lgrnet.models.hub import card_info_for, model_card

    text = model_card(model, card_info_for(model.config))
    assert "SUN-SEG-Train" in text and "| SUN-SEG-Hard-Testing Dice | 0.876 |" in text and "non-commercial" in text


def test_folder_config_json_wins_over_a_bare_weight_file(tmp_path, tiny):
    """A hub folder whose model.safetensors has no lgrnet metadata loads with its config.json."""
    from safetensors.torch import save_file

    folder = tmp_path / "bare"
    tiny.save_pretrained(str(folder))
    save_file({k: v.contiguous() for k, v in tiny.state_dict().items()}, str(folder / WEIGHTS_NAME))  # no metadata
    assert same_weights(LGRNet.from_pretrained(str(folder)), tiny)
    (folder / CONFIG_NAME).unlink()
    with pytest.raises(ValueError, match="has no lgrnet config in its metadata"):
        LGRNet.from_pretrained(str(folder))


def test_hub_id_from_an_offline_cache(tmp_path, tiny, offline_cache):
    folder = tmp_path / "export"
    tiny.save_pretrained(str(folder))
    fill_cache(offline_cache, "someorg/lgrnet-tiny", folder)
    model = LGRNet.from_pretrained("someorg/lgrnet-tiny")
    assert same_weights(model, tiny) and not model.training
    assert same_weights(LGRNet.from_pretrained("someorg/lgrnet-tiny", revision=COMMIT), tiny)
    from lgrnet import VideoPredictor

    predictor = VideoPredictor.from_pretrained("someorg/lgrnet-tiny", device="cpu")  # the commands' one loader
    assert same_weights(predictor.model, tiny) and predictor.weights == "someorg/lgrnet-tiny"
    assert predictor.size == (224, 224)  # the input size the folder records (tiny's training size)
    with pytest.raises(FileNotFoundError, match=r"someorg/lgrnet-tiny \(revision v9\): not a local path, not in the "
                                                r"hub cache .* and HF_HUB_OFFLINE is set"):
        LGRNet.from_pretrained("someorg/lgrnet-tiny", revision="v9")


def test_hub_id_not_cached_offline_is_one_clear_line(offline_cache, tmp_path, monkeypatch, capsys):
    with pytest.raises(FileNotFoundError) as err:
        LGRNet.from_pretrained("nobody/not-there")
    msg = str(err.value)
    assert msg.startswith("nobody/not-there: not a local path, not in the hub cache") and "HF_HUB_OFFLINE is set" in msg
    assert "\n" not in msg
    from lgrnet import VideoPredictor
    from lgrnet.errors import UserError

    with pytest.raises(UserError, match="nobody/not-there: not a local path"):
        VideoPredictor.from_pretrained("nobody/not-there", device="cpu")
    from lgrnet.cli import main

    frames = tmp_path / "frames"
    frames.mkdir()
    rc = main(["predict", str(frames), "--weights", "nobody/not-there", "--out", str(tmp_path / "out"), "--no-progress"])
    err_text = capsys.readouterr().err
    assert rc == 2 and "nobody/not-there: not a local path, not in the hub cache" in err_text
    assert "Traceback" not in err_text and len(err_text.strip().splitlines()) == 1


def test_local_paths_and_ids(tmp_path, tiny, monkeypatch):
    assert is_hub_id("org/name") and is_hub_id("my-org/lgrnet.sunseg_pvt")
    assert not is_hub_id("weights/model.safetensors") and not is_hub_id("a/b/c") and not is_hub_id("/abs/x")
    monkeypatch.chdir(tmp_path)
    tiny.save_pretrained("org/name")  # a local folder spelled like an id wins, no hub call
    assert same_weights(LGRNet.from_pretrained("org/name"), tiny)
    with pytest.raises(FileNotFoundError, match=r"missing/model.safetensors: no such weight file or folder"):
        LGRNet.from_pretrained("missing/model.safetensors")
    os.makedirs("empty/folder")
    with pytest.raises(FileNotFoundError, match=r"empty/folder: has no model.safetensors"):
        LGRNet.from_pretrained("empty/folder")


def test_push_to_hub_forms_the_calls(tiny, monkeypatch):
    calls = []

    class FakeApi:
        def __init__(self, token=None, library_name=None):
            calls.append(("init", token, library_name))

        def create_repo(self, repo_id, private, exist_ok, repo_type):
            calls.append(("create_repo", repo_id, private, exist_ok, repo_type))

        def upload_folder(self, repo_id, folder_path, revision, repo_type, commit_message, allow_patterns):
            files = sorted(os.listdir(folder_path))
            loaded = LGRNet.from_pretrained(folder_path)  # what is uploaded loads back
            calls.append(("upload_folder", repo_id, files, revision, commit_message, same_weights(loaded, tiny)))
            return type("Commit", (), {"commit_url": f"https://huggingface.co/{repo_id}/commit/abc"})()

    monkeypatch.setattr(hf, "HfApi", FakeApi)
    url = tiny.push_to_hub("me/lgrnet-tiny", private=True, token="t0k")
    assert url == "https://huggingface.co/me/lgrnet-tiny/commit/abc"
    assert calls == [("init", "t0k", "lgrnet"), ("create_repo", "me/lgrnet-tiny", True, True, "model"),
                     ("upload_folder", "me/lgrnet-tiny", sorted([CARD_NAME, CONFIG_NAME, WEIGHTS_NAME]), None,
                      "Upload LGRNet weights", True)]
