"""Models by name: local files, hub-layout folders and Hugging Face Hub ids, with a model card.

A model can be given as

* a weight file: our ``.safetensors`` (config inside) or an authors' ``.pth`` (with a preset);
* a folder in the hub layout: ``model.safetensors`` (weights, config also in its metadata),
  ``config.json`` (the model config, preset, input size) and ``README.md`` (the model card);
* a hub id ``org/name`` (optionally ``revision=``: a branch, tag or commit): fetched with
  ``huggingface_hub.snapshot_download`` into its cache (``HF_HUB_CACHE`` / ``HF_HOME``), read from
  the cache when ``HF_HUB_OFFLINE=1``. A local path wins over a hub id of the same spelling.

:func:`save_folder` writes the hub layout (what ``model.save_pretrained(dir)`` does) and
:func:`push_to_hub` uploads it with ``huggingface_hub.HfApi``.
"""
from __future__ import annotations

import dataclasses
import json
import os
import re
import tempfile
from dataclasses import dataclass, field
from typing import Dict, Optional

from ..config import ModelConfig, model_config_from_dict, to_dict
from .shipped import resolve_shipped
from .input_size import DEFAULT_INPUT_SIZE
from .weight_metadata import WEIGHTS_NAME, WeightMetadata, metadata_strings

CONFIG_NAME = "config.json"
CARD_NAME = "README.md"
HUB_FILES = (WEIGHTS_NAME, CONFIG_NAME, CARD_NAME)
LIBRARY_NAME = "lgrnet"
# org/name as the hub spells repository ids; a path with a weight-file suffix is never an id
_HUB_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*/[A-Za-z0-9][A-Za-z0-9._-]*$")
_WEIGHT_SUFFIXES = (".safetensors", ".pth", ".pt", ".bin", ".tar", ".ckpt")


@dataclass
class ModelCardInfo:
    """What a model card says beyond the config: where the weights came from and how good they are.

    training_data: the data the weights were trained on; data_terms: that data's terms of use,
    which the weights inherit; scores: {"<test set> <metric>": value}; license: the weights'
    licence (a hub licence id, "other" when the data terms decide); input_size: the frame size
    the model was trained and scored at; notes: free text appended to the card.
    """

    input_size: int = DEFAULT_INPUT_SIZE
    training_data: str = "not stated"
    data_terms: str = "not stated"
    scores: Dict[str, float] = field(default_factory=dict)
    license: str = "other"
    notes: str = ""


_SUN_TERMS = ("SUN-SEG's frames come from the SUN Colonoscopy Video Database (Showa University and Nagoya "
              "University), released on request for non-commercial research; the weights carry the same terms.")
_CVC_TERMS = ("CVC-ClinicDB / CVC-ColonDB (Computer Vision Center and Hospital Clinic, Barcelona) and ASU-Mayo: "
              "research and educational use only, commercial use forbidden; the weights carry the same terms.")

# The published settings of each preset (the authors' README, commit e97ab73; see docs/model.md).
PRESET_CARDS: Dict[str, ModelCardInfo] = {
    "sunseg_pvt": ModelCardInfo(training_data="SUN-SEG-Train", data_terms=_SUN_TERMS, scores={
        "SUN-SEG-Easy-Testing Dice": 0.875, "SUN-SEG-Easy-Testing mIoU": 0.810,
        "SUN-SEG-Hard-Testing Dice": 0.876, "SUN-SEG-Hard-Testing mIoU": 0.805,
        "SUN-SEG-Easy-Unseen-Testing Dice": 0.853, "SUN-SEG-Easy-Unseen-Testing mIoU": 0.783,
        "SUN-SEG-Hard-Unseen-Testing Dice": 0.865, "SUN-SEG-Hard-Unseen-Testing mIoU": 0.792}),
    "sunseg_res2net": ModelCardInfo(training_data="SUN-SEG-Train", data_terms=_SUN_TERMS, scores={
        "SUN-SEG-Easy-Testing Dice": 0.843, "SUN-SEG-Easy-Testing mIoU": 0.774,
        "SUN-SEG-Hard-Testing Dice": 0.841, "SUN-SEG-Hard-Testing mIoU": 0.765}),
    "cvc_pvt": ModelCardInfo(
        training_data="MICCAI VPS train split (CVC-ClinicDB-612 Train, CVC-ColonDB-300 Train, ASU-Mayo Train)",
        data_terms=_CVC_TERMS, scores={
            "CVC-ClinicDB-612-Valid Dice": 0.933, "CVC-ClinicDB-612-Valid mIoU": 0.877,
            "CVC-ColonDB-300 Dice": 0.916, "CVC-ColonDB-300 mIoU": 0.852,
            "CVC-ClinicDB-612-Test Dice": 0.875, "CVC-ClinicDB-612-Test mIoU": 0.814}),
    "fibroid_pvt": ModelCardInfo(training_data="UFUV (uterine fibroid ultrasound videos)",
                                 data_terms="UFUV is distributed by its authors on request; check their terms."),
}


