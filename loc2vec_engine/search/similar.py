"""Similar places: the cells whose embeddings are closest by cosine to one place or the mean of several.

Query points are WGS84 lon/lat; each picks the nearest cell of the embeddings set, and a point farther
from every cell than a cell's half-diagonal (plus 5 % of the stride) is outside the embedded area.
Search across files (one city's place, another city's cells) needs the same model on both sides.

By default a search leaves out the query's own surroundings: the cells within one tile (the side of
the model's tiles, 500 m for the shipped model) of any query point. Those cells share most of the
query's map tile, so they are always the most similar and answer nothing ("this place is like
itself"); what users ask for is similar places elsewhere. ``exclude_radius_m=0`` keeps them (the
query cell then comes back first, with score 1.0), any other number is that radius in metres.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from .. import ATTRIBUTION
from ..errors import Loc2VecError
from .cosine import cosine_scores
from .index import EXACT_BELOW, VectorIndex, check_k, exact_top, unit_rows

_EDGE_MARGIN = 0.05  # of the stride, beyond the cell's half-diagonal: points on the outer edge still count
DEFAULT_TILE_M = 500.0  # the shipped model's tile side: the exclusion for files that do not record their model's


@dataclass
class SimilarResult:
    """The k best cells of the searched set, by descending cosine similarity."""

    indices: np.ndarray  # (k,) rows of the searched EmbeddingSet
    cells: np.ndarray  # (k,) grid cell ids
    scores: np.ndarray  # (k,) cosine similarity to the query vector
    lonlat: np.ndarray  # (k, 2) WGS84 cell centres
    distance_m: np.ndarray  # (k,) ground distance to the nearest query point; NaN without one
    query_lonlat: np.ndarray  # (Q, 2) the query points (may be empty)
    exclude_radius_m: float = 0.0  # cells this close to a query point were left out (0: none by distance)
    n_excluded: int = 0  # how many cells were left out

    def __len__(self) -> int:
        return len(self.indices)


# ---- query points -> cells -> query vector ---------------------------------------------------
def parse_lonlat(text: str) -> tuple[float, float]:
    """'LON,LAT' -> (lon, lat); anything else, or a point off the globe, is a ``Loc2VecError``."""
    try:
        lon, lat = (float(v) for v in str(text).split(","))
    except ValueError:
        raise Loc2VecError(f"{text!r} is not LON,LAT", "give a point such as --at -8.6110,41.1460") from None
    if not (math.isfinite(lon) and math.isfinite(lat) and -180 <= lon <= 180 and -90 <= lat <= 90):
        raise Loc2VecError(f"{text!r} is not a point on the globe (LON in -180..180, LAT in -90..90)",
                           "give longitude first, then latitude, e.g. --at -8.6110,41.1460")
    return lon, lat


def query_cells(es, lonlats) -> np.ndarray:
    """Row of the nearest cell to each WGS84 point; a point outside the embedded area is an error."""
    ll = _lonlats(lonlats)
    pts = _to_crs(es, ll)
    idx, dist = np.empty(len(pts), np.int64), np.empty(len(pts))
    for i, p in enumerate(pts):
        d2 = np.einsum("ij,ij->i", es.xy - p, es.xy - p)
        idx[i] = int(np.argmin(d2))
        dist[i] = math.sqrt(d2[idx[i]])
    stride = grid_stride(es)
    limit = stride * (math.sqrt(0.5) + _EDGE_MARGIN)
    bad = np.flatnonzero(~(dist <= limit))
    if len(bad):
        i = bad[0]
        raise Loc2VecError(
            f"{ll[i, 0]:.5f},{ll[i, 1]:.5f} is outside the embedded area of {_name(es)}: the nearest cell is "
            f"{dist[i]:,.0f} m away (cells are {stride:g} m apart)",
            f"pick a point inside the area, which spans {extent_text(es)}")
    return idx


def query_vector(es, indices) -> np.ndarray:
    """(D,) unit query: the mean embedding of the given cells (several reference places)."""
    v = es.vectors[np.atleast_1d(np.asarray(indices, np.int64))].astype(np.float64).mean(axis=0)
    if np.linalg.norm(v) < 1e-6:
        raise Loc2VecError("the reference places cancel out (their mean embedding is zero)",
                           "choose reference places that are alike, or fewer of them")
    return unit_rows(v, "the query vector")[0]


def grid_stride(es) -> float:
    """Metres between neighbouring cells: meta "stride_m", else the smallest gap between cell centres."""
    stride = es.meta.get("stride_m")
    if isinstance(stride, (int, float)) and stride > 0:
        return float(stride)
    gaps = [np.diff(np.unique(np.round(es.xy[:, a], 3))) for a in (0, 1)]
    gaps = np.concatenate(gaps)
    gaps = gaps[gaps > 0]
    return float(gaps.min()) if len(gaps) else float(es.meta.get("tile_size_m", 500.0))


def one_tile_m(es) -> float:
    """Side in metres of the tiles of the model that made ``es``: the default exclude radius.

    From meta "tile_size_m" (written by loc2vec embed), else the model's ONNX metadata kept in meta
    "model", else ``DEFAULT_TILE_M`` (the shipped model's 500 m).
    """
    model = es.meta.get("model") if isinstance(es.meta.get("model"), dict) else {}
    candidates = (es.meta.get("tile_size_m"), model.get("tile_size_m"),
                  _product(model.get("tile_size_px"), model.get("metres_per_px")))
    for value in candidates:
        metres = _positive(value)
        if metres is not None:
            return metres
    return DEFAULT_TILE_M


def exclude_radius(es, radius_m: float | None = None) -> float:
    """The radius a search of ``es`` leaves out: ``None`` = one tile of its model, else ``radius_m`` (0 = off)."""
    return one_tile_m(es) if radius_m is None else check_radius(radius_m)


def cells_within(es, lonlats, radius_m: float) -> np.ndarray:
    """(N,) bool: cells within ``radius_m`` metres (in the set's CRS) of any of the points."""
    mask = np.zeros(len(es), bool)
    for p in _to_crs(es, _lonlats(lonlats)):
        mask |= np.einsum("ij,ij->i", es.xy - p, es.xy - p) <= radius_m * radius_m
    return mask


# ---- search ----------------------------------------------------------------------------------
def similarity_all(es, query_vec) -> np.ndarray:
    """(N,) cosine similarity of every cell to the query (the heat map), scored as every search scores."""
    q = unit_rows(query_vec, "the query vector")[0]
    _check_dim(es, q)
    return cosine_scores(es.vectors, q)


def similar(es, query_vec, k: int, exclude=None, index: VectorIndex | None = None,
            query_lonlat=None) -> SimilarResult:
    """The k cells most similar to ``query_vec``, leaving out ``exclude`` (bool mask or rows).

    Without ``index`` the search is exact: one matrix-vector product, faster than building an index
    for a single query. Give a ``VectorIndex`` built on ``es.vectors`` to answer many queries. Either
    way the scores and the order (ties by cell id) come from ``cosine``: the same for every path.
    """
    q = unit_rows(query_vec, "the query vector")[0]
    _check_dim(es, q)
    excluded = _exclusion_mask(es, exclude)
    k = _check_k_after_exclusion(k, len(es), int(excluded.sum()))
    if index is None:
        rows, scores = exact_top(es.vectors, es.cell, q, k, excluded)
    else:
        if len(index) != len(es):
            raise Loc2VecError(f"the index holds {len(index)} vectors, the embeddings {len(es)}",
                               "build the index on these embeddings: VectorIndex.build(es.vectors)")
        rows, scores = index.top(q, k, excluded)
    result = make_result(es, rows, scores, query_lonlat)
    result.n_excluded = int(excluded.sum())
    return result


def ranked(es, query_vec, k: int, exclude=None, query_lonlat=None) -> tuple[SimilarResult, np.ndarray]:
    """(top k, (N,) heat map of every cell): one exact scoring of all cells, as a click in the plugin needs."""
    from .cosine import rank

    heat = similarity_all(es, query_vec)
    excluded = _exclusion_mask(es, exclude)
    k = _check_k_after_exclusion(k, len(es), int(excluded.sum()))
    best = rank(np.where(excluded, -np.inf, heat), es.cell, k)
    result = make_result(es, best, heat[best], query_lonlat)
    result.n_excluded = int(excluded.sum())
    return result, heat


def similar_at(es, lonlats, k: int, target=None, exclude_radius_m: float | None = None,
               index: VectorIndex | None = None) -> SimilarResult:
    """Cells of ``target`` (default ``es``) most like the mean of ``es``'s cells at ``lonlats``.

    Cells of ``target`` within ``exclude_radius_m`` metres of a query point are left out: ``None``
    (the default) = one tile of the model, 0 = none. In another city's file no cell is that close,
    so nothing is left out there; in a neighbouring file (an adjacent shard) the query's
    surroundings are left out just as in its own.
    """
    target = es if target is None else target
    if target is not es:
        check_same_model(es, target)
    ll = _lonlats(lonlats)
    q = query_vector(es, query_cells(es, ll))
    radius = exclude_radius(es, exclude_radius_m)  # one model on both sides: its tile is the same
    exclude = cells_within(target, ll, radius) if radius > 0 else None
    result = similar(target, q, k, exclude=exclude, index=index, query_lonlat=ll)
    result.exclude_radius_m = radius
    return result


def similar_across(source_es, target_es, lonlat, k: int, **kwargs) -> SimilarResult:
    """A place of ``source_es`` searched in ``target_es``; refused unless both come from the same model."""
    check_same_model(source_es, target_es)
    return similar_at(source_es, lonlat, k, target=target_es, **kwargs)


def check_same_model(a, b) -> None:
    """Embeddings are comparable only when the same model file (meta "model_sha256") made both."""
    for es in (a, b):
        if not es.model_sha256:
            raise Loc2VecError(f"{_name(es)} does not say which model made it (no model_sha256 in its metadata), "
                               "so its vectors cannot be compared with another file's",
                               "re-embed it with loc2vec embed, which records the model")
    if a.model_sha256 != b.model_sha256:
        raise Loc2VecError(
            f"{_name(a)} and {_name(b)} were embedded with different models (model_sha256 "
            f"{a.model_sha256[:12]}… vs {b.model_sha256[:12]}…): their vectors are not comparable",
            "embed both areas with the same model (loc2vec embed MODEL.onnx AREA.tif), then search again")


class PlaceSearch:
    """One embeddings set prepared for repeated queries, as the QGIS plugin's clicks need.

    ``highlight`` gives the heat map over every cell and the top k from it (exact, since every score
    is computed anyway); ``top`` answers from a ``VectorIndex`` (exact below ``exact_below`` cells).
    """

    def __init__(self, es, exact_below: int = EXACT_BELOW, seed: int = 0):
        self.es = es
        self.exact_below = exact_below
        self.seed = seed
        self._index = None

    @property
    def index(self) -> VectorIndex:
        if self._index is None:
            self._index = VectorIndex.build(self.es.vectors, exact_below=self.exact_below, seed=self.seed,
                                              cells=self.es.cell)
        return self._index

    def highlight(self, lonlats, k: int = 10, exclude_radius_m: float | None = None):
        """(SimilarResult, (N,) similarity of every cell) for a click at ``lonlats``.

        The top k leave out the cells within ``exclude_radius_m`` (``None`` = one tile, 0 = none);
        the heat map still scores every cell, the left-out ones too.
        """
        ll = _lonlats(lonlats)
        q = query_vector(self.es, query_cells(self.es, ll))
        return self.highlight_vector(q, ll, k, exclude_radius_m)

    def highlight_vector(self, query_vec, lonlats, k: int = 10, exclude_radius_m: float | None = None):
        """``highlight`` for a query vector of its own (a click embedded on the fly) at ``lonlats``."""
        ll = _lonlats(lonlats)
        radius = exclude_radius(self.es, exclude_radius_m)
        excluded = cells_within(self.es, ll, radius) if radius > 0 else None
        result, heat = ranked(self.es, query_vec, k, exclude=excluded, query_lonlat=ll)
        result.exclude_radius_m = radius
        return result, heat

    def top(self, lonlats, k: int = 10, exclude_radius_m: float | None = None) -> SimilarResult:
        return similar_at(self.es, lonlats, k, exclude_radius_m=exclude_radius_m, index=self.index)


# ---- results ---------------------------------------------------------------------------------
def make_result(es, indices, scores, query_lonlat=None) -> SimilarResult:
    """A SimilarResult for rows ``indices`` of ``es``, with lon/lat and distances to the query points."""
    from ..geo.crs import transformer_to_wgs84

    indices = np.asarray(indices, np.int64)
    lon, lat = transformer_to_wgs84(es.crs_wkt).transform(es.xy[indices, 0], es.xy[indices, 1])
    lonlat = np.stack([np.asarray(lon, float), np.asarray(lat, float)], axis=1).reshape(-1, 2)
    ql = np.empty((0, 2)) if query_lonlat is None else _lonlats(query_lonlat)
    return SimilarResult(indices=indices, cells=es.cell[indices], scores=np.asarray(scores, np.float64),
                         lonlat=lonlat, distance_m=_ground_distance(lonlat, ql), query_lonlat=ql)


def write_similar(path, es, result: SimilarResult, columns: dict | None = None):
    """Write the hits as GeoPackage layer ``similar`` (Point in the set's CRS; rank, cell, score, distance_m).

    ``columns``: more fields, name -> one value per hit (str, float or int; None leaves it empty), e.g. the
    explanations of ``loc2vec_engine.explain.explain_columns``.
    """
    from osgeo import ogr, osr

    from ..atomic import atomic_output

    with atomic_output(path, suffix=".part.gpkg") as tmp:  # GDAL wants the .gpkg extension
        ogr.UseExceptions()
        ds = ogr.GetDriverByName("GPKG").CreateDataSource(str(tmp))
        srs = osr.SpatialReference()
        srs.ImportFromWkt(es.crs_wkt)
        srs.SetAxisMappingStrategy(osr.OAMS_TRADITIONAL_GIS_ORDER)
        lyr = ds.CreateLayer("similar", srs, ogr.wkbPoint, ["GEOMETRY_NAME=geom", "FID=fid"])
        extra = {name: list(values) for name, values in (columns or {}).items()}
        for name, values in extra.items():
            if len(values) != len(result):
                raise Loc2VecError(f"column {name!r} has {len(values)} values for {len(result)} hits",
                                   "give one value per hit")
        for name, kind in (("rank", ogr.OFTInteger), ("cell", ogr.OFTInteger64), ("score", ogr.OFTReal),
                           ("distance_m", ogr.OFTReal), *((n, _field_type(v)) for n, v in extra.items())):
            lyr.CreateField(ogr.FieldDefn(name, kind))
        lyr.SetMetadataItem("attribution", ATTRIBUTION)
        lyr.SetMetadataItem("query_lonlat", "; ".join(f"{x:.6f},{y:.6f}" for x, y in result.query_lonlat))
        lyr.SetMetadataItem("model_sha256", es.model_sha256)
        lyr.SetMetadataItem("exclude_radius_m", f"{result.exclude_radius_m:g}")  # why no hit is near the query
        lyr.StartTransaction()
        for rank, (row, score, dist) in enumerate(zip(result.indices, result.scores, result.distance_m), 1):
            f = ogr.Feature(lyr.GetLayerDefn())
            pt = ogr.Geometry(ogr.wkbPoint)
            pt.AddPoint_2D(float(es.xy[row, 0]), float(es.xy[row, 1]))
            f.SetGeometry(pt)
            f.SetField("rank", rank)
            f.SetField("cell", int(es.cell[row]))
            f.SetField("score", float(score))
            if np.isfinite(dist):
                f.SetField("distance_m", float(dist))
            for name, values in extra.items():
                value = values[rank - 1]
                if value is not None:
                    f.SetField(name, value if isinstance(value, str) else getattr(value, "item", lambda: value)())
            lyr.CreateFeature(f)
        lyr.CommitTransaction()
        ds = None
    return path


# ---- helpers ---------------------------------------------------------------------------------
def _field_type(values) -> int:
    """The OGR field type of a column: text when any value is, integer when all are, else real."""
    from osgeo import ogr

    present = [v for v in values if v is not None]
    if any(isinstance(v, str) for v in present):
        return ogr.OFTString
    if present and all(isinstance(v, (int, np.integer)) and not isinstance(v, bool) for v in present):
        return ogr.OFTInteger64
    return ogr.OFTReal


def _lonlats(lonlats) -> np.ndarray:
    ll = np.asarray(lonlats, np.float64).reshape(-1, 2)
    if len(ll) == 0:
        raise Loc2VecError("no query point given", "give at least one LON,LAT (--at)")
    if not np.all(np.isfinite(ll)) or np.any(np.abs(ll[:, 0]) > 180) or np.any(np.abs(ll[:, 1]) > 90):
        raise Loc2VecError("query points must be WGS84 LON,LAT (LON in -180..180, LAT in -90..90)",
                           "give longitude first, then latitude, e.g. -8.6110,41.1460")
    return ll


def _to_crs(es, ll: np.ndarray) -> np.ndarray:
    from ..geo.crs import transformer_from_wgs84

    if not es.crs_wkt:
        raise Loc2VecError(f"{_name(es)} has no coordinate reference system", "re-embed it with loc2vec embed")
    x, y = transformer_from_wgs84(es.crs_wkt).transform(ll[:, 0], ll[:, 1])
    return np.stack([np.asarray(x, float), np.asarray(y, float)], axis=1).reshape(-1, 2)


def _ground_distance(lonlat: np.ndarray, query: np.ndarray) -> np.ndarray:
    """Geodesic metres from each point to the nearest query point (NaN without query points)."""
    if len(query) == 0:
        return np.full(len(lonlat), np.nan)
    from pyproj import Geod

    geod = Geod(ellps="WGS84")
    d = [geod.inv(lonlat[:, 0], lonlat[:, 1], np.full(len(lonlat), qx), np.full(len(lonlat), qy))[2]
         for qx, qy in query]
    return np.min(np.asarray(d, float).reshape(len(query), -1), axis=0)


def _exclusion_mask(es, exclude) -> np.ndarray:
    if exclude is None:
        return np.zeros(len(es), bool)
    exclude = np.asarray(exclude)
    if exclude.dtype == bool:
        if exclude.shape != (len(es),):
            raise Loc2VecError(f"exclude mask of shape {exclude.shape} for {len(es)} cells", "give one bool per cell")
        return exclude.copy()
    mask = np.zeros(len(es), bool)
    mask[exclude.astype(np.int64)] = True
    return mask


def _check_k_after_exclusion(k, n: int, n_excluded: int) -> int:
    if n_excluded and isinstance(k, (int, np.integer)) and k > n - n_excluded >= 0:
        raise Loc2VecError(f"k={k} is larger than the {n - n_excluded} cells left after leaving out the "
                           f"{n_excluded} within the exclude radius (by default one tile of the model)",
                           "ask for fewer cells, or use a smaller exclude radius (0 keeps every cell, e.g. "
                           "--exclude-radius 0)")
    return check_k(k, n - n_excluded)


def check_radius(radius) -> float:
    """``radius`` in metres as a float when it is 0 or more (0 = leave nothing out), else a ``Loc2VecError``."""
    try:
        value = float(radius)
    except (TypeError, ValueError):
        value = math.nan
    if isinstance(radius, bool) or not (math.isfinite(value) and value >= 0):
        raise Loc2VecError(f"the exclude radius must be 0 or more metres, not {radius!r}",
                           "give a distance such as --exclude-radius 500, or --exclude-radius 0 to keep the "
                           "query's surroundings; leave it out for one tile of the model")
    return value


def _positive(value) -> float | None:
    """``value`` as a finite positive float, else None (metadata written by other tools may hold anything)."""
    try:
        value = float(value)
    except (TypeError, ValueError):
        return None
    return value if math.isfinite(value) and value > 0 else None


def _product(a, b) -> float | None:
    a, b = _positive(a), _positive(b)
    return a * b if a is not None and b is not None else None


def _check_dim(es, q: np.ndarray) -> None:
    if es.vectors.shape[1] != len(q):
        raise Loc2VecError(f"a {len(q)}-D query for {es.vectors.shape[1]}-D embeddings in {_name(es)}",
                           "query with a vector from the model that made these embeddings")


def _name(es) -> str:
    return es.path.name if getattr(es, "path", None) is not None else "the embeddings"


def extent_text(es) -> str:
    """The cells' WGS84 bounding box as 'lon A..B, lat C..D', for messages about places outside it."""
    from ..geo.crs import transformer_to_wgs84

    (x0, y0), (x1, y1) = es.xy.min(axis=0), es.xy.max(axis=0)
    lon, lat = transformer_to_wgs84(es.crs_wkt).transform([x0, x0, x1, x1], [y0, y1, y0, y1])
    return f"lon {min(lon):.5f}..{max(lon):.5f}, lat {min(lat):.5f}..{max(lat):.5f}"
