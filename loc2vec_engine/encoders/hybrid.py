"""The hybrid encoder: the learned embedding joined with the tile's standardised multi-scale composition.

    hybrid(tile) = normalise([ sqrt(1 - a) * learned(tile),  sqrt(a) * z(tile) / sqrt(F) ])

``learned`` is a trained ``Encoder`` (unit vectors, D numbers); ``z`` the tile's multi-scale fractions
(``encoders.composition``, F = channels x windows numbers), optionally square-rooted (``transform``),
standardised with the training areas' statistics; ``a`` the composition share. Both parts have squared length ~1 on average, so the cosine of
two hybrid vectors is close to ``(1 - a) * cos(learned) + a * cos-like(z)``: ``a`` says how much of
"similar" is composition and how much is what the network learned beyond it (layout, texture, the
shapes of blocks). It is one torch module, so the ONNX graph itself computes the whole vector and every
consumer (CLI, plugin, cross-city search) gets the same one; the metadata names the parts
(``hybrid_parts``) so that ``evaluate`` can score each alone.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from ..errors import Loc2VecError
from .composition import CompositionStats, multiscale_fractions, transform_shares

DEFAULT_SHARE = 0.5


class HybridEncoder(nn.Module):
    """Tiles (N, C, S, S) float32 in [0, 1] -> (N, D + F) unit vectors: learned part, then composition part."""

    def __init__(self, learned: nn.Module, stats: CompositionStats, share: float = DEFAULT_SHARE):
        super().__init__()
        if not (isinstance(share, (int, float)) and 0.0 < float(share) < 1.0):
            raise Loc2VecError(f"the composition share must be in (0, 1), not {share!r}", "use e.g. --hybrid-share 0.5")
        meta = getattr(learned, "meta", None)
        if not isinstance(meta, dict) or "embedding_dim" not in meta:
            raise Loc2VecError("the learned part has no loc2vec encoder meta", "build it with create_encoder or load_encoder")
        channels = int(meta["in_channels"])
        n_comp = channels * len(stats.windows)
        if stats.mean.shape != (n_comp,):
            raise Loc2VecError(f"composition statistics have {stats.mean.size} numbers, a {channels}-channel model "
                               f"with {len(stats.windows)} windows needs {n_comp}",
                               "compute them on areas with the model's channels")
        self.learned = learned
        self.windows = tuple(stats.windows)
        self.transform = stats.transform
        self.share = float(share)
        self.register_buffer("comp_mean", torch.as_tensor(stats.mean, dtype=torch.float32))
        self.register_buffer("comp_scale", torch.as_tensor(
            math.sqrt(self.share / n_comp) / stats.std, dtype=torch.float32))
        self.learned_weight = math.sqrt(1.0 - self.share)
        d = int(meta["embedding_dim"])
        parts = [{"name": "learned", "start": 0, "stop": d, "weight": round(self.learned_weight, 6),
                  "what": f"{meta.get('name')} embedding, unit length"},
                 {"name": "composition", "start": d, "stop": d + n_comp, "weight": round(math.sqrt(self.share), 6),
                  "what": f"multi-scale channel fractions ({stats.transform}) standardised with the training areas' "
                          f"statistics, windows {list(self.windows)} of the tile side, columns window-major"}]
        self.meta = dict(meta, embedding_dim=d + n_comp,
                         hybrid={"share": self.share, "learned_dim": d, "composition_dim": n_comp,
                                 "parts": parts, "composition": stats.to_meta()})

    @property
    def embedding_dim(self) -> int:
        return int(self.meta["embedding_dim"])

    def forward(self, tiles: torch.Tensor) -> torch.Tensor:
        learned = self.learned(tiles) * self.learned_weight
        shares = transform_shares(multiscale_fractions(tiles, self.windows), self.transform)
        comp = (shares - self.comp_mean) * self.comp_scale
        return F.normalize(torch.cat([learned, comp], dim=1), dim=1)
