"""timm models as encoder backbones: the four first-class ones registered by name, any other on request."""

from __future__ import annotations

from functools import partial

from ..errors import Loc2VecError
from .encoder import Encoder
from .pretrained import create_timm_backbone
from .registry import register_encoder

# Small, well-tested at 64..256 px tiles, and with ImageNet weights in timm.
FIRST_CLASS = ("resnet18", "resnet34", "efficientnet_b0", "mobilenetv3_small_100")
_RESERVED = {"in_chans", "num_classes", "global_pool", "pretrained", "pretrained_cfg_overlay", "features_only"}


def build_timm_encoder(name: str, *, in_channels: int, embedding_dim: int, imagenet=None, **kwargs) -> Encoder:
    reserved = _RESERVED & set(kwargs)
    if reserved:
        raise Loc2VecError(f"option(s) {sorted(reserved)} are set by loc2vec for timm encoders",
                           "use in_channels= and pretrained= instead, and leave the classifier to loc2vec")
    backbone = create_timm_backbone(name, in_channels, imagenet, **kwargs)
    # With num_classes=0 timm returns pooled features; some models (MobileNetV3) add a pre-logits layer,
    # whose width is head_hidden_size rather than num_features.
    feature_dim = getattr(backbone, "head_hidden_size", None) or backbone.num_features
    meta = {"name": name, "in_channels": in_channels, "pretrained": None, "kwargs": dict(kwargs)}
    return Encoder(backbone, feature_dim, embedding_dim, meta)


for _name in FIRST_CLASS:
    register_encoder(_name)(partial(build_timm_encoder, _name))
