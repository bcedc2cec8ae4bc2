"""Venue types from an OSM source: POIs as points in the area's CRS, and each cell's dominant category.

A POI is a node, or the centroid of an area (closed way or multipolygon), whose tags put it in one of
six categories. Read from .osm/.osm.pbf files with pyosmium, or from an OGR source (GeoPackage,
GeoJSON, ...) whose attribute columns are OSM keys (GDAL's OSM driver, QuickOSM, osm2pgsql layers).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import Loc2VecError

NONE = "none"
CATEGORIES = ("food & drink", "shop", "education", "health", "leisure & culture", "transport")
LABELS = CATEGORIES + (NONE,)
RADIUS_M = 150.0

# key -> {value: category}; "*" = any value. Checked in CATEGORIES order of _RULE_ORDER below, so a
# pharmacy that is also tagged shop=chemist counts as health.
_AMENITY = {
    **dict.fromkeys(("restaurant", "cafe", "bar", "pub", "fast_food", "food_court", "ice_cream", "biergarten"),
                    "food & drink"),
    "marketplace": "shop",
    **dict.fromkeys(("school", "university", "college", "kindergarten", "language_school", "music_school",
                     "driving_school", "prep_school"), "education"),
    **dict.fromkeys(("hospital", "clinic", "doctors", "dentist", "pharmacy", "veterinary", "nursing_home"), "health"),
    **dict.fromkeys(("theatre", "cinema", "arts_centre", "library", "community_centre", "nightclub", "casino",
                     "events_venue", "planetarium"), "leisure & culture"),
    **dict.fromkeys(("bus_station", "ferry_terminal", "taxi"), "transport"),
}
_TOURISM = dict.fromkeys(("museum", "gallery", "attraction", "zoo", "theme_park", "aquarium", "viewpoint"),
                         "leisure & culture")
_LEISURE = dict.fromkeys(("park", "garden", "playground", "sports_centre", "fitness_centre", "stadium",
                          "swimming_pool", "pitch", "water_park", "dance", "bowling_alley", "ice_rink",
                          "golf_course"), "leisure & culture")
# One stop, one object: stop positions and platforms are left out, as they double-count a bus stop.
_TRANSPORT = {"highway": {"bus_stop"}, "railway": {"station", "halt", "tram_stop", "subway_entrance"},
              "public_transport": {"station"}, "aerialway": {"station"}}
_NO = ("no", "vacant", "disused")
KEYS = ("amenity", "shop", "healthcare", "tourism", "leisure", "highway", "railway", "public_transport", "aerialway")


def categorize(tags: dict) -> str | None:
    """The venue category of an object with OSM ``tags``, or None when it is not a venue."""
    amenity = _AMENITY.get(tags.get("amenity", ""))
    if tags.get("healthcare", "no") not in _NO or amenity == "health":
        return "health"
    if amenity in ("education", "food & drink"):
        return amenity
    if tags.get("shop", "no") not in _NO or amenity == "shop":
        return "shop"
    culture = amenity if amenity == "leisure & culture" else None
    culture = culture or _TOURISM.get(tags.get("tourism", "")) or _LEISURE.get(tags.get("leisure", ""))
    if culture:
        return culture
    if amenity == "transport" or any(tags.get(k) in v for k, v in _TRANSPORT.items()):
        return "transport"
    return None


@dataclass
class Venues:
    """POIs in the area's CRS: ``xy`` (N, 2) and ``category`` (N,) strings of CATEGORIES."""

    xy: np.ndarray
    category: np.ndarray
    source: str
    read: int  # venues read from the source before keeping those inside the area

    def __len__(self) -> int:
        return len(self.category)

    def counts(self) -> dict[str, int]:
        return {c: int((self.category == c).sum()) for c in CATEGORIES}


def read_venues(source, crs_wkt: str, bounds=None) -> Venues:
    """Venues of ``source`` (OSM file or OGR source), projected to ``crs_wkt``, kept inside ``bounds``."""
    from ..sources.osm import is_osm_file

    lonlat, cats = _read_osm(source) if is_osm_file(source) else _read_ogr(source)
    xy = np.zeros((0, 2))
    if len(cats):
        from ..geo.crs import transformer_from_wgs84

        x, y = transformer_from_wgs84(crs_wkt).transform(lonlat[:, 0], lonlat[:, 1])
        xy = np.column_stack([x, y])
    keep = np.isfinite(xy).all(axis=1)
    if bounds is not None:
        w, s, e, n = bounds
        keep &= (xy[:, 0] >= w) & (xy[:, 0] <= e) & (xy[:, 1] >= s) & (xy[:, 1] <= n)
    return Venues(xy[keep], np.asarray(cats, dtype=object)[keep], str(source), len(cats))


