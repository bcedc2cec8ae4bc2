"""processing.run("loc2vec:render") on small synthetic embeddings: the engine's raster, loaded in true colours."""

import numpy as np
import pytest
from qgis.core import (
    QgsContrastEnhancement,
    QgsMultiBandColorRenderer,
    QgsProcessingException,
    QgsProcessingFeedback,
    QgsProject,
    QgsRasterLayer,
)

from loc2vec_engine import ATTRIBUTION
from loc2vec_engine.embeddings.store import write_embeddings
from loc2vec_engine.render import render_files

import processing  # noqa: E402

ALG = "loc2vec:render"
STRIDE = 100.0


def _write(path, seed, sha="c" * 64, kinds=range(5), dim=16):
    """A 20 x 12 grid of cells, each one of a few kinds of place (shared vectors), some places empty."""
    from pyproj import CRS

    protos = np.random.default_rng(0).standard_normal((8, dim))
    protos = (protos / np.linalg.norm(protos, axis=1, keepdims=True)).astype(np.float32)
    r, c = np.divmod(np.arange(240), 20)
    keep = np.random.default_rng(seed).random(240) > 0.15
    kind = np.asarray(list(kinds))[(r + c) % len(list(kinds))]
    xy = np.stack([500_050.0 + c * STRIDE, 4_560_050.0 - r * STRIDE], axis=1)
    return write_embeddings(path, xy[keep], protos[kind[keep]], CRS.from_epsg(32629).to_wkt(),
                            {"model_sha256": sha, "stride_m": STRIDE}, cell=np.flatnonzero(keep))


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    d = tmp_path_factory.mktemp("render_alg")
    return {"a": _write(d / "a.gpkg", 1), "b": _write(d / "b.gpkg", 2, kinds=range(3, 8)),
            "other": _write(d / "other.gpkg", 3, sha="d" * 64)}


@pytest.fixture()
def project():
    yield QgsProject.instance()
    QgsProject.instance().removeAllMapLayers()


def _pixels(path):
    from osgeo import gdal

    ds = gdal.Open(str(path))
    data = ds.ReadAsArray()
    ds = None
    return data


def test_rgb_is_the_engines_raster_shown_without_a_stretch(loc2vec_plugin, files, tmp_path, project):
    out = tmp_path / "a_rgb.tif"
    result = processing.runAndLoadResults(ALG, {"INPUT": str(files["a"]), "OUTPUT": str(out)},
                                          feedback=QgsProcessingFeedback())
    assert result["OUTPUT"] == str(out) and result["CELLS"] > 150
    engine = render_files([files["a"]], [tmp_path / "engine.tif"])[0]
    assert np.array_equal(_pixels(out), _pixels(engine.path))
    layers = [lyr for lyr in project.mapLayers().values() if lyr.source() == str(out)]
    assert len(layers) == 1 and isinstance(layers[0], QgsRasterLayer)
    layer = layers[0]
    renderer = layer.renderer()
    assert isinstance(renderer, QgsMultiBandColorRenderer)
    assert (renderer.redBand(), renderer.greenBand(), renderer.blueBand()) == (1, 2, 3)
    for enhancement in (renderer.redContrastEnhancement(), renderer.greenContrastEnhancement(),
                        renderer.blueContrastEnhancement()):  # the file's values are the colours
        assert enhancement is None or enhancement.contrastEnhancementAlgorithm() == QgsContrastEnhancement.NoEnhancement
    assert layer.attribution() == ATTRIBUTION
    assert layer.dataProvider().sourceNoDataValue(1) == 0
    assert layer.crs().authid() == "EPSG:32629" and layer.rasterUnitsPerPixelX() == STRIDE


def test_colours_fitted_on_two_cities_match_the_engines(loc2vec_plugin, files, tmp_path):
    joint = render_files([files["a"], files["b"]], out_dir=tmp_path)
    out = tmp_path / "b_plugin.tif"
    processing.run(ALG, {"INPUT": str(files["b"]), "FIT_ON": [str(files["a"]), str(files["b"])],
                         "OUTPUT": str(out)}, feedback=QgsProcessingFeedback())
    assert np.array_equal(_pixels(out), _pixels(joint[1].path))


def test_all_bands(loc2vec_plugin, files, tmp_path):
    out = tmp_path / "a_bands.tif"
    processing.run(ALG, {"INPUT": str(files["a"]), "BANDS": "all", "OUTPUT": str(out)},
                   feedback=QgsProcessingFeedback())
    data = _pixels(out)
    assert data.shape[0] == 16 and data.dtype == np.float32 and np.isnan(data).any()


@pytest.mark.parametrize("case, match", [("other_model", "different models"), ("not_embeddings", "not a loc2vec")])
def test_refusals_are_messages_and_write_nothing(loc2vec_plugin, files, tmp_path, case, match):
    params = {"INPUT": str(files["a"]), "OUTPUT": str(tmp_path / "out.tif")}
    if case == "other_model":
        params["FIT_ON"] = [str(files["a"]), str(files["other"])]
    else:
        from osgeo import ogr

        ds = ogr.GetDriverByName("GPKG").CreateDataSource(str(tmp_path / "roads.gpkg"))
        lyr = ds.CreateLayer("roads", None, ogr.wkbPoint)
        lyr = ds = None
        params["INPUT"] = str(tmp_path / "roads.gpkg")
    with pytest.raises(QgsProcessingException, match=match):
        processing.run(ALG, params, feedback=QgsProcessingFeedback())
    assert not (tmp_path / "out.tif").exists()
