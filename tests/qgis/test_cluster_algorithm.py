"""processing.run("loc2vec:cluster") on real embeddings of central Porto (the shipped model, every 60 m)."""

import shutil
from pathlib import Path

import numpy as np
import pytest
from qgis.core import (
    NULL,
    QgsCategorizedSymbolRenderer,
    QgsFeature,
    QgsGeometry,
    QgsPointXY,
    QgsProcessingException,
    QgsProcessingFeedback,
    QgsProject,
    QgsRenderContext,
    QgsVectorFileWriter,
    QgsVectorLayer,
)

from loc2vec_engine.clusters.colors import cluster_color
from loc2vec_engine.embeddings import read_embeddings

import processing  # noqa: E402

ALG = "loc2vec:cluster"


@pytest.fixture(scope="module")
def emb_path(porto_area, tmp_path_factory):
    from loc2vec_engine.embeddings.embed import embed_area

    out = tmp_path_factory.mktemp("cluster") / "porto_emb.gpkg"
    embed_area("default", porto_area, out, stride_m=60, device="cpu", progress=lambda f, m: None)
    return out


@pytest.fixture()
def emb(emb_path, tmp_path):
    """A copy of the embeddings for one test: clustering rewrites the file."""
    return shutil.copy(emb_path, tmp_path / "porto_emb.gpkg")


@pytest.fixture()
def project():
    yield QgsProject.instance()
    QgsProject.instance().removeAllMapLayers()


def layers_of(project, path):
    return [lyr for lyr in project.mapLayers().values() if lyr.source().split("|")[0] == str(path)]


def feature_colours(layer):
    """{cluster value: set of colours its features are drawn with}, through the layer's own renderer."""
    renderer = layer.renderer().clone()
    ctx = QgsRenderContext()
    renderer.startRender(ctx, layer.fields())
    out = {}
    for f in layer.getFeatures():
        out.setdefault(f["cluster"], set()).add(renderer.symbolForFeature(f, ctx).color().name())
    renderer.stopRender(ctx)
    return out


def test_kmeans_restyles_the_layer_already_in_the_project(loc2vec_plugin, emb, project):
    layer = QgsVectorLayer(str(emb), "my embeddings", "ogr")
    project.addMapLayer(layer)
    assert {f["cluster"] for f in layer.getFeatures()} == {NULL}
    result = processing.runAndLoadResults(ALG, {"INPUT": layer.id(), "K": 5}, feedback=QgsProcessingFeedback())
    es = read_embeddings(emb)
    assert result["CLUSTERS"] == 5 and result["OUTPUT"] == str(emb)
    assert sorted(set(es.cluster.tolist())) == [0, 1, 2, 3, 4]
    assert -1 <= result["SILHOUETTE"] <= 1 and np.isfinite(es.umap).all()
    assert layers_of(project, emb) == [layer]  # reloaded and restyled, not added again
    renderer = layer.renderer()
    assert isinstance(renderer, QgsCategorizedSymbolRenderer) and renderer.classAttribute() == "cluster"
    assert [c.value() for c in renderer.categories()] == [0, 1, 2, 3, 4]
    # The project's layer shows the new labels (it was reloaded) in the engine's colours, one per cluster.
    assert {f["cell"]: f["cluster"] for f in layer.getFeatures()} == dict(zip(es.cell.tolist(), es.cluster.tolist()))
    assert feature_colours(layer) == {c: {cluster_color(c)} for c in range(5)}
    assert len({cluster_color(c) for c in range(5)}) == 5
    assert "OpenStreetMap" in layer.attribution()
    for key in ("MAP_PNG", "UMAP_PNG"):
        assert result[key].endswith(".png") and Path(result[key]).parent == emb.parent
        assert Path(result[key]).stat().st_size > 10_000


def test_hdbscan_loads_the_layer_styled_with_grey_noise(loc2vec_plugin, emb, project):
    result = processing.runAndLoadResults(ALG, {"INPUT": str(emb), "METHOD": "hdbscan", "MIN_CLUSTER_SIZE": 5},
                                          feedback=QgsProcessingFeedback())
    es = read_embeddings(emb)
    found = sorted(set(es.cluster.tolist()))
    assert found[0] == -1 and found[1:] == list(range(result["CLUSTERS"])) and result["CLUSTERS"] >= 2
    loaded = layers_of(project, emb)
    assert len(loaded) == 1 and loaded[0].name() == "clusters" and loaded[0].featureCount() == len(es)
    renderer = loaded[0].renderer()
    assert isinstance(renderer, QgsCategorizedSymbolRenderer)
    assert [c.value() for c in renderer.categories()] == found  # noise first, then one per cluster
    assert renderer.categories()[0].label().startswith("noise")
    assert feature_colours(loaded[0]) == {c: {cluster_color(c)} for c in found}
    assert cluster_color(-1) == "#d9d9d9"


