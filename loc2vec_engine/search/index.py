"""Nearest neighbours by cosine: exact numpy search for small sets, a self-tuned faiss IVF index above.

The IVF index (inverted lists over k-means cells, ``IndexIVFFlat`` with inner product) builds in
seconds even at a million vectors on two cores, where HNSW takes many minutes. Its one knob,
``nprobe`` (lists scanned per query), is tuned at build time: the smallest value whose recall@10
against exact search reaches ``target_recall`` on queries drawn from the set itself. When only a
near-exhaustive scan would reach it (random-like data), the index falls back to exact search.

Neither BLAS nor faiss decides a score or a rank: both only choose candidates, which ``cosine``
re-scores exactly (the same numbers whichever path found a cell). A float32 dot product of unit
vectors is off by at most D * 2^-24 whatever its summation order, so every cell whose fast score is
within ``score_margin(D)`` of the k-th best is a candidate, and the candidate set cannot miss a cell of
the true top k (for the index: among the lists it probes).
"""

from __future__ import annotations

import time

import numpy as np

from ..errors import Loc2VecError
from .cosine import best_rows

EXACT_BELOW = 50_000
TARGET_RECALL = 0.99
_CALIBRATION_QUERIES = 100
_CALIBRATION_K = 10
_SCORE_BLOCK = 1 << 25  # score-matrix entries per block of exact search (128 MiB of float32)
TIE_EPS = 1e-6  # scores this close to the k-th best count as hits: embeddings have many near-ties


def unit_rows(x, what: str = "vectors") -> np.ndarray:
    """(N, D) float32 rows scaled to unit length; a zero or non-finite row is an error."""
    x = np.atleast_2d(np.asarray(x, np.float32))
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    if x.ndim != 2 or x.size == 0 or not np.all(np.isfinite(norms)) or np.any(norms == 0):
        raise Loc2VecError(f"{what} must be finite, non-zero rows of numbers", "check where they came from")
    if np.all(np.abs(norms - 1) < 1e-4):  # stored embeddings are unit already: no copy of a million rows
        return np.ascontiguousarray(x)
    return np.ascontiguousarray(x / norms, dtype=np.float32)


def score_margin(dim: int) -> float:
    """Bound on how far a float32 dot product of unit D-vectors (any summation order) is from the exact one."""
    return 2.0 * dim * 2.0 ** -24 + 1e-12


