"""The one model shape every encoder shares: backbone -> pooled features -> linear -> L2 normalisation."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

# How tiles reach the model, saved in every checkpoint and ONNX file so inference cannot get it wrong:
# the uint8 tile (0..255 per channel) divided by 255, as float32 in [0, 1]; no mean/std standardisation
# (channels are coverage masks, not photographs, so ImageNet statistics do not apply).
INPUT_NORMALISATION = "uint8/255"


class Encoder(nn.Module):
    """Tiles ``(N, C, H, W)`` float32 in [0, 1] (uint8 tiles / 255) -> ``(N, D)`` unit vectors.

    ``backbone`` maps tiles to pooled features ``(N, feature_dim)`` (a 4-D feature map is average-pooled
    here). ``head`` is the linear embedding layer. The output is L2-normalised so that squared
    distances are in [0, 4] whatever D is, which keeps the triplet margin meaningful across sizes.

    ``meta`` is a plain dict (str/int/float/None values only, so ``torch.load(weights_only=True)`` takes
    it) that describes how to rebuild this model: ``name``, ``in_channels``, ``embedding_dim``,
    ``feature_dim``, ``input_normalisation``, ``pretrained`` (the weight source it started from) and
    ``kwargs`` (extra builder arguments).
    """

    def __init__(self, backbone: nn.Module, feature_dim: int, embedding_dim: int, meta: dict):
        super().__init__()
        self.backbone = backbone
        self.head = nn.Linear(feature_dim, embedding_dim)
        self.meta = dict(meta, feature_dim=int(feature_dim), embedding_dim=int(embedding_dim),
                         input_normalisation=INPUT_NORMALISATION)

    @property
    def name(self) -> str:
        return self.meta["name"]

    @property
    def in_channels(self) -> int:
        return int(self.meta["in_channels"])

    @property
    def embedding_dim(self) -> int:
        return int(self.meta["embedding_dim"])

    def forward(self, tiles: torch.Tensor) -> torch.Tensor:
        features = self.backbone(tiles)
        if features.dim() == 4:  # a backbone that returns a feature map
            features = features.mean(dim=(2, 3))
        return F.normalize(self.head(features), dim=1)
