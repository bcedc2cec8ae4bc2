"""A seeded 2-D projection of embedding vectors: UMAP (umap-learn), or PCA when there are too few cells."""

from __future__ import annotations

import contextlib
import warnings

import numpy as np

from ..progress import Progress

MIN_UMAP_CELLS = 15  # UMAP's default neighbourhood; with fewer cells it has no neighbours to fit
MAX_FIT = 20_000  # larger sets: fit on a seeded sample, then place the other cells with transform()
TRANSFORM_CHUNK = 50_000  # cells per transform() call: progress steps and cancel points


def projection_method(n: int) -> str:
    """'umap', or 'pca' for sets too small for UMAP's neighbourhoods."""
    return "umap" if n >= MIN_UMAP_CELLS else "pca"


def projection_note(n: int) -> str:
    """A line for users when the projection is not UMAP (empty when it is)."""
    if projection_method(n) == "umap":
        return ""
    return f"only {n} cells (UMAP needs {MIN_UMAP_CELLS} or more): 2-D projection by PCA instead"


def umap_2d(vectors, seed: int = 0, progress=None, max_fit: int = MAX_FIT) -> np.ndarray:
    """(N, 2) float64 coordinates of (N, D) vectors; the same vectors and seed give the same result.

    progress: a ProgressCallback ``(fraction, message) -> cancel?``; None shows a terminal bar.
    """
    x = np.ascontiguousarray(vectors, dtype=np.float32)
    n = len(x)
    if projection_method(n) == "pca":
        return _pca_2d(x)
    fit_idx, rest_idx = _split(n, max_fit, seed)
    chunks = [rest_idx[i:i + TRANSFORM_CHUNK] for i in range(0, len(rest_idx), TRANSFORM_CHUNK)]
    out = np.empty((n, 2), np.float64)
    with Progress(1 + len(chunks), "UMAP", progress) as bar, _numba_threads_kept():
        model = _fit(x[fit_idx], seed, for_transform=bool(chunks))
        out[fit_idx] = model.embedding_
        bar.update(1, f"fitted on {len(fit_idx)} cells")
        for chunk in chunks:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                out[chunk] = model.transform(x[chunk])
            bar.update(1, f"placed {len(chunk)} more cells")
    return out


def _split(n: int, max_fit: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Indices to fit on (all, or a seeded sample of ``max_fit``) and the rest, both sorted."""
    if n <= max_fit:
        return np.arange(n), np.arange(0)
    fit = np.sort(np.random.default_rng(seed).choice(n, size=max_fit, replace=False))
    rest = np.setdiff1d(np.arange(n), fit, assume_unique=True)
    return fit, rest


def _fit(x: np.ndarray, seed: int, for_transform: bool):
    """A seeded UMAP of ``x``. Without later transforms, the neighbours come from scikit-learn's exact
    search: seconds less numba compiling, and no pynndescent index (a minute of compiling per process)."""
    import umap  # the first import ever compiles pynndescent (~15 s), cached on disk for later processes

    k = min(15, len(x) - 1)
    knn = (None, None, None) if for_transform else _exact_knn(x, k)
    # Unit vectors: euclidean order = cosine order. n_jobs=1 because a seed makes UMAP single-threaded.
    model = umap.UMAP(n_components=2, n_neighbors=k, min_dist=0.1, metric="euclidean", random_state=seed,
                      transform_seed=seed, n_jobs=1, precomputed_knn=knn)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # spectral-init, n_jobs and "no search index" notes are not the user's
        model.fit(x)
    return model


def _exact_knn(x: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """(indices, distances) of each point's k nearest points, itself first, as UMAP's own search gives."""
    from sklearn.neighbors import NearestNeighbors

    dist, idx = NearestNeighbors(n_neighbors=k, algorithm="brute").fit(x).kneighbors(x)
    return idx, dist


@contextlib.contextmanager
def _numba_threads_kept():
    """UMAP sets numba's global thread count; put it back, also on errors (the tile sampler shares it)."""
    import numba

    n = numba.get_num_threads()
    try:
        yield
    finally:
        numba.set_num_threads(n)


def _pca_2d(x: np.ndarray) -> np.ndarray:
    """First two principal components (zeros where the data has fewer dimensions of spread)."""
    centred = x.astype(np.float64) - x.mean(axis=0)
    out = np.zeros((len(x), 2), np.float64)
    if len(x) < 2:
        return out
    u, s, _ = np.linalg.svd(centred, full_matrices=False)
    m = min(2, len(s))
    out[:, :m] = u[:, :m] * s[:m]
    return _fix_signs(out)


def _fix_signs(p: np.ndarray) -> np.ndarray:
    """SVD signs are arbitrary: make each axis's largest absolute value positive, for stable pictures."""
    for j in range(p.shape[1]):
        i = int(np.argmax(np.abs(p[:, j])))
        if p[i, j] < 0:
            p[:, j] = -p[:, j]
    return p
