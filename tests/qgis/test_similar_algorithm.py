"""processing.run("loc2vec:similar") on real embeddings of central Porto, checked against the engine's search."""

import shutil

import numpy as np
import pytest
from qgis.core import (
    QgsCoordinateReferenceSystem,
    QgsCoordinateTransform,
    QgsFeature,
    QgsGeometry,
    QgsGraduatedSymbolRenderer,
    QgsPointXY,
    QgsProcessingException,
    QgsProcessingFeatureSourceDefinition,
    QgsProcessingFeedback,
    QgsProject,
    QgsReferencedPointXY,
    QgsRenderContext,
    QgsVectorLayer,
)

from loc2vec_engine.embeddings import read_embeddings
from loc2vec_engine.embeddings.store import update_columns
from loc2vec_engine.search.similar import similar_at

import processing  # noqa: E402

ALG = "loc2vec:similar"
ROW = 150  # a cell in the middle of the area


def _embed(area, out, stride):
    from loc2vec_engine.embeddings.embed import embed_area

    embed_area("default", area, out, stride_m=stride, device="cpu", progress=lambda f, m: None)
    return out


@pytest.fixture(scope="module")
def emb_path(porto_area, tmp_path_factory):
    return _embed(porto_area, tmp_path_factory.mktemp("similar") / "porto60.gpkg", 60)


@pytest.fixture(scope="module")
def other_path(porto_area, tmp_path_factory):
    """The same area and model on another grid: a second file to search in."""
    return _embed(porto_area, tmp_path_factory.mktemp("similar") / "porto90.gpkg", 90)


@pytest.fixture(scope="module")
def es(emb_path):
    return read_embeddings(emb_path)


@pytest.fixture()
def project():
    yield QgsProject.instance()
    QgsProject.instance().removeAllMapLayers()


def point_at(es, row=ROW):
    lon, lat = es.lonlat()[row]
    return float(lon), float(lat)


def hits(path):
    layer = QgsVectorLayer(f"{path}|layername=similar", "hits", "ogr")
    assert layer.isValid()
    return [{k: f[k] for k in ("rank", "cell", "score", "distance_m")} | {"xy": f.geometry().asPoint()}
            for f in layer.getFeatures()]


def _run(params, out):
    return processing.run(ALG, {**params, "OUTPUT": str(out)}, feedback=QgsProcessingFeedback())


def test_a_point_gives_the_engines_k_cells_styled_by_score(loc2vec_plugin, emb_path, es, tmp_path, project):
    lon, lat = point_at(es)
    out = tmp_path / "similar.gpkg"
    result = processing.runAndLoadResults(ALG, {"INPUT": str(emb_path), "POINT": f"{lon},{lat} [EPSG:4326]",
                                                "K": 10, "EXCLUDE_RADIUS": 0, "OUTPUT": str(out)},
                                          feedback=QgsProcessingFeedback())  # 0: the place itself comes first
    expected = similar_at(es, [(lon, lat)], 10, exclude_radius_m=0)
    got = hits(out)
    assert [h["rank"] for h in got] == list(range(1, 11))
    assert [h["cell"] for h in got] == expected.cells.tolist()
    assert np.allclose([h["score"] for h in got], expected.scores, atol=1e-6)
    assert got[0]["cell"] == es.cell[ROW] and got[0]["score"] > 0.999 and got[0]["distance_m"] < 60
    assert result["BEST_SCORE"] == pytest.approx(float(expected.scores[0]), abs=1e-6)
    loaded = [lyr for lyr in project.mapLayers().values() if lyr.source().startswith(str(out))]
    assert len(loaded) == 1 and loaded[0].name() == "similar places"
    renderer = loaded[0].renderer()
    assert isinstance(renderer, QgsGraduatedSymbolRenderer) and renderer.classAttribute() == "score"
    ranges = renderer.ranges()
    assert len(ranges) == 5  # equal-count classes of the 10 scores: 2 hits each, red (low) to green (high)
    assert ranges[0].lowerValue() <= min(h["score"] for h in got) and ranges[-1].upperValue() >= got[0]["score"]
    ctx = QgsRenderContext()
    renderer.startRender(ctx, loaded[0].fields())
    colours = [renderer.symbolForFeature(f, ctx).color() for f in loaded[0].getFeatures()]
    renderer.stopRender(ctx)
    assert [c.name() for c in colours[:2]] == [ranges[-1].symbol().color().name()] * 2  # the two best: top class
    assert colours[0].green() > colours[0].red() and colours[-1].red() > colours[-1].green()
    assert "OpenStreetMap" in loaded[0].attribution()


def test_point_in_another_crs_and_selected_reference_places(loc2vec_plugin, emb_path, es, tmp_path):
    lon, lat = point_at(es)
    to_3857 = QgsCoordinateTransform(QgsCoordinateReferenceSystem("EPSG:4326"),
                                     QgsCoordinateReferenceSystem("EPSG:3857"), QgsProject.instance())
    p = to_3857.transform(QgsPointXY(lon, lat))
    _run({"INPUT": str(emb_path), "POINT": QgsReferencedPointXY(p, QgsCoordinateReferenceSystem("EPSG:3857")),
          "K": 5}, tmp_path / "a.gpkg")
    assert [h["cell"] for h in hits(tmp_path / "a.gpkg")] == similar_at(es, [(lon, lat)], 5).cells.tolist()

    places = QgsVectorLayer("Point?crs=EPSG:4326", "places", "memory")
    rows = (40, ROW, 300)
    feats = []
    for row in rows:
        f = QgsFeature()
        f.setGeometry(QgsGeometry.fromPointXY(QgsPointXY(*point_at(es, row))))
        feats.append(f)
    places.dataProvider().addFeatures(feats)
    QgsProject.instance().addMapLayer(places)
    try:
        places.selectByIds([f.id() for f in places.getFeatures()][1:])  # the last two
        ref = QgsProcessingFeatureSourceDefinition(places.id(), selectedFeaturesOnly=True)
        _run({"INPUT": str(emb_path), "REFERENCE": ref, "K": 8, "EXCLUDE_RADIUS": 150}, tmp_path / "b.gpkg")
    finally:
        QgsProject.instance().removeMapLayer(places)
    chosen = [point_at(es, r) for r in rows[1:]]
    expected = similar_at(es, chosen, 8, exclude_radius_m=150)
    got = hits(tmp_path / "b.gpkg")
    assert [h["cell"] for h in got] == expected.cells.tolist()
    assert min(h["distance_m"] for h in got) > 150 * 0.99  # nothing inside the exclude radius


