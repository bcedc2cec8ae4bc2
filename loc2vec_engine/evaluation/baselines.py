"""What the model is compared with: coordinates, per-channel pixel fractions, and its own untrained architecture.

- coordinates: a cell's x, y in metres (probe only; for the distance-based metrics they are the answer).
- fractions: the tile's mean intensity per channel (12 numbers, ``training.baselines.channel_fractions``),
  standardised with the evaluated cells' mean and std, compared by Euclidean distance, as in training.
- random init: the model's architecture rebuilt from its ONNX metadata with seeded random weights, run by
  torch in eval mode: how much of the score the architecture gives without any learning.
"""

from __future__ import annotations

import numpy as np

from ..errors import Loc2VecError

BATCH = 256


class FractionsFeatures:
    """Tiles -> standardised channel fractions (mean and std fitted on the evaluated cells' tiles)."""

    def __init__(self, cell_tiles):
        from ..training.baselines import FractionsBaseline, channel_fractions

        self._fractions = channel_fractions
        self.baseline = FractionsBaseline.fit(channel_fractions(cell_tiles))

    def embed(self, tiles) -> np.ndarray:
        return self.baseline.embed(self._fractions(tiles))


class RandomInitModel:
    """The ONNX model's architecture with random weights (``torch.manual_seed(seed)``), uint8 tiles in."""

    def __init__(self, meta: dict, seed: int = 0, device: str = "cpu"):
        from ..encoders.registry import create_encoder

        import torch

        enc_meta = meta.get("encoder_meta") or {}
        try:
            name = meta["encoder"]
            in_channels = int(meta.get("in_channels", len(meta["channel_names"])))
            dim = int(meta["embedding_size"])
        except (KeyError, TypeError, ValueError) as e:
            raise Loc2VecError(f"the model's metadata cannot rebuild its architecture ({e})",
                               "export the model with loc2vec export") from None
        self.device = torch.device("cuda" if device in ("auto", "cuda") and torch.cuda.is_available() else "cpu")
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(int(seed))
            self.model = create_encoder(name, in_channels=in_channels, embedding_dim=dim,
                                        **(enc_meta.get("kwargs") or {}))
        self.model = self.model.to(self.device).eval()
        self.name = name

    def embed(self, tiles) -> np.ndarray:
        import torch

        out = []
        with torch.no_grad():
            for i in range(0, len(tiles), BATCH):
                x = torch.from_numpy(np.ascontiguousarray(tiles[i:i + BATCH])).to(self.device).float() / 255.0
                out.append(self.model(x).cpu().numpy())
        d = int(self.model.embedding_dim)
        return np.concatenate(out).astype(np.float32) if out else np.zeros((0, d), np.float32)


def random_init_model(meta: dict, seed: int, device: str):
    """``(RandomInitModel, "")``, or ``(None, reason)`` where torch (or the encoder's builder) is missing."""
    try:
        return RandomInitModel(meta, seed, device), ""
    except Loc2VecError as e:
        return None, e.problem
    except ImportError as e:  # the plugin's Python may have onnxruntime but no torch
        return None, f"{e.name or 'torch'} is not installed"
