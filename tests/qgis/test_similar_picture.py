"""What the "Find similar places" tool leaves on a real canvas: the picture after a click and after Esc.

The canvas here draws the project's layers as the desktop's does (a layer-tree bridge), and the
checks read its pixels: the heat map, the star at the click, every rank label, the heat map's
opacity, and a canvas that goes back to its picture before the click when the tool clears.
"""

import numpy as np
import pytest
from qgis.core import (
    QgsMapRendererSequentialJob,
    QgsMapSettings,
    QgsProject,
    QgsRasterLayer,
    QgsRectangle,
)
from qgis.gui import QgsLayerTreeMapCanvasBridge
from qgis.PyQt.QtCore import QSize, Qt
from qgis.PyQt.QtGui import QColor, QImage
from qgis.PyQt.QtTest import QTest
from qgis.PyQt.QtWidgets import QApplication

from loc2vec_engine.embeddings.onnx_encoder import OnnxEncoder
from loc2vec_qgis.gui.similar_panel import SimilarPanel
from loc2vec_qgis.gui.similar_tool import CLICK_NAME, HEAT_NAME, SimilarPlacesTool

from .test_similar_tool import (  # noqa: F401  the module's fixtures: real Porto embeddings on a canvas
    WGS84,
    canvas,
    click,
    emb_path,
    es,
    layer,
    map_canvas,
    tool,
    tool_layer_names,
)


@pytest.fixture()
def bridged(canvas):
    """The canvas drawing the project's layer tree, as in the desktop (a layer added or removed redraws it)."""
    crs, extent = canvas.mapSettings().destinationCrs(), canvas.extent()
    bridge = QgsLayerTreeMapCanvasBridge(QgsProject.instance().layerTreeRoot(), canvas)
    bridge.setAutoSetupOnFirstLayer(False)
    bridge.setCanvasLayers()
    canvas.setDestinationCrs(crs)  # the bridge gives the project (and so the canvas) the first layer's CRS
    canvas.setExtent(extent)
    yield canvas
    bridge.deleteLater()
    canvas.setLayers([])


def settled(canvas, rounds: int = 6) -> np.ndarray:
    """(H, W, 3) pixels of the canvas widget once its pending redraws are done (canvas items included)."""
    for _ in range(rounds):
        QTest.qWait(30)  # the canvas redraws on a timer
        canvas.waitWhileRendering()
    QApplication.processEvents()
    return pixels(canvas.grab().toImage())