def _planar_m(es, rows, lonlat):
    from loc2vec_engine.geo.crs import transformer_from_wgs84

    q = np.asarray(transformer_from_wgs84(es.crs_wkt).transform(*lonlat), float)
    return np.linalg.norm(es.xy[rows] - q, axis=1)


def test_by_default_one_tile_around_the_place_is_left_out(loc2vec_plugin, emb_path, es, tmp_path):
    from qgis.core import QgsApplication, QgsProcessingParameterDefinition

    alg = QgsApplication.processingRegistry().algorithmById(ALG)
    param = alg.parameterDefinition("EXCLUDE_RADIUS")
    assert param.defaultValue() == 500.0 and param.minimum() == 0.0  # one tile of the shipped model
    assert param.flags() & QgsProcessingParameterDefinition.FlagAdvanced
    assert "default: one tile" in param.description() and "0 = off" in param.description()
    assert es.meta["tile_size_m"] == 500.0
    lon, lat = point_at(es)
    near = _planar_m(es, np.arange(len(es)), (lon, lat)) <= 500
    feedback = QgsProcessingFeedback()
    runs = {}
    for name, extra in {"dialog": {"EXCLUDE_RADIUS": 500.0}, "script": {}, "off": {"EXCLUDE_RADIUS": 0}}.items():
        out = tmp_path / f"{name}.gpkg"
        processing.run(ALG, {"INPUT": str(emb_path), "POINT": f"{lon},{lat} [EPSG:4326]", "K": 10, **extra,
                             "OUTPUT": str(out)}, feedback=feedback)
        runs[name] = [h["cell"] for h in hits(out)]
    expected = similar_at(es, [(lon, lat)], 10)  # the engine's default: one tile of the embeddings' model
    assert runs["dialog"] == runs["script"] == expected.cells.tolist()
    rows = {c: i for i, c in enumerate(es.cell)}
    assert _planar_m(es, [rows[c] for c in runs["script"]], (lon, lat)).min() > 500
    assert not set(runs["script"]) & set(es.cell[near].tolist())
    assert runs["off"][0] == es.cell[ROW]  # 0 = off: the place's own cell at rank 1
    assert f"Left out the {int(near.sum())} cells within 500 m" in feedback.textLog()


def test_search_in_another_file_of_the_same_model(loc2vec_plugin, emb_path, other_path, es, tmp_path):
    other = read_embeddings(other_path)
    lon, lat = point_at(es)
    _run({"INPUT": str(emb_path), "POINT": f"{lon},{lat} [EPSG:4326]", "SEARCH_IN": str(other_path), "K": 6},
         tmp_path / "x.gpkg")
    expected = similar_at(es, [(lon, lat)], 6, target=other)
    got = hits(tmp_path / "x.gpkg")
    assert [h["cell"] for h in got] == expected.cells.tolist()
    rows = expected.indices
    assert np.allclose([(h["xy"].x(), h["xy"].y()) for h in got], other.xy[rows])  # cells of the searched file


def _refused(params, out, match):
    with pytest.raises(QgsProcessingException, match=match) as e:
        _run(params, out)
    assert "Fix:" in str(e.value)
    assert not list(out.parent.glob("*similar*")) and not list(out.parent.glob(".*part*"))


def test_another_model_is_refused(loc2vec_plugin, emb_path, es, tmp_path):
    foreign = shutil.copy(emb_path, tmp_path / "other_model.gpkg")
    update_columns(foreign, meta_updates={"model_sha256": "0" * 64})
    lon, lat = point_at(es)
    _refused({"INPUT": str(emb_path), "POINT": f"{lon},{lat} [EPSG:4326]", "SEARCH_IN": str(foreign)},
             tmp_path / "similar.gpkg", "embedded with different models")


def test_a_point_outside_the_embedded_area_is_a_message_and_no_file(loc2vec_plugin, emb_path, tmp_path):
    _refused({"INPUT": str(emb_path), "POINT": "-8.70,41.14 [EPSG:4326]"}, tmp_path / "similar.gpkg",
             "outside the embedded area")


def test_no_place_is_a_message(loc2vec_plugin, emb_path, tmp_path):
    _refused({"INPUT": str(emb_path)}, tmp_path / "similar.gpkg", "no place to search from")


def test_cancel_writes_nothing(loc2vec_plugin, emb_path, es, tmp_path):
    feedback = QgsProcessingFeedback()
    feedback.cancel()
    lon, lat = point_at(es)
    with pytest.raises(QgsProcessingException, match="Cancelled"):
        processing.run(ALG, {"INPUT": str(emb_path), "POINT": f"{lon},{lat} [EPSG:4326]",
                             "OUTPUT": str(tmp_path / "similar.gpkg")}, feedback=feedback)
    assert list(tmp_path.iterdir()) == []
