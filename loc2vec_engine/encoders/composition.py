"""A tile's multi-scale composition: mean intensity per channel over centred windows of the tile.

The one definition that the multi-scale baseline (``evaluation.baselines``), the composition head of
contrastive training and the hybrid encoder's composition part (``encoders.hybrid``) share. Windows
are centred squares of 30, 60 and 100 % of the tile side (150 / 300 / 500 m for 500-m tiles): the
centre of a tile says more about "what this place is" than its edges, and plain fractions over the whole
tile cannot tell a park beside a block from a block beside a park.

Works on numpy arrays (float64 out) and torch tensors (float32 out, same device). torch is not imported
here, so the plugin can use this without it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..errors import Loc2VecError

WINDOWS = (0.3, 0.6, 1.0)  # centred window sides, as shares of the tile side
# How shares are turned into features before standardising. "sqrt" stabilises the variance of small
# shares (a rural town's 2 % of buildings against 4 % counts like a city's 30 against 40 %), the
# Hellinger view of a composition; "linear" keeps the shares as they are.
TRANSFORMS = ("linear", "sqrt")


def transform_shares(f, transform: str = "linear"):
    """Apply ``transform`` to shares in [0, 1] (numpy or torch)."""
    if transform == "linear":
        return f
    if transform == "sqrt":
        if type(f).__module__.startswith("torch"):
            return f.clamp_min(0.0).sqrt()
        return np.sqrt(np.maximum(f, 0.0))
    raise Loc2VecError(f"unknown composition transform {transform!r}", f"use one of: {', '.join(TRANSFORMS)}")


def centred_window(size: int, share: float) -> slice:
    """The centred pixel range covering ``share`` of a side of ``size`` px (same parity, so exactly centred)."""
    margin = int(round(size * (1.0 - share) / 2.0))
    margin = min(max(margin, 0), (size - 1) // 2)
    return slice(margin, size - margin)


def multiscale_fractions(tiles, windows=WINDOWS):
    """(N, C, S, S) tiles, uint8 (0..255) or float (0..1) -> (N, C * len(windows)) mean intensity in [0, 1].

    Columns: every channel of the first (smallest) window, then of the next, ...
    """
    shape = tuple(getattr(tiles, "shape", ()))
    if len(shape) != 4 or shape[2] != shape[3]:
        raise Loc2VecError(f"tiles must be (N, C, S, S), not shape {shape}", "pass a batch of square tiles")
    size = int(shape[2])  # a plain int also while tracing for ONNX (the tile size is fixed per model)
    if type(tiles).__module__.startswith("torch"):
        import torch

        scale = 1.0 / 255.0 if tiles.dtype == torch.uint8 else 1.0
        parts = []
        for share in windows:
            w = centred_window(size, share)
            parts.append(tiles[:, :, w, w].float().mean(dim=(2, 3)) * scale)
        return torch.cat(parts, dim=1)
    x = np.asarray(tiles)
    if x.dtype != np.uint8 and not np.issubdtype(x.dtype, np.floating):
        raise Loc2VecError(f"tiles must be uint8 or float, not {x.dtype}", "pass the sampler's tiles")
    scale = 1.0 / 255.0 if x.dtype == np.uint8 else 1.0
    parts = []
    for share in windows:
        w = centred_window(size, share)
        parts.append(x[:, :, w, w].mean(axis=(2, 3), dtype=np.float64) * scale)
    return np.concatenate(parts, axis=1)


@dataclass
class CompositionStats:
    """Mean and std of each (transformed) multi-scale fraction over a set of tiles (the training areas'),
    for standardising. A feature that never varies there gets std 1 (it carries nothing; dividing by ~0
    would blow it up).
    """

    mean: np.ndarray
    std: np.ndarray
    windows: tuple = WINDOWS
    tiles: int = 0  # how many tiles the statistics come from
    transform: str = "linear"

    @classmethod
    def fit(cls, fractions, windows=WINDOWS, transform: str = "linear") -> "CompositionStats":
        """From (N, F) multi-scale fractions (before the transform)."""
        f = transform_shares(np.asarray(fractions, np.float64), transform)
        if f.ndim != 2 or f.shape[0] < 2:
            raise Loc2VecError(f"composition statistics need (N >= 2, F) features, not {f.shape}",
                               "sample at least two tiles of the training areas")
        std = f.std(axis=0)
        return cls(f.mean(axis=0), np.where(std > 1e-6, std, 1.0), tuple(windows), int(f.shape[0]), transform)

    def standardise(self, fractions) -> np.ndarray:
        """(N, F) multi-scale fractions -> transformed and standardised features."""
        return (transform_shares(np.asarray(fractions, np.float64), self.transform) - self.mean) / self.std

    def to_meta(self) -> dict:
        """JSON-able (for checkpoint and ONNX metadata)."""
        return {"windows": [float(w) for w in self.windows], "mean": [float(v) for v in self.mean],
                "std": [float(v) for v in self.std], "tiles": int(self.tiles), "transform": self.transform}

    @classmethod
    def from_meta(cls, meta: dict) -> "CompositionStats":
        try:
            mean, std = np.asarray(meta["mean"], np.float64), np.asarray(meta["std"], np.float64)
            windows = tuple(float(w) for w in meta["windows"])
            transform = str(meta.get("transform", "linear"))  # files written before transforms existed
        except (KeyError, TypeError, ValueError) as e:
            raise Loc2VecError(f"the composition statistics in the metadata are unreadable ({e})",
                               "export the model again with loc2vec export --hybrid") from None
        if mean.shape != std.shape or mean.ndim != 1 or not (std > 0).all() or transform not in TRANSFORMS:
            raise Loc2VecError("the composition statistics in the metadata are inconsistent",
                               "export the model again with loc2vec export --hybrid")
        return cls(mean, std, windows, int(meta.get("tiles", 0)), transform)


def hybrid_parts(meta: dict) -> list[dict]:
    """The parts (``name``, ``start``, ``stop``: output columns) of a hybrid model (``encoders.hybrid``), from
    its metadata (checkpoint meta or ONNX metadata); [] for a model that is not hybrid."""
    hybrid = meta.get("hybrid") if isinstance(meta, dict) else None
    if not isinstance(hybrid, dict):
        return []
    parts = hybrid.get("parts")
    if not isinstance(parts, list):
        return []
    out = []
    for p in parts:
        try:
            out.append({"name": str(p["name"]), "start": int(p["start"]), "stop": int(p["stop"])})
        except (KeyError, TypeError, ValueError):
            return []
    return out
