"""The one scoring path of similar-place search: scores and ranks that do not depend on how cells were found.

A BLAS product or a faiss index sums the D products of a dot product in an order of its own, which
depends on the matrix shape, the blocking, the thread count and the machine: the same cell then gets
0.999956 from one path and 0.999955 from another, and near-ties swap places. Here every score is
computed from the stored float32 vectors in float64, column by column in a fixed order, with plain
element-wise multiplies and adds (no reduction kernel, no fused multiply-add): each cell's score is a
function of its vector and the query alone, identical whichever rows are scored with it. Ranks are by
descending score, then ascending cell id. Index structures only choose candidates.
"""

from __future__ import annotations

import numpy as np

_BLOCK_ROWS = 8192  # rows per block: a block and its float64 copy stay in cache while the columns are summed


def cosine_scores(vectors: np.ndarray, query: np.ndarray, rows=None) -> np.ndarray:
    """(n,) float64 dot products of ``vectors[rows]`` (all rows by default) with the unit ``query``.

    Stored embeddings are unit vectors, so the dot product is the cosine similarity.
    """
    q = np.asarray(query, np.float32).astype(np.float64).ravel()
    n = len(vectors) if rows is None else len(rows)
    out = np.empty(n, np.float64)
    for start in range(0, n, _BLOCK_ROWS):
        stop = min(n, start + _BLOCK_ROWS)
        block = vectors[start:stop] if rows is None else vectors[np.asarray(rows[start:stop], np.int64)]
        block = np.asarray(block, np.float32).astype(np.float64)
        acc = block[:, 0] * q[0]
        for j in range(1, len(q)):  # a fixed order: the same sum for a row in any block
            acc += block[:, j] * q[j]
        out[start:stop] = acc
    return out


def rank(scores: np.ndarray, cells: np.ndarray, k: int) -> np.ndarray:
    """Positions of the ``k`` best ``scores``: descending score, ties by ascending cell id (-inf never wins)."""
    scores = np.asarray(scores, np.float64)
    k = min(int(k), len(scores))
    if k <= 0:
        return np.zeros(0, np.int64)
    if k < len(scores):  # keep every score equal to the k-th best: the cell-id tie-break decides among them
        kth = np.partition(scores, len(scores) - k)[len(scores) - k]
        cand = np.flatnonzero(scores >= kth)
    else:
        cand = np.arange(len(scores))
    order = np.lexsort((np.asarray(cells)[cand], -scores[cand]))
    return cand[order[:k]].astype(np.int64)


def best_rows(vectors, cells, query, k: int, candidates=None, excluded=None) -> tuple[np.ndarray, np.ndarray]:
    """(rows, float64 scores) of the ``k`` best ``candidates`` (default: every row) not ``excluded``.

    ``excluded`` is a bool mask over all rows. Fewer than ``k`` rows come back only when fewer remain.
    """
    rows = np.arange(len(vectors)) if candidates is None else np.unique(np.asarray(candidates, np.int64))
    if excluded is not None and len(rows):
        rows = rows[~np.asarray(excluded, bool)[rows]]
    scores = cosine_scores(vectors, query, rows)
    best = rank(scores, np.asarray(cells)[rows], k)
    return rows[best], scores[best]
