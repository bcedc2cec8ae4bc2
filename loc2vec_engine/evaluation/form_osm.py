"""Urban form from an OSM source: building footprints (area in m², centroid) and street intersections.

- buildings: every area (closed way or multipolygon) tagged ``building`` (not ``building=no``); its
  footprint area is measured in the area raster's CRS (metres), its centroid placed there too.
- street intersections: nodes where at least three street segments meet (degree >= 3; a way counts 1
  at its end nodes and 2 at an inner node), on ways whose ``highway`` is one of ``STREETS``: the road
  classes of the channel spec without ``service`` (driveways and parking aisles would count every
  house entrance) and without footways, paths and tracks. A node where one street is merely split into
  two ways has degree 2 and is no intersection; a dead end has degree 1.

Read from .osm/.osm.pbf files with pyosmium (node ids), or from an OGR source (GDAL's OSM driver,
QuickOSM, ...) with OSM key columns, where nodes are matched by their coordinates (1e-7 degrees).
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import Loc2VecError

STREETS = frozenset({"motorway", "trunk", "primary", "secondary", "tertiary", "motorway_link", "trunk_link",
                     "primary_link", "secondary_link", "tertiary_link", "unclassified", "residential",
                     "living_street", "pedestrian", "road"})
MIN_DEGREE = 3
_NOT_A_BUILDING = ("no",)


@dataclass
class UrbanForm:
    """Buildings and street intersections in the area's CRS (metres)."""

    building_xy: np.ndarray  # (B, 2) footprint centroids
    building_area_m2: np.ndarray  # (B,)
    intersection_xy: np.ndarray  # (I, 2)
    source: str

    def describe(self) -> dict:
        return {"buildings": int(len(self.building_area_m2)), "intersections": int(len(self.intersection_xy)),
                "street_classes": sorted(STREETS), "min_degree": MIN_DEGREE}


def read_urban_form(source, crs_wkt: str, bounds=None) -> UrbanForm:
    """Buildings and intersections of ``source`` (OSM file or OGR source) in ``crs_wkt``, inside ``bounds``."""
    import shapely

    from ..geo.crs import transformer_from_wgs84
    from ..sources.osm import is_osm_file

    wkbs, nodes = _read_osm(source) if is_osm_file(source) else _read_ogr(source)
    to_xy = transformer_from_wgs84(crs_wkt)

    def project(coords):
        x, y = to_xy.transform(coords[:, 0], coords[:, 1])
        return np.column_stack([x, y])

    b_xy, b_area = np.zeros((0, 2)), np.zeros(0)
    if wkbs:
        geoms = shapely.transform(shapely.from_wkb(np.asarray(wkbs, dtype=object)), project)
        geoms = shapely.make_valid(geoms)
        b_area = shapely.area(geoms)
        c = shapely.centroid(geoms)
        b_xy = np.column_stack([shapely.get_x(c), shapely.get_y(c)])
        ok = np.isfinite(b_xy).all(axis=1) & (b_area > 0)
        b_xy, b_area = b_xy[ok], b_area[ok]
    i_xy = project(np.asarray(nodes, float).reshape(-1, 2)) if len(nodes) else np.zeros((0, 2))
    i_xy = i_xy[np.isfinite(i_xy).all(axis=1)]
    if bounds is not None:
        b_keep, i_keep = _inside(b_xy, bounds), _inside(i_xy, bounds)
        b_xy, b_area, i_xy = b_xy[b_keep], b_area[b_keep], i_xy[i_keep]
    return UrbanForm(b_xy, np.asarray(b_area, float), i_xy, str(source))


def _inside(xy, bounds) -> np.ndarray:
    w, s, e, n = bounds
    return (xy[:, 0] >= w) & (xy[:, 0] <= e) & (xy[:, 1] >= s) & (xy[:, 1] <= n)


def is_street(tags) -> bool:
    return tags.get("highway") in STREETS


def is_building(tags) -> bool:
    return "building" in tags and tags.get("building") not in _NOT_A_BUILDING


def add_degrees(degree: dict, keys) -> None:
    """Add one way's contribution to the node degrees: 1 at its ends, 2 inside (a closed way: 2 everywhere)."""
    keys = list(keys)
    last = len(keys) - 1
    for i, k in enumerate(keys):
        degree[k] += 1 if i in (0, last) else 2


def intersections(degree: dict, location: dict, min_degree: int = MIN_DEGREE) -> list:
    return [location[k] for k, d in degree.items() if d >= min_degree and k in location]


# ---- readers ---------------------------------------------------------------------------------------

def _read_osm(path) -> tuple[list[bytes], list[tuple[float, float]]]:
    """(building WKBs in lon/lat, intersection lon/lat) of an OSM file."""
    from .venues import apply_osm_file

    handler = apply_osm_file(_handler(), Path(path))
    return handler.wkbs, intersections(handler.degree, handler.location)


def _handler():
    import osmium

    class Handler(osmium.SimpleHandler):
        def __init__(self):
            super().__init__()
            self.wkbs, self.degree, self.location = [], defaultdict(int), {}
            self.factory = osmium.geom.WKBFactory()

        def way(self, w):
            if "highway" not in w.tags or w.tags.get("highway") not in STREETS or len(w.nodes) < 2:
                return
            refs = []
            for n in w.nodes:
                refs.append(n.ref)
                if n.ref not in self.location and n.location.valid():
                    self.location[n.ref] = (n.location.lon, n.location.lat)
            add_degrees(self.degree, refs)

        def area(self, a):
            if "building" not in a.tags or a.tags.get("building") in _NOT_A_BUILDING:
                return
            try:
                self.wkbs.append(self.factory.create_multipolygon(a))  # hex WKB
            except (RuntimeError, osmium.InvalidLocationError):
                return  # a broken ring: no footprint to measure

    return Handler()


def _read_ogr(source) -> tuple[list[bytes], list[tuple[float, float]]]:
    """(building WKBs in lon/lat, intersection lon/lat) of an OGR source with OSM-key columns."""
    import shapely

    from ..sources.ogr import _iter_lonlat, open_ogr

    ds = open_ogr(source, "cannot read OSM source {source}",
                  "give an .osm.pbf/.osm file, or an OGR source (GeoPackage, ...) with OSM tag columns")
    wkbs, degree, location = [], defaultdict(int), {}
    for i in range(ds.GetLayerCount()):
        for wkb, (tags, kind) in _iter_lonlat(ds.GetLayer(i), with_tags=True):
            if kind == "area" and is_building(tags):
                wkbs.append(wkb)
            elif kind == "way" and is_street(tags):
                geom = shapely.from_wkb(wkb)
                for part in getattr(geom, "geoms", [geom]):
                    coords = np.asarray(part.coords)[:, :2]
                    keys = [(round(x * 1e7), round(y * 1e7)) for x, y in coords]
                    for k, (x, y) in zip(keys, coords):
                        location.setdefault(k, (float(x), float(y)))
                    if len(keys) >= 2:
                        add_degrees(degree, keys)
    return wkbs, intersections(degree, location)