def card_info_for(config: ModelConfig) -> ModelCardInfo:
    """The preset's published card (:data:`PRESET_CARDS`), or an empty one with the preset's
    training size. The scores are the authors' figures for *their* weights: replace them for
    weights you trained yourself."""
    info = PRESET_CARDS.get(config.preset)
    if info:
        return dataclasses.replace(info, scores=dict(info.scores))
    from ..config import PRESETS, get_preset

    size = get_preset(config.preset).train.image_size if config.preset in PRESETS else ModelCardInfo.input_size
    return ModelCardInfo(input_size=size)


def is_hub_id(ref: str) -> bool:
    """Whether ``ref`` is spelled like a hub id (``org/name``) rather than a weight file path."""
    return bool(_HUB_ID.match(ref)) and not ref.lower().endswith(_WEIGHT_SUFFIXES)


# ------------------------------------------------------------------------------------- resolving


@dataclass
class ResolvedWeights:
    """Where a model reference led: ``path`` the weight file to load; ``config`` from config.json
    (folders and hub ids), else None; ``source``: "file", "folder" or "hub"; ``folder`` the local
    folder (hub ids: the cache snapshot) or None."""

    path: str
    config: Optional[ModelConfig] = None
    source: str = "file"
    folder: Optional[str] = None


def read_config_json(path: str) -> Dict[str, object]:
    try:
        with open(path, encoding="utf-8") as f:
            data = json.load(f)
        if not isinstance(data, dict) or not isinstance(data.get("model"), dict):
            raise ValueError("no 'model' mapping")
        return data
    except (OSError, ValueError) as exc:
        raise ValueError(f"{path}: not an lgrnet config.json ({exc})") from None


def resolve(ref: str, revision: Optional[str] = None) -> ResolvedWeights:
    """A weight file, hub-layout folder or hub id -> the file to load (see the module docstring).

    Raises FileNotFoundError (one line) when nothing is found: no such path, an id that is neither
    cached nor reachable (offline: says so), or a folder without ``model.safetensors``.
    """
    ref = resolve_shipped(ref)  # `demo`: the shipped model (lgrnet.models.shipped)
    if os.path.isfile(ref):
        if revision is not None:
            raise ValueError(f"{ref}: revision= applies to hub ids, not to a local file")
        return ResolvedWeights(path=ref)
    if os.path.isdir(ref):
        return _from_folder(ref, "folder")
    if not is_hub_id(ref):
        raise FileNotFoundError(f"{ref}: no such weight file or folder (nor a hub id org/name)")
    return _from_folder(_download(ref, revision), "hub", label=ref)


def _from_folder(folder: str, source: str, label: Optional[str] = None) -> ResolvedWeights:
    label = label or folder
    weights = os.path.join(folder, WEIGHTS_NAME)
    if not os.path.isfile(weights):
        raise FileNotFoundError(f"{label}: has no {WEIGHTS_NAME} (a model folder holds {', '.join(HUB_FILES)})")
    config = None
    cfg_path = os.path.join(folder, CONFIG_NAME)
    if os.path.isfile(cfg_path):
        data = read_config_json(cfg_path)
        try:
            config = model_config_from_dict(data["model"])
        except (TypeError, ValueError, KeyError) as exc:
            raise ValueError(f"{cfg_path}: invalid model config ({exc})") from None
    return ResolvedWeights(path=weights, config=config, source=source, folder=folder)


def _download(repo_id: str, revision: Optional[str]) -> str:
    try:
        import huggingface_hub as hf
        from huggingface_hub import errors as hf_errors
    except ImportError:
        raise FileNotFoundError(f"{repo_id}: no such local file or folder; to fetch it as a hub id install "
                                f"huggingface_hub (pip install \"lgrnet[hub]\")") from None
    rev = f" (revision {revision})" if revision else ""
    try:
        return hf.snapshot_download(repo_id, revision=revision, allow_patterns=list(HUB_FILES),
                                    library_name=LIBRARY_NAME)
    except hf_errors.RepositoryNotFoundError:
        raise FileNotFoundError(f"{repo_id}: no such model on the hub (or it is private: log in with hf auth login)") from None
    except hf_errors.RevisionNotFoundError:
        raise FileNotFoundError(f"{repo_id}: the hub has no revision {revision!r}") from None
    except getattr(hf_errors, "IncompleteSnapshotError", ()):  # huggingface_hub >= 2.x
        raise FileNotFoundError(f"{repo_id}{rev}: the cached copy is incomplete and the hub cannot be reached") from None
    except (hf_errors.LocalEntryNotFoundError, hf_errors.OfflineModeIsEnabled):
        # raised when offline (HF_HUB_OFFLINE=1, or no connection) and the id is not in the cache
        from huggingface_hub import constants

        why = "HF_HUB_OFFLINE is set" if constants.HF_HUB_OFFLINE else "the hub cannot be reached"
        raise FileNotFoundError(f"{repo_id}{rev}: not a local path, not in the hub cache ({constants.HF_HUB_CACHE}) "
                                f"and {why}") from None
    except hf_errors.HfHubHTTPError as exc:
        raise FileNotFoundError(f"{repo_id}{rev}: the hub refused the download ({str(exc).splitlines()[0]})") from None


