"""``compare_areas``: the same ground rasterized twice (two OSM dates, or a planner's edited layer), both
embedded on one grid, and per cell how far the embedding moved and whether its nearest cluster changed.

The two rasters must be on the same pixel grid (same CRS, pixel size and extent: rasterize both from the
same bbox) and have the same channels, so that a cell means the same ground in both and an untouched
tile is byte for byte the same tile: its embedding is then identical and its change exactly 0.

Every input is checked and every output found writable before the embedding; the outputs are written
to temporary files and renamed only once all of them are complete, so a failure leaves none behind.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..embeddings.embed import DEFAULT_BATCH, DEFAULT_STRIDE_M, embed_grid
from ..embeddings.grid import CellGrid, cell_grid
from ..errors import Loc2VecError

DEFAULT_K = 8
# A relative difference of the geotransforms below this is float noise, not another grid.
GRID_TOLERANCE = 1e-6
_REMAKE = "rasterize both from the same area (--bbox, --clip or --preset) with the same --crs and --pixel-size"


@dataclass
class Comparison:
    """What ``compare_areas`` computed (and wrote): one entry per cell valid in both rasters, in cell order."""

    before: Path
    after: Path
    model: Path
    model_sha256: str
    crs_wkt: str
    grid: CellGrid  # the cells compared (valid in both rasters)
    change: np.ndarray  # (N,) float64, 1 - cosine of the two embeddings; exactly 0 for identical ones
    cluster_before: np.ndarray  # (N,) int64, nearest cluster centroid
    cluster_after: np.ndarray
    n_clusters: int
    clusters_from: str  # how the clusters were made, for the summary and the metadata
    left_out: int  # cells valid in only one of the rasters (not compared)
    written: list = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.change)

    @property
    def switched(self) -> np.ndarray:
        """(N,) bool: the cell's nearest cluster is another one after."""
        return self.cluster_before != self.cluster_after

    @property
    def largest(self) -> int:
        """Row of the cell that changed most (the lowest cell id among equals)."""
        return int(np.argmax(self.change))

    def lonlat(self, row: int) -> tuple[float, float]:
        from ..geo.crs import transformer_to_wgs84

        lon, lat = transformer_to_wgs84(self.crs_wkt).transform(*self.grid.xy[row])
        return float(lon), float(lat)


# ---- the checks --------------------------------------------------------------------------------
def check_same_grid(before, after) -> None:
    """Refuse two AreaRasters whose pixels are not the same ground: CRS, pixel size, extent."""
    if not same_crs(before.crs_wkt, after.crs_wkt):
        raise Loc2VecError(f"{before.path.name} is in {crs_name(before)} but {after.path.name} in {crs_name(after)}: "
                           "their cells would not be the same ground", _remake_fix(before))
    pa, pb = before.transform[1], after.transform[1]
    if not _close(pa, pb, pa) or not _close(before.transform[5], after.transform[5], pa):
        raise Loc2VecError(f"{before.path.name} has {pa:.10g} m pixels but {after.path.name} {pb:.10g} m pixels",
                           _remake_fix(before))
    origin = all(_close(before.transform[i], after.transform[i], pa) for i in (0, 3))
    if not origin or (before.width, before.height) != (after.width, after.height):
        fmt = ", ".join
        raise Loc2VecError(f"{before.path.name} and {after.path.name} cover different extents "
                           f"({fmt(f'{v:.1f}' for v in before.bounds)} vs {fmt(f'{v:.1f}' for v in after.bounds)} "
                           f"in {crs_name(before)}; {before.width} x {before.height} vs "
                           f"{after.width} x {after.height} px)", _remake_fix(before))


def check_same_channels(before, after) -> None:
    """Refuse rasters made with different channel specs: a band would compare unlike things."""
    if list(before.channel_names) != list(after.channel_names):
        spec_a, spec_b = before.metadata.get("spec", "?"), after.metadata.get("spec", "?")
        raise Loc2VecError(f"{before.path.name} has the bands {list(before.channel_names)} (spec {spec_a}) but "
                           f"{after.path.name} has {list(after.channel_names)} (spec {spec_b})",
                           "rasterize both with the same --spec (the one the model was trained with)")


def same_crs(a: str, b: str) -> bool:
    if a == b:
        return True
    from pyproj import CRS

    try:
        return CRS.from_user_input(a).equals(CRS.from_user_input(b), ignore_axis_order=True)
    except Exception:  # an unreadable CRS text: cannot tell them equal
        return False


def crs_name(area) -> str:
    return f"EPSG:{area.epsg}" if area.epsg else "a CRS without EPSG code"


def _close(a: float, b: float, scale: float) -> bool:
    return abs(float(a) - float(b)) <= GRID_TOLERANCE * max(abs(float(scale)), 1.0)


