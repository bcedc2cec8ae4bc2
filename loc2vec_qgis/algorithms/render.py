"""Processing algorithm ``loc2vec:render``: an embeddings layer as a raster (PCA colours, or every dimension).

Thin: the engine's ``render_files`` does the work; this only turns layers into paths and styles the result.
"""

from __future__ import annotations

from pathlib import Path

from qgis.core import (
    QgsMultiBandColorRenderer,
    QgsProcessing,
    QgsProcessingAlgorithm,
    QgsProcessingException,
    QgsProcessingOutputNumber,
    QgsProcessingParameterEnum,
    QgsProcessingParameterMultipleLayers,
    QgsProcessingParameterRasterDestination,
    QgsProcessingParameterVectorLayer,
)

from loc2vec_engine import ATTRIBUTION

from .cluster import embeddings_path
from .engine import FeedbackProgress, add_advanced, engine_errors, user_message
from .rasterize import AreaRasterStyler
from .styles import LayerStyler

BANDS = ["rgb", "all"]  # loc2vec_engine.render.BANDS (not imported: numpy at plugin load)


class RenderAlgorithm(QgsProcessingAlgorithm):
    """Write the cells of an embeddings layer as a GeoTIFF on their grid, coloured by principal components."""

    INPUT = "INPUT"
    BANDS = "BANDS"
    FIT_ON = "FIT_ON"
    OUTPUT = "OUTPUT"

    def name(self):
        return "render"

    def displayName(self):  # noqa: N802
        return "Render embeddings as a raster"

    def group(self):
        return "Embeddings"

    def groupId(self):  # noqa: N802
        return "embeddings"

    def tags(self):
        return ["render", "raster", "pca", "principal components", "rgb", "colour", "color", "embedding", "loc2vec",
                "geotiff", "bands"]

    def shortDescription(self):  # noqa: N802
        return "Draws an embeddings layer as a raster in which places with alike map tiles share a colour."

    def shortHelpString(self):  # noqa: N802
        return (
            "<p>Writes the cells of the <b>embeddings layer</b> (made by <i>Embed area</i>) as a GeoTIFF on their "
            "own grid: one pixel per cell, the pixel size is the grid's stride, no data where there is no cell.</p>"
            "<p><b>Bands</b>: <i>rgb</i> colours each cell by the first three principal components of the "
            "embeddings (red, green, blue; each scaled from its 2nd to its 98th percentile), so places whose map "
            "tiles look alike share a colour across the whole city; the colours have no fixed meaning. "
            "<i>all</i> writes every embedding dimension as a float32 band, for any raster tool.</p>"
            "<p><b>Fit the colours on</b> (advanced, rgb): embeddings layers of the same model whose cells, "
            "together, fix the colours instead of this layer's alone. Give the same layers (several cities) "
            "each time you render one of them, and the same colour means the same kind of place in all.</p>"
            f"<p><b>Attribution</b>: {ATTRIBUTION}</p>"
        )

    def createInstance(self):  # noqa: N802
        return RenderAlgorithm()

    def initAlgorithm(self, config=None):  # noqa: N802
        self.addParameter(QgsProcessingParameterVectorLayer(
            self.INPUT, "Embeddings layer (from Embed area)", types=[QgsProcessing.TypeVectorPoint]))
        self.addParameter(QgsProcessingParameterEnum(
            self.BANDS, "Bands (rgb: principal components as colours; all: every dimension, float32)",
            options=BANDS, defaultValue="rgb", usesStaticStrings=True))
        add_advanced(self, [QgsProcessingParameterMultipleLayers(
            self.FIT_ON, "Fit the colours on these embeddings layers (same model; empty = this layer)",
            layerType=QgsProcessing.TypeVectorPoint, optional=True)])
        self.addParameter(QgsProcessingParameterRasterDestination(self.OUTPUT, "Embeddings raster"))
        self.addOutput(QgsProcessingOutputNumber("CELLS", "Cells drawn"))

    def processAlgorithm(self, parameters, context, feedback):  # noqa: N802
        source = embeddings_path(self.parameterAsVectorLayer(parameters, self.INPUT, context),
                                 parameters.get(self.INPUT))
        bands = self.parameterAsEnumString(parameters, self.BANDS, context) or "rgb"
        fit_on = [embeddings_path(layer) for layer in self.parameterAsLayerList(parameters, self.FIT_ON, context)]
        out = self.parameterAsOutputLayer(parameters, self.OUTPUT, context)
        if Path(out).suffix.lower() not in (".tif", ".tiff"):
            raise QgsProcessingException(user_message(f"output {out} is not a GeoTIFF",
                                                      "give a file name ending in .tif"))
        with engine_errors(self.displayName()):
            from loc2vec_engine.render.render import render_files  # numpy, GDAL: only now

            result = render_files([source], [out], bands=bands, fit_on=fit_on or None,
                                  progress=FeedbackProgress(feedback))[0]
        feedback.setProgress(100)
        if result.pca is not None:
            shares = ", ".join(f"{v:.0%}" for v in result.pca.explained)
            feedback.pushInfo(f"Colours: principal components 1-3 (red, green, blue) of "
                              f"{', '.join(result.pca.fitted_on)}, holding {shares} of the variance.")
        feedback.pushInfo(f"Wrote {out}: {result.width} x {result.height} px of {result.stride_m:g} m, "
                          f"{result.cells} cells. {ATTRIBUTION}")
        if context.willLoadLayerOnCompletion(out):  # rgb: true colours and the attribution; all: the attribution
            styler = LayerStyler(true_colours) if bands == "rgb" else AreaRasterStyler.create()
            context.layerToLoadOnCompletionDetails(out).setPostProcessor(styler)
        return {self.OUTPUT: out, "CELLS": result.cells}


def true_colours(layer) -> QgsMultiBandColorRenderer:
    """Bands 1-3 as red, green, blue with no contrast stretch: QGIS would stretch each raster to its own
    range, and then two cities rendered with one colour transform would no longer share their colours."""
    return QgsMultiBandColorRenderer(layer.dataProvider(), 1, 2, 3)