# ------------------------------------------------------------------------------------- writing


def config_json(model, info: ModelCardInfo) -> Dict[str, object]:
    from ..version import __version__

    return {"library_name": LIBRARY_NAME, "lgrnet_version": __version__, "format_version": 1,
            "preset": model.config.preset, "input_size": [info.input_size, info.input_size],
            "model": to_dict(model.config)}


def model_card(model, info: ModelCardInfo, repo_id: Optional[str] = None) -> str:
    """README.md text: hub metadata (YAML front matter via huggingface_hub's ModelCardData when
    installed) and the preset, input size, training data, its terms and the scores."""
    cfg = model.config
    preset = cfg.preset or "custom"
    n = sum(p.numel() for p in model.parameters())
    front = _front_matter(info, preset)
    scores = "\n".join(f"| {k} | {v:.3f} |" for k, v in info.scores.items()) or "| (none recorded) | |"
    load = repo_id or "path/to/this/folder"
    return f"""---
{front}
---

# LGRNet ({preset})

LGRNet video lesion segmentation weights in the [lgrnet](https://pypi.org/project/lgrnet/) format.

| | |
| --- | --- |
| preset | `{preset}` |
| backbone | {cfg.backbone.name} |
| d_model | {cfg.d_model} |
| parameters | {n / 1e6:.2f} M |
| input size | {info.input_size} x {info.input_size} (frames are resized to it; a multiple of 32) |
| training data | {info.training_data} |

## Data terms

{info.data_terms}

## Scores

| test set and metric | value |
| --- | --- |
{scores}

## Use

```python
from lgrnet import LGRNet, VideoPredictor
model = LGRNet.from_pretrained("{load}")
predictor = VideoPredictor.from_pretrained("{load}")  # at the input size the weights record
```

or `lgrnet predict exam.mp4 --weights {load} --out results/`.
{info.notes}
"""


def _front_matter(info: ModelCardInfo, preset: str) -> str:
    tags = ["lgrnet", "video-segmentation", "medical-imaging", preset]
    try:
        from huggingface_hub import ModelCardData
    except ImportError:
        return f"library_name: {LIBRARY_NAME}\nlicense: {info.license}\ntags:\n" + "".join(f"- {t}\n" for t in tags).rstrip()
    return ModelCardData(library_name=LIBRARY_NAME, license=info.license, tags=tags,
                         pipeline_tag="image-segmentation").to_yaml()


def save_folder(model, directory: str, info: Optional[ModelCardInfo] = None, dtype=None,
                metadata=None, repo_id: Optional[str] = None) -> str:
    """Write ``directory/{model.safetensors, config.json, README.md}`` (each file atomically; other
    files in the folder are left alone). ``info``: the card's content, default :func:`card_info_for`;
    the weights record its input size unless ``metadata`` (a
    :class:`~lgrnet.models.weight_metadata.WeightMetadata` or a mapping) says another."""
    from ..files import write_text_atomic
    from .checkpoint import save_pretrained as save_file

    if os.path.exists(directory) and not os.path.isdir(directory):
        raise ValueError(f"{directory}: is a file; save_pretrained writes a folder (or pass a .safetensors path)")
    info = info or card_info_for(model.config)
    os.makedirs(directory, exist_ok=True)
    meta = {**WeightMetadata(input_size=(info.input_size, info.input_size)).to_metadata(), **metadata_strings(metadata)}
    save_file(model, os.path.join(directory, WEIGHTS_NAME), dtype=dtype, metadata=meta)
    write_text_atomic(os.path.join(directory, CONFIG_NAME), json.dumps(config_json(model, info), indent=2) + "\n")
    write_text_atomic(os.path.join(directory, CARD_NAME), model_card(model, info, repo_id))
    return os.path.abspath(directory)


def push_to_hub(model, repo_id: str, info: Optional[ModelCardInfo] = None, private: bool = False,
                revision: Optional[str] = None, commit_message: str = "Upload LGRNet weights",
                token: Optional[str] = None) -> str:
    """Save the hub layout to a temporary folder and upload it to ``repo_id`` (created if needed);
    returns the commit URL. Authentication is huggingface_hub's (``hf auth login`` or ``token``)."""
    from huggingface_hub import HfApi

    api = HfApi(token=token, library_name=LIBRARY_NAME)
    with tempfile.TemporaryDirectory(prefix="lgrnet-push-") as tmp:
        save_folder(model, tmp, info=info, repo_id=repo_id)
        api.create_repo(repo_id, private=private, exist_ok=True, repo_type="model")
        commit = api.upload_folder(repo_id=repo_id, folder_path=tmp, revision=revision, repo_type="model",
                                   commit_message=commit_message, allow_patterns=list(HUB_FILES))
    return str(getattr(commit, "commit_url", commit))
