"""Render the README's two map screenshots offscreen with QGIS, from the bundled Porto OpenStreetMap extract.

    QT_QPA_PLATFORM=offscreen .venv/bin/python scripts/render_docs_screenshots.py [--out docs] [--keep DIR]

Rasterizes resources/data/porto_center_2020-07-20.osm.pbf, embeds it with the shipped model on a
50 m grid, clusters it (k-means, 8 clusters), then draws with QGIS's own renderer:

- ``clusters_map.png``: the cells in their cluster colours (the categorized cluster renderer, colours
  of ``loc2vec_engine.clusters.colors``) over the road channels in light grey;
- ``similar_places.png``: what the "Find similar places" map tool shows after a real (simulated)
  mouse click at Ribeira: the top 10 and the similarity heat map. The tool's default leaves out the
  cells within one tile of the click (its own neighbourhood); a thin dashed circle marks that radius,
  so that a reader sees why nothing near the click is numbered.

Both get a title, a legend and the OpenStreetMap attribution, 1000 x 800 px.
"""

from __future__ import annotations

import argparse
import math
import os
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

PBF = REPO / "resources" / "data" / "porto_center_2020-07-20.osm.pbf"
RIBEIRA = (-8.6125, 41.1418)
STRIDE_M = 50
CLUSTERS = 8
SIZE = (1000, 800)
OSM_CREDIT = "© OpenStreetMap contributors, ODbL"
MAX_BYTES = 400_000
LEGEND_W = 270
FRAME = (12, 66, SIZE[0] - LEGEND_W - 24, SIZE[1] - 28)  # pixels left for the map: left, top, right, bottom
EXCLUSION_COLOR = "#222222"


# ---- data ------------------------------------------------------------------------------------
def make_data(work: Path) -> tuple[Path, Path]:
    """(area raster, clustered embeddings GeoPackage) of the bundled Porto extract."""
    from loc2vec_engine.embeddings.embed import embed_area
    from loc2vec_engine.raster.rasterize import rasterize

    quiet = lambda f, m: None  # noqa: E731
    area, emb = work / "porto_center.tif", work / "porto_center_50m.gpkg"
    rasterize(PBF, area, progress=quiet)
    embed_area("default", area, emb, stride_m=STRIDE_M, device="cpu", progress=quiet)
    cluster(emb, work)
    return area, emb


def cluster(emb: Path, work: Path) -> None:
    try:
        from loc2vec_engine.clusters.cluster import cluster_file
    except ImportError:  # an engine without the clusters package: plain k-means
        from sklearn.cluster import KMeans

        from loc2vec_engine.embeddings import read_embeddings, update_columns

        labels = KMeans(CLUSTERS, n_init=10, random_state=0).fit_predict(read_embeddings(emb).vectors)
        update_columns(emb, cluster=labels)
        return
    cluster_file(emb, k=CLUSTERS, out_dir=work, seed=0, progress=lambda f, m: None)


# ---- QGIS layers -----------------------------------------------------------------------------
def road_layers(area: Path) -> list:
    """The two road channels as grey lines on a transparent ground (minor lighter than major)."""
    from qgis.core import (QgsContrastEnhancement, QgsRasterLayer, QgsRasterRange,
                           QgsSingleBandGrayRenderer)

    layers = []
    for band, name, opacity in ((1, "roads_major", 0.45), (2, "roads_minor", 0.3)):
        layer = QgsRasterLayer(str(area), name, "gdal")
        layer.dataProvider().setUserNoDataValue(band, [QgsRasterRange(0, 0)])
        renderer = QgsSingleBandGrayRenderer(layer.dataProvider(), band)
        renderer.setGradient(QgsSingleBandGrayRenderer.WhiteToBlack)
        ce = QgsContrastEnhancement(layer.dataProvider().dataType(band))
        ce.setContrastEnhancementAlgorithm(QgsContrastEnhancement.StretchToMinimumMaximum)
        ce.setMinimumValue(0)
        ce.setMaximumValue(255)
        renderer.setContrastEnhancement(ce)
        renderer.setOpacity(opacity)
        layer.setRenderer(renderer)
        layers.append(layer)
    return layers


