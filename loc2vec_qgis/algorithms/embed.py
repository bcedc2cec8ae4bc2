"""Processing algorithm ``loc2vec:embed``: an area raster -> the embeddings layer (one point per tile centre)."""

from __future__ import annotations

from pathlib import Path

from qgis.core import (
    QgsProcessing,
    QgsProcessingAlgorithm,
    QgsProcessingException,
    QgsProcessingLayerPostProcessorInterface,
    QgsProcessingOutputNumber,
    QgsProcessingParameterEnum,
    QgsProcessingParameterFeatureSource,
    QgsProcessingParameterFile,
    QgsProcessingParameterNumber,
    QgsProcessingParameterRasterLayer,
    QgsProcessingParameterVectorDestination,
)

from loc2vec_engine import ATTRIBUTION

from .clip import clip_polygon_file
from .defaults import preselect_area
from .engine import DEVICES, FeedbackProgress, add_advanced, engine_errors, import_shapely, user_message



class EmbedAlgorithm(QgsProcessingAlgorithm):
    """Embed an area raster on a grid of tiles."""

    MODEL = "MODEL"
    AREA = "AREA"
    STRIDE = "STRIDE"
    CLIP = "CLIP"
    DEVICE = "DEVICE"
    BATCH = "BATCH_SIZE"
    OUTPUT = "OUTPUT"

    def name(self):
        return "embed"

    def displayName(self):  # noqa: N802
        return "Embed area"

    def group(self):
        return "Embeddings"

    def groupId(self):  # noqa: N802
        return "embeddings"

    def tags(self):
        return ["embedding", "onnx", "loc2vec", "vectors", "grid", "tiles", "similarity"]

    def shortDescription(self):  # noqa: N802
        return "Runs a loc2vec model over a grid of tiles of an area raster and writes one point per tile."

    def shortHelpString(self):  # noqa: N802
        return (
            "<p>Cuts a tile (500 m for the shipped model) around every point of a grid over the area raster, "
            "runs the <b>model</b> (a loc2vec <code>.onnx</code> file; empty = the model that ships with the "
            "plugin) with onnxruntime, and writes the <b>embeddings layer</b>: a GeoPackage with one point per "
            "tile centre and its embedding (a unit vector) in the field <code>embedding</code>. "
            "<code>cluster</code>, <code>umap_x</code> and <code>umap_y</code> stay empty until "
            "<i>Cluster embeddings</i> runs.</p>"
            "<p><b>Stride</b>: metres between tile centres (100 m: 100 cells per km²). Cells whose centre is "
            "outside the area's valid pixels or the optional <b>clip</b> polygons are skipped.</p>"
            "<p>The area raster must have the channels the model was trained on (made by "
            "<i>Rasterize OpenStreetMap to an area raster</i> with the same channel spec).</p>"
            f"<p><b>Attribution</b>: {ATTRIBUTION}</p>"
        )

    def createInstance(self):  # noqa: N802
        return EmbedAlgorithm()

    def initAlgorithm(self, config=None):  # noqa: N802
        area = QgsProcessingParameterRasterLayer(self.AREA, "Area raster (from Rasterize)")
        self.addParameter(preselect_area(area))  # the dialog opens on the project's area raster
        self.addParameter(QgsProcessingParameterFile(
            self.MODEL, "Model (.onnx; empty = the shipped default model)", behavior=QgsProcessingParameterFile.File,
            extension="onnx", optional=True))
        self.addParameter(QgsProcessingParameterNumber(
            self.STRIDE, "Stride between tile centres (metres)", type=QgsProcessingParameterNumber.Double,
            defaultValue=100.0, minValue=1.0, maxValue=100000.0))
        self.addParameter(QgsProcessingParameterFeatureSource(
            self.CLIP, "Only inside these polygons", types=[QgsProcessing.TypeVectorPolygon], optional=True))
        advanced = [
            QgsProcessingParameterEnum(self.DEVICE, "Device", options=DEVICES, defaultValue="auto",
                                       usesStaticStrings=True),
            QgsProcessingParameterNumber(self.BATCH, "Tiles per batch", type=QgsProcessingParameterNumber.Integer,
                                         defaultValue=64, minValue=1, maxValue=4096),
        ]
        add_advanced(self, advanced)
        self.addParameter(QgsProcessingParameterVectorDestination(
            self.OUTPUT, "Embeddings", type=QgsProcessing.TypeVectorPoint))
        self.addOutput(QgsProcessingOutputNumber("CELLS", "Number of embedded cells"))

    def _area_path(self, parameters, context) -> str:
        layer = self.parameterAsRasterLayer(parameters, self.AREA, context)
        path = layer.source() if layer is not None else ""
        if not path or not Path(path).is_file():
            raise QgsProcessingException(user_message(
                f"the area raster {path or parameters.get(self.AREA)!r} is not a file",
                "give a GeoTIFF made by 'Rasterize OpenStreetMap to an area raster'"))
        return path

    def _output(self, parameters, context) -> str:
        out = self.parameterAsOutputLayer(parameters, self.OUTPUT, context)
        if Path(out).suffix.lower() != ".gpkg":
            raise QgsProcessingException(user_message(f"output {out} is not a GeoPackage",
                                                      "give a file name ending in .gpkg"))
        return out

    def processAlgorithm(self, parameters, context, feedback):  # noqa: N802
        area = self._area_path(parameters, context)
        model = self.parameterAsFile(parameters, self.MODEL, context) or "default"
        stride = self.parameterAsDouble(parameters, self.STRIDE, context)
        device = self.parameterAsEnumString(parameters, self.DEVICE, context) or "auto"
        batch = self.parameterAsInt(parameters, self.BATCH, context)
        out = self._output(parameters, context)
        with engine_errors(self.displayName()):
            clip = clip_polygon_file(self, parameters, self.CLIP, context, feedback)
            if clip:
                import_shapely()
            from loc2vec_engine.embeddings.embed import embed_area  # onnxruntime, numba: only now

            result = embed_area(model, area, out, stride_m=stride, clip=clip, device=device, batch_size=batch,
                                progress=FeedbackProgress(feedback))
        feedback.setProgress(100)
        feedback.pushInfo(f"Wrote {out}: {result.cells} cells in {result.seconds:.1f} s "
                          f"({result.cells_per_s:.0f} cells/s, {result.provider})")
        feedback.pushInfo(ATTRIBUTION)
        if context.willLoadLayerOnCompletion(out):
            details = context.layerToLoadOnCompletionDetails(out)
            details.name = "embeddings"
            details.setPostProcessor(EmbeddingsStyler.create())
        return {self.OUTPUT: out, "CELLS": result.cells}


class EmbeddingsStyler(QgsProcessingLayerPostProcessorInterface):
    """Small grey points with the OSM attribution (clusters get their colours from Cluster embeddings)."""

    instance = None  # Processing does not own post-processors: keep the last one alive

    def postProcessLayer(self, layer, context, feedback):  # noqa: N802
        if layer is None or not layer.isValid():
            return
        layer.setAttribution(ATTRIBUTION)
        layer.setAttributionUrl("https://www.openstreetmap.org/copyright")
        symbol = layer.renderer().symbol() if hasattr(layer.renderer(), "symbol") else None
        if symbol is not None:
            from qgis.PyQt.QtGui import QColor

            symbol.setColor(QColor("#555555"))
            symbol.setSize(1.2)
        layer.triggerRepaint()

    @staticmethod
    def create():
        EmbeddingsStyler.instance = EmbeddingsStyler()
        return EmbeddingsStyler.instance
