"""The "Find similar places" map tool on real Porto embeddings (shipped model), clicked on an offscreen canvas.

The canvas is in Web Mercator, the layer in UTM 29N: every click goes pixel -> map point -> WGS84 -> cell.
"""

import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest
from qgis.core import (
    Qgis,
    QgsCoordinateReferenceSystem,
    QgsCoordinateTransform,
    QgsPointXY,
    QgsProject,
    QgsRasterLayer,
    QgsSingleBandPseudoColorRenderer,
    QgsVectorLayer,
)
from qgis.gui import QgsMapCanvas, QgsMapMouseEvent
from qgis.PyQt.QtCore import QEvent, QPoint, QSize, Qt
from qgis.PyQt.QtGui import QKeyEvent

from loc2vec_engine.embeddings import read_embeddings, update_columns
from loc2vec_engine.embeddings.embed import embed_area, embed_points
from loc2vec_engine.geo.crs import transformer_to_wgs84
from loc2vec_engine.search.similar import PlaceSearch, cells_within, query_vector, similar, similar_at
from loc2vec_qgis.gui.similar_panel import SimilarPanel
from loc2vec_qgis.gui.similar_tool import (CLICK_NAME, HEAT_NAME, MASK_NAME, RESULT_NAME, SimilarPlacesTool,
                                           percentiles)

from ..conftest import REPO
from .conftest import sandbox_env

WEB_MERCATOR = QgsCoordinateReferenceSystem("EPSG:3857")
WGS84 = QgsCoordinateReferenceSystem("EPSG:4326")
TOOL_LAYERS = {RESULT_NAME, HEAT_NAME, MASK_NAME, CLICK_NAME}


@pytest.fixture(scope="module")
def emb_path(porto_area, tmp_path_factory):
    out = tmp_path_factory.mktemp("similar") / "porto_60m.gpkg"
    embed_area("default", porto_area, out, stride_m=60, device="cpu", progress=lambda f, m: None)
    return out


@pytest.fixture(scope="module")
def es(emb_path):
    return read_embeddings(emb_path)


def _layer(path, name="embeddings"):
    layer = QgsVectorLayer(f"{path}|layername=embeddings", name, "ogr")
    assert layer.isValid()
    QgsProject.instance().addMapLayer(layer)
    return layer


@pytest.fixture()
def layer(emb_path):
    lyr = _layer(emb_path)
    yield lyr
    QgsProject.instance().removeAllMapLayers()


@pytest.fixture(scope="module")
def map_canvas(qgis_app):
    """An 800 x 600 px canvas of its own, shown offscreen.

    pytest-qgis's canvas sits in a hidden main window, where it never gets a viewport size: its map would
    stay 98 x 28 px.
    """
    canvas = QgsMapCanvas()
    canvas.setFrameStyle(0)
    canvas.resize(800, 600)
    canvas.show()
    qgis_app.processEvents()
    yield canvas
    canvas.hide()
    canvas.deleteLater()


@pytest.fixture()
def canvas(map_canvas, layer):
    """The canvas in EPSG:3857 showing the (UTM) layer's extent."""
    map_canvas.setDestinationCrs(WEB_MERCATOR)
    to_map = QgsCoordinateTransform(layer.crs(), WEB_MERCATOR, QgsProject.instance())
    extent = to_map.transformBoundingBox(layer.extent())
    extent.scale(1.3)
    map_canvas.setExtent(extent)
    assert map_canvas.mapSettings().outputSize() == QSize(800, 600)
    return map_canvas


@pytest.fixture()
def tool(canvas, layer, qgis_iface):
    qgis_iface.messageBar().clear_messages()
    t = SimilarPlacesTool(canvas, qgis_iface.messageBar(), k=10)
    assert t.set_layer(layer)
    canvas.setMapTool(t)
    yield t
    canvas.unsetMapTool(t)
    t.clear(quiet=True)