def exact_top(vectors: np.ndarray, cells: np.ndarray, query: np.ndarray, k: int, excluded=None,
              fast_scores: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(rows, float64 scores) of the true top ``k``: a BLAS scan picks candidates, ``cosine`` scores them."""
    fast = np.array(vectors @ query if fast_scores is None else fast_scores, np.float32)
    if excluded is not None:
        fast[np.asarray(excluded, bool)] = -np.inf
    k = min(int(k), int(np.isfinite(fast).sum()))
    if k <= 0:
        return np.zeros(0, np.int64), np.zeros(0)
    kth = np.partition(fast, len(fast) - k)[len(fast) - k]
    candidates = np.flatnonzero(fast >= kth - score_margin(vectors.shape[1]))
    return best_rows(vectors, cells, query, k, candidates, excluded)


def exact_search(vectors: np.ndarray, queries: np.ndarray, k: int, cells=None) -> tuple[np.ndarray, np.ndarray]:
    """Top-k rows of ``vectors`` by cosine with each query: (float64 scores (Q, k), idx (Q, k)); ties by cell."""
    n = len(vectors)
    cells = np.arange(n) if cells is None else np.asarray(cells)
    step = max(1, _SCORE_BLOCK // max(n, 1))
    scores, idx = np.empty((len(queries), k), np.float64), np.empty((len(queries), k), np.int64)
    for start in range(0, len(queries), step):
        fast = queries[start:start + step] @ vectors.T
        for j, row in enumerate(fast):
            idx[start + j], scores[start + j] = exact_top(vectors, cells, queries[start + j], k, fast_scores=row)
    return scores, idx


def recall_at_k(exact_scores: np.ndarray, found_scores: np.ndarray) -> float:
    """Share of found neighbours at least as similar as the exact k-th best (tie-aware recall@k).

    Index ids are not compared: among cells with equal scores (empty land, open water) any is right.
    """
    kth = exact_scores[:, -1:]
    return float(np.mean(found_scores >= kth - TIE_EPS))


class VectorIndex:
    """Cosine nearest neighbours over unit vectors; ``kind`` is "exact" or "ivf".

    ``search(queries, k)`` -> (float64 scores (Q, k), idx (Q, k)), by descending cosine then ascending
    cell id (``cells``, default the row numbers); ``top(query, k, excluded)`` answers one query.
    """

    def __init__(self, vectors: np.ndarray, kind: str = "exact", faiss_index=None, note: str = "", cells=None):
        self.vectors = vectors
        self.cells = np.arange(len(vectors)) if cells is None else np.asarray(cells)
        self.kind = kind
        self.note = note
        self._faiss = faiss_index
        self.nlist = int(faiss_index.nlist) if faiss_index is not None else 0
        self.nprobe = int(faiss_index.nprobe) if faiss_index is not None else 0
        self.calibrated_recall = 1.0
        self.build_seconds = 0.0

    def __len__(self) -> int:
        return len(self.vectors)

    def __repr__(self) -> str:
        extra = f", nlist={self.nlist}, nprobe={self.nprobe}" if self.kind == "ivf" else ""
        return f"VectorIndex({len(self)} x {self.vectors.shape[1]}, {self.kind}{extra})"

    @classmethod
    def build(cls, vectors, exact_below: int = EXACT_BELOW, seed: int = 0,
              target_recall: float = TARGET_RECALL, cells=None) -> "VectorIndex":
        """Exact search below ``exact_below`` vectors (or without faiss), a tuned IVF index above."""
        t0 = time.perf_counter()
        vectors = unit_rows(vectors, "embedding vectors")
        index = cls(vectors, cells=cells)
        if len(vectors) >= exact_below:
            index = _build_ivf(vectors, seed, target_recall, cells)
        index.build_seconds = time.perf_counter() - t0
        return index

    def search(self, queries, k: int) -> tuple[np.ndarray, np.ndarray]:
        queries = self._check_queries(queries)
        k = check_k(k, len(self))
        if self._faiss is None:
            return exact_search(self.vectors, queries, k, self.cells)
        scores, idx = np.empty((len(queries), k)), np.empty((len(queries), k), np.int64)
        for i, q in enumerate(queries):
            idx[i], scores[i] = self.top(q, k)
        return scores, idx

    def top(self, query, k: int, excluded=None) -> tuple[np.ndarray, np.ndarray]:
        """(rows, float64 scores) of the best ``k`` cells for one query, leaving out ``excluded`` (bool mask).

        The IVF lists give candidates; they are re-scored exactly. When the k-th best is within the
        float32 error of the last candidate, cells beyond the candidates could tie with it: more are asked
        for, up to a quarter of the set, and past that the scan is exact.
        """
        q = self._check_queries(query)[0]
        if self._faiss is None:
            return exact_top(self.vectors, self.cells, q, k, excluded)
        n_excluded = 0 if excluded is None else int(np.count_nonzero(excluded))
        margin = score_margin(self.vectors.shape[1])
        want = k + n_excluded + max(k, 16)
        while want <= max(len(self) // 4, k + n_excluded + 1):
            fast, rows = self._faiss.search(q[None], min(want, len(self)))
            fast, rows = fast[0], rows[0]
            probed_all = bool((rows < 0).any())  # the probed lists held fewer vectors than asked for
            rows_k, scores_k = best_rows(self.vectors, self.cells, q, k, rows[rows >= 0], excluded)
            if len(rows_k) == k and (probed_all or fast[-1] < scores_k[-1] - margin):
                return rows_k, scores_k
            if probed_all:
                break  # fewer than k usable cells in the probed lists
            want *= 2
        return exact_top(self.vectors, self.cells, q, k, excluded)

    def _check_queries(self, queries) -> np.ndarray:
        queries = unit_rows(queries, "query vectors")
        if queries.shape[1] != self.vectors.shape[1]:
            raise Loc2VecError(f"{queries.shape[1]}-D queries for {self.vectors.shape[1]}-D embeddings",
                               "query with vectors from the same model")
        return queries


def check_k(k, n: int) -> int:
    if not isinstance(k, (int, np.integer)) or k < 1:
        raise Loc2VecError(f"k must be a positive whole number, not {k!r}", "use e.g. --k 10")
    if k > n:
        raise Loc2VecError(f"k={k} is larger than the {n} cells there are to search",
                           f"ask for at most {n} (--k {n})")
    return int(k)


def _build_ivf(vectors: np.ndarray, seed: int, target_recall: float, cells=None) -> VectorIndex:
    try:
        ivf = train_ivf(vectors, seed)
    except ImportError:
        return VectorIndex(vectors, note="faiss is not installed: exact search", cells=cells)
    nprobe, recall = _tune_nprobe(ivf, vectors, np.random.default_rng(seed + 1), target_recall)
    if nprobe is None:
        return VectorIndex(vectors, note=f"IVF needs a near-full scan for recall {target_recall}: exact search",
                           cells=cells)
    ivf.nprobe = nprobe
    index = VectorIndex(vectors, "ivf", ivf, cells=cells)
    index.calibrated_recall = recall
    return index


def train_ivf(vectors: np.ndarray, seed: int = 0):
    """A faiss ``IndexIVFFlat`` (inner product) over unit ``vectors``, about sqrt(N) lists, nprobe 1."""
    import faiss

    n, d = vectors.shape
    nlist = int(max(1, min(4096, round(np.sqrt(n)), n // 39)))  # k-means wants >= 39 points per list
    rng = np.random.default_rng(seed)
    train = vectors[np.sort(rng.choice(n, min(n, 64 * nlist), replace=False))]
    ivf = faiss.IndexIVFFlat(faiss.IndexFlatIP(d), d, nlist, faiss.METRIC_INNER_PRODUCT)
    ivf.cp.seed = seed  # k-means initialisation: the same seed gives the same lists
    ivf.cp.niter = 20
    ivf.train(train)
    ivf.add(vectors)
    return ivf


def _tune_nprobe(ivf, vectors, rng, target_recall: float):
    """Smallest power-of-two nprobe reaching ``target_recall``; None if it takes over a quarter of the lists."""
    q = vectors[rng.choice(len(vectors), min(len(vectors), _CALIBRATION_QUERIES), replace=False)]
    k = min(_CALIBRATION_K, len(vectors))
    exact, _ = exact_search(vectors, q, k)
    nprobe = 1
    while nprobe <= ivf.nlist // 4:
        ivf.nprobe = nprobe
        found, idx = ivf.search(q, k)
        recall = recall_at_k(exact, np.where(idx < 0, -np.inf, found))
        if recall >= target_recall:
            return nprobe, recall
        nprobe *= 2
    return None, 0.0
