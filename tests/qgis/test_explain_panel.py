""""Why alike" in real QGIS: the similar-places dock after a click on an offscreen canvas, and the EXPLAIN columns
of the Processing algorithm, both checked against the engine's explanation (shipped model, real Porto tiles)."""

import shutil

import numpy as np
import pytest
from qgis.core import (QgsCoordinateReferenceSystem, QgsCoordinateTransform, QgsPointXY, QgsProcessingFeedback,
                       QgsProject, QgsVectorLayer)
from qgis.gui import QgsMapCanvas, QgsMapMouseEvent
from qgis.PyQt.QtCore import QEvent, QPoint, Qt

from loc2vec_engine.embeddings import read_embeddings, update_columns
from loc2vec_engine.explain import explain_columns, explain_similar
from loc2vec_engine.search.similar import similar_at
from loc2vec_qgis.gui.similar_panel import SimilarPanel
from loc2vec_qgis.gui.similar_tool import SimilarPlacesTool

import processing  # noqa: E402

WGS84 = QgsCoordinateReferenceSystem("EPSG:4326")
RIBEIRA = (-8.6110, 41.1405)


@pytest.fixture(scope="module")
def emb_path(porto_area, tmp_path_factory):
    from loc2vec_engine.embeddings.embed import embed_area

    out = tmp_path_factory.mktemp("explain_panel") / "porto_100m.gpkg"
    embed_area("default", porto_area, out, stride_m=100, device="cpu", progress=lambda f, m: None)
    return out


@pytest.fixture(scope="module")
def es(emb_path):
    return read_embeddings(emb_path)


@pytest.fixture(scope="module")
def map_canvas(qgis_app):
    canvas = QgsMapCanvas()
    canvas.setFrameStyle(0)
    canvas.resize(800, 600)
    canvas.show()
    qgis_app.processEvents()
    yield canvas
    canvas.hide()
    canvas.deleteLater()


def _tool(canvas, path, qgis_iface):
    layer = QgsVectorLayer(f"{path}|layername=embeddings", "embeddings", "ogr")
    assert layer.isValid()
    QgsProject.instance().addMapLayer(layer)
    canvas.setDestinationCrs(layer.crs())
    extent = layer.extent()
    extent.scale(1.2)
    canvas.setExtent(extent)
    tool = SimilarPlacesTool(canvas, qgis_iface.messageBar(), k=5)
    assert tool.set_layer(layer)
    canvas.setMapTool(tool)
    return tool


@pytest.fixture()
def tool(map_canvas, emb_path, qgis_iface):
    t = _tool(map_canvas, emb_path, qgis_iface)
    yield t
    map_canvas.unsetMapTool(t)
    t.clear(quiet=True)
    QgsProject.instance().removeAllMapLayers()


def click(canvas, tool, lonlat):
    """A real mouse release at the canvas pixel of WGS84 ``lonlat``."""
    to_map = QgsCoordinateTransform(WGS84, canvas.mapSettings().destinationCrs(), QgsProject.instance())
    px = canvas.getCoordinateTransform().transform(to_map.transform(QgsPointXY(*lonlat)))
    tool.canvasReleaseEvent(QgsMapMouseEvent(canvas, QEvent.MouseButtonRelease, QPoint(round(px.x()), round(px.y())),
                                             Qt.LeftButton, Qt.LeftButton, Qt.NoModifier))


def test_the_panel_explains_the_first_place_then_the_chosen_one(tool, map_canvas, es):
    panel = SimilarPanel(tool)
    view = panel.explain
    assert "click a place" in view.words.text() and view.rows() == []
    click(map_canvas, tool, RIBEIRA)
    assert tool.result is not None
    search = tool.current_search()
    expected = explain_similar(es, tool.result, query_xy=search.query_xy(tool.references))
    e = view.explanation
    assert e.rank == 1 and e.cell == tool.result.cells[0] and e.text == expected[0].text
    assert e.cosine == pytest.approx(float(tool.result.scores[0]), abs=1e-4)  # the clicked tile, re-embedded
    assert expected[0].text in view.words.text() and view.words.text().startswith("Place 1 (cosine ")
    rows = view.rows()
    assert [r[0] for r in rows] == ["roads", "buildings", "nature + land use", "transit + POIs"]
    nature = next(g for g in e.groups if g.group == "nature")
    assert rows[2][1] == f"{100 * nature.query_share:.0f} %"  # Ribeira: the river, query share
    assert rows[2][3] == f"{'+' if nature.drop <= 0 else '−'}{abs(nature.drop):.3f}"
    assert "water:" in view.table.item(2, 0).toolTip()  # per channel in the tooltip
    view.rank_spin.setValue(3)
    assert view.explanation.rank == 3 and view.explanation.text == expected[2].text
    hits = tool.layer_of("result")  # selecting a place on the result layer explains it
    hits.selectByIds([f.id() for f in hits.getFeatures() if f["rank"] == 2])
    assert view.explanation.rank == 2 and view.rank_spin.value() == 2
    tool.clear(quiet=True)
    assert view.explanation is None and view.rows() == []


def test_without_the_area_raster_the_panel_says_how_to_get_it_back(map_canvas, emb_path, tmp_path, qgis_iface):
    moved = tmp_path / "moved.gpkg"
    shutil.copyfile(emb_path, moved)
    update_columns(moved, meta_updates={"area_path": str(tmp_path / "gone.tif")})
    t = _tool(map_canvas, moved, qgis_iface)
    try:
        panel = SimilarPanel(t)
        click(map_canvas, t, RIBEIRA)
        assert t.result is not None  # the search itself still works
        text = panel.explain.words.text()
        assert text.startswith("Why alike is not available: the area raster moved.gpkg was made from is not found")
        assert "next to moved.gpkg" in text and "Embed area" in text and panel.explain.rows() == []
    finally:
        map_canvas.unsetMapTool(t)
        t.clear(quiet=True)
        QgsProject.instance().removeAllMapLayers()


def test_the_algorithm_adds_the_explain_columns(loc2vec_plugin, emb_path, es, tmp_path):
    out = tmp_path / "similar.gpkg"
    processing.run("loc2vec:similar", {"INPUT": str(emb_path), "POINT": f"{RIBEIRA[0]},{RIBEIRA[1]} [EPSG:4326]",
                                       "K": 4, "EXPLAIN": True, "OUTPUT": str(out)}, feedback=QgsProcessingFeedback())
    layer = QgsVectorLayer(f"{out}|layername=similar", "hits", "ogr")
    assert layer.fields().names() == ["fid", "rank", "cell", "score", "distance_m", "explain", "top_group",
                                      "drop_roads", "drop_buildings", "drop_nature", "drop_transit_poi"]
    feats = sorted(layer.getFeatures(), key=lambda f: f["rank"])
    result = similar_at(es, [RIBEIRA], 4)
    expected = explain_columns(explain_similar(es, result))
    assert [f["explain"] for f in feats] == expected["explain"]
    assert [f["top_group"] or None for f in feats] == expected["top_group"]
    assert np.allclose([f["drop_nature"] for f in feats], expected["drop_nature"], atol=1e-9)
    plain = tmp_path / "plain.gpkg"  # without EXPLAIN: the four columns as before
    processing.run("loc2vec:similar", {"INPUT": str(emb_path), "POINT": f"{RIBEIRA[0]},{RIBEIRA[1]} [EPSG:4326]",
                                       "K": 4, "OUTPUT": str(plain)}, feedback=QgsProcessingFeedback())
    assert QgsVectorLayer(f"{plain}|layername=similar", "p", "ogr").fields().names() == [
        "fid", "rank", "cell", "score", "distance_m"]