def click(canvas, tool, lonlat, shift=False):
    """A real mouse release at the pixel of ``lonlat``; returns the WGS84 point the tool received."""
    to_map = QgsCoordinateTransform(WGS84, canvas.mapSettings().destinationCrs(), QgsProject.instance())
    px = canvas.getCoordinateTransform().transform(to_map.transform(QgsPointXY(*lonlat)))
    event = QgsMapMouseEvent(canvas, QEvent.MouseButtonRelease, QPoint(round(px.x()), round(px.y())), Qt.LeftButton,
                             Qt.LeftButton, Qt.ShiftModifier if shift else Qt.NoModifier)
    tool.canvasReleaseEvent(event)
    back = QgsCoordinateTransform(canvas.mapSettings().destinationCrs(), WGS84, QgsProject.instance())
    p = back.transform(event.mapPoint())
    return p.x(), p.y()


def tool_layer_names():
    return {lyr.name() for lyr in QgsProject.instance().mapLayers().values()} & TOOL_LAYERS


def messages(qgis_iface, level):
    return qgis_iface.messageBar().get_messages(level)


def planar_m(es, lonlat, rows=None):
    """Metres in the layer's CRS from cells ``rows`` (default all) to ``lonlat``: what the exclusion measures."""
    from loc2vec_engine.geo.crs import transformer_from_wgs84

    q = np.asarray(transformer_from_wgs84(es.crs_wkt).transform(*lonlat), float)
    return np.linalg.norm(es.xy[slice(None) if rows is None else rows] - q, axis=1)


# ---- click -> the engine's k cells -------------------------------------------------------------------
def test_click_highlights_exactly_the_engines_k_cells(tool, canvas, es, qgis_iface):
    row = len(es) // 3
    clicked = click(canvas, tool, es.lonlat()[row])
    result, heat = PlaceSearch(es).highlight([clicked], 10)
    assert tool.highlighted_cells() == result.cells.tolist() == similar_at(es, [clicked], 10).cells.tolist()
    assert es.cell[row] not in result.cells  # similar places elsewhere: the clicked tile is left out
    assert heat[row] == heat.max()  # ... though the heat map still scores it
    hits = tool.layer_of("result")
    assert hits.name() == RESULT_NAME and hits.featureCount() == 10
    assert hits.fields().names() == ["rank", "cell", "score", "distance_m"]
    assert hits.crs() == tool.layer.crs()
    feats = sorted(hits.getFeatures(), key=lambda f: f["rank"])
    assert np.allclose([f["score"] for f in feats], result.scores, atol=1e-6)
    assert np.allclose(tool.heat, heat)
    by_fid = {f.id(): f["cell"] for f in tool.layer.getFeatures()}
    assert [by_fid[fid] for fid in tool.highlighted_fids()] == result.cells.tolist()
    info = messages(qgis_iface, Qgis.Info)[-1]
    assert f"{result.scores[0]:.4f}" in info and "nearest cell" in info
    assert "Heat map" not in info  # the legend is in the panel, not in the one-line message
    assert tool_layer_names() == {RESULT_NAME, HEAT_NAME, CLICK_NAME}


