"""QGIS vector layers -> one temporary GeoPackage plus a layer-map TOML, for the engine's OGR reader.

Each MAPPING row (layer, filter expression, channel, draw, width) becomes one table holding the
features the expression selects. A layer without a row is matched by the channel spec's OSM rules
through its attribute columns (``highway``, ``building``, ``other_tags``, ...), by the engine's own
reader; what it matches is written one table per (channel, drawing), so one layer map covers all.
Everything is written in EPSG:4326; the engine reprojects it to the raster's metric CRS.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from qgis.core import (
    QgsCoordinateReferenceSystem,
    QgsCoordinateTransform,
    QgsCsException,
    QgsExpression,
    QgsExpressionContext,
    QgsExpressionContextUtils,
    QgsFeature,
    QgsFeatureRequest,
    QgsFields,
    QgsRectangle,
    QgsVectorFileWriter,
    QgsWkbTypes,
)

from loc2vec_engine.channels.spec import DRAW_KINDS
from loc2vec_engine.errors import Loc2VecError
from loc2vec_engine.progress import Cancelled

HEADERS = ["layer", "filter expression", "channel", "draw", "width (m)"]
WGS84 = "EPSG:4326"
GPKG_NAME = "qgis_layers.gpkg"
MAX_WIDTH_M = 1000.0
DRAWABLE = (QgsWkbTypes.PointGeometry, QgsWkbTypes.LineGeometry, QgsWkbTypes.PolygonGeometry)


@dataclass(frozen=True)
class MappingRow:
    """One checked MAPPING row: the features of ``layer`` matching ``expression`` go to ``channel``."""

    number: int  # 1-based, as the user counts rows
    layer: object  # QgsVectorLayer
    expression: str  # '' = every feature
    channel: str
    draw: str
    size_m: float  # line/outline width or point radius; 0 for fill

    def label(self) -> str:
        return f"MAPPING row {self.number} (layer {_describe(self.layer)})"


# ---- the MAPPING matrix -------------------------------------------------------------------------

def mapping_rows(values, layers, spec) -> list[MappingRow]:
    """Parse the MAPPING matrix (a flat list, row by row, or a list of rows) and check every row."""
    rows = _split_rows(values or [])
    out = []
    for number, cells in enumerate(rows, 1):
        if not any(cells):
            continue  # an empty row left in the dialog's table
        name, expression, channel, draw, width = cells
        where = f"MAPPING row {number} ({name or 'no layer'!r} -> {channel or 'no channel'!r})"
        layer = _find_layer(name, layers, where)
        _check_channel(channel, spec, where)
        draw = _check_draw(draw, layer, where)
        size = _check_width(width, draw, where)
        _check_expression(expression, layer, where)
        out.append(MappingRow(number, layer, expression, channel, draw, size))
    return out


def _text(value) -> str:
    if value is None or (hasattr(value, "isNull") and value.isNull()):
        return ""
    return str(value).strip()


def _split_rows(values) -> list[list[str]]:
    if all(isinstance(v, (list, tuple)) for v in values):
        rows = [list(v) for v in values]
    else:
        n = len(HEADERS)
        if len(values) % n:
            raise Loc2VecError(f"MAPPING has {len(values)} values, not whole rows of {n} columns",
                               f"give each row as: {', '.join(HEADERS)} (leave a column empty, not out)")
        rows = [list(values[i:i + n]) for i in range(0, len(values), n)]
    for number, row in enumerate(rows, 1):
        if len(row) != len(HEADERS):
            raise Loc2VecError(f"MAPPING row {number} has {len(row)} columns", f"give {', '.join(HEADERS)}")
    return [[_text(v) for v in row] for row in rows]


def _find_layer(name, layers, where):
    """The layer a row names: by id, by layer name, else by its table in the file (layers loaded from a path
    are named after the file, e.g. 'data' for data.gpkg|layername=roads)."""
    if not layers:
        raise Loc2VecError(f"{where}: no map layers are given", "add the layer to 'Map layers' (LAYERS)")
    if not name:
        raise Loc2VecError(f"{where}: the layer column is empty", "name one of the map layers (LAYERS)")
    for key in (lambda lyr: lyr.id(), lambda lyr: lyr.name(), _table_name, lambda lyr: lyr.source()):
        found = [lyr for lyr in layers if key(lyr) == name]
        if len(found) == 1:
            return found[0]
        if found:
            raise Loc2VecError(f"{where}: {len(found)} map layers are named {name!r}",
                               f"give the layer id instead: {', '.join(lyr.id() for lyr in found)}")
    raise Loc2VecError(f"{where}: layer {name!r} is not one of the map layers",
                       f"use one of: {', '.join(_describe(lyr) for lyr in layers)} (or a layer id)")


def _table_name(layer) -> str:
    """The layer's table inside its file (``layername=`` of an OGR source), or ''."""
    from qgis.core import QgsProviderRegistry

    return QgsProviderRegistry.instance().decodeUri(layer.providerType(), layer.source()).get("layerName") or ""


