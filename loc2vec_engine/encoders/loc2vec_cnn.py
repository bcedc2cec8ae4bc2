"""The baseline encoder, in the spirit of the original Loc2Vec (Sentiance, 2018): a small plain CNN.

Five conv blocks (3x3 conv - BatchNorm - LeakyReLU - 2x2 max pool) halve the tile five times; max
pooling rather than strided convolution, because map channels are thin 0/255 strokes (a one-pixel
footpath) that strided sampling can step over. The last feature map is pooled to a fixed 2 x 2 grid,
which keeps coarse layout (where the river is in the tile) and makes the dense part independent of the
tile size; two dense layers with LeakyReLU and dropout follow, then the embedding (``Encoder.head``).
About 0.56 M parameters with the defaults; any tile size >= 32 px works.
"""

from __future__ import annotations

import torch
from torch import nn

from .encoder import Encoder
from .registry import register_encoder

DEFAULT_WIDTHS = (32, 64, 96, 128, 128)
GRID = 2  # the last feature map is pooled to GRID x GRID cells


def grid_pool(x: torch.Tensor, grid: int = GRID) -> torch.Tensor:
    """Adaptive average pooling to ``grid x grid`` cells, flattened channel-major like ``AdaptiveAvgPool2d``.

    Written out as slices because the ONNX (TorchScript) exporter refuses ``adaptive_avg_pool2d`` when
    the map size is not a multiple of the output size (a 200 px tile ends in a 7 x 7 map).
    Cell bounds are those of ``AdaptiveAvgPool2d``: floor(i*H/g) .. ceil((i+1)*H/g).
    """
    h, w = int(x.shape[-2]), int(x.shape[-1])  # static per tile size; the export fixes the tile size anyway
    cells = []
    for i in range(grid):
        for j in range(grid):
            rows = slice(i * h // grid, -(-(i + 1) * h // grid))
            cols = slice(j * w // grid, -(-(j + 1) * w // grid))
            cells.append(x[:, :, rows, cols].mean(dim=(2, 3)))
    return torch.stack(cells, dim=-1).flatten(1)


def _conv_block(c_in: int, c_out: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(c_in, c_out, 3, padding=1, bias=False), nn.BatchNorm2d(c_out),
                         nn.LeakyReLU(0.1, inplace=True), nn.MaxPool2d(2, ceil_mode=True))


class Loc2VecCNN(nn.Module):
    """Tiles (N, C, H, W) -> features (N, hidden). The embedding layer itself is ``Encoder.head``."""

    def __init__(self, in_channels: int, widths=DEFAULT_WIDTHS, hidden: int = 256, dropout: float = 0.3):
        super().__init__()
        widths = tuple(int(w) for w in widths)
        self.features = nn.Sequential(*(_conv_block(c_in, c_out)
                                        for c_in, c_out in zip((in_channels,) + widths[:-1], widths)))
        self.dense = nn.Sequential(
            nn.Linear(widths[-1] * GRID * GRID, hidden), nn.LeakyReLU(0.1, inplace=True), nn.Dropout(dropout),
            nn.Linear(hidden, hidden), nn.LeakyReLU(0.1, inplace=True), nn.Dropout(dropout))
        self.num_features = hidden
        # Same shape as timm's feature_info, so set_trainable() finds the stages the same way for every encoder.
        self.feature_info = [{"module": f"features.{i}", "num_chs": w, "reduction": 2 ** (i + 1)}
                             for i, w in enumerate(widths)]

    def forward(self, tiles: torch.Tensor) -> torch.Tensor:
        return self.dense(grid_pool(self.features(tiles)))


@register_encoder("loc2vec")
def build_loc2vec(*, in_channels: int, embedding_dim: int, imagenet=None, **kwargs) -> Encoder:
    """The baseline; ``kwargs``: ``widths`` (conv channels per block), ``hidden`` (dense size), ``dropout``."""
    from ..errors import Loc2VecError

    if imagenet is not None:
        raise Loc2VecError("the loc2vec baseline has no ImageNet weights",
                           "use a timm encoder for --pretrained imagenet (e.g. resnet18), "
                           "or start loc2vec from a run folder / checkpoint")
    allowed = {"widths", "hidden", "dropout"}
    unknown = set(kwargs) - allowed
    if unknown:
        raise Loc2VecError(f"unknown option(s) {sorted(unknown)} for the loc2vec encoder",
                           f"allowed: {', '.join(sorted(allowed))}")
    if "widths" in kwargs:
        kwargs["widths"] = [int(w) for w in kwargs["widths"]]  # a list survives the checkpoint meta round trip
    backbone = Loc2VecCNN(in_channels, **kwargs)
    meta = {"name": "loc2vec", "in_channels": in_channels, "pretrained": None, "kwargs": dict(kwargs)}
    return Encoder(backbone, backbone.num_features, embedding_dim, meta)
