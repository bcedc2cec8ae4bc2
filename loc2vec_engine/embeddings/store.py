"""The embeddings GeoPackage: how loc2vec stores vectors so that QGIS and other tools can read them.

Schema (documented in the README, section "The embeddings GeoPackage"):

* layer ``embeddings`` — Point geometry (column ``geom``) at each tile centre, in the area's CRS; fields
  ``cell`` INTEGER (index of the cell in the full row-major grid, stable across shards),
  ``embedding`` BLOB (float32 little-endian, L2-normalised, ``embedding_size`` values),
  ``cluster`` INTEGER (NULL until ``loc2vec cluster``; -1 = noise for HDBSCAN),
  ``umap_x``, ``umap_y`` REAL (NULL until ``loc2vec cluster``).
* table ``loc2vec_meta`` (key TEXT, value TEXT as JSON) — the model's ONNX metadata (``model``), the
  ONNX file's SHA-256 (``model_sha256``, what "the same model" means), the area raster's name, the grid,
  the shard, the OpenStreetMap attribution.

Written through OGR (a real GeoPackage with spatial index), read through sqlite3 with the point
geometry decoded by numpy: a million cells load in about a second instead of a minute of OGR features.
Every write goes to a temporary file renamed at the end, so a failure leaves no half GeoPackage.
"""

from __future__ import annotations

import json
import shutil
import sqlite3
import struct
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .. import ATTRIBUTION, __version__
from ..atomic import atomic_output, check_writable
from ..errors import Loc2VecError

LAYER = "embeddings"
META_TABLE = "loc2vec_meta"
_MAKE_HINT = "make one with: loc2vec embed MODEL.onnx AREA.tif --out EMB.gpkg"


@dataclass
class EmbeddingSet:
    """The cells of an embeddings GeoPackage, in ``cell`` order."""

    xy: np.ndarray  # (N, 2) float64, tile centres in the CRS below
    vectors: np.ndarray  # (N, D) float32, unit length
    cell: np.ndarray  # (N,) int64
    crs_wkt: str
    meta: dict = field(default_factory=dict)
    cluster: np.ndarray | None = None  # (N,) int64; None while the file is not clustered
    umap: np.ndarray | None = None  # (N, 2) float64; None until clustered
    fid: np.ndarray | None = None  # (N,) int64, the GeoPackage feature ids
    path: Path | None = None

    def __len__(self) -> int:
        return len(self.vectors)

    @property
    def model_sha256(self) -> str:
        return str(self.meta.get("model_sha256", ""))

    def lonlat(self) -> np.ndarray:
        """(N, 2) WGS84 longitude/latitude of the cells."""
        from ..geo.crs import transformer_to_wgs84

        lon, lat = transformer_to_wgs84(self.crs_wkt).transform(self.xy[:, 0], self.xy[:, 1])
        return np.stack([np.asarray(lon, float), np.asarray(lat, float)], axis=1)


# ---- writing ---------------------------------------------------------------------------------
def write_embeddings(path, xy, vectors, crs_wkt: str, meta: dict, cell=None, cluster=None, umap=None,
                     progress=None) -> Path:
    """Write a new embeddings GeoPackage at ``path`` (replacing any file there only on success)."""
    from osgeo import ogr, osr

    path = Path(path)
    xy, vectors = np.asarray(xy, np.float64), np.ascontiguousarray(vectors, dtype="<f4")
    n = len(vectors)
    if vectors.ndim != 2 or xy.shape != (n, 2):
        raise Loc2VecError(f"{n} vectors of shape {vectors.shape} for {xy.shape} centres",
                           "give (N, D) vectors and (N, 2) centres")
    cell = np.arange(n, dtype=np.int64) if cell is None else np.asarray(cell, np.int64)
    check_writable(path)
    meta = {"loc2vec_version": __version__, "attribution": ATTRIBUTION, "embedding_size": int(vectors.shape[1]),
            **meta}
    with atomic_output(path, suffix=".part.gpkg") as tmp:  # GDAL wants the .gpkg extension
        ogr.UseExceptions()
        drv = ogr.GetDriverByName("GPKG")
        ds = drv.CreateDataSource(str(tmp))
        srs = osr.SpatialReference()
        srs.ImportFromWkt(crs_wkt)
        srs.SetAxisMappingStrategy(osr.OAMS_TRADITIONAL_GIS_ORDER)
        lyr = ds.CreateLayer(LAYER, srs, ogr.wkbPoint, ["GEOMETRY_NAME=geom", "FID=fid"])
        for name, kind in (("cell", ogr.OFTInteger64), ("embedding", ogr.OFTBinary), ("cluster", ogr.OFTInteger),
                           ("umap_x", ogr.OFTReal), ("umap_y", ogr.OFTReal)):
            lyr.CreateField(ogr.FieldDefn(name, kind))
        defn = lyr.GetLayerDefn()
        lyr.StartTransaction()
        for i in range(n):
            f = ogr.Feature(defn)
            f.SetGeometryDirectly(ogr.CreateGeometryFromWkb(struct.pack("<BIdd", 1, 1, xy[i, 0], xy[i, 1])))
            f.SetField(0, int(cell[i]))
            f.SetFieldBinaryFromHexString(1, vectors[i].tobytes().hex())
            if cluster is not None:
                f.SetField(2, int(cluster[i]))
            if umap is not None:
                f.SetField(3, float(umap[i, 0]))
                f.SetField(4, float(umap[i, 1]))
            lyr.CreateFeature(f)
            if progress is not None and (i + 1) % 4096 == 0:
                progress.update(4096)
        lyr.CommitTransaction()
        _write_meta_table(ds, meta)
        ds = None
    return path