def cluster_renderer(stride: float, labels: list[int]):
    """Categorized by ``cluster``: squares one cell wide in the cluster colours."""
    from qgis.core import (QgsCategorizedSymbolRenderer, QgsFillSymbol, QgsFilledMarkerSymbolLayer,
                           QgsMarkerSymbol, QgsRendererCategory)

    from loc2vec_engine.clusters.colors import cluster_color

    categories = []
    for label in labels:
        color = cluster_color(label)
        # A filled marker, not a simple one: QGIS draws simple markers at whole pixels, leaving gaps.
        square = QgsFilledMarkerSymbolLayer.create({"name": "square", "size": str(stride), "size_unit": "MapUnit",
                                                    "color": color})
        square.setSubSymbol(QgsFillSymbol.createSimple({"color": color, "outline_color": color,
                                                        "outline_width": "0.3"}))  # hides seams between cells
        symbol = QgsMarkerSymbol()
        symbol.changeSymbolLayer(0, square)
        categories.append(QgsRendererCategory(label, symbol, f"cluster {label}"))
    return QgsCategorizedSymbolRenderer("cluster", categories)


def render(settings, layers):
    """The layers (first = top) drawn with QGIS's parallel renderer into a QImage."""
    from qgis.core import QgsMapRendererParallelJob

    settings.setLayers(layers)
    job = QgsMapRendererParallelJob(settings)
    job.start()
    job.waitForFinished()
    return job.renderedImage()


def framed_extent(data_extent):
    """The image's extent that puts ``data_extent`` in the free area (below the title, left of the legend)."""
    from qgis.core import QgsRectangle

    w, h = SIZE
    left, top, right, bottom = FRAME
    m = max(data_extent.width() / (right - left), data_extent.height() / (bottom - top))  # map units per pixel
    c = data_extent.center()
    x0 = c.x() - (left + right) / 2 * m
    y1 = c.y() + (top + bottom) / 2 * m
    return QgsRectangle(x0, y1 - h * m, x0 + w * m, y1)


def map_settings(crs, extent):
    from qgis.core import QgsMapSettings
    from qgis.PyQt.QtCore import QSize
    from qgis.PyQt.QtGui import QColor

    settings = QgsMapSettings()
    settings.setDestinationCrs(crs)
    settings.setOutputSize(QSize(*SIZE))
    settings.setBackgroundColor(QColor("white"))
    settings.setFlag(QgsMapSettings.Antialiasing, True)
    settings.setExtent(extent)
    return settings


# ---- pictures ----------------------------------------------------------------------------------
def clusters_picture(area: Path, emb: Path, out: Path) -> None:
    from qgis.core import QgsProject, QgsVectorLayer

    from loc2vec_engine.clusters.colors import cluster_color
    from loc2vec_engine.embeddings import read_embeddings

    es = read_embeddings(emb)
    layer = QgsVectorLayer(f"{emb}|layername=embeddings", "clusters", "ogr")
    labels = sorted(set(es.cluster.tolist()))
    layer.setRenderer(cluster_renderer(float(es.meta["stride_m"]), labels))
    layer.setOpacity(0.6)
    roads = road_layers(area)
    QgsProject.instance().addMapLayers([layer, *roads])
    settings = map_settings(layer.crs(), framed_extent(layer.extent()))
    image = render(settings, [layer, *roads])
    sizes = {c: int((es.cluster == c).sum()) for c in labels}
    legend = [("square", cluster_color(c), f"cluster {c}: {sizes[c]:,} cells") for c in labels]
    annotate(image, f"Central Porto in {len(labels)} clusters of loc2vec embeddings",
             f"{len(es):,} cells, {STRIDE_M} m apart, shipped model; k-means on the {es.vectors.shape[1]}-D vectors; "
             "roads in grey",
             legend)
    save(image, out)
    QgsProject.instance().removeAllMapLayers()


