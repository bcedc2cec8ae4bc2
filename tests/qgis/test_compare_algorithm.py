"""processing.run("loc2vec:compare") on a piece of the real Porto raster and a copy with one block made a park."""

import numpy as np
import pytest
from qgis.core import QgsGraduatedSymbolRenderer, QgsProcessingException, QgsProcessingFeedback, QgsProject

from loc2vec_engine import ATTRIBUTION
from loc2vec_engine.channels import get_spec

import processing  # noqa: E402

ALG = "loc2vec:compare"
STRIDE = 150.0
WINDOW_PX = 384  # 750 m of the 1.95 m/px test raster
BLOCK_PX = (60, 60, 80, 80)  # col, row, width, height: a 156 m block near the north-west corner


@pytest.fixture(scope="module")
def rasters(porto_area, tmp_path_factory):
    """before.tif: a 750 m window of the Porto test raster; park.tif: the same with the block's buildings
    replaced by a park (as a planner's edited layer would be rasterized); the block's centre in the raster CRS."""
    from osgeo import gdal

    gdal.UseExceptions()
    d = tmp_path_factory.mktemp("compare_alg")
    before, park = d / "before.tif", d / "park.tif"
    for path in (before, park):
        gdal.Translate(str(path), str(porto_area), srcWin=[0, 0, WINDOW_PX, WINDOW_PX])
    spec = get_spec()
    ds = gdal.Open(str(park), gdal.GA_Update)
    c, r, w, h = BLOCK_PX
    for name in ("buildings_residential", "buildings_commercial", "buildings_industrial", "green"):
        band = ds.GetRasterBand(spec.index(name) + 1)
        band.WriteArray(np.full((h, w), 255 if name == "green" else 0, np.uint8), c, r)
    x0, px, _, y0, _, py = ds.GetGeoTransform()
    ds = None
    return {"before": str(before), "park": str(park), "block_xy": (x0 + (c + w / 2) * px, y0 + (r + h / 2) * py)}


@pytest.fixture()
def project():
    yield QgsProject.instance()
    QgsProject.instance().removeAllMapLayers()


def test_compare_loads_the_change_layer_styled_by_change(loc2vec_plugin, rasters, tmp_path, project):
    out, png = tmp_path / "change.gpkg", tmp_path / "change.png"
    feedback = QgsProcessingFeedback()
    result = processing.runAndLoadResults(ALG, {"BEFORE": rasters["before"], "AFTER": rasters["park"],
                                                "STRIDE": STRIDE, "K": 3, "OUTPUT": str(out), "MAP": str(png)},
                                          feedback=feedback)
    assert result["CELLS"] == 25 and result["MAX_CHANGE"] > 0.01 and 0 < result["MEAN_CHANGE"] < result["MAX_CHANGE"]
    layers = {lyr.name(): lyr for lyr in project.mapLayers().values()}
    layer = layers["change"]
    assert layer.featureCount() == 25 and layer.attribution() == ATTRIBUTION
    renderer = layer.renderer()
    assert isinstance(renderer, QgsGraduatedSymbolRenderer) and renderer.classAttribute() == "change"
    assert renderer.ranges()[0].label() == "no change (0)" and len(renderer.ranges()) >= 3
    feats = list(layer.getFeatures())
    change = np.array([f["change"] for f in feats])
    xy = np.array([[f.geometry().asPoint().x(), f.geometry().asPoint().y()] for f in feats])
    largest = xy[int(np.argmax(change))]
    assert np.abs(largest - rasters["block_xy"]).max() <= STRIDE  # the largest change is at the park
    far = np.abs(xy - rasters["block_xy"]).max(axis=1) > 250 + 78 + STRIDE  # no tile touches the block
    assert far.sum() >= 4 and np.all(change[far] == 0)
    switched = [f["changed_cluster"] for f in feats]
    assert sum(switched) == result["SWITCHED"]
    log = feedback.textLog()
    assert "compared 25 cells of before.tif and park.tif" in log and f"largest change at {result['LARGEST_AT']}" in log
    assert ATTRIBUTION in log and png.stat().st_size > 5000


def test_rasters_on_different_grids_are_refused(loc2vec_plugin, rasters, tmp_path, project):
    from osgeo import gdal

    other = tmp_path / "inputs" / "smaller.tif"
    other.parent.mkdir()
    gdal.Translate(str(other), rasters["park"], srcWin=[0, 0, WINDOW_PX - 64, WINDOW_PX])
    (tmp_path / "out").mkdir()
    with pytest.raises(QgsProcessingException, match="cover different extents") as e:
        processing.run(ALG, {"BEFORE": rasters["before"], "AFTER": str(other),
                             "OUTPUT": str(tmp_path / "out" / "bad.gpkg")}, feedback=QgsProcessingFeedback())
    assert "Fix:" in str(e.value) and "--bbox" in str(e.value)
    assert list((tmp_path / "out").iterdir()) == []
