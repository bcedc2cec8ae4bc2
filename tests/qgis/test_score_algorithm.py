"""processing.run("loc2vec:score") on small synthetic embeddings with two planted kinds of place."""

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
    QgsRasterLayer,
    QgsVectorLayer,
)

from loc2vec_engine import ATTRIBUTION
from loc2vec_engine.embeddings.store import read_embeddings, write_embeddings

import processing  # noqa: E402

ALG = "loc2vec:score"
STRIDE = 50.0
COLS, ROWS = 20, 14
UTM = "EPSG:32629"


@pytest.fixture(scope="module")
def emb(tmp_path_factory):
    """(path, EmbeddingSet, kind A (N,) bool): a 7 x 5 block of kind A in the north-west, kind B elsewhere."""
    from pyproj import CRS

    rng = np.random.default_rng(1)
    r, c = np.divmod(np.arange(ROWS * COLS), COLS)
    keep = np.arange(ROWS * COLS) % 13 != 7
    kind = (c >= 2) & (c < 9) & (r >= 2) & (r < 7)
    a, b = rng.standard_normal((2, 16))
    vectors = np.where(kind[:, None], a, b) / 4 + 0.1 * rng.standard_normal((ROWS * COLS, 16))
    vectors = (vectors / np.linalg.norm(vectors, axis=1, keepdims=True)).astype(np.float32)
    xy = np.stack([500_025.0 + c * STRIDE, 4_560_975.0 - r * STRIDE], axis=1)
    path = tmp_path_factory.mktemp("score_alg") / "emb.gpkg"
    write_embeddings(path, xy[keep], vectors[keep], CRS(UTM).to_wkt(), {"model_sha256": "e" * 64,
                                                                        "stride_m": STRIDE},
                     cell=np.flatnonzero(keep))
    return str(path), read_embeddings(path), kind[keep]


@pytest.fixture()
def project():
    yield QgsProject.instance()
    QgsProject.instance().removeAllMapLayers()


def layer_of(kind, crs, geometries, name):
    layer = QgsVectorLayer(f"{kind}?crs={crs}", name, "memory")
    feats = []
    for g in geometries:
        f = QgsFeature()
        f.setGeometry(g)
        feats.append(f)
    layer.dataProvider().addFeatures(feats)
    QgsProject.instance().addMapLayer(layer)
    return layer


def points_at(es, rows, crs="EPSG:4326"):
    """A memory point layer at the centres of ``rows``, in ``crs``."""
    to = QgsCoordinateTransform(QgsCoordinateReferenceSystem(UTM), QgsCoordinateReferenceSystem(crs),
                                QgsProject.instance())
    geoms = [QgsGeometry.fromPointXY(to.transform(QgsPointXY(*es.xy[r]))) for r in rows]
    return layer_of("Point", crs, geoms, "points")


def block_polygon():
    """A polygon over the kind-A block (cells 2..8 x 2..6), drawn in Web Mercator."""
    x0, y0 = 500_025.0 + 1.6 * STRIDE, 4_560_975.0 - 1.6 * STRIDE
    x1, y1 = 500_025.0 + 8.4 * STRIDE, 4_560_975.0 - 6.4 * STRIDE
    geom = QgsGeometry.fromWkt(f"POLYGON(({x0} {y0},{x1} {y0},{x1} {y1},{x0} {y1},{x0} {y0}))")
    geom.transform(QgsCoordinateTransform(QgsCoordinateReferenceSystem(UTM), QgsCoordinateReferenceSystem("EPSG:3857"),
                                          QgsProject.instance()))
    return layer_of("Polygon", "EPSG:3857", [geom], "block")


def scores_of(path, es):
    layer = QgsVectorLayer(f"{path}|layername=score", "s", "ogr")
    assert layer.isValid()
    by_cell = {f["cell"]: (f["score"], f["example"]) for f in layer.getFeatures()}
    return np.array([by_cell[int(c)][0] for c in es.cell]), np.array([by_cell[int(c)][1] for c in es.cell])


