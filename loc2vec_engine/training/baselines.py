"""The no-learning baseline: a tile is described by how much of each channel it holds.

A tile's mean intensity per channel (roads, buildings, water, ... as a share of the tile; invalid pixels
count as 0, as the sampler writes them), standardised with the training tiles' mean and std, compared by
Euclidean distance. A learned encoder must beat this on the same triplets to have learned anything
beyond land-use proportions. Works on numpy arrays and torch tensors alike (torch stays on its device).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..errors import Loc2VecError


def _is_torch(x) -> bool:
    return type(x).__module__.startswith("torch")


def channel_fractions(tiles):
    """(N, C, S, S) uint8 (0..255) or float (0..1) tiles -> (N, C) mean intensity in [0, 1].

    numpy in -> float64 numpy out; torch in -> float32 torch out on the same device.
    """
    if getattr(tiles, "ndim", None) != 4:
        raise Loc2VecError(f"tiles must be (N, C, S, S), not shape {getattr(tiles, 'shape', None)}",
                           "pass a batch of tiles, e.g. Triplets.anchor")
    if _is_torch(tiles):
        import torch

        x = tiles.float().mean(dim=(2, 3))
        return x / 255.0 if tiles.dtype == torch.uint8 else x
    x = np.asarray(tiles)
    if x.dtype == np.uint8:
        return x.mean(axis=(2, 3), dtype=np.float64) / 255.0
    if not np.issubdtype(x.dtype, np.floating):
        raise Loc2VecError(f"tiles must be uint8 or float, not {x.dtype}", "pass the sampler's tiles")
    return x.mean(axis=(2, 3), dtype=np.float64)


@dataclass
class FractionsBaseline:
    """Standardised channel fractions: ``embed(f) = (f - mean) / std`` with the training mean / std."""

    mean: np.ndarray
    std: np.ndarray

    @classmethod
    def fit(cls, train_features) -> "FractionsBaseline":
        """From (N, C) channel fractions of training tiles (N >= 2). Constant channels get std 1 (ignored)."""
        f = _as_numpy(train_features)
        if f.ndim != 2 or f.shape[0] < 2:
            raise Loc2VecError(f"the baseline needs (N >= 2, C) training features, not {f.shape}",
                               "pass channel_fractions() of at least two training tiles")
        std = f.std(axis=0)
        return cls(f.mean(axis=0), np.where(std > 1e-9, std, 1.0))

    def embed(self, features):
        """(N, C) features -> (N, C) standardised vectors, numpy or torch like the input."""
        if features.shape[-1] != len(self.mean):
            raise Loc2VecError(f"features have {features.shape[-1]} channels, the baseline {len(self.mean)}",
                               "embed features of tiles with the training channels")
        if _is_torch(features):
            import torch

            m = torch.as_tensor(self.mean, dtype=torch.float32, device=features.device)
            s = torch.as_tensor(self.std, dtype=torch.float32, device=features.device)
            return (features.float() - m) / s
        return (np.asarray(features, dtype=np.float64) - self.mean) / self.std

    def embed_tiles(self, tiles):
        return self.embed(channel_fractions(tiles))


def triplet_accuracy_of_embeddings(ea, ep, en, normalize: bool = False) -> float:
    """Share of triplets with |ea - ep| < |ea - en| (Euclidean); numpy or torch (B, D).

    ``normalize=True`` first scales rows to unit length, as the triplet loss compares model embeddings.
    """
    ea, ep, en = (_as_numpy(e).astype(np.float64) for e in (ea, ep, en))
    if ea.ndim != 2 or ea.shape != ep.shape or ea.shape != en.shape or len(ea) == 0:
        raise Loc2VecError("anchor, positive and negative embeddings must all be (B, D)",
                           "embed the three views of the same triplets")
    if normalize:
        ea, ep, en = (e / np.maximum(np.linalg.norm(e, axis=1, keepdims=True), 1e-12) for e in (ea, ep, en))
    return float(np.mean(((ea - ep) ** 2).sum(1) < ((ea - en) ** 2).sum(1)))


def _as_numpy(x) -> np.ndarray:
    if _is_torch(x):
        return x.detach().cpu().numpy()
    return np.asarray(x)