def pixels(image: QImage) -> np.ndarray:
    image = image.convertToFormat(QImage.Format_RGB32)
    ptr = image.constBits()
    ptr.setsize(image.byteCount())
    bgra = np.frombuffer(ptr, np.uint8).reshape(image.height(), image.bytesPerLine() // 4, 4)
    return bgra[:, :image.width(), 2::-1].astype(np.int16)  # RGB


def changed_share(a: np.ndarray, b: np.ndarray, tol: int = 40) -> float:
    """Share of pixels that differ by more than ``tol`` in some channel (antialiasing and fonts differ less)."""
    return float((np.abs(a - b).max(axis=2) > tol).mean())


def pixel_of(canvas, lonlat):
    from qgis.core import QgsCoordinateTransform, QgsPointXY

    to_map = QgsCoordinateTransform(WGS84, canvas.mapSettings().destinationCrs(), QgsProject.instance())
    px = canvas.getCoordinateTransform().transform(to_map.transform(QgsPointXY(*lonlat)))
    return round(px.x()), round(px.y())


# ---- item 1: Esc / Clear leave no picture behind -------------------------------------------------
def test_escape_on_the_canvas_redraws_it_without_the_heat_map(bridged, tool, es):
    before = settled(bridged)
    click(bridged, tool, es.lonlat()[len(es) // 2])
    shown = settled(bridged)
    assert changed_share(before, shown) > 0.2, "the heat map was not drawn"
    QTest.keyClick(bridged, Qt.Key_Escape)  # a real key event to the canvas, which hands it to the map tool
    assert tool_layer_names() == set()
    after = settled(bridged)
    assert changed_share(before, after) < 0.005, "the canvas still shows the cleared heat map"


def test_escape_clears_while_the_focus_is_in_the_panel(bridged, tool, es):
    panel = SimilarPanel(tool)
    panel.resize(360, 500)
    panel.show()
    panel.activateWindow()
    assert QTest.qWaitForWindowActive(panel)
    before = settled(bridged)
    click(bridged, tool, es.lonlat()[len(es) // 4])
    QTest.mouseClick(panel.mask_button, Qt.LeftButton)  # a panel button: the keyboard focus is in the dock now
    panel.mask_button.setFocus()
    assert tool.layer_of("mask") is not None and panel.isAncestorOf(QApplication.focusWidget())
    QTest.keyClick(QApplication.focusWidget(), Qt.Key_Escape)
    assert tool.heat is None and tool_layer_names() == set()
    assert changed_share(before, settled(bridged)) < 0.005
    panel.hide()
    panel.deleteLater()


# ---- item 5: the click's own picture ---------------------------------------------------------------
def test_the_clicked_place_is_marked_with_a_star(bridged, tool, es):
    lonlat = es.lonlat()[len(es) // 3]
    clicked = click(bridged, tool, lonlat)
    star = tool.layer_of("click")
    assert star is not None and star.name() == CLICK_NAME and star.featureCount() == 1
    point = next(star.getFeatures()).geometry().asPoint()
    assert (point.x(), point.y()) == pytest.approx(clicked, abs=1e-9)
    x, y = pixel_of(bridged, clicked)
    centre = settled(bridged)[y - 1:y + 2, x - 1:x + 2]
    assert centre.max() < 60, f"no black star at the click: {centre.reshape(-1, 3).tolist()}"
    # Shift-click: a second star, both reference places marked.
    click(bridged, tool, es.lonlat()[len(es) - 40], shift=True)
    assert tool.layer_of("click").featureCount() == 2


def test_every_rank_label_is_drawn_where_the_dots_crowd(tool, canvas, es):
    click(canvas, tool, es.lonlat()[len(es) // 2])
    result = tool.layer_of("result")
    settings = QgsMapSettings()
    settings.setDestinationCrs(result.crs())
    extent = QgsRectangle(tool.layer.extent())
    extent.scale(1.1)
    settings.setExtent(extent)
    settings.setOutputSize(QSize(160, 160))  # the whole area in 160 px: the ten dots overlap
    settings.setLayers([result])
    job = QgsMapRendererSequentialJob(settings)
    job.start()
    job.waitForFinished()
    labels = job.takeLabelingResults().allLabels()
    assert sorted(int(lab.labelText) for lab in labels) == list(range(1, 11))
    # ... and where dots overlap, the better rank's dot is on top: drawn from rank 10 to rank 1.
    renderer = result.renderer()
    assert renderer.orderByEnabled()
    (clause,) = renderer.orderBy().list()
    assert clause.expression().expression() == '"rank"' and not clause.ascending()


def _heat_over(layer, background: str) -> np.ndarray:
    settings = QgsMapSettings()
    settings.setDestinationCrs(layer.crs())
    settings.setExtent(layer.extent())
    settings.setOutputSize(QSize(120, 120))
    settings.setBackgroundColor(QColor(background))
    settings.setLayers([layer])
    job = QgsMapRendererSequentialJob(settings)
    job.start()
    job.waitForFinished()
    return pixels(job.renderedImage())


def see_through(layer) -> float:
    """How much of the background shows through the heat map's cells (0 = opaque, 1 = invisible)."""
    white, black = _heat_over(layer, "white"), _heat_over(layer, "black")
    cells = (np.abs(white - black).max(axis=2) < 250)  # drawn cells (no-data pixels show the background)
    assert cells.mean() > 0.3
    return float(np.median((white - black)[cells]) / 255.0)


def test_the_heat_map_lets_the_map_show_through_and_the_panel_sets_its_opacity(tool, canvas, es):
    panel = SimilarPanel(tool)
    assert panel.opacity_spin.value() == 60 and tool.heat_opacity == pytest.approx(0.6)
    click(canvas, tool, es.lonlat()[30])
    heat = tool.layer_of("heat")
    assert isinstance(heat, QgsRasterLayer) and heat.name() == HEAT_NAME
    assert see_through(heat) == pytest.approx(0.4, abs=0.03)  # the roads under it stay visible
    panel.opacity_spin.setValue(30)
    assert see_through(heat) == pytest.approx(0.7, abs=0.03)  # the shown heat map at once
    click(canvas, tool, es.lonlat()[90])
    assert see_through(tool.layer_of("heat")) == pytest.approx(0.7, abs=0.03)  # and the next ones
    panel.deleteLater()


def test_activating_the_tool_loads_what_the_first_click_needs(canvas, layer, es):
    t = SimilarPlacesTool(canvas)
    assert t.set_layer(layer) and t.warmed is None
    canvas.setMapTool(t)  # what the toolbar button does
    QTest.qWait(50)  # the warm-up runs just after activation, from the event loop
    try:
        search = t.warmed
        assert search is not None and search.search.es is search.es and len(search.es) == len(es)
        encoder, why = search.encoder()
        assert isinstance(encoder, OnnxEncoder), why  # the ONNX session is open ...
        assert search._area is not None  # ... and the area raster paletted for between-cells clicks
        assert t.query_at(es.lonlat()[12]) and t.current_search() is search  # the click reuses them
    finally:
        canvas.unsetMapTool(t)
        t.clear(quiet=True)


def test_a_tool_whose_layer_went_away_warms_up_quietly(canvas, emb_path):
    from .test_similar_tool import _layer

    t = SimilarPlacesTool(canvas)
    t.set_layer(_layer(emb_path, "short-lived"))
    canvas.setMapTool(t)
    QgsProject.instance().removeAllMapLayers()  # before the warm-up's turn in the event loop
    QTest.qWait(50)
    assert t.warmed is None
    canvas.unsetMapTool(t)

