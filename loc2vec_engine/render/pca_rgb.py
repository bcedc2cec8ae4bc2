"""The first three principal components of embeddings as red, green and blue.

One ``ColourPCA`` is fitted on the cells of one or more embeddings files and then applied unchanged
to every file it renders, so that alike places get one colour across cities: the colours mean
nothing by themselves, only "same colour = similar map tiles" (as far as three components tell).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..errors import Loc2VecError

# Fitting on a sample: the covariance of 100k cells gives the same three components as that of
# millions (the colours cannot tell the difference) at a tenth of the cost of a million. Seeded: the
# same inputs always give the same colours.
FIT_CELLS = 100_000
FIT_SEED = 0
# Each component's 2nd..98th percentile spans the colour range: a few odd cells (water, a stadium)
# would otherwise take the extremes and leave the city in a few grey tones.
PERCENTILES = (2.0, 98.0)
# 0 is nodata (no cell); colours use 1..255, so no colour of a real cell is ever read as a hole.
NODATA_RGB = 0
_LOW_VALUE, _HIGH_VALUE = 1, 255


@dataclass
class ColourPCA:
    """Centre, three unit components and the per-component value range mapped to 1..255."""

    mean: np.ndarray  # (D,) float64
    components: np.ndarray  # (3, D) float64, orthonormal rows, PC1 first
    low: np.ndarray  # (3,) the component values shown as 1
    high: np.ndarray  # (3,) ... and as 255
    explained: np.ndarray  # (3,) share of the fitted cells' variance each component holds
    fitted_cells: int = 0
    fitted_on: list = field(default_factory=list)  # file names, for the raster's metadata

    @property
    def dim(self) -> int:
        return int(self.mean.shape[0])

    def project(self, vectors) -> np.ndarray:
        """(N, 3) component values in float64, from float32 vectors without a float64 copy of them.

        einsum casts in small buffers and sums each row in the same order wherever the row sits: the same
        vector gives the same values, so the same colour, in any file (a BLAS product could round a row
        differently with its place in the matrix, and a float32 one often would at a colour's edge).
        """
        return np.einsum("nd,kd->nk", np.asarray(vectors), self.components) - self.components @ self.mean

    def colours(self, vectors) -> np.ndarray:
        """(N, 3) uint8 in 1..255: the component values scaled by ``low``/``high`` and clipped."""
        values = self.project(vectors)
        span = self.high - self.low
        flat = span <= 0  # a component without spread (all cells alike in it): the middle colour
        scaled = (values - self.low) / np.where(flat, 1.0, span)
        scaled[:, flat] = 0.5
        np.clip(scaled, 0.0, 1.0, out=scaled)
        return (_LOW_VALUE + np.rint(scaled * (_HIGH_VALUE - _LOW_VALUE))).astype(np.uint8)

    def describe(self) -> dict:
        """JSON-able record of the transform (kept in the GeoTIFF's metadata, to reproduce the colours)."""
        return {"percentiles": list(PERCENTILES), "explained_variance_ratio": _floats(self.explained),
                "low": _floats(self.low), "high": _floats(self.high), "fitted_cells": int(self.fitted_cells),
                "fitted_on": list(self.fitted_on), "mean": _floats(self.mean),
                "components": [_floats(c) for c in self.components]}


def fit_colour_pca(vector_sets, names=(), max_cells: int = FIT_CELLS, seed: int = FIT_SEED) -> ColourPCA:
    """Fit one transform on the cells of all ``vector_sets`` ((N_i, D) arrays) together.

    The cells are pooled, so a large city weighs more than a small one, as it covers more of the map.
    """
    sizes = [len(v) for v in vector_sets]
    total = int(sum(sizes))
    dims = {int(np.asarray(v).shape[1]) for v in vector_sets}
    if len(dims) != 1:
        raise Loc2VecError(f"embeddings of different sizes ({', '.join(map(str, sorted(dims)))} dimensions) "
                           "cannot share one colour transform",
                           "fit the colours only on files embedded with the same model")
    dim = dims.pop()
    if dim < 3:
        raise Loc2VecError(f"the embeddings have {dim} dimension(s): three principal components need at least 3",
                           "render embeddings made by a loc2vec model (16 or more dimensions), or use --bands all")
    if total < 3:
        raise Loc2VecError(f"only {total} cell(s) to fit the colours on: three principal components need at least 3",
                           "embed a larger area or a finer grid (smaller --stride)")
    sample = _sample(vector_sets, sizes, total, max_cells, seed)
    mean = sample.mean(axis=0)
    centred = sample - mean
    cov = centred.T @ centred / len(sample)
    eigval, eigvec = np.linalg.eigh(cov)  # ascending
    order = np.argsort(eigval)[::-1][:3]
    components = eigvec[:, order].T.copy()
    variance = float(eigval.clip(min=0).sum())
    explained = eigval[order].clip(min=0) / variance if variance > 0 else np.zeros(3)
    pca = ColourPCA(mean, components, np.zeros(3), np.zeros(3), explained, len(sample), list(names))
    values = pca.project(sample)
    # An eigenvector's sign is arbitrary, and a flip inverts a colour. Orient each component so that its long
    # tail (the rarer kind of place) is the bright end: a property of the cells, so a fit on another sample of
    # them keeps it, where "largest loading positive" flips whenever two loadings are close in size.
    skew = ((values - values.mean(axis=0)) ** 3).mean(axis=0)
    biggest = components[np.arange(3), np.argmax(np.abs(components), axis=1)]
    sign = np.where(skew != 0, np.sign(skew), np.where(biggest < 0, -1.0, 1.0))
    pca.components = components * sign[:, None]
    pca.low, pca.high = np.percentile(values * sign, PERCENTILES, axis=0)
    return pca


def _sample(vector_sets, sizes, total: int, max_cells: int, seed: int) -> np.ndarray:
    """(n, D) float64 of all cells, or of ``max_cells`` drawn at random (seeded) from the pooled cells."""
    if total <= max_cells:
        return np.concatenate([np.asarray(v, np.float64) for v in vector_sets])
    pick = np.sort(np.random.default_rng(seed).choice(total, max_cells, replace=False))
    starts = np.cumsum([0, *sizes])
    parts = []
    for v, lo, hi in zip(vector_sets, starts[:-1], starts[1:]):
        rows = pick[(pick >= lo) & (pick < hi)] - lo
        parts.append(np.asarray(v)[rows].astype(np.float64))
    return np.concatenate(parts)


def _floats(values) -> list[float]:
    return [float(f"{v:.7g}") for v in np.asarray(values, float).ravel()]
