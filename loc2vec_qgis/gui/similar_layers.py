"""The temporary layers of the "Find similar places" map tool and their styles (memory layers, renderers).

Kept apart from the tool itself: these only turn arrays into styled QGIS layers and know nothing of
clicks or queries.
"""

from __future__ import annotations

import math

import numpy as np
from qgis.core import (
    QgsColorRampShader,
    QgsCoordinateReferenceSystem,
    QgsFeature,
    QgsFeatureRequest,
    QgsField,
    QgsFillSymbol,
    QgsGeometry,
    QgsGraduatedSymbolRenderer,
    QgsMarkerSymbol,
    QgsPalLayerSettings,
    QgsPointXY,
    QgsProperty,
    QgsRasterLayer,
    QgsRasterShader,
    QgsRectangle,
    QgsRendererRange,
    QgsSingleBandPseudoColorRenderer,
    QgsSingleSymbolRenderer,
    QgsTextBufferSettings,
    QgsTextFormat,
    QgsVectorLayer,
    QgsVectorLayerSimpleLabeling,
)
from qgis.PyQt.QtCore import QVariant
from qgis.PyQt.QtGui import QColor

# Heat map by rank of similarity: red = least similar, green = most similar (as the .qgz projects colour scores).
HEAT_RAMP = ((0.0, "#d7191c", "least similar"), (50.0, "#ffffbf", "median"), (90.0, "#a6d96a", "top 10 %"),
             (100.0, "#1a9641", "most similar"))
# The same colours for a scoring from examples (the score's rank, not its value: scores can crowd too).
SCORE_RAMP = ((0.0, "#d7191c", "lowest score"), (50.0, "#ffffbf", "median"), (90.0, "#a6d96a", "top 10 %"),
              (100.0, "#1a9641", "highest score"))
TOP_RAMP = ("#dadaeb", "#3f007d")  # the k best: light to dark purple, stands out on the green heat
HEAT_OPACITY = 0.6  # the default: the roads and buildings under the heat map show through


# ---- layers and styles -----------------------------------------------------------------------
_FIELD_TYPES = {"rank": QVariant.Int, "cell": QVariant.LongLong, "cells": QVariant.LongLong,
                "negative": QVariant.Int}


def memory_layer(kind: str, name: str, crs, columns) -> QgsVectorLayer:
    layer = QgsVectorLayer(f"{kind}?crs={crs.authid() or 'EPSG:4326'}", name, "memory")
    layer.setCrs(crs)  # the full CRS, also when it has no authority id
    layer.dataProvider().addAttributes([QgsField(n, _FIELD_TYPES.get(n, QVariant.Double)) for n, _ in columns])
    layer.updateFields()
    return layer


def fill(layer, geometries, columns) -> QgsVectorLayer:
    from loc2vec_engine import ATTRIBUTION

    values = [np.asarray(v).tolist() for _, v in columns]
    fields = layer.fields()
    feats = []
    for i, geom in enumerate(geometries):
        f = QgsFeature(fields)
        f.setGeometry(geom)
        f.setAttributes([None if isinstance(v[i], float) and math.isnan(v[i]) else v[i] for v in values])
        feats.append(f)
    layer.dataProvider().addFeatures(feats)
    layer.updateExtents()
    layer.setAttribution(ATTRIBUTION)
    return layer


def points_layer(name: str, crs, xy: np.ndarray, columns) -> QgsVectorLayer:
    layer = memory_layer("Point", name, crs, columns)
    return fill(layer, (QgsGeometry.fromPointXY(QgsPointXY(x, y)) for x, y in xy.tolist()), columns)


def squares_layer(name: str, crs, xy: np.ndarray, size: float, columns) -> QgsVectorLayer:
    layer = memory_layer("Polygon", name, crs, columns)
    h = size / 2
    return fill(layer, (QgsGeometry.fromRect(QgsRectangle(x - h, y - h, x + h, y + h)) for x, y in xy.tolist()),
                 columns)


def top_renderer(scores: np.ndarray) -> QgsGraduatedSymbolRenderer:
    """Up to five equal score classes between the k scores' min and max, light to dark purple; where dots
    overlap, the better rank is drawn on top.

    Labelled with as many decimals as tell the classes apart; where the k cosines crowd closer than
    that (several would read "cosine 1.0000 – 1.0000"), the classes are ranks of the ``rank`` field.
    """
    from loc2vec_engine.project.legend import range_labels, rank_classes

    lo, hi = float(np.min(scores)), float(np.max(scores))
    classes = max(1, min(5, len(scores)))
    edges = [lo + (hi - lo) * i / classes for i in range(classes)] + [hi]
    labels = range_labels(edges, "cosine ", lowest=4) if hi - lo > 0 else None
    if labels is None:
        groups = rank_classes(len(scores), classes)
        return _best_on_top(QgsGraduatedSymbolRenderer("rank", [
            QgsRendererRange(first - 0.5, last + 0.5, _top_symbol(mix(*TOP_RAMP, 1.0 - i / len(groups))), label)
            for i, (first, last, label) in enumerate(groups)]))
    ranges = []
    for i in range(classes):
        lower = edges[i] - (1e-7 if i == 0 else 0)
        upper = edges[i + 1] + (1e-7 if i == classes - 1 else 0)
        ranges.append(QgsRendererRange(lower, upper, _top_symbol(mix(*TOP_RAMP, (i + 1) / classes)), labels[i]))
    return _best_on_top(QgsGraduatedSymbolRenderer("score", ranges))


