"""Example places -> cells: a LON,LAT, or a vector file of points (each its nearest cell) or polygons
(every cell whose centre lies inside).

Vector files are read with OGR and reprojected to the embeddings' CRS; ``FILE|layername=NAME`` picks
a layer of a file that holds several. A layer with a text field ``example`` (the map tool's saved
example sets, ``examples_geojson``) gives the positives its "positive" features and the negatives its
"negative" ones. ``Geometries`` carries features that are already in memory
(the QGIS plugin's layers and selections) as WKB with their CRS.

A point farther than one stride from every cell is outside the embedded area, a polygon around no
cell centre holds no cell: both are errors rather than silently fewer examples.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..errors import Loc2VecError
from ..search.similar import extent_text, parse_lonlat

ROLE_FIELD = "example"  # a text field of this name: "positive" / "negative" per feature (a saved example set)
_LONLAT = re.compile(r"^\s*[-+]?[\d.]+(e[-+]?\d+)?\s*,\s*[-+]?[\d.]+(e[-+]?\d+)?\s*$", re.IGNORECASE)


@dataclass
class Geometries:
    """Example features in memory: WKB geometries in the CRS given as WKT (or anything OSR reads)."""

    wkb: list
    crs_wkt: str
    name: str = "the layer"


@dataclass
class Examples:
    """The cells (rows of the EmbeddingSet) that a list of example places covers, without repeats."""

    rows: np.ndarray  # (K,) int64, sorted, unique
    sources: list = field(default_factory=list)  # (text, cell rows) per place, for messages and reports

    def __len__(self) -> int:
        return len(self.rows)

    def describe(self, most: int = 4) -> str:
        parts = [f"{text} ({len(rows)} cell{'s' if len(rows) != 1 else ''})" for text, rows in self.sources]
        more = f"; and {len(parts) - most + 1} more" if len(parts) > most else ""
        return "; ".join(parts[:most - 1] if more else parts) + more


def read_examples(es, layout, places, role: str = "positive") -> Examples:
    """Cells of ``es`` for ``places``: each a 'LON,LAT' string, a (lon, lat) pair, a path or ``Geometries``."""
    sources = []
    for place in places:
        if isinstance(place, Geometries):
            sources += _geometry_cells(es, layout, _from_wkb(place, es.crs_wkt), place.name, role)
        elif isinstance(place, (tuple, list)) and len(place) == 2 and not isinstance(place[0], str):
            sources.append(_lonlat_cells(es, layout, (float(place[0]), float(place[1])), role))
        elif isinstance(place, str) and _LONLAT.match(place):
            sources.append(_lonlat_cells(es, layout, parse_lonlat(place), role))
        else:
            sources += _geometry_cells(es, layout, _read_vector(place, es.crs_wkt, role), str(place), role)
    rows = np.unique(np.concatenate([r for _, r in sources])) if sources else np.empty(0, np.int64)
    return Examples(rows=rows.astype(np.int64), sources=sources)


def check_disjoint(es, positives: Examples, negatives: Examples) -> None:
    """A cell that is both a positive and a negative example is a contradiction: refused with its place."""
    both = np.intersect1d(positives.rows, negatives.rows)
    if not len(both):
        return
    row = int(both[0])
    lon, lat = _lonlat(es, [row])[0]
    where = [text for text, rows in positives.sources + negatives.sources if row in rows]
    more = f" ({len(both) - 1} more cells too)" if len(both) > 1 else ""
    raise Loc2VecError(
        f"cell {int(es.cell[row])} at {lon:.5f},{lat:.5f} is both a positive and a negative example "
        f"(from {' and '.join(where)}){more}",
        "remove it from one side, or give the negative elsewhere (examples in the same cell are the same place)")


# ---- points and polygons -> cells ------------------------------------------------------------
def _lonlat_cells(es, layout, lonlat, role) -> tuple[str, np.ndarray]:
    from ..geo.crs import transformer_from_wgs84

    x, y = transformer_from_wgs84(es.crs_wkt).transform([lonlat[0]], [lonlat[1]])
    text = f"{lonlat[0]:.5f},{lonlat[1]:.5f}"
    return text, _point_cells(es, layout, np.array([[x[0], y[0]]], float), text, role)


def _point_cells(es, layout, xy, text, role) -> np.ndarray:
    rows, _ = layout.nearest(xy)
    bad = np.flatnonzero(rows < 0)
    if len(bad):
        p = xy[bad[0]]
        d = float(np.sqrt(np.min(np.einsum("ij,ij->i", es.xy - p, es.xy - p))))
        (lon, lat), = _lonlat_xy(es, p[None])
        which = text if len(xy) == 1 else f"point {int(bad[0]) + 1} of {text} ({lon:.5f},{lat:.5f})"
        raise Loc2VecError(
            f"{role} example {which} is outside the embedded area of {_name(es)}: the nearest cell is "
            f"{d:,.0f} m away (cells are {layout.stride:g} m apart)",
            f"give places inside the area, which spans {extent_text(es)}")
    return rows


def _polygon_cells(es, layout, geom, text, role) -> np.ndarray:
    """Cells whose centres lie inside ``geom`` (OGR polygon in the layout's CRS), burned by GDAL."""
    from osgeo import gdal, ogr

    x0, x1, y0, y1 = geom.GetEnvelope()
    s = layout.stride
    c0, c1 = max(int(np.floor((x0 - layout.left) / s)), 0), min(int(np.ceil((x1 - layout.left) / s)), layout.cols)
    r0, r1 = max(int(np.floor((layout.top - y1) / s)), 0), min(int(np.ceil((layout.top - y0) / s)), layout.rows)
    rows = np.empty(0, np.int64)
    if c1 > c0 and r1 > r0:
        ds = gdal.GetDriverByName("MEM").Create("", c1 - c0, r1 - r0, 1, gdal.GDT_Byte)
        ds.SetGeoTransform((layout.left + c0 * s, s, 0.0, layout.top - r0 * s, 0.0, -s))
        src = ogr.GetDriverByName("Memory").CreateDataSource("")
        lyr = src.CreateLayer("p", None, ogr.wkbUnknown)
        f = ogr.Feature(lyr.GetLayerDefn())
        f.SetGeometry(geom)
        lyr.CreateFeature(f)
        gdal.RasterizeLayer(ds, [1], lyr, burn_values=[1])  # a pixel is burned when its centre is inside
        rr, cc = np.nonzero(ds.GetRasterBand(1).ReadAsArray())
        f = lyr = None  # before their datasets (GDAL's Python bindings)
        ds = src = None
        idx = layout.lookup[rr + r0, cc + c0]
        rows = np.sort(idx[idx >= 0]).astype(np.int64)
    if not len(rows):
        raise Loc2VecError(
            f"{role} example {text} holds no cell of {_name(es)} (no cell centre lies inside it; cells are "
            f"{s:g} m apart)",
            f"draw the polygon around at least one cell centre, inside the embedded area ({extent_text(es)}), "
            "or give a point")
    return rows


def _geometry_cells(es, layout, geoms, name, role) -> list[tuple[str, np.ndarray]]:
    """(text, rows) per feature: points -> nearest cells, polygons -> the cells inside."""
    from osgeo import ogr

    out, points = [], []
    for i, geom in enumerate(geoms, 1):
        kind = ogr.GT_Flatten(geom.GetGeometryType())
        if kind in (ogr.wkbPoint, ogr.wkbMultiPoint):
            parts = [geom] if kind == ogr.wkbPoint else [geom.GetGeometryRef(k) for k in range(geom.GetGeometryCount())]
            points += [(p.GetX(), p.GetY()) for p in parts]
        elif ogr.GT_IsSurface(kind) or kind in (ogr.wkbMultiPolygon, ogr.wkbMultiSurface):
            text = f"polygon {i} of {name}" if len(geoms) > 1 else f"the polygon of {name}"
            out.append((text, _polygon_cells(es, layout, geom.GetLinearGeometry(), text, role)))
        else:
            raise Loc2VecError(f"{role} example {name} holds a {ogr.GeometryTypeToName(kind)}, not points or "
                               "polygons", "give points (a cell each) or polygons (every cell inside)")
    if points:
        xy = np.asarray(points, float)
        text = f"{len(points)} point{'s' if len(points) > 1 else ''} of {name}"
        out.insert(0, (text, _point_cells(es, layout, xy, name, role)))
    if not out:
        raise Loc2VecError(f"{role} example {name} holds no features", "give a file with points or polygons")
    return out


# ---- reading -----------------------------------------------------------------------------------
def _read_vector(path, crs_wkt: str, role: str) -> list:
    """Every geometry of the vector file ``path`` (``FILE|layername=NAME``: that layer), in ``crs_wkt``."""
    from osgeo import ogr

    text = str(path)
    file, _, layer_name = text.partition("|layername=")
    if not Path(file).exists():
        raise Loc2VecError(f"{role} example {text!r} is neither LON,LAT nor an existing file",
                           "give a place as LON,LAT (e.g. -8.6110,41.1460) or a vector file of points or polygons")
    ogr.UseExceptions()
    try:
        ds = ogr.Open(file)
    except RuntimeError:
        ds = None
    if ds is None or ds.GetLayerCount() == 0:
        raise Loc2VecError(f"{role} example {file} is not a vector file OGR can read",
                           "give a GeoPackage, GeoJSON or Shapefile of points or polygons")
    names = [ds.GetLayerByIndex(i).GetName() for i in range(ds.GetLayerCount())]
    if layer_name:
        if layer_name not in names:
            raise Loc2VecError(f"{file} has no layer {layer_name!r} (it has {', '.join(names)})",
                               f"name one of them: {file}|layername={names[0]}")
        lyr = ds.GetLayerByName(layer_name)
    elif len(names) > 1:
        raise Loc2VecError(f"{role} example {file} holds {len(names)} layers ({', '.join(names)})",
                           f"name the one to use: '{file}|layername={names[0]}'")
    else:
        lyr = ds.GetLayerByIndex(0)
    srs = lyr.GetSpatialRef()
    if srs is None:
        raise Loc2VecError(f"{role} example {text} has no coordinate reference system",
                           "give the file a CRS (e.g. ogr2ogr -a_srs EPSG:4326 fixed.gpkg FILE)")
    feats = [f for f in lyr if f.GetGeometryRef() is not None]
    defn = lyr.GetLayerDefn()
    at = defn.GetFieldIndex(ROLE_FIELD)
    if at >= 0 and defn.GetFieldDefn(at).GetType() == ogr.OFTString:  # a saved example set: this role's places
        roles = [f.GetFieldAsString(at) for f in feats]
        feats = [f for f, r in zip(feats, roles) if r == role]
        if not feats:
            raise Loc2VecError(f"{text} holds no {role} examples (its field {ROLE_FIELD!r} has "
                               f"{', '.join(sorted(set(roles))) or 'no values'})",
                               f"give a file with features of {ROLE_FIELD} = '{role}', or leave it out as --{role}")
    geoms = [f.GetGeometryRef().Clone() for f in feats]
    srs = srs.Clone()
    feats = None
    lyr = ds = None  # the layer before its dataset (GDAL's Python bindings)
    return _reprojected(geoms, srs, crs_wkt, text)


def _from_wkb(g: Geometries, crs_wkt: str) -> list:
    from osgeo import ogr, osr

    ogr.UseExceptions()
    srs = osr.SpatialReference()
    try:
        srs.SetFromUserInput(str(g.crs_wkt))
    except RuntimeError:
        raise Loc2VecError(f"{g.name} has no usable coordinate reference system", "give the layer a CRS") from None
    geoms = [ogr.CreateGeometryFromWkb(bytes(w)) for w in g.wkb if w]
    return _reprojected([x for x in geoms if x is not None and not x.IsEmpty()], srs, crs_wkt, g.name)


def _reprojected(geoms, srs, crs_wkt, text) -> list:
    """``geoms`` (OGR, in ``srs``) transformed in place to ``crs_wkt``."""
    from osgeo import osr

    dst = osr.SpatialReference()
    dst.ImportFromWkt(crs_wkt)
    for s in (srs, dst):
        s.SetAxisMappingStrategy(osr.OAMS_TRADITIONAL_GIS_ORDER)
    if geoms and not srs.IsSame(dst):
        ct = osr.CoordinateTransformation(srs, dst)
        for g in geoms:
            try:
                g.Transform(ct)
            except RuntimeError as e:
                raise Loc2VecError(f"cannot reproject {text} to the embeddings' CRS ({e})",
                                   "give places in or near the embedded area") from None
    return geoms


# ---- small helpers ---------------------------------------------------------------------------
def _lonlat_xy(es, xy) -> np.ndarray:
    from ..geo.crs import transformer_to_wgs84

    lon, lat = transformer_to_wgs84(es.crs_wkt).transform(xy[:, 0], xy[:, 1])
    return np.stack([np.asarray(lon, float), np.asarray(lat, float)], axis=1).reshape(-1, 2)


def _lonlat(es, rows) -> np.ndarray:
    return _lonlat_xy(es, es.xy[np.asarray(rows, np.int64)])


def _name(es) -> str:
    return es.path.name if getattr(es, "path", None) is not None else "the embeddings"
