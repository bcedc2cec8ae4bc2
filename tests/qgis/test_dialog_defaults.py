"""The algorithms' dialogs as QGIS opens them (issue 11, item 8): the project's area raster preselected
(not another raster above it), labels without a doubled "(optional) [optional]"."""

import numpy as np
import pytest
from osgeo import gdal, osr
from qgis.core import QgsApplication, QgsProject, QgsRasterLayer

from loc2vec_qgis.algorithms.defaults import is_area_raster, project_area_raster


@pytest.fixture()
def project(porto_area, tmp_path):
    """A project with a plain raster on top (an aerial photo, say) and the area raster under it."""
    plain = tmp_path / "aerial.tif"
    ds = gdal.GetDriverByName("GTiff").Create(str(plain), 20, 20, 1, gdal.GDT_Byte)
    ds.SetGeoTransform((530000, 10, 0, 4555000, 0, -10))
    srs = osr.SpatialReference()
    srs.ImportFromEPSG(32629)
    ds.SetProjection(srs.ExportToWkt())
    ds.GetRasterBand(1).WriteArray(np.full((20, 20), 128, np.uint8))
    ds = None
    project = QgsProject.instance()
    area = QgsRasterLayer(str(porto_area), "area raster (drawn: major roads)")
    basemap = QgsRasterLayer(str(plain), "aerial photo")  # sorts before the area: not picked for its name
    assert area.isValid() and basemap.isValid()
    project.addMapLayers([basemap, area])
    yield project, area, basemap
    project.removeAllMapLayers()


@pytest.fixture(autouse=True)
def browser_model(qgis_iface, monkeypatch):
    """The dialog asks QGIS's interface for its browser model, which pytest-qgis's interface lacks: a real one."""
    from qgis.gui import QgsBrowserGuiModel

    model = QgsBrowserGuiModel()
    monkeypatch.setattr(qgis_iface, "browserModel", lambda: model, raising=False)
    yield model


def dialog(alg_id):
    from processing.gui.AlgorithmDialog import AlgorithmDialog

    alg = QgsApplication.processingRegistry().createAlgorithmById(alg_id)  # as the toolbox does it
    return AlgorithmDialog(alg)


@pytest.mark.parametrize("alg_id", ["loc2vec:embed", "loc2vec:evaluate", "loc2vec:cluster"])
def test_dialog_opens_on_the_projects_area_raster(loc2vec_plugin, project, alg_id):
    _, area, basemap = project
    assert is_area_raster(area) and not is_area_raster(basemap)
    assert project_area_raster() is area
    dlg = dialog(alg_id)
    wrapper = dlg.mainWidget().wrappers["AREA"]
    assert wrapper.parameterValue() == area.id()
    dlg.deleteLater()


def test_without_an_area_raster_nothing_is_forced(loc2vec_plugin, project):
    _, area, _ = project
    QgsProject.instance().removeMapLayer(area.id())
    assert project_area_raster() is None
    dlg = dialog("loc2vec:cluster")  # optional there: it stays empty
    assert dlg.mainWidget().wrappers["AREA"].parameterValue() in (None, "")
    dlg.deleteLater()


def test_processing_run_still_needs_the_area(loc2vec_plugin, project, tmp_path):
    """The preselection is the dialog's only: a script that gives no area raster is told so."""
    import processing
    from qgis.core import QgsProcessingException

    with pytest.raises(QgsProcessingException):
        processing.run("loc2vec:embed", {"STRIDE": 150, "OUTPUT": str(tmp_path / "e.gpkg")})
    assert not (tmp_path / "e.gpkg").exists()


def test_no_label_says_optional_twice(loc2vec_plugin):
    """Processing adds ' [optional]' to an optional parameter's label: the description must not say it too."""
    for alg in loc2vec_plugin.provider.algorithms():
        for param in alg.parameterDefinitions():
            assert "optional" not in param.description().lower() or not param.flags() & param.FlagOptional, \
                f"{alg.id()} {param.name()}: {param.description()!r}"
    dlg = dialog("loc2vec:cluster")
    label = dlg.mainWidget().wrappers["AREA"].wrappedLabel().text()
    assert label == "Area raster for the map's road background [optional]"
    dlg.deleteLater()


def test_the_shipped_models_dialog_opens_with_its_inputs_and_outputs(loc2vec_plugin):
    """'From OSM to a suitability map' (loc2vec:osm_to_suitability) opens in the toolbox's dialog like any algorithm."""
    dlg = dialog("loc2vec:osm_to_suitability")
    wrappers = dlg.mainWidget().wrappers
    assert {"OSM", "EXTENT", "POSITIVES", "NEGATIVES", "STRIDE", "K", "MODEL", "METHOD"} <= set(wrappers)
    assert wrappers["STRIDE"].parameterValue() == 100 and wrappers["METHOD"].parameterValue() == "auto"
    outputs = {p.name() for p in dlg.algorithm().destinationParameterDefinitions()}
    assert outputs == {"rasterize:AREA", "embed:EMBEDDINGS", "score:SCORES", "score:SCORE_RASTER"}
    assert outputs <= set(wrappers)  # a file widget for each
    dlg.deleteLater()