def similar_picture(area: Path, emb: Path, out: Path) -> None:
    from qgis.core import QgsCoordinateReferenceSystem, QgsCoordinateTransform, QgsPointXY, QgsProject, QgsVectorLayer
    from qgis.gui import QgsMapCanvas, QgsMapMouseEvent
    from qgis.PyQt.QtCore import QEvent, QPoint, Qt
    from qgis.PyQt.QtWidgets import QApplication

    from loc2vec_qgis.gui.similar_tool import HEAT_RAMP, TOP_RAMP, SimilarPlacesTool

    project = QgsProject.instance()
    layer = QgsVectorLayer(f"{emb}|layername=embeddings", "embeddings", "ogr")
    roads = road_layers(area)
    project.addMapLayers([layer, *roads])
    canvas = QgsMapCanvas()
    canvas.setFrameStyle(0)
    canvas.resize(*SIZE)
    canvas.show()
    QApplication.processEvents()
    canvas.setDestinationCrs(layer.crs())
    canvas.setExtent(framed_extent(layer.extent()))
    tool = SimilarPlacesTool(canvas, k=10)
    tool.set_layer(layer)
    canvas.setMapTool(tool)
    to_map = QgsCoordinateTransform(QgsCoordinateReferenceSystem("EPSG:4326"), layer.crs(), project)
    pixel = canvas.getCoordinateTransform().transform(to_map.transform(QgsPointXY(*RIBEIRA)))
    tool.canvasReleaseEvent(QgsMapMouseEvent(canvas, QEvent.MouseButtonRelease, QPoint(round(pixel.x()),
                                             round(pixel.y())), Qt.LeftButton, Qt.LeftButton, Qt.NoModifier))
    print("message bar:", tool.last_message[0])
    if not tool.highlighted_cells():
        raise SystemExit(f"the click at Ribeira highlighted nothing: {tool.last_message[0]}")
    settings = map_settings(layer.crs(), canvas.extent())
    image = render(settings, [tool.layer_of("result"), *roads, tool.layer_of("heat")])
    click_xy = to_map.transform(QgsPointXY(*RIBEIRA))
    radius = tool.result.exclude_radius_m
    if radius > 0:
        draw_exclusion(image, settings, click_xy, radius)
    draw_click(image, settings, click_xy)
    scores = tool.result.scores
    legend = [("star", "#000000", "the clicked place (Ribeira)"),
              *([("ring", EXCLUSION_COLOR, f"left out: within {radius:g} m (one tile)")] if radius > 0 else []),
              ("circle", TOP_RAMP[1], f"top {len(scores)} by rank; darkest: cosine {scores.max():.4f}"),
              ("circle", TOP_RAMP[0], f"lightest: cosine {scores.min():.4f}"),
              ("ramp", [c for _, c, _ in HEAT_RAMP], "all cells by rank of similarity:"),
              ("text", "", "green = most similar, red = least")]
    annotate(image, "Find similar places: a click at Ribeira",
             f"loc2vec map tool in QGIS; {len(tool.heat):,} cells of {STRIDE_M} m, shipped model; "
             "colours by rank of cosine similarity; the click's own tile left out", legend)
    save(image, out)
    tool.clear(quiet=True)
    canvas.hide()
    project.removeAllMapLayers()


# ---- drawing on the image ----------------------------------------------------------------------
def draw_exclusion(image, settings, point, radius_m: float) -> None:
    """A thin dashed circle of ``radius_m`` around ``point`` (map CRS): the cells the top k left out."""
    from qgis.core import QgsPointXY
    from qgis.PyQt.QtCore import QPointF, Qt
    from qgis.PyQt.QtGui import QColor, QPainter, QPen

    to_px = settings.mapToPixel()
    c = to_px.transform(point)
    edge = to_px.transform(QgsPointXY(point.x() + radius_m, point.y()))  # the map CRS is the layer's, in metres
    r = math.hypot(edge.x() - c.x(), edge.y() - c.y())
    painter = QPainter(image)
    painter.setRenderHint(QPainter.Antialiasing)
    painter.setPen(QPen(QColor(EXCLUSION_COLOR), 1.6, Qt.DashLine))
    painter.setBrush(Qt.NoBrush)
    painter.drawEllipse(QPointF(c.x(), c.y()), r, r)
    painter.end()


def draw_click(image, settings, point) -> None:
    from qgis.PyQt.QtCore import QPointF
    from qgis.PyQt.QtGui import QColor, QPainter, QPen, QPolygonF

    p = settings.mapToPixel().transform(point)
    painter = QPainter(image)
    painter.setRenderHint(QPainter.Antialiasing)
    painter.setPen(QPen(QColor("white"), 1.5))
    painter.setBrush(QColor("black"))
    painter.drawPolygon(QPolygonF(_star(QPointF(p.x(), p.y()), 11)))
    painter.end()


def _star(c, r: float) -> list:
    """The 10 corners of a five-pointed star around ``c``."""
    from qgis.PyQt.QtCore import QPointF

    return [QPointF(c.x() + (r if i % 2 == 0 else r * 0.45) * math.sin(i * math.pi / 5),
                    c.y() - (r if i % 2 == 0 else r * 0.45) * math.cos(i * math.pi / 5)) for i in range(10)]


