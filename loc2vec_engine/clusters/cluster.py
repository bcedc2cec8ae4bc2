"""Cluster labels for embedding vectors: seeded k-means, or HDBSCAN (noise = -1), numbered by size."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..atomic import atomic_output, check_writable
from ..embeddings.store import read_embeddings, update_columns
from ..errors import Loc2VecError
from ..progress import Progress
from .plots import save_png
from .projection import projection_method, projection_note, umap_2d

METHODS = ("kmeans", "hdbscan")
KMEANS_N_INIT = 8  # fixed, so the same vectors and seed always give the same labels
SMALL_SET = 20_000  # cells below which k-means runs on one thread
HDBSCAN_BRUTE_CELLS = 10_000  # up to here a dense N x N distance matrix (<= 0.8 GB); beyond, sklearn's trees
HDBSCAN_MAX_CELLS = 50_000  # measured: 20k cells of 128-D take ~2.5 min with trees, and it grows with N^2
SILHOUETTE_SAMPLE = 5000  # the silhouette is O(N^2): score a seeded sample of cells


def check_k(k, n: int) -> int:
    """``k`` as an int in 2..n, or one clear error."""
    if k is None:
        raise Loc2VecError("k-means needs the number of clusters", "give it, e.g. --k 8")
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)):
        raise Loc2VecError(f"the number of clusters must be an integer, not {k!r}", "give e.g. --k 8")
    if k < 2:
        raise Loc2VecError(f"k = {k} clusters is too few to mean anything", "use --k 2 or more")
    if k > n:
        raise Loc2VecError(f"k = {k} clusters is more than the {n} cells in the file",
                           f"use --k between 2 and {n}")
    return int(k)


def check_seed(seed) -> int:
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or not 0 <= seed < 2**32:
        raise Loc2VecError(f"seed {seed!r} is not an integer from 0 to 2^32 - 1", "use e.g. --seed 0")
    return int(seed)


def default_min_cluster_size(n: int) -> int:
    """HDBSCAN's smallest cluster when none is given: 1 % of the cells, at least 5 (at most n)."""
    return max(2, min(n, max(5, n // 100)))


def check_min_cluster_size(m, n: int) -> int:
    if m is None:
        return default_min_cluster_size(n)
    if isinstance(m, bool) or not isinstance(m, (int, np.integer)) or not 2 <= m <= n:
        raise Loc2VecError(f"min cluster size {m!r} is not between 2 and the {n} cells",
                           f"use --min-cluster-size between 2 and {n}, e.g. {default_min_cluster_size(n)}")
    return int(m)


def cluster_labels(vectors, k=None, method: str = "kmeans", seed: int = 0, min_cluster_size=None) -> np.ndarray:
    """(N,) int64 labels of (N, D) vectors; cluster 0 is the largest, HDBSCAN noise is -1.

    kmeans needs ``k``; hdbscan finds the number of clusters itself (``k`` is ignored).
    """
    x = np.ascontiguousarray(vectors, dtype=np.float32)
    if x.ndim != 2 or len(x) == 0:
        raise Loc2VecError(f"cannot cluster vectors of shape {x.shape}", "give (N, D) vectors with N >= 2")
    if method == "kmeans":
        raw = _kmeans(x, check_k(k, len(x)), check_seed(seed))
    elif method == "hdbscan":
        raw = _hdbscan(x, check_min_cluster_size(min_cluster_size, len(x)))
    else:
        raise Loc2VecError(f"unknown clustering method {method!r}", f"use one of: {', '.join(METHODS)}")
    return relabel_by_size(raw)


def _kmeans(x: np.ndarray, k: int, seed: int) -> np.ndarray:
    from sklearn.cluster import KMeans
    from threadpoolctl import threadpool_limits

    # OpenMP threads only pay off on large sets; on small ones they just spin against other work.
    with threadpool_limits(limits=1 if len(x) < SMALL_SET else None, user_api="openmp"):
        labels = KMeans(n_clusters=k, n_init=KMEANS_N_INIT, random_state=seed).fit_predict(x)
    found = len(np.unique(labels))
    if found < k:  # more clusters asked than distinct vectors
        raise Loc2VecError(f"k-means found only {found} distinct groups for k = {k} (many identical embeddings)",
                           f"use --k {found} or less")
    return labels


def _hdbscan(x: np.ndarray, min_cluster_size: int) -> np.ndarray:
    from sklearn.cluster import HDBSCAN

    check_hdbscan_size(len(x))
    # In 128-D, trees prune nothing: all pairwise distances at once is ~10x faster, while N^2 fits in memory.
    algorithm = "brute" if len(x) <= HDBSCAN_BRUTE_CELLS else "auto"
    return HDBSCAN(min_cluster_size=min_cluster_size, algorithm=algorithm, copy=True).fit_predict(x)


def check_hdbscan_size(n: int) -> None:
    """HDBSCAN's cost grows with N^2: refuse sets where it would run for hours."""
    if n > HDBSCAN_MAX_CELLS:
        raise Loc2VecError(f"HDBSCAN on {n} cells would take hours (its cost grows with the square of the cells; "
                           f"this loc2vec allows up to {HDBSCAN_MAX_CELLS})",
                           "use --method kmeans, or embed a smaller area or a larger stride")


def relabel_by_size(labels) -> np.ndarray:
    """Renumber clusters by size, largest = 0 (ties: lower old label first); -1 stays -1."""
    labels = np.asarray(labels, np.int64)
    ids, counts = np.unique(labels[labels >= 0], return_counts=True)
    order = ids[np.lexsort((ids, -counts))]
    lut = np.full(int(labels.max(initial=-1)) + 2, -1, np.int64)  # index old + 1, so -1 -> slot 0
    lut[order + 1] = np.arange(len(order))
    return lut[labels + 1]


def cluster_sizes(labels) -> dict[int, int]:
    """{label: number of cells}, clusters in label order, noise (-1) first when present."""
    ids, counts = np.unique(np.asarray(labels), return_counts=True)
    return {int(i): int(c) for i, c in zip(ids, counts)}


def silhouette(vectors, labels, seed: int = 0) -> float | None:
    """Silhouette score of the clustering (noise left out), on at most SILHOUETTE_SAMPLE cells; None if
    fewer than 2 clusters."""
    from sklearn.metrics import silhouette_score

    labels = np.asarray(labels)
    keep = labels >= 0
    x, lab = np.asarray(vectors, np.float32)[keep], labels[keep]
    if len(np.unique(lab)) < 2 or len(np.unique(lab)) >= len(lab):
        return None
    sample = SILHOUETTE_SAMPLE if len(lab) > SILHOUETTE_SAMPLE else None
    try:
        return float(silhouette_score(x, lab, sample_size=sample, random_state=seed))
    except ValueError:  # the sample drew a single cluster
        return None


# ---- a whole embeddings file -------------------------------------------------------------------
@dataclass
class ClusterResult:
    """What ``cluster_file`` computed and wrote."""

    path: Path  # the embeddings GeoPackage, now with cluster, umap_x, umap_y filled
    labels: np.ndarray  # (N,) int64 in cell order; 0 = largest cluster, -1 = noise
    umap: np.ndarray  # (N, 2) float64
    method: str
    n_clusters: int  # clusters found (noise not counted)
    sizes: dict[int, int]
    silhouette: float | None
    map_png: Path
    umap_png: Path
    notes: list[str] = field(default_factory=list)


def cluster_file(gpkg, k=None, method: str = "kmeans", out_dir=None, area=None, seed: int = 0, progress=None,
                 min_cluster_size=None) -> ClusterResult:
    """Cluster an embeddings GeoPackage, add its 2-D UMAP, and draw ``<stem>_clusters.png`` and ``<stem>_umap.png``.

    Columns and meta are updated atomically; every input is checked before the long work, so a bad one
    leaves the file as it was. ``area``: the area raster for the road background (default: the one the
    embeddings were made from, when it still exists). progress: a ProgressCallback; cancelling writes nothing.
    """
    es = read_embeddings(gpkg)
    n = len(es)
    k, min_cluster_size = _check_method(method, k, min_cluster_size, n)
    seed = check_seed(seed)
    explicit_area = _check_area(area, es.crs_wkt)
    map_png, umap_png = _png_paths(es.path, out_dir)
    check_writable(es.path)
    with Progress(4, "cluster", progress) as bar:
        labels = cluster_labels(es.vectors, k, method, seed, min_cluster_size)
        bar.update(1, "clustered")
        umap = umap_2d(es.vectors, seed, _sub_progress(progress, 1, 4))
        bar.update(1, "projected")
        result = ClusterResult(es.path, labels, umap, method, int(labels.max(initial=-1)) + 1,
                               cluster_sizes(labels), silhouette(es.vectors, labels, seed), map_png, umap_png)
        figures = _figures(es, result, explicit_area, seed, min_cluster_size)
        bar.update(1, "drawn")
        meta = {"cluster_method": method, "cluster_k": result.n_clusters, "cluster_seed": int(seed),
                "cluster_min_cluster_size": min_cluster_size, "cluster_silhouette": result.silhouette,
                "umap_method": projection_method(n)}
        with atomic_output(map_png) as tmp_map, atomic_output(umap_png) as tmp_umap:
            save_png(figures[0], tmp_map)
            save_png(figures[1], tmp_umap)
            update_columns(es.path, cluster=labels, umap=umap, meta_updates=meta)  # last: PNGs renamed after it
        bar.finish("written")  # after the renames: too late to cancel
    return result


def _check_method(method, k, min_cluster_size, n):
    """(k, min_cluster_size) checked for ``method``; the one the method does not use becomes None."""
    if method == "kmeans":
        return check_k(k, n), None
    if method == "hdbscan":
        check_hdbscan_size(n)
        return None, check_min_cluster_size(min_cluster_size, n)
    raise Loc2VecError(f"unknown clustering method {method!r}", f"use one of: {', '.join(METHODS)}")


def _check_area(area, crs_wkt: str):
    """An area raster the user named must exist and fit the embeddings (a recorded one is best-effort)."""
    if area is None:
        return None
    from ..raster.area import AreaRaster
    from .plots import unusable_reason

    raster = AreaRaster.open(area)
    why_not = unusable_reason(raster, crs_wkt)
    if why_not:
        raise Loc2VecError(f"area raster {raster.path} {why_not}",
                           "give the area raster the embeddings were made from, or leave out --area")
    return raster.path


def _png_paths(gpkg: Path, out_dir) -> tuple[Path, Path]:
    folder = Path(out_dir) if out_dir is not None else gpkg.parent
    if not folder.is_dir():
        raise Loc2VecError(f"output folder {folder} does not exist", f"create it first: mkdir -p {folder}")
    paths = folder / f"{gpkg.stem}_clusters.png", folder / f"{gpkg.stem}_umap.png"
    for p in paths:
        check_writable(p)
    return paths


def _sub_progress(callback, start: float, total: float):
    """A callback for one stage that reports into the whole run's fraction (None stays None)."""
    if callback is None:
        return None
    return lambda f, message: callback((start + f) / total, message)


def _area_candidates(es, explicit) -> list:
    """Where the road background may be: the named raster, else the recorded path, else its name next to the file."""
    if explicit is not None:
        return [explicit]
    out = [es.meta.get("area_path")]
    if es.meta.get("area") and es.path is not None:
        out.append(es.path.parent / Path(str(es.meta["area"])).name)
    return [p for p in out if p]


def _figures(es, result: ClusterResult, explicit_area, seed: int, min_cluster_size):
    from .plots import cluster_map_figure, estimate_stride, map_bbox, road_background, umap_figure

    stride = None if es.meta.get("points") else float(es.meta.get("stride_m") or estimate_stride(es.xy))
    bbox = map_bbox(es.xy, stride)
    candidates = _area_candidates(es, explicit_area)
    background = road_background(candidates[0] if candidates else None, es.crs_wkt, bbox)
    for other in candidates[1:]:
        if background.image is None:
            background = road_background(other, es.crs_wkt, bbox)
    if background.image is None:
        result.notes.append(background.note)
    how = (f"k-means, seed {seed}" if result.method == "kmeans"
           else f"HDBSCAN, min cluster size {min_cluster_size}")
    title = f"{es.path.name}: {result.n_clusters} clusters ({how}), {len(es)} cells"
    note = projection_note(len(es))
    if note:
        result.notes.append(note)
    return (cluster_map_figure(es.xy, result.labels, stride, background, title),
            umap_figure(result.umap, result.labels, f"{es.path.name}: {projection_method(len(es)).upper()} of "
                        f"{len(es)} cells, {result.n_clusters} clusters ({how})", note))