def _write_meta_table(ds, meta: dict) -> None:
    from osgeo import ogr

    lyr = ds.CreateLayer(META_TABLE, None, ogr.wkbNone, ["FID=fid"])
    lyr.CreateField(ogr.FieldDefn("key", ogr.OFTString))
    lyr.CreateField(ogr.FieldDefn("value", ogr.OFTString))
    lyr.StartTransaction()
    for key, value in meta.items():
        f = ogr.Feature(lyr.GetLayerDefn())
        f.SetField("key", str(key))
        f.SetField("value", json.dumps(value, ensure_ascii=False))
        lyr.CreateFeature(f)
    lyr.CommitTransaction()


def update_columns(path, cluster=None, umap=None, meta_updates: dict | None = None) -> None:
    """Set ``cluster`` (N,) and/or ``umap`` (N, 2), in ``cell`` order, and merge ``meta_updates``.

    Works on a copy renamed over the original at the end: an interrupted update leaves the old file.
    """
    path = Path(path)
    es = read_embeddings(path)  # validates the file
    with atomic_output(path, suffix=".part.gpkg") as tmp:
        shutil.copyfile(path, tmp)
        con = _connect_for_update(tmp)
        try:
            if cluster is not None:
                cluster = np.asarray(cluster, np.int64)
                _check_len(cluster, es, "cluster labels")
                con.executemany(f"UPDATE {LAYER} SET cluster = ? WHERE fid = ?",
                                zip(cluster.tolist(), es.fid.tolist()))
            if umap is not None:
                umap = np.asarray(umap, np.float64)
                _check_len(umap, es, "UMAP coordinates")
                con.executemany(f"UPDATE {LAYER} SET umap_x = ?, umap_y = ? WHERE fid = ?",
                                zip(umap[:, 0].tolist(), umap[:, 1].tolist(), es.fid.tolist()))
            for key, value in (meta_updates or {}).items():
                con.execute(f"DELETE FROM {META_TABLE} WHERE key = ?", (key,))
                con.execute(f"INSERT INTO {META_TABLE} (key, value) VALUES (?, ?)",
                            (key, json.dumps(value, ensure_ascii=False)))
            con.commit()
        finally:
            con.close()


def _connect_for_update(path: Path) -> sqlite3.Connection:
    """sqlite3 with the GeoPackage SQL functions that OGR's R-tree triggers name (points only).

    The triggers are prepared for every UPDATE of the layer, even of non-geometry columns, and plain
    sqlite3 does not define ST_IsEmpty / ST_MinX / ...; these give the true answers for our point blobs.
    """
    con = sqlite3.connect(path)
    con.create_function("ST_IsEmpty", 1, lambda g: int(g is None or bool(g[3] & 0x10)), deterministic=True)
    for name, axis in (("ST_MinX", 0), ("ST_MaxX", 0), ("ST_MinY", 1), ("ST_MaxY", 1)):
        con.create_function(name, 1, lambda g, a=axis: float(_decode_points([g], path)[0, a]), deterministic=True)
    return con


def _check_len(values, es: EmbeddingSet, what: str) -> None:
    if len(values) != len(es):
        raise Loc2VecError(f"{len(values)} {what} for {len(es)} cells", "give one value per cell, in cell order")