def _remake_fix(before) -> str:
    """The rasterize options that reproduce BEFORE's grid, from what its metadata recorded."""
    aoi = before.metadata.get("aoi", "")
    where = ("--bbox " + aoi.split(" ", 1)[1] if aoi.startswith("bbox ") else
             "--clip " + aoi.split(" ", 1)[1] if aoi.startswith("clip ") else "")
    options = " ".join(filter(None, [where, f"--crs {crs_name(before)}" if before.epsg else "",
                                     f"--pixel-size {before.pixel_size:.10g}"]))
    return f"{_REMAKE}; for {before.path.name}'s grid: loc2vec rasterize SOURCE {options} --out AFTER.tif"


def check_outputs(before, after, paths) -> list[Path]:
    """The outputs as Paths, each writable, none an input, no two the same."""
    from ..atomic import check_writable

    inputs = {Path(before).resolve(), Path(after).resolve()}
    resolved = [Path(p).resolve() for p in paths]
    for p, r in zip(paths, resolved):
        if r in inputs:
            raise Loc2VecError(f"output {p} is one of the rasters compared", "write the comparison to a new file, "
                               "e.g. change.gpkg")
    if len(set(resolved)) != len(resolved):
        raise Loc2VecError("the GeoPackage and the map have the same path", "give the map its own name (--map)")
    return [check_writable(p) for p in paths]


# ---- the cells and their change ----------------------------------------------------------------
def common_grid(before, after, stride_m: float, names=("BEFORE", "AFTER")) -> tuple[CellGrid, int]:
    """The cells of the ``stride_m`` grid valid in both areas (PalettedAreas on one grid, so the same cell
    ids), and how many were valid in only one."""
    a, b = cell_grid(before, stride_m), cell_grid(after, stride_m)
    both = np.intersect1d(a.cell, b.cell, assume_unique=True)
    keep = np.isin(a.cell, both)
    grid = CellGrid(a.xy[keep], a.cell[keep], a.x0, a.y0, a.cols, a.rows, a.stride_m)
    if len(grid) == 0:
        raise Loc2VecError(f"no cell of the {grid.stride_m:g} m grid lies on valid pixels of both "
                           f"{names[0]} and {names[1]}", "use a smaller --stride, or rasterize both "
                           "from the same area")
    return grid, len(a) + len(b) - 2 * len(grid)


def embedding_change(before, after) -> np.ndarray:
    """(N,) 1 - cosine of row pairs, in float64 with both rows renormalised (float32 unit vectors are unit to
    ~1e-7 only); exactly 0 where the two vectors are identical, i.e. where the tile did not change."""
    a, b = np.asarray(before, np.float64), np.asarray(after, np.float64)
    na, nb = np.linalg.norm(a, axis=1), np.linalg.norm(b, axis=1)
    cos = np.einsum("ij,ij->i", a, b) / np.maximum(na * nb, 1e-30)
    change = np.clip(1.0 - cos, 0.0, 2.0)
    change[np.all(np.asarray(before) == np.asarray(after), axis=1)] = 0.0
    return change


def embed_both(enc, before, after, grid: CellGrid, batch_size: int = DEFAULT_BATCH, threads=None,
               progress=None) -> tuple[np.ndarray, np.ndarray]:
    """(N, D) embeddings of the grid's cells in BEFORE and in AFTER (PalettedAreas): the long work."""
    return (embed_grid(enc, before, grid, batch_size, threads, progress),
            embed_grid(enc, after, grid, batch_size, threads, progress))


# ---- clusters ----------------------------------------------------------------------------------
def cluster_centroids(vectors, labels) -> tuple[np.ndarray, np.ndarray]:
    """(ids (K,), centroids (K, D)): the mean vector of each label >= 0 (HDBSCAN noise, -1, has none)."""
    vectors, labels = np.asarray(vectors, np.float64), np.asarray(labels, np.int64)
    ids = np.unique(labels[labels >= 0])
    return ids, np.stack([vectors[labels == i].mean(axis=0) for i in ids])


def nearest_cluster(vectors, ids, centroids) -> np.ndarray:
    """(N,) the id of the nearest centroid (Euclidean, as k-means assigns): a vector that did not move keeps
    its cluster, so a switch always means the embedding moved."""
    x = np.asarray(vectors, np.float64)
    d2 = (x * x).sum(1)[:, None] - 2.0 * x @ centroids.T + (centroids * centroids).sum(1)[None, :]
    return np.asarray(ids, np.int64)[np.argmin(d2, axis=1)]


