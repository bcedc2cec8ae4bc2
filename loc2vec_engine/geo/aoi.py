"""The area of interest: a bbox, a clip polygon, or both, as one polygon in lon/lat."""

from __future__ import annotations

from ..errors import Loc2VecError


def parse_bbox(text: str) -> tuple[float, float, float, float]:
    """'lon_min,lat_min,lon_max,lat_max' -> a checked tuple."""
    try:
        vals = tuple(float(v) for v in str(text).replace(" ", "").split(","))
    except ValueError:
        vals = ()
    if len(vals) != 4:
        raise Loc2VecError(f"bbox {text!r} is not four numbers", "write --bbox lon_min,lat_min,lon_max,lat_max")
    return check_bbox(vals)


def check_bbox(b) -> tuple[float, float, float, float]:
    w, s, e, n = (float(v) for v in b)
    if not (-180 <= w < e <= 180 and -90 <= s < n <= 90):
        raise Loc2VecError(f"bbox {w},{s},{e},{n} is not a lon/lat box with min < max",
                           "write --bbox lon_min,lat_min,lon_max,lat_max in degrees, e.g. 30.45,50.40,30.60,50.48")
    return (w, s, e, n)


def bbox_polygon(b, points_per_edge: int = 16):
    """A lon/lat box with densified edges, so it stays accurate once projected to UTM."""
    import shapely

    return shapely.segmentize(shapely.box(*check_bbox(b)), max((b[2] - b[0]), (b[3] - b[1])) / points_per_edge)


def area_of_interest(bbox=None, clip_lonlat=None, fallback_bbox=None):
    """One lon/lat polygon: bbox ∩ clip, or whichever is given, or ``fallback_bbox``."""
    parts = [p for p in (bbox_polygon(bbox) if bbox else None, clip_lonlat) if p is not None]
    if not parts and fallback_bbox:
        parts = [bbox_polygon(fallback_bbox)]
    if not parts:
        return None
    aoi = parts[0]
    for p in parts[1:]:
        aoi = aoi.intersection(p)
    if aoi.is_empty:
        raise Loc2VecError("the bbox and the clip polygon do not overlap", "give a bbox inside the clip area, or only one")
    return aoi
