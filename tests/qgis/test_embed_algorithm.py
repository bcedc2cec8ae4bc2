"""processing.run("loc2vec:embed") on the real Porto area raster with the shipped model."""

import numpy as np
import pytest
from qgis.core import QgsProcessingException, QgsProcessingFeedback, QgsProject, QgsVectorLayer

from loc2vec_engine.embeddings import read_embeddings

import processing  # noqa: E402

ALG = "loc2vec:embed"


def test_embed_writes_and_loads_the_embeddings_layer(loc2vec_plugin, porto_area, tmp_path):
    out = tmp_path / "porto.gpkg"
    result = processing.runAndLoadResults(ALG, {"AREA": str(porto_area), "STRIDE": 150, "OUTPUT": str(out)},
                                          feedback=QgsProcessingFeedback())
    es = read_embeddings(out)
    assert result["CELLS"] == len(es) > 30
    assert np.allclose(np.linalg.norm(es.vectors, axis=1), 1, atol=1e-4)
    loaded = [lyr for lyr in QgsProject.instance().mapLayers().values() if lyr.source().startswith(str(out))]
    assert len(loaded) == 1 and isinstance(loaded[0], QgsVectorLayer)
    layer = loaded[0]
    assert layer.name() == "embeddings" and layer.featureCount() == len(es)
    assert {"cell", "embedding", "cluster", "umap_x", "umap_y"} <= set(layer.fields().names())
    assert "OpenStreetMap" in layer.attribution()
    QgsProject.instance().removeAllMapLayers()


def test_embed_with_a_model_file_and_clip_layer(loc2vec_plugin, porto_area, tmp_path):
    from loc2vec_engine.embeddings.onnx_encoder import DEFAULT_MODEL

    full = read_embeddings(_run(porto_area, tmp_path / "full.gpkg"))
    ll = full.lonlat()
    west = float(np.median(ll[:, 0]))
    clip = QgsVectorLayer("Polygon?crs=EPSG:4326", "west", "memory")
    from qgis.core import QgsFeature, QgsGeometry

    f = QgsFeature()
    f.setGeometry(QgsGeometry.fromWkt(f"POLYGON((-9 41, {west} 41, {west} 41.3, -9 41.3, -9 41))"))
    clip.dataProvider().addFeatures([f])
    part = read_embeddings(_run(porto_area, tmp_path / "west.gpkg", MODEL=str(DEFAULT_MODEL), CLIP=clip))
    assert 0 < len(part) < len(full) and (part.lonlat()[:, 0] < west).all()


def _run(area, out, **extra):
    processing.run(ALG, {"AREA": str(area), "STRIDE": 150, "OUTPUT": str(out), **extra},
                   feedback=QgsProcessingFeedback())
    return out


def test_foreign_model_is_a_message_and_no_file(loc2vec_plugin, porto_area, tmp_path):
    bad = tmp_path / "not_a_model.onnx"
    bad.write_bytes(b"\x08\x01garbage")
    with pytest.raises(QgsProcessingException, match="not a readable ONNX file") as e:
        _run(porto_area, tmp_path / "e.gpkg", MODEL=str(bad))
    assert "Fix:" in str(e.value)
    assert not list(tmp_path.glob("*.gpkg*"))


def test_cancel_leaves_no_layer_file(loc2vec_plugin, porto_area, tmp_path):
    feedback = QgsProcessingFeedback()
    feedback.progressChanged.connect(lambda p: feedback.cancel() if p > 10 else None)
    with pytest.raises(QgsProcessingException, match="Cancelled"):
        processing.run(ALG, {"AREA": str(porto_area), "STRIDE": 40, "BATCH_SIZE": 8,
                             "OUTPUT": str(tmp_path / "e.gpkg")}, feedback=feedback)
    assert not list(tmp_path.glob("*.gpkg*"))
