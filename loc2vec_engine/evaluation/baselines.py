"""What the model is compared with: coordinates, pixel fractions, random convolutions, its untrained self.

- coordinates: a cell's x, y in metres (probes and "similar places elsewhere" only; for the
  re-identification and structure metrics they are the answer).
- fractions: the tile's mean intensity per channel (12 numbers, ``training.baselines.channel_fractions``),
  standardised with the evaluated cells' mean and std, compared by Euclidean distance, as in training.
- multiscale: the same fractions over three centred windows, 30 %, 60 % and 100 % of the tile side
  (150 / 300 / 500 m for a 500 m tile), concatenated (36 numbers) and standardised: composition near the
  centre as well as around it, which plain fractions cannot tell apart.
- random_conv: "MOSAIKS"-style random features (Rolf et al., 2021): fixed seeded random 3x3 / 5x5 / 7x7
  filters over all channels, ReLU, mean over the tile, standardised (256 numbers). Texture and layout
  at a few tens of metres, without any learning; numpy only, on tiles block-averaged to ~32 px, stride 2.
- random init: the model's architecture rebuilt from its ONNX metadata with seeded random weights, run by
  torch in eval mode: how much of the score the architecture gives without any learning.
"""

from __future__ import annotations

import numpy as np

from ..encoders.composition import WINDOWS as MULTISCALE  # centred window sides, shares of the tile side
from ..encoders.composition import centred_window, multiscale_fractions  # noqa: F401 (re-exported)
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


RANDOM_CONV_FEATURES = 256
RANDOM_CONV_SIZES = (3, 5, 7)
RANDOM_CONV_PX = 32  # tiles are block-averaged down to about this many pixels before the filters
RANDOM_CONV_STRIDE = 2  # filters applied at every 2nd working pixel: a quarter of the work, the same mean
RANDOM_CONV_BATCH = 64


class MultiscaleFeatures:
    """Tiles -> standardised multi-scale fractions (mean and std fitted on the evaluated cells' tiles)."""

    def __init__(self, cell_tiles, shares=MULTISCALE):
        from ..training.baselines import FractionsBaseline

        self.shares = tuple(shares)
        self.baseline = FractionsBaseline.fit(multiscale_fractions(cell_tiles, self.shares))

    def embed(self, tiles) -> np.ndarray:
        return self.baseline.embed(multiscale_fractions(tiles, self.shares))


def block_average(tiles, target_px: int = RANDOM_CONV_PX) -> np.ndarray:
    """uint8 (N, C, S, S) -> float32 in [0, 1], averaged over f x f blocks, f = max(1, S // target_px)."""
    x = np.asarray(tiles)
    f = max(1, x.shape[2] // int(target_px))
    s = (x.shape[2] // f) * f
    x = x[:, :, :s, :s].astype(np.float32) / 255.0
    if f == 1:
        return x
    n, c = x.shape[:2]
    return x.reshape(n, c, s // f, f, s // f, f).mean(axis=(3, 5))


class RandomConvFeatures:
    """Fixed random convolutions (seeded), ReLU, global mean pooling, standardised on the evaluated cells.

    ``n_features`` filters, each of a size drawn from ``sizes`` (seeded), weights N(0, 1 / fan-in), no
    bias, "valid" convolution at stride ``RANDOM_CONV_STRIDE`` on tiles block-averaged to ~``target_px``.
    The same seed gives the same filters, so the same features, on any machine (up to float32 rounding).
    """

    def __init__(self, cell_tiles, seed: int = 0, n_features: int = RANDOM_CONV_FEATURES,
                 sizes=RANDOM_CONV_SIZES, target_px: int = RANDOM_CONV_PX):
        from ..training.baselines import FractionsBaseline

        channels = int(np.asarray(cell_tiles).shape[1])
        rng = np.random.default_rng([int(seed), 31])
        size_of = rng.choice(np.asarray(sizes), size=int(n_features))
        self.target_px = int(target_px)
        # one weight matrix (C*k*k, n_k) per filter size; columns in the order the sizes were drawn
        self.filters: dict[int, np.ndarray] = {}
        self.order = np.concatenate([np.flatnonzero(size_of == k) for k in sorted(set(size_of.tolist()))])
        for k in sorted(set(size_of.tolist())):
            fan_in = channels * k * k
            w = rng.standard_normal((fan_in, int((size_of == k).sum()))) / np.sqrt(fan_in)
            self.filters[int(k)] = w.astype(np.float32)
        raw = self.raw(cell_tiles)
        self.baseline = FractionsBaseline.fit(raw)
        self.fitted = self.baseline.embed(raw)  # the cells' own features, not computed twice

    def raw(self, tiles) -> np.ndarray:
        """(N, C, S, S) uint8 -> (N, n_features) mean ReLU response of each filter (before standardising)."""
        from numpy.lib.stride_tricks import sliding_window_view

        out = []
        for i in range(0, len(tiles), RANDOM_CONV_BATCH):
            x = block_average(tiles[i:i + RANDOM_CONV_BATCH], self.target_px)
            cols = []
            for k, w in self.filters.items():
                if x.shape[2] < k:
                    raise Loc2VecError(f"tiles of {x.shape[2]} px are too small for {k} px random filters",
                                       "evaluate a model with larger tiles")
                win = sliding_window_view(x, (k, k), axis=(2, 3))[:, :, ::RANDOM_CONV_STRIDE, ::RANDOM_CONV_STRIDE]
                b, c, h, ww = win.shape[:4]
                patches = np.ascontiguousarray(win.transpose(0, 2, 3, 1, 4, 5)).reshape(b * h * ww, c * k * k)
                r = np.maximum(patches @ w, 0.0)
                cols.append(r.reshape(b, h * ww, -1).mean(axis=1))
            feats = np.concatenate(cols, axis=1)
            out.append(feats[:, np.argsort(self.order)])
        n = sum(w.shape[1] for w in self.filters.values())
        return np.concatenate(out).astype(np.float64) if out else np.zeros((0, n))

    def embed(self, tiles) -> np.ndarray:
        return self.baseline.embed(self.raw(tiles))


class RandomInitModel:
    """The ONNX model's architecture with random weights (``torch.manual_seed(seed)``), uint8 tiles in."""

    def __init__(self, meta: dict, seed: int = 0, device: str = "cpu"):
        from ..encoders.registry import create_encoder

        import torch

        enc_meta = meta.get("encoder_meta") or {}
        try:
            name = meta["encoder"]
            in_channels = int(meta.get("in_channels", len(meta["channel_names"])))
            hybrid = meta.get("hybrid")
            # a hybrid model: the random twin of its learned part (the composition part has no weights)
            dim = int(hybrid["learned_dim"] if isinstance(hybrid, dict) else meta["embedding_size"])
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
