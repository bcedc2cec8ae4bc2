"""Legends that tell their classes apart (issue 11, item 4), in the plugin: the map tool's "similar places"
and the *Find similar places* algorithm's layer, on embeddings whose top cosines crowd.

The embeddings are made so: the cells next to cell 0 lie at chosen cosines from it (``crowd``), the rest
point elsewhere. A click on cell 0 then scores them as a model whose cosines crowd would.
"""

import numpy as np
import pytest
from pyproj import CRS
from qgis.core import QgsProcessingFeedback, QgsProject, QgsRenderContext, QgsVectorLayer

from loc2vec_engine.embeddings import read_embeddings, write_embeddings
from loc2vec_qgis.gui.similar_tool import RESULT_NAME, SimilarPlacesTool

import processing  # noqa: E402

N, STRIDE = 100, 100.0


def crowded_embeddings(path, cosines):
    """A 10 x 10 grid whose cells 1..len(cosines) have exactly these cosines to cell 0 (float32 vectors)."""
    rng = np.random.default_rng(0)
    d = 16
    v0 = np.zeros(d)
    v0[0] = 1.0
    vectors = rng.normal(size=(N, d))
    vectors[:, 0] = -np.abs(vectors[:, 0]) * 3  # the others face away from cell 0
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    vectors[0] = v0
    for i, c in enumerate(cosines, 1):
        u = np.zeros(d)
        u[1 + i % (d - 1)] = 1.0
        vectors[i] = c * v0 + np.sqrt(max(0.0, 1 - c * c)) * u
    xy = np.stack([500000 + STRIDE * (np.arange(N) % 10), 4550000 + STRIDE * (np.arange(N) // 10)], 1).astype(float)
    write_embeddings(path, xy, vectors.astype(np.float32), CRS(32629).to_wkt(), {"model_sha256": "x",
                                                                                  "stride_m": STRIDE})
    return read_embeddings(path)


@pytest.fixture()
def project():
    yield QgsProject.instance()
    QgsProject.instance().removeAllMapLayers()


def tool_result_legend(path, es, qgis_iface):
    layer = QgsVectorLayer(f"{path}|layername=embeddings", "embeddings", "ogr")
    QgsProject.instance().addMapLayer(layer)
    tool = SimilarPlacesTool(qgis_iface.mapCanvas(), qgis_iface.messageBar(), k=10, exclude_radius_m=0)
    assert tool.set_layer(layer) and tool.query_at(tuple(es.lonlat()[0]))
    result = tool.layer_of("result")
    assert result is not None and result.name() == RESULT_NAME
    return tool, result


def classes_of_features(layer):
    """{rank: legend label} through the layer's own renderer: which class each hit is drawn in."""
    renderer = layer.renderer().clone()
    ctx = QgsRenderContext()
    renderer.startRender(ctx, layer.fields())
    out = {}
    for f in layer.getFeatures():
        r = renderer.rangeForValue(f[renderer.classAttribute()])
        assert r is not None, f"rank {f['rank']} falls in no class"
        out[int(f["rank"])] = r.label()
    renderer.stopRender(ctx)
    return out


def test_map_tool_legend_uses_ranks_when_the_cosines_print_alike(project, tmp_path, qgis_iface):
    """The top 10 all at cosine 1.0000: the legend read 'cosine 1.0000 – 1.0000' for every class."""
    path = tmp_path / "same.gpkg"
    es = crowded_embeddings(path, [1.0] * 5 + [0.99999999] * 5)
    tool, result = tool_result_legend(path, es, qgis_iface)
    assert np.allclose(tool.result.scores, 1.0, atol=1e-6)
    labels = [r.label() for r in result.renderer().ranges()]
    assert labels == ["ranks 1–2", "ranks 3–4", "ranks 5–6", "ranks 7–8", "ranks 9–10"]
    assert result.renderer().classAttribute() == "rank"
    assert classes_of_features(result) == {r: labels[(r - 1) // 2] for r in range(1, 11)}
    tool.clear(quiet=True)


def test_map_tool_legend_gets_the_decimals_that_tell_crowded_cosines_apart(project, tmp_path, qgis_iface):
    path = tmp_path / "crowd.gpkg"
    es = crowded_embeddings(path, [0.99995, 0.99993, 0.99990, 0.99988, 0.99985, 0.99983, 0.99981, 0.99980, 0.99979])
    tool, result = tool_result_legend(path, es, qgis_iface)
    labels = [r.label() for r in result.renderer().ranges()]
    assert len(labels) == 5 and len(set(labels)) == 5, labels
    for label in labels:
        lo, hi = label.removeprefix("cosine ").split(" – ")
        assert lo != hi, labels  # 4 decimals would print 'cosine 0.9999 – 0.9999' and '1.0000 – 1.0000'
    assert len(set(classes_of_features(result).values())) == 5
    tool.clear(quiet=True)


def test_similar_algorithm_legend_tells_crowded_scores_apart(loc2vec_plugin, project, tmp_path):
    path = tmp_path / "same.gpkg"
    es = crowded_embeddings(path, [1.0] * 5 + [0.99999999] * 5)
    lon, lat = es.lonlat()[0]
    out = tmp_path / "similar.gpkg"
    processing.runAndLoadResults("loc2vec:similar", {"INPUT": str(path), "POINT": f"{lon},{lat} [EPSG:4326]",
                                                     "K": 10, "EXCLUDE_RADIUS": 0, "OUTPUT": str(out)},
                                 feedback=QgsProcessingFeedback())
    (layer,) = [lyr for lyr in project.mapLayers().values() if lyr.source().startswith(str(out))]
    labels = [r.label() for r in layer.renderer().ranges()]
    assert len(set(labels)) == len(labels) == 5, labels
    assert not any(lo == hi for lo, hi in (label.split(" ", 1)[1].split(" – ") for label in labels if " – " in label))
    assert sorted(classes_of_features(layer)) == list(range(1, 11))  # every hit is drawn
