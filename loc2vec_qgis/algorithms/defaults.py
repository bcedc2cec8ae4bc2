"""Dialog defaults taken from the project: its area raster preselected where an algorithm wants one.

Only the dialogs' initial values (``setGuiDefaultValueOverride``): ``processing.run`` and qgis_process
still need the parameter given.
"""

from __future__ import annotations

from qgis.core import QgsProject, QgsRasterLayer


def is_area_raster(layer) -> bool:
    """A raster written by loc2vec rasterize (its GDAL metadata has the channel spec), open in QGIS."""
    if not isinstance(layer, QgsRasterLayer) or not layer.isValid() or layer.providerType() != "gdal":
        return False
    return "LOC2VEC_SPEC" in layer.dataProvider().htmlMetadata()


def project_area_raster(project: QgsProject | None = None):
    """The project's area raster: the top one in the layers panel, or None."""
    project = project or QgsProject.instance()
    return next((lyr for lyr in project.layerTreeRoot().layerOrder() if is_area_raster(lyr)), None)


def preselect_area(param, project: QgsProject | None = None):
    """Let a raster-layer parameter open on the project's area raster (when it has one); returns ``param``."""
    layer = project_area_raster(project)
    if layer is not None:
        param.setGuiDefaultValueOverride(layer.id())
    return param