def test_processing_run_leaves_the_project_alone(loc2vec_plugin, emb, project):
    result = processing.run(ALG, {"INPUT": str(emb), "K": 3, "SEED": 7}, feedback=QgsProcessingFeedback())
    assert result["CLUSTERS"] == 3 and sorted(set(read_embeddings(emb).cluster.tolist())) == [0, 1, 2]
    assert layers_of(project, emb) == []


def test_in_a_model_the_embed_output_is_loaded_once_as_the_clusters(loc2vec_plugin, emb, project):
    """In 'From OSM to a suitability map' the embeddings are Embed's output, loaded when the model ends: Cluster
    styles that layer instead of loading the file a second time."""
    from qgis.core import QgsApplication, QgsProcessingContext

    context = QgsProcessingContext()
    context.setProject(project)
    context.addLayerToLoadOnCompletion(str(emb), QgsProcessingContext.LayerDetails("embeddings", project, "OUTPUT"))
    alg = QgsApplication.processingRegistry().createAlgorithmById(ALG)
    result, ok = alg.run({"INPUT": str(emb), "K": 3}, context, QgsProcessingFeedback())
    assert ok and result["CLUSTERS"] == 3
    to_load = context.layersToLoadOnCompletion()
    assert list(to_load) == [str(emb)] and to_load[str(emb)].name == "clusters"
    layer = QgsVectorLayer(str(emb), "clusters", "ogr")
    to_load[str(emb)].postProcessor().postProcessLayer(layer, context, QgsProcessingFeedback())
    assert isinstance(layer.renderer(), QgsCategorizedSymbolRenderer)
    assert [c.value() for c in layer.renderer().categories()] == [0, 1, 2]


def _bytes(path):
    return path.read_bytes()


def _refused(emb, match, **params):
    before = _bytes(emb)
    with pytest.raises(QgsProcessingException, match=match) as e:
        processing.run(ALG, {"INPUT": str(emb), **params}, feedback=QgsProcessingFeedback())
    assert _bytes(emb) == before and not list(emb.parent.glob("*.png")) and not list(emb.parent.glob(".*part*"))
    return str(e.value)


def test_more_clusters_than_cells_is_a_message(loc2vec_plugin, emb):
    n = len(read_embeddings(emb))
    message = _refused(emb, f"more than the {n} cells", K=n + 1)
    assert "Fix:" in message


def test_a_geopackage_that_is_not_loc2vecs_is_refused(loc2vec_plugin, tmp_path):
    points = QgsVectorLayer("Point?crs=EPSG:4326&field=cluster:integer", "places", "memory")
    f = QgsFeature(points.fields())
    f.setGeometry(QgsGeometry.fromPointXY(QgsPointXY(-8.61, 41.14)))
    points.dataProvider().addFeatures([f])
    other = tmp_path / "places.gpkg"
    options = QgsVectorFileWriter.SaveVectorOptions()
    options.driverName, options.layerName = "GPKG", "embeddings"
    err = QgsVectorFileWriter.writeAsVectorFormatV3(points, str(other), QgsProject.instance().transformContext(),
                                                    options)
    assert err[0] == QgsVectorFileWriter.NoError, err
    message = _refused(other, "is not a loc2vec embeddings GeoPackage")
    assert "Fix:" in message and "loc2vec embed" in message
    with pytest.raises(QgsProcessingException, match="is not a loc2vec embeddings GeoPackage"):
        processing.run(ALG, {"INPUT": points}, feedback=QgsProcessingFeedback())  # a memory layer


def test_cancel_leaves_the_geopackage_and_its_layer_as_they_were(loc2vec_plugin, emb, project):
    layer = QgsVectorLayer(str(emb), "my embeddings", "ogr")
    project.addMapLayer(layer)
    renderer = layer.renderer().type()
    feedback = QgsProcessingFeedback()
    progress = []
    feedback.progressChanged.connect(lambda p: (progress.append(p), feedback.cancel() if p > 10 else None))
    before = _bytes(emb)
    with pytest.raises(QgsProcessingException, match="Cancelled"):
        processing.runAndLoadResults(ALG, {"INPUT": layer.id(), "K": 4}, feedback=feedback)
    assert progress and max(progress) < 100
    assert _bytes(emb) == before
    assert sorted(p.name for p in emb.parent.iterdir()) == ["porto_emb.gpkg"]
    assert layers_of(project, emb) == [layer] and layer.renderer().type() == renderer == "singleSymbol"
    assert {f["cluster"] for f in layer.getFeatures()} == {NULL}
