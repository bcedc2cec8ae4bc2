"""What a .qgz project reads from its data files, checked before the project is written: GeoPackage layers
and fields, extents, score ranges and cluster sizes (plain sqlite3, no GDAL), rasters (GDAL)."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from ..errors import Loc2VecError


def check_gpkg(path, layer: str, fields: list[str]) -> Path:
    """The GeoPackage exists and has ``layer`` with ``fields``: else one clear error, before writing."""
    path = Path(path)
    if not path.is_file():
        raise Loc2VecError(f"GeoPackage {path} not found", "write the layer's data before the project")
    try:
        con = connect_ro(path)
        try:
            columns = {row[1] for row in con.execute(f"PRAGMA table_info({_quote(layer)})")}
        finally:
            con.close()
    except sqlite3.DatabaseError as e:
        raise Loc2VecError(f"{path} is not a GeoPackage ({e})", "give a .gpkg written by loc2vec") from None
    if not columns:
        raise Loc2VecError(f"{path.name} has no layer {layer!r}", "give the layer name inside the GeoPackage")
    missing = [f for f in fields if f not in columns]
    if missing:
        raise Loc2VecError(f"layer {layer!r} of {path.name} has no field {missing[0]!r}",
                           f"use one of: {', '.join(sorted(columns))}")
    return path


def connect_ro(path: Path) -> sqlite3.Connection:
    """Read-only, so that checking a GeoPackage never creates or changes one (URI-quoted: '#', '?' in names)."""
    return sqlite3.connect(f"{Path(path).resolve().as_uri()}?mode=ro", uri=True)


def gpkg_extent(path: Path, layer: str):
    """(xmin, ymin, xmax, ymax) of a GeoPackage layer: gpkg_contents, else its R-tree; None if empty."""
    con = connect_ro(path)
    try:
        row = con.execute("SELECT min_x, min_y, max_x, max_y FROM gpkg_contents WHERE table_name = ?",
                          (layer,)).fetchone()
        if row is None or None in row:
            geom = con.execute("SELECT column_name FROM gpkg_geometry_columns WHERE table_name = ?",
                               (layer,)).fetchone()
            row = con.execute(f"SELECT min(minx), min(miny), max(maxx), max(maxy) FROM "
                              f"{_quote(f'rtree_{layer}_{geom[0]}')}").fetchone() if geom else None
    except sqlite3.DatabaseError:
        row = None
    finally:
        con.close()
    return None if row is None or None in row else tuple(float(v) for v in row)


def field_range(path: Path, layer: str, field: str, vmin, vmax) -> tuple[float, float]:
    """The score range: given, or the field's min/max; never empty (one hit gets a tiny interval)."""
    if vmin is None or vmax is None:
        con = connect_ro(path)
        try:
            lo, hi = con.execute(f"SELECT min({_quote(field)}), max({_quote(field)}) FROM {_quote(layer)}").fetchone()
        finally:
            con.close()
        if lo is None:
            raise Loc2VecError(f"layer {layer!r} of {path.name} has no {field} values",
                               f"give vmin and vmax, or write a layer with {field} values")
        vmin = lo if vmin is None else vmin
        vmax = hi if vmax is None else vmax
    vmin, vmax = float(vmin), float(vmax)
    if vmax < vmin:
        raise Loc2VecError(f"score range {vmin} .. {vmax} is reversed", "give vmin <= vmax")
    return (vmin, vmax) if vmax > vmin else (vmin - 1e-6, vmax + 1e-6)


def check_raster(path) -> tuple[Path, int, tuple]:
    """(path, band count, extent) of a raster GDAL can open."""
    from osgeo import gdal

    path = Path(path)
    if not path.is_file():
        raise Loc2VecError(f"raster {path} not found", "write the area raster before the project")
    gdal.UseExceptions()
    try:
        ds = gdal.Open(str(path))
    except RuntimeError as e:
        raise Loc2VecError(f"{path} is not a raster GDAL can read ({e})", "give an area GeoTIFF") from None
    x0, dx, _, y0, _, dy = ds.GetGeoTransform()
    x1, y1 = x0 + dx * ds.RasterXSize, y0 + dy * ds.RasterYSize
    extent = (min(x0, x1), min(y0, y1), max(x0, x1), max(y0, y1))
    return path, ds.RasterCount, extent


def union(extents):
    boxes = [e for e in extents if e is not None]
    if not boxes:
        return None
    return (min(b[0] for b in boxes), min(b[1] for b in boxes), max(b[2] for b in boxes), max(b[3] for b in boxes))


def relative(path, home: Path) -> str:
    """``./sub/file`` when the data lie in the project folder or below (QGIS needs the ./), else absolute."""
    path = Path(path).resolve()
    try:
        return "./" + path.relative_to(home).as_posix()
    except ValueError:
        return path.as_posix()


def value_counts(path: Path, layer: str, field: str) -> dict[int, int]:
    """{value: rows} of an integer ``field`` (NULLs left out): the cells of each cluster."""
    con = connect_ro(path)
    try:
        rows = con.execute(f"SELECT {_quote(field)}, count(*) FROM {_quote(layer)} WHERE {_quote(field)} IS NOT NULL "
                           f"GROUP BY {_quote(field)}").fetchall()
    finally:
        con.close()
    return {int(v): int(n) for v, n in rows}


def row_count(path: Path, layer: str) -> int:
    con = connect_ro(path)
    try:
        return int(con.execute(f"SELECT count(*) FROM {_quote(layer)}").fetchone()[0])
    finally:
        con.close()


def columns(path: Path, layer: str) -> set[str]:
    con = connect_ro(path)
    try:
        return {row[1] for row in con.execute(f"PRAGMA table_info({_quote(layer)})")}
    finally:
        con.close()


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'
