"""Any OGR vector source (GeoPackage, GeoJSON, Shapefile, ``PG:`` connection string) as channel features.

Two ways to say which objects feed which channel:
- by tags (default): attribute columns named like OSM keys (``highway``, ``building``, ...) are
  matched against the channel spec, exactly as for an OSM file. GDAL's OSM driver output, QuickOSM
  and osm2pgsql layers look like this; an ``other_tags`` hstore column is read too.
- by a layer map (``--layer-map map.toml``) for data without OSM tags::

      [[layer]]
      layer = "roads"                      # OGR layer name
      where = "class IN ('primary')"       # optional OGR attribute filter
      channel = "roads_major"              # a channel of the spec
      draw = "line"                        # line | fill | outline | point
      width_m = 16                         # (radius_m for points; value = 1..255 optional)
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass
from pathlib import Path

from ..channels.spec import ChannelSpec, Rule, _parse_rule
from ..errors import Loc2VecError
from .features import Features

_HSTORE = re.compile(r'"((?:[^"\\]|\\.)*)"=>"((?:[^"\\]|\\.)*)"')
_LAYER_KEYS = {"layer", "where", "channel", "draw", "width_m", "radius_m", "value"}


@dataclass(frozen=True)
class LayerRule:
    layer: str
    where: str | None
    band: int
    rule: Rule


def load_layer_map(path, spec: ChannelSpec) -> list[LayerRule]:
    """Parse and check a layer map against the spec (unknown channels and fields are errors)."""
    path = Path(path)
    if not path.is_file():
        raise Loc2VecError(f"layer map {path} not found", "give a TOML file with [[layer]] tables")
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8")).get("layer")
    except tomllib.TOMLDecodeError as e:
        raise Loc2VecError(f"layer map {path} is not valid TOML: {e}", "fix the line named above") from None
    if not isinstance(raw, list) or not raw:
        raise Loc2VecError(f"layer map {path} has no [[layer]] tables", "see `loc2vec rasterize --help`")
    out = []
    for i, item in enumerate(raw, 1):
        where = f"{path}: layer {i}"
        unknown = set(item) - _LAYER_KEYS
        if unknown:
            raise Loc2VecError(f"{where}: unknown field(s) {sorted(unknown)}", f"allowed: {', '.join(sorted(_LAYER_KEYS))}")
        if "layer" not in item or "channel" not in item:
            raise Loc2VecError(f"{where}: needs 'layer' and 'channel'", 'e.g. layer = "roads", channel = "roads_major"')
        band = spec.index(item["channel"])
        rule = _parse_rule({"match": {"_layer": "*"}, **{k: v for k, v in item.items()
                                                          if k in ("draw", "width_m", "radius_m", "value")}}, where)
        out.append(LayerRule(item["layer"], item.get("where"), band, rule))
    return out


def open_ogr(source, problem: str = "cannot open {source} as vector data",
             fix: str = "give an .osm.pbf/.osm file or an OGR source (GeoPackage, GeoJSON, Shapefile, PG:...)"):
    """An OGR data source, or one ``Loc2VecError`` (``problem`` with ``{source}``, plus GDAL's reason)."""
    from osgeo import ogr

    ogr.UseExceptions()
    try:
        ds = ogr.Open(str(source))
    except RuntimeError as e:
        ds, err = None, str(e)
    else:
        err = "unknown format"
    if ds is None:
        raise Loc2VecError(f"{problem.format(source=source)} ({err})", fix)
    return ds


def read_ogr(source, spec: ChannelSpec, layer_map=None) -> Features:
    """Features of an OGR source, matched by tags or by a layer map, in lon/lat."""
    ds = open_ogr(source)
    wkbs, bands, rules = [], [], []
    if layer_map:
        for lr in load_layer_map(layer_map, spec):
            layer = ds.GetLayerByName(lr.layer)
            if layer is None:
                names = [ds.GetLayer(i).GetName() for i in range(ds.GetLayerCount())]
                raise Loc2VecError(f"layer {lr.layer!r} not found in {source}", f"layers there: {', '.join(names)}")
            try:
                layer.SetAttributeFilter(lr.where)
            except RuntimeError as e:
                raise Loc2VecError(f"bad filter {lr.where!r} on layer {lr.layer!r}: {e}",
                                   "write an OGR SQL WHERE clause, e.g. class = 'primary'") from None
            for wkb, _ in _iter_lonlat(layer):
                wkbs.append(wkb), bands.append(lr.band), rules.append(lr.rule)
    else:
        for i in range(ds.GetLayerCount()):
            layer = ds.GetLayer(i)
            for wkb, (tags, kind) in _iter_lonlat(layer, with_tags=True):
                for band, rule in spec.matches(tags, kind):
                    wkbs.append(wkb), bands.append(band), rules.append(rule)
    return Features.from_lists(wkbs, bands, rules)


def _iter_lonlat(layer, with_tags=False):
    """Yield (WKB in lon/lat, (tags, geometry kind)) for each feature with a geometry."""
    from osgeo import ogr, osr

    srs = layer.GetSpatialRef()
    transform = None
    if srs is not None:
        wgs84 = osr.SpatialReference()
        wgs84.ImportFromEPSG(4326)
        wgs84.SetAxisMappingStrategy(osr.OAMS_TRADITIONAL_GIS_ORDER)
        srs = srs.Clone()
        srs.SetAxisMappingStrategy(osr.OAMS_TRADITIONAL_GIS_ORDER)
        if not srs.IsSame(wgs84):
            transform = osr.CoordinateTransformation(srs, wgs84)
    defn = layer.GetLayerDefn()
    fields = [defn.GetFieldDefn(i).GetName() for i in range(defn.GetFieldCount())]
    layer.ResetReading()
    for feat in layer:
        geom = feat.GetGeometryRef()
        if geom is None or geom.IsEmpty():
            continue
        geom = geom.Clone()
        if transform is not None:
            geom.Transform(transform)
        kind = _kind(ogr.GT_Flatten(geom.GetGeometryType()))
        if kind is None:
            continue
        tags = _tags(feat, fields) if with_tags else None
        yield bytes(geom.ExportToWkb()), (tags, kind)


def _kind(gtype) -> str | None:
    from osgeo import ogr

    if gtype in (ogr.wkbPoint, ogr.wkbMultiPoint):
        return "node"
    if gtype in (ogr.wkbLineString, ogr.wkbMultiLineString):
        return "way"
    if gtype in (ogr.wkbPolygon, ogr.wkbMultiPolygon):
        return "area"
    return None


def _tags(feat, fields) -> dict:
    tags = {}
    for i, name in enumerate(fields):
        value = feat.GetField(i)  # by index: by name, GDAL's bindings search every field each time (O(F²))
        if value is None:
            continue
        if name == "other_tags":
            tags.update((k, v) for k, v in _HSTORE.findall(str(value)))
        else:
            tags[name] = str(value)
    return tags