def _describe(layer) -> str:
    table = _table_name(layer)
    return repr(layer.name()) + (f" (table {table!r})" if table and table != layer.name() else "")


def _check_channel(channel, spec, where):
    if channel not in spec.names:
        raise Loc2VecError(f"{where}: unknown channel {channel!r} in spec {spec.name!r}",
                           f"use one of: {', '.join(spec.names)}")


def _check_draw(draw, layer, where) -> str:
    if layer.geometryType() not in DRAWABLE:
        raise Loc2VecError(f"{where}: layer {_describe(layer)} has no point, line or polygon geometries",
                           "map a layer with geometries")
    draw = draw.lower()
    if draw not in DRAW_KINDS:
        raise Loc2VecError(f"{where}: unknown draw {draw!r}", f"use one of: {', '.join(DRAW_KINDS)}")
    if draw in ("fill", "outline") and layer.geometryType() != QgsWkbTypes.PolygonGeometry:
        kind = QgsWkbTypes.geometryDisplayString(layer.geometryType()).lower()
        raise Loc2VecError(f"{where}: draw {draw!r} needs polygons, but the layer has {kind} geometries",
                           "use draw 'line' for lines or 'point' for points")
    return draw


def _check_width(width, draw, where) -> float:
    if draw == "fill":
        return 0.0  # a fill covers the polygon: no width
    what = "radius" if draw == "point" else "width"
    try:
        size = float(width.replace(",", ".")) if width else None
    except ValueError:
        size = None
    if size is None or not 0 < size <= MAX_WIDTH_M:
        raise Loc2VecError(f"{where}: {what} {width or '(empty)'!r} is not a number of metres in (0, {MAX_WIDTH_M:g}]",
                           f"give the {what} of draw {draw!r} in metres, e.g. 8")
    return size


def _check_expression(text, layer, where):
    if not text:
        return
    expression = QgsExpression(text)
    if expression.hasParserError():
        raise Loc2VecError(f"{where}: the filter expression {text!r} is not valid: {expression.parserErrorString()}",
                           "write a QGIS expression such as \"kind\" = 'big' (field names in double quotes, "
                           "text in single quotes), or leave the column empty for every feature")
    fields = layer.fields()
    unknown = sorted(c for c in expression.referencedColumns()
                     if c != QgsFeatureRequest.ALL_ATTRIBUTES and fields.lookupField(c) < 0)
    if unknown:
        raise Loc2VecError(f"{where}: the filter expression {text!r} uses unknown field(s) {', '.join(unknown)}",
                           f"fields of layer {_describe(layer)}: {', '.join(fields.names()) or 'none'}")
    # Type errors (e.g. text compared with arithmetic) only show when evaluated: try it on one feature.
    context = QgsExpressionContext(QgsExpressionContextUtils.globalProjectLayerScopes(layer))
    expression.prepare(context)
    feature = next(layer.getFeatures(QgsFeatureRequest().setLimit(1)), None)
    if feature is not None:
        context.setFeature(feature)
        expression.evaluate(context)
    if expression.hasEvalError():
        raise Loc2VecError(f"{where}: the filter expression {text!r} fails: {expression.evalErrorString()}",
                           "fix the expression, or leave the column empty for every feature")


# ---- writing the GeoPackage and the layer map -------------------------------------------------