def annotate(image, title: str, subtitle: str, legend: list) -> None:
    """Title band at the top, a legend box at the top right, the OSM credit at the bottom right."""
    from qgis.PyQt.QtCore import QPointF, QRectF, Qt
    from qgis.PyQt.QtGui import QColor, QLinearGradient, QPainter, QPen, QPolygonF

    painter = QPainter(image)
    painter.setRenderHint(QPainter.Antialiasing)
    painter.setRenderHint(QPainter.TextAntialiasing)
    w, h = image.width(), image.height()
    painter.fillRect(QRectF(0, 0, w, 58), QColor(255, 255, 255, 230))
    painter.setPen(QColor("#222222"))
    painter.setFont(_font(17, bold=True))
    painter.drawText(QRectF(14, 6, w - 28, 26), Qt.AlignLeft | Qt.AlignVCenter, title)
    painter.setFont(_font(11))
    painter.drawText(QRectF(14, 32, w - 28, 20), Qt.AlignLeft | Qt.AlignVCenter, subtitle)
    row, box_w = 22, LEGEND_W
    box = QRectF(w - box_w - 12, 70, box_w, 14 + row * len(legend))
    painter.setPen(QColor("#999999"))
    painter.setBrush(QColor(255, 255, 255, 235))
    painter.drawRect(box)
    painter.setFont(_font(11))
    for i, (kind, color, text) in enumerate(legend):
        y = box.top() + 8 + i * row
        swatch = QRectF(box.left() + 10, y + 3, 14, 14)
        painter.setPen(QColor("#333333"))
        if kind == "square":
            painter.setBrush(QColor(color))
            painter.drawRect(swatch)
        elif kind == "circle":
            painter.setBrush(QColor(color))
            painter.drawEllipse(swatch)
        elif kind == "ring":
            painter.setPen(QPen(QColor(color), 1.6, Qt.DashLine))
            painter.setBrush(Qt.NoBrush)
            painter.drawEllipse(swatch)
        elif kind == "star":
            painter.setBrush(QColor(color))
            painter.drawPolygon(QPolygonF(_star(swatch.center(), 8)))
        elif kind == "ramp":
            grad = QLinearGradient(swatch.left(), 0, swatch.left() + 60, 0)
            for j, c in enumerate(color):
                grad.setColorAt(j / (len(color) - 1), QColor(c))
            ramp = QRectF(swatch.left(), swatch.top(), 60, 14)
            painter.setBrush(grad)
            painter.drawRect(ramp)
            swatch = ramp
        painter.setPen(QColor("#222222"))
        painter.drawText(QPointF(swatch.right() + 8, y + 15), text)
    painter.setFont(_font(10))
    credit = QRectF(w - 300, h - 24, 300, 24)
    painter.fillRect(credit, QColor(255, 255, 255, 220))
    painter.setPen(QColor("#333333"))
    painter.drawText(credit.adjusted(0, 0, -8, 0), Qt.AlignRight | Qt.AlignVCenter, OSM_CREDIT)
    painter.end()


def _font(px: int, bold: bool = False):
    from qgis.PyQt.QtGui import QFont

    font = QFont("DejaVu Sans")
    font.setPixelSize(px)
    font.setBold(bold)
    return font


def save(image, out: Path) -> None:
    """PNG, reduced to 256 colours when the full-colour file would be over MAX_BYTES."""
    from qgis.PyQt.QtCore import Qt
    from qgis.PyQt.QtGui import QImage

    image = image.convertToFormat(QImage.Format_RGB32)
    out.parent.mkdir(parents=True, exist_ok=True)
    image.save(str(out), "PNG")
    if out.stat().st_size > MAX_BYTES:
        image.convertToFormat(QImage.Format_Indexed8, Qt.ThresholdDither).save(str(out), "PNG")
    print(f"wrote {out} ({out.stat().st_size / 1000:.0f} KB)")


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=REPO / "docs")
    ap.add_argument("--keep", type=Path, help="work folder to keep (default: a temporary one)")
    args = ap.parse_args(argv)

    from qgis.core import QgsApplication

    app = QgsApplication([], True)
    app.initQgis()
    with tempfile.TemporaryDirectory(prefix="loc2vec-docs-") as tmp:
        work = args.keep or Path(tmp)
        work.mkdir(parents=True, exist_ok=True)
        area, emb = (work / "porto_center.tif", work / "porto_center_50m.gpkg")
        if not (area.is_file() and emb.is_file()):
            area, emb = make_data(work)
        clusters_picture(area, emb, args.out / "clusters_map.png")
        similar_picture(area, emb, args.out / "similar_places.png")
    app.exitQgis()


if __name__ == "__main__":
    main()