def _best_on_top(renderer):
    """Features drawn from the last rank to the first: rank 1 ends up on top."""
    renderer.setOrderBy(QgsFeatureRequest.OrderBy([QgsFeatureRequest.OrderByClause('"rank"', False)]))
    renderer.setOrderByEnabled(True)
    return renderer


def _top_symbol(color: str) -> QgsMarkerSymbol:
    return QgsMarkerSymbol.createSimple({"name": "circle", "size": "4.2", "color": color,
                                         "outline_color": "0,0,0,255", "outline_width": "0.4"})


def clicked_renderer() -> QgsSingleSymbolRenderer:
    """The clicked places: a black star with a white outline, over the dots."""
    return QgsSingleSymbolRenderer(QgsMarkerSymbol.createSimple({
        "name": "star", "size": "6", "color": "0,0,0,255", "outline_color": "255,255,255,255",
        "outline_width": "0.5"}))


def negatives_renderer() -> QgsSingleSymbolRenderer:
    """The negative examples (Ctrl-click): a red cross with a white outline; the positives keep their star."""
    return QgsSingleSymbolRenderer(QgsMarkerSymbol.createSimple({
        "name": "cross_fill", "size": "5", "color": "215,25,28,255", "outline_color": "255,255,255,255",
        "outline_width": "0.4", "angle": "45"}))


MASK_COLOUR = QColor(106, 61, 154, 150)  # the similar mask's purple, see-through


def rank_raster_layer(path, layout, rank_plane: np.ndarray, crs_wkt: str, crs, name: str,
                      draw_crs=None) -> QgsRasterLayer:
    """The score mask as a raster at ``path`` (int32 GeoTIFF of each cell's score rank, -1 where there is no
    cell), loaded as the layer ``name``; colour it with ``rank_cut_renderer``.

    On the embedding grid in ``crs``, unless ``draw_crs`` (the canvas's) is another CRS: then it is warped to
    that CRS once, here (nearest neighbour, so every pixel still holds one cell's exact rank), because QGIS
    would otherwise reproject it on every redraw the slider asks for: 97 ms per draw in EPSG:3857 against
    30 ms in the grid's CRS at 100k cells (benchmarks/score_slider.py). Should the canvas CRS change later,
    QGIS reprojects it as any layer, only more slowly."""
    from osgeo import gdal

    mem = gdal.GetDriverByName("MEM").Create("", layout.cols, layout.rows, 1, gdal.GDT_Int32)
    mem.SetGeoTransform(layout.geotransform)
    mem.SetProjection(crs_wkt)
    band = mem.GetRasterBand(1)
    band.SetNoDataValue(-1)
    band.WriteArray(rank_plane)
    band = None
    if draw_crs is not None and draw_crs.isValid() and draw_crs != crs:
        dst = draw_crs.toWkt(QgsCoordinateReferenceSystem.WKT_PREFERRED_GDAL)
        # Half GDAL's suggested pixel size, so that every cell holds at least one pixel centre (no cell is
        # lost in the warp), and the transform approximated to 0.001 pixel, so each pixel takes the cell under
        # its centre but for 1 in about 4,000 that lie that close to an edge (GDAL's default, 0.125, misplaces
        # 1 in 17; the exact transform costs 0.2 s more at 100k cells).
        suggested = gdal.Warp("", mem, format="VRT", dstSRS=dst).GetGeoTransform()
        ds = gdal.Warp(str(path), mem, format="GTiff", resampleAlg="near", srcNodata=-1, dstNodata=-1, dstSRS=dst,
                       xRes=suggested[1] / 2, yRes=abs(suggested[5]) / 2, errorThreshold=0.001)
        crs = draw_crs
    else:
        ds = gdal.GetDriverByName("GTiff").CreateCopy(str(path), mem)
    ds = mem = None  # closes the file
    layer = QgsRasterLayer(str(path), name, "gdal")
    layer.setCrs(crs)
    return layer


def rank_cut_renderer(layer: QgsRasterLayer, cut: int, cells: int, threshold: float) -> QgsSingleBandPseudoColorRenderer:
    """Ranks at or above ``cut`` purple, the others clear: the cells scoring at or above ``threshold``.

    The mask follows the threshold by changing this renderer alone (no polygons traced, no file written):
    the ranks are integers, so the cut at ``cut - 0.5`` is exact, ties included (the engine's ScoreOrder)."""
    ramp = QgsColorRampShader(-1.0, float(cells))
    ramp.setColorRampType(QgsColorRampShader.Discrete)
    ramp.setColorRampItemList([
        QgsColorRampShader.ColorRampItem(cut - 0.5, QColor(0, 0, 0, 0), f"score < {threshold:.4g}"),
        QgsColorRampShader.ColorRampItem(float(cells), MASK_COLOUR, f"score ≥ {threshold:.4g}")])
    shader = QgsRasterShader(-1.0, float(cells))
    shader.setRasterShaderFunction(ramp)
    renderer = QgsSingleBandPseudoColorRenderer(layer.dataProvider(), 1, shader)
    renderer.setClassificationMin(-1.0)
    renderer.setClassificationMax(float(cells))
    return renderer