class LayerExport:
    """Writes the layers (and optionally features read from a file) into ``folder``; see ``write``."""

    def __init__(self, folder, spec, bbox, transform_context, feedback):
        self.folder = Path(folder)
        self.gpkg = self.folder / GPKG_NAME
        self.spec = spec
        self.bbox = bbox
        self.context = transform_context
        self.feedback = feedback
        self.wgs84 = QgsCoordinateReferenceSystem(WGS84)
        self.entries: list[dict] = []
        self.inside = 0  # features inside the extent: written out, or with nothing to match them by

    def write(self, layers, rows, extra_features=None) -> tuple[Path, Path]:
        """All rows and unmapped layers into one GeoPackage; returns (GeoPackage, layer-map TOML)."""
        mapped = {r.layer.id() for r in rows}
        unmapped = [lyr for lyr in layers if lyr.id() not in mapped]
        for lyr in layers:
            self._note_crs(lyr)
        total = max(len(rows) + len(unmapped), 1)
        for i, row in enumerate(rows):
            self._write_row(row)
            self.feedback.setProgress(100.0 * (i + 1) / total)
        matched = [extra_features] if extra_features is not None and len(extra_features) else []
        self.inside += sum(len(m) for m in matched)
        for i, lyr in enumerate(unmapped):
            features = self._match_by_tags(lyr, i)
            if features is not None:
                matched.append(features)
            self.feedback.setProgress(100.0 * (len(rows) + i + 1) / total)
        if matched:
            from loc2vec_engine.sources.features import Features

            self._write_feature_groups(Features.concat(matched))
        if not self.inside or not self.entries:
            raise self._nothing_error(layers)
        return self.gpkg, self._write_layer_map()

    # -- rows and layers
    def _note_crs(self, layer):
        crs = layer.crs()
        if not crs.isValid():
            raise Loc2VecError(f"map layer {_describe(layer)} has no CRS",
                               "set its CRS (Layer Properties > Source > Assigned CRS), then run again")
        if crs.isGeographic():
            name = crs.authid() or crs.description()
            self.feedback.pushInfo(
                f"Note: layer {_describe(layer)} is in a geographic CRS ({name}, degrees); its features are "
                "reprojected to the raster's metric CRS, and widths stay in metres.")

    def _write_row(self, row: MappingRow):
        request = QgsFeatureRequest(QgsExpression(row.expression)) if row.expression else QgsFeatureRequest()
        if row.expression:  # layer and project variables (@layer_name, ...) work in the filter
            request.setExpressionContext(
                QgsExpressionContext(QgsExpressionContextUtils.globalProjectLayerScopes(row.layer)))
        table = f"row_{row.number}"
        count = self._copy(row.layer, request, self.gpkg, table, QgsFields())
        self.entries.append(_entry(table, row.channel, row.draw, row.size_m))
        what = f"features matching {row.expression!r}" if row.expression else "features"
        self.feedback.pushInfo(f"{row.label()}: {count} {what}{self._inside()} -> {row.channel} ({row.draw})")

    def _match_by_tags(self, layer, index):
        """The features of an unmapped layer that the spec's OSM rules take, read by the engine's OGR reader."""
        from loc2vec_engine.sources.ogr import read_ogr

        if layer.geometryType() not in DRAWABLE:
            self.feedback.pushWarning(f"Layer {_describe(layer)} has no point, line or polygon geometries: skipped.")
            return None
        keys = _tag_columns(self.spec)
        fields = QgsFields()
        for field in layer.fields():
            if field.name() in keys:
                fields.append(field)
        if not fields.count():
            self.inside += self._count_inside(layer)  # there are features, just nothing to match them by
            self.feedback.pushWarning(
                f"Layer {_describe(layer)} has no MAPPING row and no OSM-like columns ({', '.join(sorted(keys)[:6])}, "
                "...): nothing of it is drawn. Add a MAPPING row for it.")
            return None
        path = self.folder / f"tags_{index}.gpkg"
        count = self._copy(layer, QgsFeatureRequest(), path, "features", fields)
        features = read_ogr(path, self.spec)
        channels = sorted({self.spec.names[b] for b in features.band})
        self.feedback.pushInfo(f"Layer {_describe(layer)} (matched by its OSM-like columns): {count} features"
                               f"{self._inside()}, {len(features)} drawn in {', '.join(channels) or 'no channel'}")
        if count and not len(features):
            self.feedback.pushWarning(f"None of the features of layer {_describe(layer)} matches a rule of spec "
                                      f"{self.spec.name!r}: add a MAPPING row for it.")
        return features

    def _copy(self, layer, request, path, table, fields) -> int:
        """Features of ``layer`` selected by ``request`` (and the extent) into table ``table`` of ``path``."""
        rect = self._filter_rect(layer)
        if rect is not None:
            request.setFilterRect(rect)
        if fields.count():
            request.setSubsetOfAttributes([layer.fields().lookupField(f.name()) for f in fields])
        elif request.filterType() == QgsFeatureRequest.FilterNone:
            request.setNoAttributes()  # with an expression filter, its fields must be fetched
        out_type = QgsWkbTypes.multiType(QgsWkbTypes.linearType(QgsWkbTypes.flatType(layer.wkbType())))
        writer = self._writer(path, table, fields, out_type)
        transform = QgsCoordinateTransform(layer.crs(), self.wgs84, self.context)
        count = skipped = 0
        try:
            for feature in layer.getFeatures(request):
                if self.feedback.isCanceled():
                    raise Cancelled("export cancelled")
                geom = _plain_geometry(feature.geometry())
                if geom is None:
                    continue
                try:
                    geom.transform(transform)
                except QgsCsException:
                    skipped += 1
                    continue
                out = QgsFeature(fields)
                out.setGeometry(geom)
                if fields.count():
                    out.setAttributes([feature[f.name()] for f in fields])
                if not writer.addFeature(out):
                    raise Loc2VecError(f"cannot write layer {_describe(layer)} to {path}: {writer.errorMessage()}",
                                       "check free space in the temporary folder")
                count += 1
        finally:
            self.inside += count
            del writer  # closes the GeoPackage table
        if skipped:
            self.feedback.pushWarning(f"Layer {_describe(layer)}: {skipped} feature(s) could not be reprojected to "
                                      "longitude/latitude and were left out.")
        return count

    def _count_inside(self, layer) -> int:
        request = QgsFeatureRequest().setNoAttributes()
        rect = self._filter_rect(layer)
        if rect is not None:
            request.setFilterRect(rect)
        return sum(1 for _ in layer.getFeatures(request))

    def _writer(self, path, table, fields, wkb_type):
        options = QgsVectorFileWriter.SaveVectorOptions()
        options.driverName = "GPKG"
        options.layerName = table
        options.fileEncoding = "UTF-8"
        options.layerOptions = ["SPATIAL_INDEX=NO"]
        options.actionOnExistingFile = (QgsVectorFileWriter.CreateOrOverwriteLayer if Path(path).exists()
                                        else QgsVectorFileWriter.CreateOrOverwriteFile)
        writer = QgsVectorFileWriter.create(str(path), fields, wkb_type, self.wgs84, self.context, options)
        if writer.hasError() != QgsVectorFileWriter.NoError:
            raise Loc2VecError(f"cannot create table {table} in {path}: {writer.errorMessage()}",
                               "check free space and permissions of the temporary folder")
        return writer

    def _filter_rect(self, layer):
        if self.bbox is None:
            return None
        try:
            return QgsCoordinateTransform(self.wgs84, layer.crs(), self.context).transformBoundingBox(
                QgsRectangle(*self.bbox))
        except QgsCsException:
            return None  # the engine clips anyway

    def _inside(self) -> str:
        return " inside the extent" if self.bbox else ""

    # -- engine features, the layer map, and the error for nothing at all
    def _write_feature_groups(self, features):
        """Engine features, one table per (channel, drawing, size, value), with a layer-map entry each."""
        import shapely
        from osgeo import ogr, osr

        from loc2vec_engine.sources.features import DRAW_CODES

        draw_names = {code: name for name, code in DRAW_CODES.items()}
        groups: dict[tuple, list[int]] = {}
        keys = zip(features.band.tolist(), features.draw.tolist(), features.size_m.tolist(), features.value.tolist())
        for i, key in enumerate(keys):
            groups.setdefault(key, []).append(i)
        srs = osr.SpatialReference()
        srs.ImportFromEPSG(4326)
        ogr.UseExceptions()
        ds = ogr.Open(str(self.gpkg), 1) if self.gpkg.exists() else \
            ogr.GetDriverByName("GPKG").CreateDataSource(str(self.gpkg))
        try:
            for k, ((band, draw, size, value), index) in enumerate(sorted(groups.items())):
                table = f"osm_{k}"
                layer = ds.CreateLayer(table, srs, ogr.wkbUnknown, ["SPATIAL_INDEX=NO"])
                layer.StartTransaction()
                for wkb in shapely.to_wkb(features.geoms[index]):
                    feat = ogr.Feature(layer.GetLayerDefn())
                    feat.SetGeometryDirectly(ogr.CreateGeometryFromWkb(wkb))
                    layer.CreateFeature(feat)
                layer.CommitTransaction()
                self.entries.append(_entry(table, self.spec.names[band], draw_names[draw], size, value))
        finally:
            ds = None  # closes the GeoPackage

    def _write_layer_map(self) -> Path:
        path = self.folder / "layer_map.toml"
        lines = []
        for entry in self.entries:
            lines.append("[[layer]]")
            lines.extend(f"{k} = {json.dumps(v)}" for k, v in entry.items())
            lines.append("")
        path.write_text("\n".join(lines), encoding="utf-8")
        return path

    def _nothing_error(self, layers) -> Loc2VecError:
        """Nothing to draw: no features inside the extent, or none that a row or a rule takes."""
        names = ", ".join(_describe(lyr) for lyr in layers)
        if not self.inside and self.bbox:
            return Loc2VecError(f"no objects of channel spec {self.spec.name!r} in the map layers {names} inside the "
                                "extent " + ",".join(f"{v:g}" for v in self.bbox),
                                f"choose an extent that overlaps the layers (they cover lon/lat "
                                f"{_lonlat_extent(layers, self.context)})")
        if not self.inside:
            return Loc2VecError(f"the map layers {names} have no features with a geometry",
                                "add features to them, or choose other layers")
        return Loc2VecError(f"none of the features of the map layers {names} matches a channel of spec "
                            f"{self.spec.name!r} by its columns",
                            f"add MAPPING rows (layer, filter expression, channel, draw, width), or give the layers "
                            f"OSM-like columns ({', '.join(sorted(_tag_columns(self.spec))[:5])}, ...)")