# ---- reading ---------------------------------------------------------------------------------
def read_embeddings(path) -> EmbeddingSet:
    """Read an embeddings GeoPackage; a missing, empty or foreign file is one clear ``Loc2VecError``."""
    path = Path(path)
    if not path.is_file():
        raise Loc2VecError(f"embeddings file {path} not found", _MAKE_HINT)
    try:
        con = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
        tables = {r[0] for r in con.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    except sqlite3.DatabaseError as e:
        raise Loc2VecError(f"{path} is not a GeoPackage ({e})", _MAKE_HINT) from None
    try:
        if LAYER not in tables or META_TABLE not in tables:
            raise Loc2VecError(f"{path} is not a loc2vec embeddings GeoPackage (no '{LAYER}' layer with a "
                               f"'{META_TABLE}' table)", _MAKE_HINT)
        meta = {k: json.loads(v) for k, v in con.execute(f"SELECT key, value FROM {META_TABLE}")}
        # In the table's order, sorted by cell below in numpy: ORDER BY on the unindexed column took 1.4 s of
        # the 11 s a 1M-cell file took to read (benchmarks/render.py).
        rows = con.execute(f"SELECT fid, cell, geom, embedding, cluster, umap_x, umap_y FROM {LAYER}").fetchall()
        crs_wkt = _layer_crs(con)
    finally:
        con.close()
    if not rows:
        raise Loc2VecError(f"{path} has no embedded cells (empty '{LAYER}' layer)",
                           "embed an area that has valid pixels, or check --clip")
    fid, cell, geoms, blobs, clusters, ux, uy = zip(*rows)
    del rows
    dim = int(meta.get("embedding_size", len(blobs[0]) // 4))
    if any(b is None or len(b) != 4 * dim for b in blobs):
        raise Loc2VecError(f"{path}: some embeddings are not {dim} float32 values", _MAKE_HINT)
    # A bytearray is writable: the array is made on it without the copy a bytes object would need.
    vectors = np.frombuffer(bytearray().join(blobs), dtype="<f4").reshape(-1, dim).astype(np.float32, copy=False)
    clustered = all(c is not None for c in clusters)
    projected = all(v is not None for v in ux) and all(v is not None for v in uy)
    cell = np.asarray(cell, np.int64)
    columns = dict(xy=_decode_points(geoms, path), vectors=vectors, cell=cell,
                   cluster=np.asarray(clusters, np.int64) if clustered else None,
                   umap=np.stack([np.asarray(ux, float), np.asarray(uy, float)], 1) if projected else None,
                   fid=np.asarray(fid, np.int64))
    if len(cell) > 1 and not (cell[1:] >= cell[:-1]).all():  # written in cell order as a rule: no copy then
        order = np.argsort(cell, kind="stable")
        columns = {k: None if v is None else v[order] for k, v in columns.items()}
    return EmbeddingSet(**columns, crs_wkt=crs_wkt, meta=meta, path=path)


def _layer_crs(con) -> str:
    row = con.execute("SELECT s.definition FROM gpkg_geometry_columns g JOIN gpkg_spatial_ref_sys s "
                      "ON g.srs_id = s.srs_id WHERE g.table_name = ?", (LAYER,)).fetchone()
    return row[0] if row else ""


_ENVELOPE_BYTES = {0: 0, 1: 32, 2: 48, 3: 48, 4: 64}


def _decode_points(blobs, path) -> np.ndarray:
    """(N, 2) x/y of GeoPackage point blobs (header 'GP', flags, srs id, envelope, then WKB)."""
    same = _decode_uniform_points(blobs)
    return same if same is not None else _decode_points_one_by_one(blobs, path)


def _decode_uniform_points(blobs) -> np.ndarray | None:
    """The points at once when every blob has the same length, flags and byte order (as this package writes
    them): 0.2 s for 1M against 2.7 s one by one. None when they differ, or are not all 2-D points."""
    try:
        lengths = set(map(len, blobs))
    except TypeError:  # a NULL geometry: reported by the one-by-one decoder
        return None
    if len(lengths) != 1:
        return None
    (size,) = lengths
    if size < 8:
        return None
    raw = np.frombuffer(b"".join(blobs), np.uint8).reshape(len(blobs), size)
    first = raw[0]
    if bytes(first[:2]) != b"GP" or not (raw[:, :2] == first[:2]).all() or not (raw[:, 3] == first[3]).all():
        return None
    start = 8 + _ENVELOPE_BYTES.get((int(first[3]) >> 1) & 7, 0)
    if size != start + 21 or not (raw[:, start] == first[start]).all():  # WKB: order, type, x, y
        return None
    order = "<" if first[start] == 1 else ">"
    kind = np.ascontiguousarray(raw[:, start + 1:start + 5]).view(order + "u4")[:, 0]
    if (kind != 1).any():
        return None
    return np.ascontiguousarray(raw[:, start + 5:start + 21]).view(order + "f8").astype(np.float64)


def _decode_points_one_by_one(blobs, path) -> np.ndarray:
    out = np.empty((len(blobs), 2), np.float64)
    for i, b in enumerate(blobs):
        if b is None or len(b) < 8 or b[:2] != b"GP":
            raise Loc2VecError(f"{path}: cell geometry {i} is not a GeoPackage point", _MAKE_HINT)
        start = 8 + _ENVELOPE_BYTES.get((b[3] >> 1) & 7, 0)
        order = "<" if b[start] == 1 else ">"
        kind, x, y = struct.unpack_from(order + "Idd", b, start + 1)
        if kind % 1000 != 1:
            raise Loc2VecError(f"{path}: cell geometry {i} is not a point", _MAKE_HINT)
        out[i] = x, y
    return out
