"""Embedding health: is an embedding collapsed? Mean pairwise cosine and effective rank of a set of vectors.

- mean pairwise cosine: the mean of cos(e_i, e_j) over all pairs i != j. Near 1: every place points the
  same way (collapse); near 0: directions spread over the sphere.
- effective rank (Roy & Vetterli, 2007): exp of the Shannon entropy of the singular values of the
  (uncentred) N x D matrix, normalised to sum 1. 1.0 for a rank-1 matrix (every vector on one line),
  D for D orthogonal vectors of equal length; how many directions the embedding really uses.

Both are scale-free (row lengths do not matter for the cosine; a global scale does not change the rank)
and take numpy or torch input. Used by ``loc2vec evaluate`` and by training's validation (metrics.csv).
"""

from __future__ import annotations

import numpy as np

EPS = 1e-12


def _as_matrix(e) -> np.ndarray:
    if type(e).__module__.startswith("torch"):
        e = e.detach().float().cpu().numpy()
    x = np.asarray(e, np.float64)
    if x.ndim != 2:
        raise ValueError(f"embeddings must be (N, D), not shape {x.shape}")
    return x


def mean_pairwise_cosine(e) -> float:
    """Mean cosine similarity over the N (N - 1) ordered pairs of distinct rows; NaN for N < 2.

    Zero rows count as cosine 0 with everything (they have no direction).
    """
    x = _as_matrix(e)
    n = len(x)
    if n < 2:
        return float("nan")
    u = x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), EPS)
    s = u.sum(axis=0)
    # sum over all ordered pairs including i == j is |sum u|^2; the diagonal adds |u_i|^2 (1, or 0 for zero rows)
    total = float(s @ s) - float((u * u).sum())
    return total / (n * (n - 1))


def effective_rank(e) -> float:
    """exp(entropy of the normalised singular values) of the N x D matrix; NaN when it is all zeros."""
    x = _as_matrix(e)
    if x.size == 0:
        return float("nan")
    sv = np.linalg.svd(x, compute_uv=False)
    total = sv.sum()
    if not total > EPS:
        return float("nan")
    p = sv / total
    p = p[p > 0]
    return float(np.exp(-(p * np.log(p)).sum()))


def embedding_health(e) -> dict:
    """``{"mean_cos", "eff_rank", "eff_rank_centred", "dim", "n"}`` of embeddings ``e`` (N, D).

    ``eff_rank_centred``: the effective rank after subtracting the mean vector, i.e. of what differs
    between places (a shared offset direction, which raises the mean cosine, does not count).
    """
    x = _as_matrix(e)
    return {"mean_cos": mean_pairwise_cosine(x), "eff_rank": effective_rank(x),
            "eff_rank_centred": effective_rank(x - x.mean(axis=0)) if len(x) > 1 else float("nan"),
            "dim": int(x.shape[1]), "n": int(x.shape[0])}
