"""A set of example places as GeoJSON: the map tool's "Save examples…" / "Load examples…".

A FeatureCollection of WGS84 points (longitude, latitude; the ``crs`` member names CRS84), each with
the property ``example``: ``"positive"`` (a place like the ones to find) or ``"negative"`` (unlike
them); the collection carries the ODbL attribution and the loc2vec version as foreign members.

Any OGR reader opens it too, so ``loc2vec score EMB.gpkg --positive ex.geojson --negative ex.geojson``
scores from the same examples: a layer with a text field ``example`` gives ``--positive`` its
positive features and ``--negative`` its negative ones (``examples.read_examples``).
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import Loc2VecError

ROLES = ("positive", "negative")
CRS84 = "urn:ogc:def:crs:OGC:1.3:CRS84"
_WGS84_NAMES = {CRS84.lower(), "epsg:4326", "urn:ogc:def:crs:epsg::4326", "urn:ogc:def:crs:epsg:6.6:4326",
                "http://www.opengis.net/def/crs/ogc/1.3/crs84", "http://www.opengis.net/def/crs/epsg/0/4326"}
_FIX = ("give a GeoJSON FeatureCollection of points in WGS84 (longitude, latitude), each with the property "
        "\"example\": \"positive\" or \"negative\" (what 'Save examples…' writes)")


@dataclass
class ExampleSet:
    """Example places in WGS84: lists of (lon, lat)."""

    positives: list = field(default_factory=list)
    negatives: list = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.positives) + len(self.negatives)


def examples_geojson(positives, negatives=(), embeddings: str = "") -> dict:
    """The FeatureCollection (a dict) of the example places ``positives`` and ``negatives`` ((lon, lat) each)."""
    from .. import ATTRIBUTION, __version__

    features = []
    for role, places in zip(ROLES, (positives, negatives)):
        for lon, lat in places:
            lon, lat = _check_lonlat(lon, lat, f"a {role} example")
            features.append({"type": "Feature", "properties": {"example": role},
                             "geometry": {"type": "Point", "coordinates": [round(lon, 7), round(lat, 7)]}})
    collection = {"type": "FeatureCollection", "name": "loc2vec_examples",
                  "crs": {"type": "name", "properties": {"name": CRS84}},
                  "attribution": ATTRIBUTION, "loc2vec_version": __version__}
    if embeddings:
        collection["embeddings"] = str(embeddings)
    collection["features"] = features
    return collection


def write_examples_geojson(path, positives, negatives=(), embeddings: str = "") -> Path:
    """Write the example places to ``path`` (GeoJSON, written whole or not at all); returns the path."""
    from ..atomic import atomic_output

    if not len(positives) + len(negatives):
        raise Loc2VecError("there are no examples to save", "click a place (and Ctrl-click places unlike it) first")
    text = json.dumps(examples_geojson(positives, negatives, embeddings), ensure_ascii=False, indent=1)
    path = Path(path)
    with atomic_output(path, suffix=".part.geojson") as tmp:
        tmp.write_text(text + "\n", encoding="utf-8")
    return path


def read_examples_geojson(path) -> ExampleSet:
    """The example places of a GeoJSON file written by ``write_examples_geojson`` (or by hand in that form).

    Anything else (not JSON, not a FeatureCollection, a feature that is not a point, a missing or unknown
    ``example``, coordinates off the globe, a CRS other than WGS84) is a ``Loc2VecError`` naming the feature.
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise Loc2VecError(f"examples file {path} does not exist",
                           "choose a file saved with 'Save examples…'") from None
    except (OSError, UnicodeDecodeError) as e:
        raise Loc2VecError(f"cannot read the examples file {path} ({e})", _FIX) from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as e:
        raise Loc2VecError(f"{path.name} is not JSON (line {e.lineno}, column {e.colno}: {e.msg})", _FIX) from None
    kind = data.get("type") if isinstance(data, dict) else None
    if kind != "FeatureCollection":
        what = (f"is a GeoJSON {kind}" if isinstance(kind, str) else
                f"holds a JSON {'object' if isinstance(data, dict) else type(data).__name__} that is not GeoJSON")
        raise Loc2VecError(f"{path.name} {what}, not a FeatureCollection of example places", _FIX)
    _check_crs(data.get("crs"), path.name)
    features = data.get("features")
    if not isinstance(features, list) or not features:
        raise Loc2VecError(f"{path.name} holds no features", _FIX)
    out = ExampleSet()
    for i, feature in enumerate(features, 1):
        role, lonlat = _feature(feature, f"feature {i} of {path.name}")
        (out.positives if role == "positive" else out.negatives).append(lonlat)
    return out


def _feature(feature, where: str) -> tuple[str, tuple[float, float]]:
    if not isinstance(feature, dict) or feature.get("type") != "Feature":
        raise Loc2VecError(f"{where} is not a GeoJSON Feature", _FIX)
    props = feature.get("properties") or {}
    role = props.get("example") if isinstance(props, dict) else None
    if role not in ROLES:
        said = "has no property \"example\"" if role is None else f"has \"example\": {json.dumps(role)}"
        raise Loc2VecError(f"{where} {said}", "give each feature \"example\": \"positive\" or \"negative\"")
    geom = feature.get("geometry")
    kind = geom.get("type") if isinstance(geom, dict) else None
    if kind != "Point":
        raise Loc2VecError(f"{where} is {'a ' + str(kind) if kind else 'without a geometry'}, not a point",
                           "examples are points (a place each); for polygons use loc2vec score --positive FILE")
    coords = geom.get("coordinates")
    if not isinstance(coords, list) or len(coords) < 2:
        raise Loc2VecError(f"{where} has coordinates {json.dumps(coords)}, not [longitude, latitude]", _FIX)
    return role, _check_lonlat(coords[0], coords[1], where)


def _check_lonlat(lon, lat, where: str) -> tuple[float, float]:
    ok = all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in (lon, lat))
    if ok:
        lon, lat = float(lon), float(lat)
        ok = math.isfinite(lon) and math.isfinite(lat) and -180 <= lon <= 180 and -90 <= lat <= 90
    if not ok:
        raise Loc2VecError(f"{where} is at {lon!r}, {lat!r}: not a longitude (-180..180) and latitude (-90..90)",
                           "give WGS84 coordinates in degrees, longitude first")
    return lon, lat


def _check_crs(crs, name: str) -> None:
    if crs is None:
        return  # GeoJSON (RFC 7946) is WGS84 longitude, latitude
    named = crs.get("properties", {}).get("name") if isinstance(crs, dict) else None
    if not isinstance(named, str) or named.strip().lower() not in _WGS84_NAMES:
        raise Loc2VecError(f"{name} is in the coordinate reference system {json.dumps(named or crs)}, not WGS84",
                           "save the examples in WGS84 longitude, latitude (EPSG:4326), e.g. "
                           f"ogr2ogr -t_srs EPSG:4326 fixed.geojson {name}")
