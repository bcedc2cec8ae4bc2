"""Scoring from examples in the "Find similar places" map tool, clicked on a real offscreen canvas with the
shipped model's Porto embeddings: Ctrl-click adds a negative, every cell is scored by the engine, the
threshold slider moves the mask, the examples save to GeoJSON and load back, Esc clears the picture."""

import json

import numpy as np
import pytest
from qgis.core import Qgis, QgsCoordinateTransform, QgsPointXY, QgsProject, QgsRasterLayer
from qgis.gui import QgsMapMouseEvent
from qgis.PyQt.QtCore import QEvent, QPoint, Qt
from qgis.PyQt.QtTest import QTest

from loc2vec_engine import ATTRIBUTION
from loc2vec_engine.scoring import score_embeddings
from loc2vec_qgis.gui.score_examples import NEGATIVES_NAME, SCORE_HEAT_NAME, SCORE_MASK_NAME
from loc2vec_qgis.gui.score_view import PainterHistogram, PgHistogram, ScoreView
from loc2vec_qgis.gui.similar_panel import SimilarPanel
from loc2vec_qgis.gui.similar_tool import CLICK_NAME, HEAT_NAME, RESULT_NAME, percentiles

from .test_similar_picture import bridged, changed_share, pixel_of, settled  # noqa: F401  a canvas drawing the project
from .test_similar_tool import (  # noqa: F401  the module's fixtures: real Porto embeddings on a canvas
    WGS84,
    canvas,
    emb_path,
    es,
    layer,
    map_canvas,
    messages,
    tool,
)

ALL_LAYERS = {RESULT_NAME, HEAT_NAME, CLICK_NAME, SCORE_HEAT_NAME, SCORE_MASK_NAME, NEGATIVES_NAME, "similar mask"}


def press(canvas, tool, lonlat, modifiers=Qt.NoModifier):
    """A real left-button release at the pixel of ``lonlat`` with ``modifiers``; the WGS84 point the tool got."""
    to_map = QgsCoordinateTransform(WGS84, canvas.mapSettings().destinationCrs(), QgsProject.instance())
    px = canvas.getCoordinateTransform().transform(to_map.transform(QgsPointXY(*lonlat)))
    event = QgsMapMouseEvent(canvas, QEvent.MouseButtonRelease, QPoint(round(px.x()), round(px.y())), Qt.LeftButton,
                             Qt.LeftButton, modifiers)
    tool.canvasReleaseEvent(event)
    back = QgsCoordinateTransform(canvas.mapSettings().destinationCrs(), WGS84, QgsProject.instance())
    p = back.transform(event.mapPoint())
    return p.x(), p.y()


def mask_ranks(mask) -> np.ndarray:
    """(height, width) int32 ranks in the mask layer's raster (-1: no cell)."""
    from osgeo import gdal

    return gdal.Open(mask.source()).ReadAsArray()


def drawn_cells(mask, order) -> np.ndarray:
    """(N,) bool, per cell: drawn purple when QGIS renders the mask layer at one pixel per raster pixel.

    Also checks that a cell is drawn in all of its pixels or none (the renderer colours by rank alone)."""
    from qgis.core import QgsMapRendererSequentialJob, QgsMapSettings
    from qgis.PyQt.QtCore import QSize
    from qgis.PyQt.QtGui import QColor

    from .test_similar_picture import pixels

    settings = QgsMapSettings()
    settings.setLayers([mask])
    settings.setDestinationCrs(mask.crs())
    settings.setExtent(mask.extent())
    settings.setOutputSize(QSize(mask.width(), mask.height()))
    settings.setBackgroundColor(QColor("white"))
    job = QgsMapRendererSequentialJob(settings)
    job.start()
    job.waitForFinished()
    rgb = pixels(job.renderedImage())
    purple = (rgb[..., 0] < 250) | (rgb[..., 1] < 250)  # the purple over white; clear pixels stay white
    ranks = mask_ranks(mask)
    assert purple.shape == ranks.shape
    drawn = np.unique(ranks[purple])
    assert (drawn >= 0).all() and not np.isin(ranks[~purple], drawn).any()
    return np.isin(order.rank, drawn)


