"""Nearest neighbours by cosine: exact numpy search for small sets, a self-tuned faiss IVF index above.

The IVF index (inverted lists over k-means cells, ``IndexIVFFlat`` with inner product) builds in
seconds even at a million vectors on two cores, where HNSW takes many minutes. Its one knob,
``nprobe`` (lists scanned per query), is tuned at build time: the smallest value whose recall@10
against exact search reaches ``target_recall`` on queries drawn from the set itself. When only a
near-exhaustive scan would reach it (random-like data), the index falls back to exact search.
"""

from __future__ import annotations

import time

import numpy as np

from ..errors import Loc2VecError

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


def exact_search(vectors: np.ndarray, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Top-k rows of ``vectors`` by inner product with each query: (scores (Q, k), idx (Q, k))."""
    n = len(vectors)
    step = max(1, _SCORE_BLOCK // max(n, 1))
    scores, idx = np.empty((len(queries), k), np.float32), np.empty((len(queries), k), np.int64)
    for start in range(0, len(queries), step):
        s = queries[start:start + step] @ vectors.T
        scores[start:start + step], idx[start:start + step] = top_k(s, k)
    return scores, idx


def top_k(scores: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Best k per row of a (Q, N) score matrix, by descending score then ascending index."""
    scores = np.atleast_2d(scores)
    part = np.argpartition(-scores, k - 1, axis=1)[:, :k] if k < scores.shape[1] else \
        np.tile(np.arange(scores.shape[1]), (len(scores), 1))
    part.sort(axis=1)  # ascending index first, so the stable sort below breaks ties by index
    s = np.take_along_axis(scores, part, 1)
    order = np.argsort(-s, axis=1, kind="stable")
    return np.take_along_axis(s, order, 1), np.take_along_axis(part, order, 1)


def recall_at_k(exact_scores: np.ndarray, found_scores: np.ndarray) -> float:
    """Share of found neighbours at least as similar as the exact k-th best (tie-aware recall@k).

    Index ids are not compared: among cells with equal scores (empty land, open water) any is right.
    """
    kth = exact_scores[:, -1:]
    return float(np.mean(found_scores >= kth - TIE_EPS))


class VectorIndex:
    """Cosine nearest neighbours over unit vectors; ``kind`` is "exact" or "ivf".

    ``search(queries, k)`` -> (scores (Q, k), idx (Q, k)), sorted by descending cosine.
    """

    def __init__(self, vectors: np.ndarray, kind: str = "exact", faiss_index=None, note: str = ""):
        self.vectors = vectors
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
              target_recall: float = TARGET_RECALL) -> "VectorIndex":
        """Exact search below ``exact_below`` vectors (or without faiss), a tuned IVF index above."""
        t0 = time.perf_counter()
        vectors = unit_rows(vectors, "embedding vectors")
        index = cls(vectors)
        if len(vectors) >= exact_below:
            index = _build_ivf(vectors, seed, target_recall)
        index.build_seconds = time.perf_counter() - t0
        return index

    def search(self, queries, k: int) -> tuple[np.ndarray, np.ndarray]:
        queries = unit_rows(queries, "query vectors")
        k = check_k(k, len(self))
        if queries.shape[1] != self.vectors.shape[1]:
            raise Loc2VecError(f"{queries.shape[1]}-D queries for {self.vectors.shape[1]}-D embeddings",
                               "query with vectors from the same model")
        if self._faiss is None:
            return exact_search(self.vectors, queries, k)
        scores, idx = self._faiss.search(queries, k)
        short = np.flatnonzero((idx < 0).any(axis=1))  # the probed lists held fewer than k vectors
        if len(short):
            scores[short], idx[short] = exact_search(self.vectors, queries[short], k)
        return scores.astype(np.float32), idx.astype(np.int64)


def check_k(k, n: int) -> int:
    if not isinstance(k, (int, np.integer)) or k < 1:
        raise Loc2VecError(f"k must be a positive whole number, not {k!r}", "use e.g. --k 10")
    if k > n:
        raise Loc2VecError(f"k={k} is larger than the {n} cells there are to search",
                           f"ask for at most {n} (--k {n})")
    return int(k)


def _build_ivf(vectors: np.ndarray, seed: int, target_recall: float) -> VectorIndex:
    try:
        ivf = train_ivf(vectors, seed)
    except ImportError:
        return VectorIndex(vectors, note="faiss is not installed: exact search")
    nprobe, recall = _tune_nprobe(ivf, vectors, np.random.default_rng(seed + 1), target_recall)
    if nprobe is None:
        return VectorIndex(vectors, note=f"IVF needs a near-full scan for recall {target_recall}: exact search")
    ivf.nprobe = nprobe
    index = VectorIndex(vectors, "ivf", ivf)
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