def test_a_polygon_and_points_give_the_logistic_scores_the_mask_and_the_raster(loc2vec_plugin, emb, tmp_path,
                                                                                project):
    path, es, kind = emb
    rng = np.random.default_rng(2)
    negatives = points_at(es, rng.choice(np.flatnonzero(~kind), 6, replace=False))
    out, tif, png = tmp_path / "score.gpkg", tmp_path / "score.tif", tmp_path / "hist.png"
    feedback = QgsProcessingFeedback()
    result = processing.runAndLoadResults(ALG, {"INPUT": path, "POSITIVES": block_polygon().id(),
                                                "NEGATIVES": negatives.id(), "OUTPUT": str(out), "RASTER": str(tif),
                                                "HISTOGRAM": str(png)}, feedback=feedback)
    assert result["METHOD_USED"] == "logistic" and result["HELDOUT_AUC"] == pytest.approx(1.0)
    assert result["THRESHOLD_USED"] == 0.5 and result["CELLS_ABOVE"] == kind.sum()
    assert result["AREA_KM2"] == pytest.approx(kind.sum() * STRIDE ** 2 / 1e6)
    scores, example = scores_of(out, es)
    assert np.all(scores[kind] > 0.5) and np.all(scores[~kind] < 0.5)
    assert (example == 1).sum() == kind.sum() and (example == -1).sum() == 6  # every cell inside the polygon
    log = feedback.textLog()
    assert "method: logistic" in log and "ROC AUC 1.000" in log and ATTRIBUTION in log
    assert png.stat().st_size > 5000
    layers = {lyr.name(): lyr for lyr in project.mapLayers().values()}
    assert layers["place scores"].featureCount() == len(es)  # the 'score' layer of the GeoPackage
    assert isinstance(layers["place scores"].renderer(), QgsGraduatedSymbolRenderer)
    assert layers["place scores"].renderer().classAttribute() == "score"
    mask = layers["score mask"]
    assert mask.source().endswith("|layername=mask") and mask.featureCount() == 1
    (f,) = list(mask.getFeatures())
    assert f["cells"] == kind.sum() and f.geometry().area() == pytest.approx(kind.sum() * STRIDE ** 2)
    assert isinstance(layers["score raster"], QgsRasterLayer)
    assert layers["score raster"].rasterUnitsPerPixelX() == STRIDE


def test_selected_points_score_by_prototype(loc2vec_plugin, emb, tmp_path, project):
    path, es, kind = emb
    rows = np.flatnonzero(kind)[[0, 5, 10]]
    positives = points_at(es, rows, "EPSG:3857")
    positives.selectByIds([f.id() for f in positives.getFeatures()][:1])  # only the first
    out = tmp_path / "p.gpkg"
    result = processing.run(ALG, {"INPUT": path, "OUTPUT": str(out), "POSITIVES": QgsProcessingFeatureSourceDefinition(
        positives.id(), selectedFeaturesOnly=True)}, feedback=QgsProcessingFeedback())
    assert result["METHOD_USED"] == "prototype" and result["HELDOUT_AUC"] is None
    scores, example = scores_of(out, es)
    assert np.flatnonzero(example == 1).tolist() == [rows[0]]
    assert scores[kind].min() > scores[~kind].max()


def _refused(params, tmp_path, match):
    with pytest.raises(QgsProcessingException, match=match) as e:
        processing.run(ALG, {**params, "OUTPUT": str(tmp_path / "bad.gpkg")}, feedback=QgsProcessingFeedback())
    assert "Fix:" in str(e.value)
    assert list(tmp_path.iterdir()) == []


def test_a_negative_on_a_positive_cell_is_refused(loc2vec_plugin, emb, tmp_path, project):
    path, es, kind = emb
    rows = np.flatnonzero(kind)[:3]
    _refused({"INPUT": path, "POSITIVES": points_at(es, rows).id(), "NEGATIVES": points_at(es, rows[2:]).id()},
             tmp_path, "both a positive and a negative")


def test_too_few_examples_for_the_logistic_regression_are_refused(loc2vec_plugin, emb, tmp_path, project):
    path, es, kind = emb
    _refused({"INPUT": path, "POSITIVES": points_at(es, np.flatnonzero(kind)[:2]).id(),
              "NEGATIVES": points_at(es, np.flatnonzero(~kind)[:5]).id(), "METHOD": "logistic"},
             tmp_path, "needs at least 5 positive and 5 negative cells")
