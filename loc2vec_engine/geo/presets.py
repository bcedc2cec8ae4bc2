"""Named places (presets) and clip polygons read from any OGR polygon file.

A preset bundles what a user would otherwise type: the area (bbox and, for Kyiv, the city
boundary), the metric CRS and where to get the OSM data (a download URL and/or a bundled file).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from ..errors import Loc2VecError

_PACKAGE = Path(__file__).resolve().parents[1]  # loc2vec_engine/
_REPO_DATA = _PACKAGE.parent / "resources" / "data"  # the stand-in extracts shipped with the repo


@dataclass(frozen=True)
class Preset:
    name: str
    title: str
    crs: str | None  # "EPSG:32636", or None = the local UTM zone ("auto")
    bbox: tuple[float, float, float, float]  # lon_min, lat_min, lon_max, lat_max
    boundary_path: Path | None = None  # polygon file (lon/lat) clipping the area, if any
    download_url: str | None = None  # an OSM extract containing the bbox, for fetch-osm
    local_pbf: Path | None = None  # a bundled extract, when the repo ships one


_PRESETS: dict[str, Preset] = {
    p.name: p
    for p in (
        # bbox = bounds of the boundary polygon (OSM relation 421866), rounded outwards to 1e-5 degrees.
        Preset("kyiv", "Kyiv (city boundary, OSM relation 421866)", "EPSG:32636",
               (30.23614, 50.21324, 30.82636, 50.59082),
               boundary_path=_PACKAGE / "presets" / "kyiv_boundary.geojson",
               download_url="https://download.geofabrik.de/europe/ukraine-latest.osm.pbf"),
        Preset("porto", "Porto city centre (bundled stand-in, 2020-07-20)", None,
               (-8.62124, 41.12473, -8.59368, 41.15608),
               download_url="https://download.geofabrik.de/europe/portugal-latest.osm.pbf",
               local_pbf=_REPO_DATA / "porto_center_2020-07-20.osm.pbf"),
        Preset("andorra", "Andorra (bundled stand-in, 2020-05-01)", None,
               (1.41237, 42.42760, 1.78748, 42.65717),
               download_url="https://download.geofabrik.de/europe/andorra-latest.osm.pbf",
               local_pbf=_REPO_DATA / "andorra_2020-05-01.osm.pbf"),
    )
}


def list_presets() -> list[str]:
    return sorted(_PRESETS)


def get_preset(name: str | Preset) -> Preset:
    if isinstance(name, Preset):
        return name
    key = str(name).strip().lower()
    if key not in _PRESETS:
        raise Loc2VecError(f"unknown preset {name!r}", f"use one of: {', '.join(list_presets())}")
    return _PRESETS[key]


def load_clip_polygon(path_or_preset):
    """A clip polygon in lon/lat (shapely) from a polygon file (GeoJSON, GeoPackage, Shapefile, ...)
    or a preset name; a preset without a boundary gives its bbox as a rectangle."""
    import shapely

    if isinstance(path_or_preset, Preset) or (isinstance(path_or_preset, str) and path_or_preset.lower() in _PRESETS
                                              and not os.path.exists(path_or_preset)):
        preset = get_preset(path_or_preset)
        if preset.boundary_path is None:
            return shapely.box(*preset.bbox)
        path_or_preset = preset.boundary_path
    return _read_polygons(Path(path_or_preset))


def _read_polygons(path: Path):
    import shapely

    if not path.exists():
        raise Loc2VecError(f"clip file {path} not found",
                           "give a polygon file (GeoJSON, GeoPackage, Shapefile) or a preset name")
    try:
        from osgeo import ogr
    except ImportError:
        raise Loc2VecError("reading clip polygons needs GDAL's Python bindings (osgeo)",
                           "run inside QGIS, or install GDAL (apt install python3-gdal / conda install gdal)") from None
    ogr.UseExceptions()
    try:
        ds = ogr.Open(str(path))
    except RuntimeError as e:
        raise Loc2VecError(f"cannot read clip file {path}: {e}",
                           "give a polygon file (GeoJSON, GeoPackage, Shapefile)") from None
    if ds is None:
        raise Loc2VecError(f"cannot read clip file {path}", "give a polygon file (GeoJSON, GeoPackage, Shapefile)")
    parts = []
    for i in range(ds.GetLayerCount()):
        layer = ds.GetLayer(i)
        srs = layer.GetSpatialRef()
        geoms = []
        for feature in layer:
            g = feature.GetGeometryRef()
            if g is None:
                continue
            geom = shapely.from_wkb(bytes(g.ExportToIsoWkb()))
            geoms.extend(_polygons_in(geom))
        if geoms:
            parts.append(_to_lonlat(shapely.union_all(shapely.make_valid(geoms)), srs, path))
    if not parts:
        raise Loc2VecError(f"clip file {path} has no polygons", "give a polygon layer such as the city boundary")
    out = shapely.union_all(parts)
    if out.is_empty or out.area == 0:
        raise Loc2VecError(f"clip file {path} has no polygons", "give a polygon layer such as the city boundary")
    return out


def _polygons_in(geom):
    """Polygon parts of a geometry; points and lines (e.g. a place node next to a boundary) are skipped."""
    if geom.is_empty:
        return []
    if geom.geom_type in ("Polygon", "MultiPolygon"):
        return [geom]
    if geom.geom_type == "GeometryCollection":
        return [p for g in geom.geoms for p in _polygons_in(g)]
    return []


def _to_lonlat(geom, srs, path: Path):
    """Reproject to EPSG:4326. OGR hands out coordinates in GIS order (x = east), hence always_xy."""
    import shapely

    if srs is None:
        minx, miny, maxx, maxy = geom.bounds
        if -180 <= minx and maxx <= 180 and -90 <= miny and maxy <= 90:
            return geom  # no CRS given; the numbers look like lon/lat, which is what most such files hold
        raise Loc2VecError(f"clip file {path} has no CRS and its coordinates are not lon/lat",
                           "save it with its CRS (e.g. the .prj of a Shapefile), or as GeoJSON in lon/lat")
    from .crs import project_geometries, transformer_to_wgs84

    if srs.IsGeographic() and srs.GetAuthorityCode(None) == "4326":
        return geom
    geom = project_geometries(geom, transformer_to_wgs84(srs.ExportToWkt()))
    return shapely.make_valid(geom)