def dominant_category(cell_xy, venues: Venues, radius_m: float = RADIUS_M) -> np.ndarray:
    """Per cell, the category with most venues within ``radius_m`` of its centre ("none" without any).

    Ties go to the tied category with the venue nearest the centre.
    """
    from scipy.spatial import cKDTree

    cell_xy = np.asarray(cell_xy, float)
    out = np.full(len(cell_xy), NONE, dtype=object)
    if len(venues) == 0:
        return out
    tree = cKDTree(venues.xy)
    for i, hits in enumerate(tree.query_ball_point(cell_xy, r=radius_m)):
        if not hits:
            continue
        cats = venues.category[hits]
        dist = np.hypot(*(venues.xy[hits] - cell_xy[i]).T)
        names, counts = np.unique(cats, return_counts=True)
        tied = set(names[counts == counts.max()])
        order = np.argsort(dist, kind="stable")
        out[i] = next(cats[j] for j in order if cats[j] in tied)
    return out


# ---- readers ---------------------------------------------------------------------------------------

def apply_osm_file(handler, path: Path):
    """Run a pyosmium ``handler`` over the OSM file ``path`` (with node locations); clear errors, not tracebacks."""
    if not path.is_file():
        raise Loc2VecError(f"OSM source {path} not found", "give the .osm.pbf the area was rasterized from")
    try:
        handler.apply_file(str(path), locations=True, idx="flex_mem")
    except RuntimeError as e:
        raise Loc2VecError(f"cannot read OSM source {path} ({e})",
                           "the file is corrupt or truncated: download it again (loc2vec fetch-osm)") from None
    return handler


def _read_osm(path) -> tuple[np.ndarray, list[str]]:
    """(lon/lat (N, 2), categories) of the venue nodes and areas of an OSM file."""
    path = Path(path)
    handler = apply_osm_file(_handler(), path)
    if handler.seen == 0:
        raise Loc2VecError(f"OSM source {path} contains no OpenStreetMap objects",
                           "give the .osm.pbf the area was rasterized from")
    return np.asarray(handler.points, float).reshape(-1, 2), handler.cats


def _handler():
    import osmium
    import shapely

    class Handler(osmium.SimpleHandler):
        def __init__(self):
            super().__init__()
            self.points, self.cats, self.seen = [], [], 0
            self.factory = osmium.geom.WKBFactory()

        def _category(self, tags):
            if not any(k in tags for k in KEYS):  # most objects: no venue key, no dict built
                return None
            return categorize({t.k: t.v for t in tags})

        def node(self, n):
            self.seen += 1
            cat = self._category(n.tags) if len(n.tags) else None
            if cat and n.location.valid():
                self.points.append((n.location.lon, n.location.lat))
                self.cats.append(cat)

        def way(self, w):
            self.seen += 1  # closed ways come back as areas below

        def area(self, a):
            cat = self._category(a.tags)
            if cat is None:
                return
            try:
                geom = shapely.from_wkb(self.factory.create_multipolygon(a))
            except (RuntimeError, osmium.InvalidLocationError, shapely.errors.ShapelyError):
                return  # a broken ring: no centre to place
            c = geom.centroid
            if not c.is_empty:
                self.points.append((c.x, c.y))
                self.cats.append(cat)

    return Handler()


def _read_ogr(source) -> tuple[np.ndarray, list[str]]:
    """(lon/lat (N, 2), categories) of the point and polygon features of an OGR source with OSM-key columns."""
    import shapely

    from ..sources.ogr import _iter_lonlat, open_ogr

    ds = open_ogr(source, "cannot read OSM source {source}",
                  "give an .osm.pbf/.osm file, or an OGR source (GeoPackage, ...) with OSM tag columns")
    points, cats = [], []
    for i in range(ds.GetLayerCount()):
        for wkb, (tags, kind) in _iter_lonlat(ds.GetLayer(i), with_tags=True):
            cat = categorize(tags) if kind in ("node", "area") else None
            if cat:
                c = shapely.from_wkb(wkb).centroid
                points.append((c.x, c.y))
                cats.append(cat)
    return np.asarray(points, float).reshape(-1, 2), cats