def test_the_click_message_reads_whole_in_one_line_of_the_bar(canvas, layer, es, qgis_app):
    """Issue 11: after a click the bar showed up/down arrows and "1 more" (the text held the legend). Every
    kind of query now fits one line of a real message bar in a small QGIS window; the rest is in the panel."""
    from qgis.gui import QgsMessageBar
    from qgis.PyQt.QtWidgets import QMainWindow, QTextBrowser

    window = QMainWindow()
    bar = QgsMessageBar()
    window.setCentralWidget(bar)
    window.resize(1000, 200)
    window.show()
    t = SimilarPlacesTool(canvas, bar, k=10)
    assert t.set_layer(layer)
    panel = SimilarPanel(t)

    def fits():
        for _ in range(5):
            qgis_app.processEvents()
        item = bar.currentItem()
        (browser,) = item.findChildren(QTextBrowser)
        assert browser.verticalScrollBar().maximum() == 0 and len(bar.items()) == 1, (
            item.text(), browser.width(), browser.document().size(), len(bar.items()))  # no '1 more'
        return item.text()

    try:
        click(canvas, t, es.lonlat()[len(es) // 3])
        assert "nearest cell" in fits() and "Left out" in panel.details.text()
        click(canvas, t, es.lonlat()[len(es) // 2], shift=True)
        assert "mean of 2 places" in fits()
        click(canvas, t, _between_cells(es, len(es) // 2))
        assert "embedded on the fly" in fits()
        # the longest: the nearest cell because onnxruntime is missing
        t.references[0].note = "similar places needs the Python package 'onnxruntime', which QGIS's Python cannot import"
        t.references[0].on_the_fly = False
        t.message(t._summary(t.references, t.result))
        assert "onnxruntime missing" in fits()
    finally:
        t.clear(quiet=True)
        window.close()


def test_by_default_one_tile_around_the_click_is_left_out(tool, canvas, es, qgis_iface):
    assert es.meta["tile_size_m"] == 500.0 and tool.exclude_radius_m is None
    clicked = click(canvas, tool, es.lonlat()[len(es) // 3])
    near = planar_m(es, clicked) <= 500
    assert near.sum() >= 20 and (~near).sum() >= 20
    rows = {c: i for i, c in enumerate(es.cell)}
    shown = [rows[c] for c in tool.highlighted_cells()]
    assert len(shown) == 10 and planar_m(es, clicked, shown).min() > 500
    assert tool.result.exclude_radius_m == 500 and tool.result.n_excluded == int(near.sum())
    # ... and they are the best cells beyond the radius.
    beyond = np.flatnonzero(~near)
    best = beyond[np.argsort(-tool.heat[beyond], kind="stable")[:10]]
    assert np.allclose(np.sort(tool.heat[shown]), np.sort(tool.heat[best]))
    assert f"Left out: the {int(near.sum())} cells within 500 m of the click, one tile of the model" in tool.details()


def test_the_panels_exclude_radius_redoes_the_query(tool, canvas, es, qgis_iface):
    row = len(es) // 3
    panel = SimilarPanel(tool)
    assert panel.radius_spin.value() == 500 and tool.exclude_radius_m is None  # one tile, before any click
    assert "one tile" in panel.radius_spin.toolTip() and "0 = off" in panel.radius_spin.toolTip()
    clicked = click(canvas, tool, es.lonlat()[row])
    assert "cells within 500 m left out" in panel.status.text()
    panel.radius_spin.setValue(0)  # off: the clicked cell itself is the best match
    assert tool.exclude_radius_m == 0 and tool.highlighted_cells()[0] == es.cell[row]
    assert tool.result.scores[0] == pytest.approx(1.0, abs=1e-5)
    assert "Nothing left out" in panel.details.text() and "left out" not in panel.status.text()
    panel.radius_spin.setValue(200)
    expected = PlaceSearch(es).highlight([clicked], 10, exclude_radius_m=200)[0]
    assert tool.highlighted_cells() == expected.cells.tolist()
    rows = {c: i for i, c in enumerate(es.cell)}
    assert planar_m(es, clicked, [rows[c] for c in tool.highlighted_cells()]).min() > 200
    assert "cells within 200 m left out" in panel.status.text()
    # A bad radius or more places than are left beyond it: a message, the last result kept.
    assert not tool.set_exclude_radius(float("nan")) and tool.exclude_radius_m == 200
    assert "exclude radius must be 0 or more metres" in messages(qgis_iface, Qgis.Warning)[-1]
    tool.set_k(len(es))
    assert "left after leaving out" in messages(qgis_iface, Qgis.Warning)[-1]
    assert tool.highlighted_cells() == expected.cells.tolist()


def test_k_from_the_panel_redoes_the_query(tool, canvas, es):
    panel = SimilarPanel(tool)
    clicked = click(canvas, tool, es.lonlat()[40])
    panel.k_spin.setValue(4)
    assert tool.highlighted_cells() == PlaceSearch(es).highlight([clicked], 4)[0].cells.tolist()
    assert "4 places" in panel.status.text()


def test_shift_click_adds_a_place_and_queries_their_mean(tool, canvas, es, qgis_iface):
    a = click(canvas, tool, es.lonlat()[25])
    b = click(canvas, tool, es.lonlat()[len(es) - 30], shift=True)
    assert len(tool.references) == 2
    expected = PlaceSearch(es).highlight([a, b], 10)[0]
    assert tool.highlighted_cells() == expected.cells.tolist()
    assert np.allclose(tool.query_vector, query_vector(es, [25, len(es) - 30]))
    assert "mean of 2 places" in messages(qgis_iface, Qgis.Info)[-1]
    click(canvas, tool, es.lonlat()[25])  # a plain click starts over
    assert len(tool.references) == 1


def test_escape_clears_the_layers_and_leaves_the_embeddings_layer_as_it_was(tool, canvas, es, layer):
    before = layer.renderer().dump()
    click(canvas, tool, es.lonlat()[60])
    tool.make_mask(quantile=0.8)
    heat_file = tool.layer_of("heat").source()
    assert tool_layer_names() == TOOL_LAYERS
    tool.keyPressEvent(QKeyEvent(QEvent.KeyPress, Qt.Key_Escape, Qt.NoModifier))
    assert tool_layer_names() == set() and tool.highlighted_cells() == []
    assert tool.heat is None and tool.references == []
    assert layer.renderer().dump() == before and QgsProject.instance().mapLayer(layer.id()) is layer
    assert not os.path.exists(heat_file)


def test_outside_the_embedded_area_is_a_message_and_nothing_highlighted(tool, canvas, es, qgis_iface):
    click(canvas, tool, es.lonlat()[10])
    assert tool.highlighted_cells()
    west, south = es.lonlat().min(axis=0)
    clicked = click(canvas, tool, (west - 0.0015, south - 0.0012))  # inside the canvas, outside the cells
    assert tool.highlighted_cells() == [] and tool_layer_names() == set()
    warning = messages(qgis_iface, Qgis.Warning)[-1]
    assert "outside the embedded area" in warning and "pick a point inside the area" in warning
    assert tool.query_at((clicked[0] - 3, clicked[1])) is False  # far away: the same message, no exception


def test_no_layer_is_a_message(canvas, qgis_iface):
    qgis_iface.messageBar().clear_messages()
    t = SimilarPlacesTool(canvas, qgis_iface.messageBar())
    assert not t.set_layer(QgsVectorLayer("Point?crs=EPSG:4326", "plain", "memory"))
    assert t.query_at((-8.61, 41.14)) is False
    assert "embeddings layer" in messages(qgis_iface, Qgis.Warning)[-1]


# ---- between cells: the clicked point embedded through ONNX ---------------------------------------
def _between_cells(es, row):
    """WGS84 point half a stride east and north of cell ``row`` (the middle of four cells)."""
    x, y = es.xy[row] + es.meta["stride_m"] / 2
    lon, lat = transformer_to_wgs84(es.crs_wkt).transform(x, y)
    return float(lon), float(lat)


def test_between_cells_the_point_is_embedded_on_the_fly(tool, canvas, es, qgis_iface):
    row = int(np.argmin(np.linalg.norm(es.xy - es.xy.mean(axis=0), axis=1)))  # a cell in the middle
    clicked = click(canvas, tool, _between_cells(es, row))
    ref = tool.references[0]
    assert ref.on_the_fly and ref.distance_m > es.meta["stride_m"] / 4
    vector = embed_points(es.meta["model_path"], es.meta["area_path"], [clicked], device="cpu")[1][0]
    assert np.allclose(tool.query_vector, vector, atol=1e-5)
    # The engine's search for the tool's query vector (the same scoring path: the same cells, in order),
    # leaving out one tile around the click as for a click on a cell.
    near = cells_within(es, [clicked], 500.0)
    assert tool.highlighted_cells() == similar(es, tool.query_vector, 10, exclude=near).cells.tolist()
    assert "embedded on the fly" in messages(qgis_iface, Qgis.Info)[-1]


def test_without_the_model_file_a_between_cells_click_uses_the_nearest_cell(canvas, es, emb_path, tmp_path,
                                                                           qgis_iface):
    moved = tmp_path / "moved.gpkg"
    moved.write_bytes(emb_path.read_bytes())
    update_columns(moved, meta_updates={"model_path": str(tmp_path / "gone.onnx")})
    qgis_iface.messageBar().clear_messages()
    t = SimilarPlacesTool(canvas, qgis_iface.messageBar())
    t.set_layer(_layer(moved, "moved"))
    try:
        clicked = click(canvas, t, _between_cells(es, len(es) // 2))
        assert not t.references[0].on_the_fly
        assert t.highlighted_cells() == PlaceSearch(es).highlight([clicked], 10)[0].cells.tolist()
        assert "gone.onnx not found" in t.details() and "nearest cell" in messages(qgis_iface, Qgis.Info)[-1]
    finally:
        t.clear(quiet=True)
        QgsProject.instance().removeAllMapLayers()


# ---- heat map and mask ------------------------------------------------------------------------
def test_heatmap_covers_every_cell_coloured_by_rank(tool, canvas, es):
    from osgeo import gdal

    clicked = click(canvas, tool, es.lonlat()[77])
    heat = PlaceSearch(es).highlight([clicked], 10)[1]
    raster = tool.layer_of("heat")
    assert isinstance(raster, QgsRasterLayer) and raster.name() == HEAT_NAME
    assert isinstance(raster.renderer(), QgsSingleBandPseudoColorRenderer)
    items = raster.renderer().shader().rasterShaderFunction().colorRampItemList()
    assert items[0].label == "least similar" and items[-1].label == "most similar"
    image = gdal.Open(raster.source()).ReadAsArray()
    values = image[image >= 0]
    assert len(values) == len(es)  # one pixel per cell, the rest no data
    assert np.allclose(np.sort(values), np.sort(percentiles(heat)))
    clicked_row = tool.references[0].row  # the most similar cell to itself (left out of the top k only)
    col, row = tool.current_search().grid.cols[clicked_row], tool.current_search().grid.rows[clicked_row]
    assert image[row, col] == pytest.approx(100.0)


def test_cells_off_a_grid_get_a_point_heatmap(canvas, tmp_path):
    """Cells not on one regular grid (e.g. embedded points) cannot be a raster: the heat map is points."""
    from pyproj import CRS

    from loc2vec_engine.embeddings import write_embeddings

    rng = np.random.default_rng(3)
    xy = np.array([532500.0, 4555500.0]) + rng.uniform(0, 600, (40, 2))
    v = rng.normal(size=(40, 16)).astype("f4")
    path = write_embeddings(tmp_path / "points.gpkg", xy, v / np.linalg.norm(v, axis=1, keepdims=True),
                            CRS(32629).to_wkt(), {"model_sha256": "x", "stride_m": 60})
    t = SimilarPlacesTool(canvas, k=5, exclude_radius_m=0)  # 0: all 40 points lie within a tile of each other
    t.set_layer(_layer(path, "points"))
    try:
        lon, lat = transformer_to_wgs84(CRS(32629).to_wkt()).transform(*xy[7])
        assert t.query_at((lon, lat)), t.last_message
        heat = t.layer_of("heat")
        assert isinstance(heat, QgsVectorLayer) and heat.featureCount() == 40
        by_cell = {f["cell"]: f["percentile"] for f in heat.getFeatures()}
        assert by_cell[t.highlighted_cells()[0]] == pytest.approx(100.0)
        labels = [r.label() for r in heat.renderer().ranges()]
        assert labels[-1] == "similarity rank 90–100 %"
        far = int(np.argmax(np.linalg.norm(xy - xy[7], axis=1)))  # a negative away from the click
        lon, lat = transformer_to_wgs84(CRS(32629).to_wkt()).transform(*xy[far])
        assert not t.scoring.add_negative((lon, lat))  # a score mask needs a grid: refused, in words
        assert "not on a square grid" in t.last_message[0] and "loc2vec embed" in t.last_message[0]
        assert t.scoring.result is None and t.layer_of("heat").name() == HEAT_NAME  # the similarity stays
    finally:
        t.clear(quiet=True)
        QgsProject.instance().removeAllMapLayers()


def test_threshold_mask_holds_the_cells_at_or_above_it_and_saves(tool, canvas, es, tmp_path):
    panel = SimilarPanel(tool)
    clicked = click(canvas, tool, es.lonlat()[120])
    heat = PlaceSearch(es).highlight([clicked], 10)[1]
    panel.slider.setValue(800)  # top 20 %
    threshold = np.quantile(heat, 0.8)
    mask = tool.layer_of("mask")
    assert mask.name() == MASK_NAME and tool.mask_threshold == pytest.approx(threshold)
    assert mask.featureCount() == int((heat >= threshold).sum())
    assert sorted(f["cell"] for f in mask.getFeatures()) == sorted(es.cell[heat >= threshold].tolist())
    assert panel.save_button.isEnabled()
    out = tmp_path / "mask.gpkg"
    assert panel.save_mask(out)
    saved = QgsVectorLayer(f"{out}|layername=similar_mask", "saved", "ogr")
    assert saved.isValid() and saved.featureCount() == mask.featureCount()
    assert saved.crs() == tool.layer.crs()
    assert not list(tmp_path.glob(".*part*"))
    assert tool.make_mask(threshold=float(heat.max())).featureCount() == int((heat >= heat.max()).sum())


def test_saving_without_a_mask_is_a_message(tool, tmp_path, qgis_iface):
    panel = SimilarPanel(tool)
    assert not panel.save_mask(tmp_path / "none.gpkg")
    assert "no mask" in messages(qgis_iface, Qgis.Warning)[-1]
    assert not (tmp_path / "none.gpkg").exists()


# ---- the plugin's toolbar, menu and docks --------------------------------------------------------
def test_plugin_adds_the_tools_and_removes_them_on_unload(qgis_iface, layer, es, emb_path):
    from loc2vec_qgis.algorithms import train
    from loc2vec_qgis.plugin import Loc2VecPlugin

    plugin = Loc2VecPlugin(qgis_iface)
    plugin.initGui()
    titles = [a.text() for a in plugin.toolbar.actions()]
    assert titles == ["loc2vec: find similar places", "loc2vec: UMAP of embeddings", "loc2vec: training"]
    canvas = qgis_iface.mapCanvas()
    plain = QgsVectorLayer("Point?crs=EPSG:4326", "plain", "memory")
    QgsProject.instance().addMapLayer(plain)
    qgis_iface.setActiveLayer(plain)
    plugin.similar_action.trigger()
    assert plugin.similar_action.isChecked() and canvas.mapTool() is plugin.similar_tool
    assert plugin.similar_tool.layer is layer  # not the active (plain) layer: the project's embeddings layer
    qgis_iface.setActiveLayer(layer)
    assert plugin.similar_tool.query_at(es.lonlat()[5])
    assert len(plugin.similar_tool.highlighted_cells()) == 10
    plugin.umap_action.trigger()
    assert "Cluster embeddings" in plugin.umap_dock.status.text()  # not clustered yet: the dock says so
    other = _layer(emb_path, "second")
    plugin.current_layer_changed(other)  # what iface.currentLayerChanged calls (the test iface cannot emit it)
    assert plugin.similar_tool.layer is other
    plugin.current_layer_changed(plain)
    assert plugin.similar_tool.layer is other  # a non-embeddings layer leaves the tool where it was
    plugin.training_action.trigger()
    listener = plugin.training_dock.listener
    assert listener in train.RUN_STARTED_LISTENERS
    tool = plugin.similar_tool
    assert tool.query_at(es.lonlat()[5]) and tool_layer_names()
    plugin.unload()
    assert listener not in train.RUN_STARTED_LISTENERS
    assert canvas.mapTool() is not tool and tool_layer_names() == set()
    assert plugin.toolbar is None and plugin.actions == [] and plugin.similar_tool is None


def test_plugin_gui_load_is_light(tmp_path):
    """initGui with an interface (toolbar, menu) imports neither pyqtgraph nor onnxruntime nor faiss."""
    code = textwrap.dedent("""
        import sys
        from qgis.core import QgsApplication
        app = QgsApplication([], True)
        app.initQgis()
        from qgis.gui import QgsMapCanvas, QgsMessageBar
        from qgis.PyQt.QtCore import QObject, pyqtSignal
        from qgis.PyQt.QtWidgets import QMainWindow, QToolBar

        class Iface(QObject):  # the part of QgisInterface the plugin uses
            currentLayerChanged = pyqtSignal(object)

            def __init__(self):
                super().__init__()
                self.window, self.canvas, self.bar, self.menu = QMainWindow(), QgsMapCanvas(), QgsMessageBar(), []

            def mainWindow(self): return self.window
            def mapCanvas(self): return self.canvas
            def messageBar(self): return self.bar
            def activeLayer(self): return None
            def addToolBar(self, name): return self.window.addToolBar(name)
            def addPluginToMenu(self, menu, action): self.menu.append(action)
            def removePluginMenu(self, menu, action): self.menu.remove(action)
            def addDockWidget(self, area, dock): self.window.addDockWidget(area, dock)
            def removeDockWidget(self, dock): self.window.removeDockWidget(dock)

        import loc2vec_qgis
        iface = Iface()
        plugin = loc2vec_qgis.classFactory(iface)
        plugin.initGui()
        assert len(plugin.actions) == 3 and len(iface.menu) == 3
        heavy = sorted(m for m in ("torch", "onnxruntime", "faiss", "pyqtgraph", "sklearn", "umap", "matplotlib",
                                   "osgeo", "pyproj") if m in sys.modules)
        assert not heavy, f"imported at plugin load: {heavy}"
        plugin.unload()
        from qgis.PyQt.QtCore import QCoreApplication, QEvent
        QCoreApplication.sendPostedEvents(None, QEvent.DeferredDelete)
        assert iface.menu == [] and not iface.window.findChildren(QToolBar, "loc2vec_toolbar")
        print("ok")
    """)
    env = sandbox_env(tmp_path)
    env["PYTHONPATH"] = str(REPO)
    proc = subprocess.run([sys.executable, "-c", code], env=env, cwd=tmp_path, capture_output=True, text=True,
                          timeout=60)
    assert proc.returncode == 0 and "ok" in proc.stdout, proc.stderr[-3000:]


# ---- the README's screenshots ------------------------------------------------------------------
@pytest.mark.parametrize("name", ["similar_places.png", "clusters_map.png"])
def test_docs_screenshots_are_committed(name):
    """Made by scripts/render_docs_screenshots.py with the real tool and QGIS renderer."""
    from qgis.PyQt.QtGui import QImage

    path = REPO / "docs" / name
    image = QImage(str(path))
    assert not image.isNull(), f"{path} missing: run scripts/render_docs_screenshots.py"
    assert (image.width(), image.height()) == (1000, 800) and path.stat().st_size < 400_000