def mask_size(mask, order) -> int:
    """The cells the mask draws."""
    return int(drawn_cells(mask, order).sum())


def shown_layers():
    return {lyr.name() for lyr in QgsProject.instance().mapLayers().values()} & ALL_LAYERS


@pytest.fixture(scope="module")
def places(es):
    """Rows (positive, a second positive, negative): the negative is the cell least like the first positive."""
    cos = es.vectors @ es.vectors[len(es) // 3]
    pos = len(es) // 3
    second = int(np.argsort(-cos)[5])
    return pos, second, int(np.argmin(cos))


def test_ctrl_click_adds_a_negative_and_every_cell_is_scored(bridged, tool, es, places, qgis_iface):
    pos, _, neg = places
    view = ScoreView(tool)
    p = press(bridged, tool, es.lonlat()[pos])
    assert tool.scoring.result is None and not view.slider.isEnabled()  # a click alone: similar places
    n = press(bridged, tool, es.lonlat()[neg], Qt.ControlModifier)
    assert tool.scoring.negatives == [pytest.approx(n)] and len(tool.references) == 1
    # The engine's scoring of the two places, every cell.
    expected = score_embeddings(es, [p], [n])
    values = tool.scoring.result.scores.values
    np.testing.assert_array_equal(values, expected.scores.values)
    assert tool.scoring.result.scores.method == "prototype"
    pct = percentiles(values)
    assert pct[pos] >= 95 and pct[neg] <= 5  # the positive's own cell scores high, the negative's low
    assert values[pos] > tool.scoring.threshold > values[neg]
    # The score is the heat map (one pixel per cell, by rank), the mask the cells at or above the threshold.
    heat = tool.layer_of("heat")
    assert isinstance(heat, QgsRasterLayer) and heat.name() == SCORE_HEAT_NAME
    from osgeo import gdal

    image = gdal.Open(heat.source()).ReadAsArray()
    assert np.allclose(np.sort(image[image >= 0]), np.sort(pct))
    mask = tool.scoring.layer_of("mask")
    order = tool.scoring.order
    cells = mask_size(mask, order)
    assert cells == int((values >= tool.scoring.threshold).sum()) == expected.mask.cells
    # Drawn where the engine's traced mask is: the same cells.
    assert np.array_equal(drawn_cells(mask, order), values >= tool.scoring.threshold)
    assert shown_layers() == {RESULT_NAME, CLICK_NAME, SCORE_HEAT_NAME, SCORE_MASK_NAME, NEGATIVES_NAME}
    # The negative is a red cross on the map, drawn over the heat map; the positive keeps its black star.
    negatives = tool.scoring.layer_of("negatives")
    assert negatives.featureCount() == 1 and negatives.renderer().symbol().symbolLayer(0).shape() is not None
    picture = settled(bridged)
    x, y = pixel_of(bridged, n)
    red = picture[y - 2:y + 3, x - 2:x + 3].reshape(-1, 3)
    assert ((red[:, 0] > 170) & (red[:, 1] < 90) & (red[:, 2] < 90)).any(), red.tolist()
    x, y = pixel_of(bridged, p)
    assert picture[y - 1:y + 2, x - 1:x + 2].max() < 60  # the star
    # The message bar and the panel say what ran.
    assert "Scored" in messages(qgis_iface, Qgis.Info)[-1] and "prototype" in messages(qgis_iface, Qgis.Info)[-1]
    assert view.slider.isEnabled() and "Method: prototype" in view.method_label.text()
    assert "not measured" in view.method_label.text()  # one positive: no leave-one-out yet
    assert f"{cells:,} cells" in view.threshold_label.text()
    # Shift-click: a second positive, scored again (and now held out, leave-one-out).
    press(bridged, tool, es.lonlat()[places[1]], Qt.ShiftModifier)
    assert len(tool.references) == 2 and len(tool.scoring.result.positives) == 2
    assert "leave-one-out" in view.method_label.text() and "ROC AUC" in view.method_label.text()
    view.deleteLater()


def test_the_slider_moves_the_threshold_and_the_mask_follows(tool, canvas, es, places):
    pos, second, neg = places
    panel = SimilarPanel(tool)
    view = panel.score
    press(canvas, tool, es.lonlat()[pos])
    press(canvas, tool, es.lonlat()[second], Qt.ShiftModifier)
    press(canvas, tool, es.lonlat()[neg], Qt.ControlModifier)
    values, stride = tool.scoring.result.scores.values, es.meta["stride_m"]
    mask = tool.scoring.layer_of("mask")
    areas = []
    for position in (100, 500, 900):
        view.slider.setValue(position)  # live: every position moves the mask
        t = view.threshold_at(position)
        assert tool.scoring.threshold == pytest.approx(t) and view.histogram.threshold == pytest.approx(t)
        assert tool.scoring.layer_of("mask") is mask  # the same layer, redrawn with the new cut
        cells = int((values >= t).sum())
        assert np.array_equal(drawn_cells(mask, tool.scoring.order), values >= t)
        assert tool.scoring.mask.cells == cells and tool.scoring.mask.area_km2 == pytest.approx(cells * stride ** 2 / 1e6)
        assert f"{cells:,} cells" in view.threshold_label.text()
        areas.append(tool.scoring.mask.area_km2)
    assert areas[0] > areas[1] > areas[2] > 0
    view.slider.setValue(1000)  # the highest score: its cell alone
    assert mask_size(mask, tool.scoring.order) == int((values >= values.max()).sum())
    panel.deleteLater()


def test_ties_at_the_threshold_are_all_in_the_mask(tool, canvas, es, places):
    """Cells of equal score fall on the same side of any threshold, as in the engine's ``scores >= t``."""
    pos, _, neg = places
    press(canvas, tool, es.lonlat()[pos])
    press(canvas, tool, es.lonlat()[neg], Qt.ControlModifier)
    result = tool.scoring.result
    values = result.scores.values
    values[:] = np.round(values, 1)  # a handful of distinct scores, hundreds of cells each
    tool.scoring.show(tool.current_search(), result)
    mask = tool.scoring.layer_of("mask")
    for t in np.unique(values)[1:3]:
        tool.scoring.set_threshold(float(t))
        assert mask_size(mask, tool.scoring.order) == int((values >= t).sum()) == tool.scoring.mask.cells


def test_the_mask_is_warped_once_to_the_canvas_crs_each_pixel_holding_the_cell_under_it(tool, canvas, es, places):
    """Under a web basemap (EPSG:3857) the mask raster is in the canvas CRS, so that the slider's redraws do
    not reproject it; in the grid's CRS it is the embedding grid itself, one pixel per cell."""
    from pyproj import Transformer

    from loc2vec_engine.scoring.mask import rank_plane

    pos, _, neg = places
    press(canvas, tool, es.lonlat()[pos])
    press(canvas, tool, es.lonlat()[neg], Qt.ControlModifier)
    layout, order = tool.scoring.result.layout, tool.scoring.order
    plane = rank_plane(layout, order)
    mask = tool.scoring.layer_of("mask")
    assert mask.crs() == canvas.mapSettings().destinationCrs() != tool.layer.crs()
    ranks = mask_ranks(mask)
    ext, h, w = mask.extent(), mask.height(), mask.width()
    px, py = mask.rasterUnitsPerPixelX(), mask.rasterUnitsPerPixelY()
    cx, cy = np.meshgrid(ext.xMinimum() + px * (np.arange(w) + 0.5), ext.yMaximum() - py * (np.arange(h) + 0.5))
    x, y = Transformer.from_crs(mask.crs().authid(), tool.layer.crs().toWkt(), always_xy=True).transform(cx, cy)
    gt = layout.geotransform
    col, row = np.floor((x - gt[0]) / gt[1]).astype(int), np.floor((y - gt[3]) / gt[5]).astype(int)
    inside = (col >= 0) & (col < layout.cols) & (row >= 0) & (row < layout.rows)
    under = np.full(ranks.shape, -1)
    under[inside] = plane[row[inside], col[inside]]
    agree = (ranks == under).mean()  # the transform approximated to 0.001 pixel: a pixel centre that close
    assert agree > 0.999, agree       # to a cell's edge may take the neighbour (1 in about 4,000)
    assert set(np.unique(ranks[ranks >= 0])) == set(range(len(order)))  # no cell lost in the warp
    # In the grid's CRS: the grid itself.
    canvas.setDestinationCrs(tool.layer.crs())
    tool.scoring.show(tool.current_search(), tool.scoring.result)
    mask = tool.scoring.layer_of("mask")
    assert mask.crs() == tool.layer.crs() and np.array_equal(mask_ranks(mask), plane)
    assert mask.rasterUnitsPerPixelX() == mask.rasterUnitsPerPixelY() == es.meta["stride_m"]


def test_save_mask_writes_the_traced_polygons_and_adds_them(tool, canvas, es, places, tmp_path, qgis_iface):
    from osgeo import ogr

    pos, second, neg = places
    view = ScoreView(tool)
    assert not view.mask_button.isEnabled()
    assert not view.save_mask(tmp_path / "none.gpkg")  # nothing scored: a message, no file
    assert "no score mask to save" in messages(qgis_iface, Qgis.Warning)[-1] and not list(tmp_path.iterdir())
    press(canvas, tool, es.lonlat()[pos])
    press(canvas, tool, es.lonlat()[neg], Qt.ControlModifier)
    view.slider.setValue(600)
    values, stride, t = tool.scoring.result.scores.values, es.meta["stride_m"], tool.scoring.threshold
    path = tmp_path / "mask.gpkg"
    assert view.mask_button.isEnabled() and view.save_mask(path)
    assert "saved to" in messages(qgis_iface, Qgis.Success)[-1]
    ds = ogr.Open(str(path))
    lyr = ds.GetLayerByName("mask")
    f = lyr.GetNextFeature()
    cells = int((values >= t).sum())
    assert f["cells"] == cells and f["threshold"] == pytest.approx(t)
    assert f.GetGeometryRef().GetArea() == pytest.approx(cells * stride ** 2)
    assert lyr.GetMetadata()["attribution"] == ATTRIBUTION
    f = lyr = ds = None
    added = [lyr for lyr in QgsProject.instance().mapLayers().values() if lyr.source().startswith(str(path))]
    assert len(added) == 1 and added[0].featureCount() == 1
    QgsProject.instance().removeMapLayer(added[0].id())
    assert not view.save_mask(tmp_path / "no" / "such" / "folder" / "mask.gpkg")  # a message, nothing written
    assert "folder" in messages(qgis_iface, Qgis.Warning)[-1] and "does not exist" in messages(qgis_iface, Qgis.Warning)[-1]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["mask.gpkg"]
    view.deleteLater()


@pytest.mark.parametrize("pyqtgraph", [True, False])
def test_the_histogram_draws_the_threshold(tool, canvas, es, places, pyqtgraph):
    pos, _, neg = places
    view = ScoreView(tool, use_pyqtgraph=pyqtgraph)
    assert isinstance(view.histogram, PgHistogram if pyqtgraph else PainterHistogram)
    press(canvas, tool, es.lonlat()[pos])
    press(canvas, tool, es.lonlat()[neg], Qt.ControlModifier)
    hist, values = view.histogram, tool.scoring.result.scores.values
    assert hist.counts.sum() == len(es) and hist.edges[0] == values.min() and hist.edges[-1] == values.max()
    view.slider.setValue(700)
    if pyqtgraph:
        assert hist.line.value() == pytest.approx(view.threshold_at(700))
        return
    hist.resize(300, 120)
    image = hist.grab().toImage()
    x = int(hist.x_of(view.threshold_at(700)))
    red = [x + dx for dx in range(-1, 3) if _rgb(image, x + dx, 60)[0] > 180 and _rgb(image, x + dx, 60)[1] < 80]
    assert red, [_rgb(image, x + dx, 60) for dx in range(-1, 3)]  # the red threshold line where the score is
    view.deleteLater()


def _rgb(image, x, y):
    c = image.pixelColor(x, y)
    return c.red(), c.green(), c.blue()


def test_save_and_load_round_trip_the_examples(tool, canvas, es, places, tmp_path, qgis_iface):
    pos, second, neg = places
    view = ScoreView(tool)
    a = press(canvas, tool, es.lonlat()[pos])
    b = press(canvas, tool, es.lonlat()[second], Qt.ShiftModifier)
    n = press(canvas, tool, es.lonlat()[neg], Qt.ControlModifier)
    before = tool.scoring.result.scores.values.copy()
    path = tmp_path / "examples.geojson"
    assert view.save(path) and "saved" in messages(qgis_iface, Qgis.Success)[-1]
    data = json.loads(path.read_text(encoding="utf-8"))  # valid GeoJSON, WGS84, with the attribution
    assert data["type"] == "FeatureCollection" and data["attribution"] == ATTRIBUTION
    assert data["crs"]["properties"]["name"].endswith("CRS84") and data["embeddings"] == emb_path_name(tool)
    got = [(f["properties"]["example"], f["geometry"]["coordinates"]) for f in data["features"]]
    assert [role for role, _ in got] == ["positive", "positive", "negative"]
    assert np.allclose([c for _, c in got], [a, b, n], atol=1e-6)
    tool.clear()
    assert tool.scoring.result is None and shown_layers() == set()
    assert tool.scoring.load(path)
    assert np.allclose([r.lonlat for r in tool.references], [a, b], atol=1e-6)
    assert np.allclose(tool.scoring.negatives, [n], atol=1e-6)
    np.testing.assert_allclose(tool.scoring.result.scores.values, before, atol=1e-6)
    assert NEGATIVES_NAME in shown_layers() and SCORE_MASK_NAME in shown_layers()
    # A file that is not an example set: a message, and what is shown stays.
    bad = tmp_path / "bad.geojson"
    bad.write_text('{"type": "FeatureCollection", "features": [{"type": "Feature", "properties": {}, '
                   '"geometry": {"type": "Point", "coordinates": [-8.61, 41.14]}}]}')
    assert not tool.scoring.load(bad)
    assert "has no property \"example\"" in messages(qgis_iface, Qgis.Warning)[-1]
    assert len(tool.references) == 2 and tool.scoring.result is not None
    view.deleteLater()


def emb_path_name(tool):
    from loc2vec_qgis.gui.similar_search import layer_path

    return layer_path(tool.layer).name


def test_escape_clears_the_examples_the_score_and_the_picture(bridged, tool, es, places):
    pos, _, neg = places
    view = ScoreView(tool)
    before = settled(bridged)
    press(bridged, tool, es.lonlat()[pos])
    press(bridged, tool, es.lonlat()[neg], Qt.ControlModifier)
    view.slider.setValue(300)
    heat_file = tool.layer_of("heat").source()
    shown = settled(bridged)
    assert changed_share(before, shown) > 0.2, "the score heat map was not drawn"
    QTest.keyClick(bridged, Qt.Key_Escape)  # a real key event to the canvas, which hands it to the map tool
    assert shown_layers() == set() and tool.scoring.negatives == [] and tool.scoring.result is None
    assert changed_share(before, settled(bridged)) < 0.005, "the canvas still shows the cleared score"
    import os

    assert not os.path.exists(heat_file)
    assert not view.slider.isEnabled() and view.method_label.text() == ""
    view.deleteLater()


def test_a_negative_first_waits_for_a_positive_and_one_in_its_cell_is_refused(tool, canvas, es, places, qgis_iface):
    pos, _, neg = places
    press(canvas, tool, es.lonlat()[neg], Qt.ControlModifier)  # before any positive: the cross alone
    assert shown_layers() == {NEGATIVES_NAME} and "now click a place" in messages(qgis_iface, Qgis.Info)[-1]
    press(canvas, tool, es.lonlat()[pos])  # the first positive: scored at once
    assert tool.scoring.result is not None and len(tool.scoring.result.negatives) == 1
    kept = tool.scoring.result
    press(canvas, tool, es.lonlat()[pos], Qt.ControlModifier)  # the positive's own cell as a negative
    assert "both a positive and a negative" in messages(qgis_iface, Qgis.Warning)[-1]
    assert len(tool.scoring.negatives) == 1 and tool.scoring.result is kept
    west, south = es.lonlat().min(axis=0)
    press(canvas, tool, (west - 0.0015, south - 0.0012), Qt.ControlModifier)  # outside the embedded area
    assert "outside the embedded area" in messages(qgis_iface, Qgis.Warning)[-1] and len(tool.scoring.negatives) == 1


def test_score_scores_the_clicked_places_alone(tool, canvas, es, places):
    pos, second, _ = places
    view = ScoreView(tool)
    assert not view.score_button.isEnabled()
    a = press(canvas, tool, es.lonlat()[pos])
    b = press(canvas, tool, es.lonlat()[second], Qt.ShiftModifier)
    assert view.score_button.isEnabled() and tool.scoring.result is None
    view.score_button.click()
    expected = score_embeddings(es, [a, b])
    np.testing.assert_array_equal(tool.scoring.result.scores.values, expected.scores.values)
    assert tool.layer_of("heat").name() == SCORE_HEAT_NAME and "no negatives" not in view.method_label.text()
    assert "cosine to the mean positive" in view.method_label.text()
    view.deleteLater()


def test_a_new_score_scrolls_the_dock_to_the_score_section(tool, canvas, es, places):
    """The dock is taller than a desktop's side panel: after a Ctrl-click the histogram and the slider are
    scrolled into view (they sit below the similar-places controls)."""
    pos, _, neg = places
    panel = SimilarPanel(tool)
    panel.resize(300, 500)
    panel.show()
    press(canvas, tool, es.lonlat()[pos])
    QTest.qWait(20)
    bar = panel.scroll.verticalScrollBar()
    assert bar.maximum() > 0 and bar.value() == 0  # a click alone: the similar places at the top

    def score_top():
        return panel.score.mapTo(panel.scroll.viewport(), QPoint(0, 0)).y()

    assert score_top() > panel.scroll.viewport().height()  # the score section out of sight
    press(canvas, tool, es.lonlat()[neg], Qt.ControlModifier)
    QTest.qWait(20)
    assert bar.value() > 0 and abs(score_top()) <= 1  # the section's top at the dock's top
    slider_bottom = panel.score.slider.mapTo(panel.scroll.viewport(), QPoint(0, panel.score.slider.height())).y()
    assert 0 < slider_bottom <= panel.scroll.viewport().height()  # the slider is on screen
    panel.close()
    panel.deleteLater()


def test_a_ctrl_click_on_a_negative_takes_it_back(tool, canvas, es, places, qgis_iface):
    pos, second, neg = places
    others = np.argsort(es.vectors @ es.vectors[pos])[:40]  # unlike the positive, in other cells than ``neg``
    other = int(next(r for r in others if r != neg))
    view = ScoreView(tool)
    a = press(canvas, tool, es.lonlat()[pos])
    press(canvas, tool, es.lonlat()[neg], Qt.ControlModifier)
    n2 = press(canvas, tool, es.lonlat()[other], Qt.ControlModifier)
    assert len(tool.scoring.negatives) == 2 and len(tool.scoring.result.negatives) == 2
    press(canvas, tool, es.lonlat()[neg], Qt.ControlModifier)  # the first negative's cell again: taken back
    assert len(tool.scoring.negatives) == 1
    expected = score_embeddings(es, [a], [n2])  # the score of what is left, as the engine gives it
    np.testing.assert_array_equal(tool.scoring.result.scores.values, expected.scores.values)
    assert tool.layer_of("heat").name() == SCORE_HEAT_NAME and view.slider.isEnabled()
    press(canvas, tool, es.lonlat()[other], Qt.ControlModifier)  # the last one: back to the similarity
    assert tool.scoring.negatives == [] and tool.scoring.result is None
    assert "no negatives are left" in messages(qgis_iface, Qgis.Info)[-1]
    assert tool.layer_of("heat").name() == HEAT_NAME and SCORE_MASK_NAME not in shown_layers()
    assert NEGATIVES_NAME not in shown_layers() and not view.slider.isEnabled()
    view.deleteLater()
