"""The UMAP dock: points coloured by cluster, selection shared both ways with the embeddings layer."""

import numpy as np
import pytest
from pyproj import CRS
from qgis.core import QgsVectorLayer
from qgis.PyQt.QtCore import QPointF, QRectF

from loc2vec_engine.clusters.colors import cluster_color
from loc2vec_engine.embeddings import write_embeddings
from loc2vec_qgis.gui.umap_dock import UmapDock


@pytest.fixture()
def layer(tmp_path):
    rng = np.random.default_rng(0)
    n = 60
    v = rng.normal(size=(n, 16)).astype("f4")
    v /= np.linalg.norm(v, axis=1, keepdims=True)
    xy = np.stack([500000 + 100 * (np.arange(n) % 10), 4550000 + 100 * (np.arange(n) // 10)], 1).astype(float)
    cluster = np.arange(n) % 3
    umap = np.stack([cluster * 10 + rng.normal(size=n), rng.normal(size=n)], 1)  # three separate blobs
    path = tmp_path / "emb.gpkg"
    write_embeddings(path, xy, v, CRS(32629).to_wkt(), {"model_sha256": "x", "stride_m": 100}, cluster=cluster,
                     umap=umap)
    lyr = QgsVectorLayer(f"{path}|layername=embeddings", "embeddings", "ogr")
    assert lyr.isValid()
    return lyr


def test_scatter_shows_every_cell_in_its_cluster_colour(qgis_app, layer):
    dock = UmapDock()
    assert dock.set_layer(layer)
    assert len(dock.fids) == layer.featureCount() == 60
    brushes = [b.color().name() for b in dock.scatter.data["brush"]]
    assert brushes == [cluster_color(c) for c in dock.labels]


def test_rectangle_in_the_scatter_selects_those_features(qgis_app, layer):
    dock = UmapDock()
    dock.set_layer(layer)
    dock.select_in_rect(QRectF(QPointF(5, -10), QPointF(15, 10)))  # the blob of cluster 1
    selected = sorted(layer.selectedFeatureIds())
    expected = sorted(f.id() for f in layer.getFeatures() if f["cluster"] == 1)
    assert selected == expected and len(selected) == 20
    dock.select_in_rect(QRectF(QPointF(15, -10), QPointF(25, 10)), add=True)  # Shift: cluster 2 added
    assert len(layer.selectedFeatureIds()) == 40


def test_clicking_a_point_selects_its_feature(qgis_app, layer):
    dock = UmapDock()
    dock.set_layer(layer)
    i = 7
    spots = dock.scatter.pointsAt(QPointF(*dock.xy[i]))
    assert len(spots) >= 1
    dock.scatter.sigClicked.emit(dock.scatter, spots[:1], None)
    assert list(layer.selectedFeatureIds()) == [int(dock.fids[spots[0].data()])]


def test_map_selection_outlines_the_points(qgis_app, layer):
    dock = UmapDock()
    dock.set_layer(layer)
    ids = [f.id() for f in layer.getFeatures() if f["cell"] % 7 == 0]
    layer.selectByIds(ids)
    assert dock.highlighted_fids() == sorted(ids)
    assert len(dock.highlight.data) == len(ids)


def test_unclustered_layer_gets_a_note(qgis_app, tmp_path):
    path = tmp_path / "plain.gpkg"
    write_embeddings(path, np.array([[500000.0, 4550000.0]]), np.eye(1, 16, dtype="f4"), CRS(32629).to_wkt(), {})
    dock = UmapDock()
    assert not dock.set_layer(QgsVectorLayer(f"{path}|layername=embeddings", "plain", "ogr"))
    assert "Cluster embeddings" in dock.status.text()