def _entry(table, channel, draw, size, value=255) -> dict:
    entry = {"layer": table, "channel": channel, "draw": draw}
    if draw in ("line", "outline"):
        entry["width_m"] = float(size)
    elif draw == "point":
        entry["radius_m"] = float(size)
    if value != 255:
        entry["value"] = int(value)
    return entry


def _tag_columns(spec) -> set[str]:
    """The columns the spec's rules look at (match and except keys), plus GDAL's ``other_tags``."""
    keys = {"other_tags"}
    for channel in spec.channels:
        for rule in channel.rules:
            keys.update(rule.match)
            keys.update(rule.exclude)
    return keys


def _plain_geometry(geom):
    """A 2D, linear, multi-part copy of ``geom`` (curves segmentized), or None when there is nothing to draw."""
    if geom is None or geom.isNull() or geom.isEmpty():
        return None
    if QgsWkbTypes.isCurvedType(geom.wkbType()):
        from qgis.core import QgsGeometry

        geom = QgsGeometry(geom.constGet().segmentize())
    else:
        geom = type(geom)(geom)  # a copy: the caller's feature keeps its geometry
    geom.get().dropZValue()
    geom.get().dropMValue()
    geom.convertToMultiType()
    return geom


def _lonlat_extent(layers, context) -> str:
    wgs84 = QgsCoordinateReferenceSystem(WGS84)
    box = QgsRectangle()
    box.setMinimal()
    for layer in layers:
        try:
            box.combineExtentWith(QgsCoordinateTransform(layer.crs(), wgs84, context).transformBoundingBox(
                layer.extent()))
        except QgsCsException:
            continue
    if box.isEmpty():
        return "an unknown extent"
    return ",".join(f"{v:.5f}" for v in (box.xMinimum(), box.yMinimum(), box.xMaximum(), box.yMaximum()))