def label_ranks(layer: QgsVectorLayer) -> None:
    """The rank on each dot. Every label is drawn, also where dots crowd (no label hides another or is
    hidden by a dot); where they overlap, the better rank is drawn on top."""
    settings = QgsPalLayerSettings()
    settings.fieldName = "rank"
    settings.placement = QgsPalLayerSettings.OverPoint
    settings.displayAll = True  # colliding labels are drawn too
    settings.obstacleSettings().setIsObstacle(False)  # the dots do not push labels off
    props = settings.dataDefinedProperties()
    props.setProperty(QgsPalLayerSettings.Priority, QgsProperty.fromExpression('max(0, 11 - "rank")'))
    props.setProperty(QgsPalLayerSettings.ZIndex, QgsProperty.fromExpression('-"rank"'))
    settings.setDataDefinedProperties(props)
    fmt = QgsTextFormat()
    fmt.setSize(7)
    fmt.setColor(QColor("white"))
    buffer = QgsTextBufferSettings()
    buffer.setEnabled(True)
    buffer.setSize(0.6)
    buffer.setColor(QColor("#3f007d"))
    fmt.setBuffer(buffer)
    settings.setFormat(fmt)
    layer.setLabeling(QgsVectorLayerSimpleLabeling(settings))
    layer.setLabelsEnabled(True)


def heat_raster_layer(path, grid, pct: np.ndarray, crs_wkt: str, crs, name: str, ramp=HEAT_RAMP) -> QgsRasterLayer:
    """A heat map raster at ``path`` (GeoTIFF, one pixel per cell of ``grid``: its percentile ``pct``, -1 where
    there is no cell), loaded as the layer ``name`` in ``crs`` and coloured along ``ramp``."""
    from osgeo import gdal

    image = np.full((grid.height, grid.width), -1.0, np.float32)
    image[grid.rows, grid.cols] = pct
    ds = gdal.GetDriverByName("GTiff").Create(str(path), grid.width, grid.height, 1, gdal.GDT_Float32)
    ds.SetGeoTransform(grid.geotransform)
    ds.SetProjection(crs_wkt)
    band = ds.GetRasterBand(1)
    band.SetNoDataValue(-1.0)
    band.WriteArray(image)
    band = ds = None  # closes the file
    layer = QgsRasterLayer(str(path), name, "gdal")
    layer.setCrs(crs)
    layer.setRenderer(heat_raster_renderer(layer, ramp))
    return layer


def heat_raster_renderer(layer: QgsRasterLayer, stops=HEAT_RAMP) -> QgsSingleBandPseudoColorRenderer:
    ramp = QgsColorRampShader(0.0, 100.0)
    ramp.setColorRampType(QgsColorRampShader.Interpolated)
    ramp.setColorRampItemList([QgsColorRampShader.ColorRampItem(v, QColor(c), label) for v, c, label in stops])
    shader = QgsRasterShader(0.0, 100.0)
    shader.setRasterShaderFunction(ramp)
    renderer = QgsSingleBandPseudoColorRenderer(layer.dataProvider(), 1, shader)
    renderer.setClassificationMin(0.0)
    renderer.setClassificationMax(100.0)
    return renderer


def heat_points_renderer(ramp=HEAT_RAMP) -> QgsGraduatedSymbolRenderer:
    """The heat map as points (cells off a regular grid): ten rank classes along ``ramp``, labelled by what it
    ranks (similarity, or a score from examples)."""
    what = "score" if ramp is SCORE_RAMP else "similarity"
    ranges = []
    for i in range(10):
        color = ramp_color((i + 0.5) * 10, ramp)
        symbol = QgsMarkerSymbol.createSimple({"name": "square", "size": "2", "color": color, "outline_style": "no"})
        label = f"{what} rank {i * 10}–{(i + 1) * 10} %"
        ranges.append(QgsRendererRange(i * 10.0, (i + 1) * 10.0, symbol, label))
    return QgsGraduatedSymbolRenderer("percentile", ranges)


def ramp_color(value: float, ramp=HEAT_RAMP) -> str:
    stops = [(v, c) for v, c, _ in ramp]
    for (v0, c0), (v1, c1) in zip(stops, stops[1:]):
        if value <= v1:
            return mix(c0, c1, (value - v0) / (v1 - v0))
    return stops[-1][1]


def mix(a: str, b: str, t: float) -> str:
    """'r,g,b,255' between hex colours ``a`` (t=0) and ``b`` (t=1)."""
    ca, cb = QColor(a), QColor(b)
    rgb = [round(x + (y - x) * t) for x, y in zip(ca.getRgb()[:3], cb.getRgb()[:3])]
    return ",".join(map(str, rgb)) + ",255"
