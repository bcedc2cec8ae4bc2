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


def mask_size(mask):
    """(cells, m²) of the mask layer: the sum over its polygons (the cells field, and the geometry)."""
    feats = list(mask.getFeatures())
    return sum(f["cells"] for f in feats), sum(f.geometry().area() for f in feats)


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
    stride = es.meta["stride_m"]
    cells, area = mask_size(mask)
    assert cells == int((values >= tool.scoring.threshold).sum()) == expected.mask.cells
    assert area == pytest.approx(cells * stride ** 2)
    assert mask.featureCount() == expected.mask.geometry.GetGeometryCount()  # a feature per group of cells
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
        assert tool.scoring.layer_of("mask") is mask  # the same layer, its features changed in place
        cells = int((values >= t).sum())
        assert mask_size(mask) == (cells, pytest.approx(cells * stride ** 2))
        assert sum(f["area_km2"] for f in mask.getFeatures()) == pytest.approx(cells * stride ** 2 / 1e6)
        assert all(f["threshold"] == pytest.approx(t) for f in mask.getFeatures())
        assert f"{cells:,} cells" in view.threshold_label.text()
        areas.append(mask_size(mask)[1])
    assert areas[0] > areas[1] > areas[2] > 0
    view.slider.setValue(1000)  # the highest score: its cell alone
    assert mask_size(mask)[0] == int((values >= values.max()).sum())
    panel.deleteLater()


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