def read_cluster_file(path, enc) -> tuple[np.ndarray, np.ndarray, str]:
    """(ids, centroids, description) of the clusters of an embeddings GeoPackage made by the same model."""
    from ..embeddings.store import read_embeddings

    es = read_embeddings(path)
    if es.cluster is None:
        raise Loc2VecError(f"{es.path.name} has no clusters yet", f"cluster it first: loc2vec cluster {path} --k 8; "
                           "or leave out --clusters to fit k-means on the BEFORE embeddings")
    if es.model_sha256 != enc.sha256 or es.vectors.shape[1] != enc.embedding_size:
        raise Loc2VecError(f"{es.path.name} was embedded by another model than {enc.path.name} (model SHA-256 "
                           f"{es.model_sha256[:12] or 'not recorded'} vs {enc.sha256[:12]}): its clusters mean "
                           "nothing to these embeddings",
                           f"give --clusters a file embedded with {enc.path.name}, or leave it out")
    ids, centroids = cluster_centroids(es.vectors, es.cluster)
    if len(ids) < 2:
        raise Loc2VecError(f"{es.path.name} has {len(ids)} cluster(s): nothing to switch between",
                           f"cluster it again with more clusters: loc2vec cluster {path} --k 8")
    return ids, centroids, f"the {len(ids)} clusters of {es.path.name} (their centroids)"


def fit_clusters(vectors, k: int, seed: int) -> tuple[np.ndarray, np.ndarray, str]:
    """k-means on the BEFORE embeddings (loc2vec cluster's, numbered by size), as centroids."""
    from ..clusters.cluster import cluster_labels

    labels = cluster_labels(vectors, k, "kmeans", seed)
    ids, centroids = cluster_centroids(vectors, labels)
    return ids, centroids, f"k-means, k = {k}, seed {seed}, fitted on the BEFORE embeddings"


# ---- the whole comparison ----------------------------------------------------------------------
def compare_areas(before, after, model="default", out=None, map_png=None, stride_m: float = DEFAULT_STRIDE_M,
                  k: int | None = None, clusters=None, seed: int = 0, device: str = "auto",
                  batch_size: int = DEFAULT_BATCH, threads: int | None = None, progress=None) -> Comparison:
    """Embed BEFORE and AFTER (area rasters on one grid) on the ``stride_m`` grid with ``model`` and compare.

    Writes ``out`` (GeoPackage, layer ``change``) and ``map_png`` when given. k: k-means clusters fitted
    on BEFORE (default 8); clusters: an embeddings GeoPackage whose cluster centroids are used instead.
    progress: a ProgressCallback (QGIS; two stages) or None for a terminal bar; a cancel writes nothing.
    """
    from ..atomic import atomic_output
    from ..clusters.cluster import check_k, check_seed
    from ..embeddings.grid import check_stride
    from ..embeddings.onnx_encoder import OnnxEncoder
    from ..raster.area import AreaRaster
    from ..tiles import PalettedArea
    from .output import write_gpkg, write_map

    outputs = [(p, writer, suffix) for p, writer, suffix in ((out, write_gpkg, ".part.gpkg"),
                                                             (map_png, write_map, ".part.png")) if p]
    check_outputs(before, after, [p for p, _, _ in outputs])
    stride_m, seed = check_stride(stride_m), check_seed(seed)
    if k is not None and clusters is not None:
        raise Loc2VecError("both --k and --clusters are given", "give --k to fit k-means on BEFORE, or --clusters "
                           "to use that file's clusters, not both")
    ra, rb = AreaRaster.open(before), AreaRaster.open(after)  # headers only: cheap
    check_same_grid(ra, rb)
    check_same_channels(ra, rb)
    enc = OnnxEncoder(model, device)
    enc.check_channels(ra.channel_names, f"area raster {ra.path.name}")
    reference = read_cluster_file(clusters, enc) if clusters is not None else None
    pa, pb = PalettedArea.from_raster(ra), PalettedArea.from_raster(rb)
    grid, left_out = common_grid(pa, pb, stride_m, (ra.path.name, rb.path.name))
    k = None if reference else check_k(DEFAULT_K if k is None else k, len(grid))

    va, vb = embed_both(enc, pa, pb, grid, batch_size, threads, progress)
    ids, centroids, how = reference or fit_clusters(va, k, seed)
    result = Comparison(ra.path, rb.path, enc.path, enc.sha256, ra.crs_wkt, grid, embedding_change(va, vb),
                        nearest_cluster(va, ids, centroids), nearest_cluster(vb, ids, centroids), len(ids), how,
                        left_out)
    with contextlib.ExitStack() as stack:  # renamed in turn only when every writer has finished
        temps = [(stack.enter_context(atomic_output(path, suffix=suffix)), writer) for path, writer, suffix in outputs]
        for tmp, writer in temps:
            writer(tmp, result)
    result.written = [Path(p) for p, _, _ in outputs]
    return result
