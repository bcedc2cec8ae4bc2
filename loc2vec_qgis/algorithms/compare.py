"""Processing algorithm ``loc2vec:compare``: what a change would do — two rasterizations of the same ground
(two OSM dates, or a planner's edited layers) embedded on one grid and compared cell by cell.

Thin: the engine's ``compare_areas`` does the work; this turns layers into paths and styles the result.
"""

from __future__ import annotations

from pathlib import Path

from qgis.core import (
    QgsGraduatedSymbolRenderer,
    QgsProcessing,
    QgsProcessingAlgorithm,
    QgsProcessingException,
    QgsProcessingOutputNumber,
    QgsProcessingOutputString,
    QgsProcessingParameterEnum,
    QgsProcessingParameterFile,
    QgsProcessingParameterFileDestination,
    QgsProcessingParameterNumber,
    QgsProcessingParameterRasterLayer,
    QgsProcessingParameterVectorDestination,
    QgsProcessingParameterVectorLayer,
    QgsRendererRange,
)

from loc2vec_engine import ATTRIBUTION

from .cluster import embeddings_path
from .defaults import preselect_area
from .engine import DEVICES, FeedbackProgress, add_advanced, engine_errors, user_message
from .styles import LayerStyler, cell_symbol, quantile_breaks, ramp_color

# Pale (a little change) to dark red (the most), as the engine's change map (YlOrRd).
CHANGE_RAMP = ("#ffffb2", "#fd8d3c", "#bd0026")
NO_CHANGE_COLOR = "255,255,255,0"  # unchanged cells see-through: the map shows where something moved
CHANGE_CLASSES = 5
DEFAULT_K = 8  # the engine's change.DEFAULT_K (not imported: numpy at plugin load)


class CompareAlgorithm(QgsProcessingAlgorithm):
    """Compare two area rasters of the same ground through a model: embedding change and cluster switches."""

    BEFORE = "BEFORE"
    AFTER = "AFTER"
    MODEL = "MODEL"
    STRIDE = "STRIDE"
    K = "K"
    CLUSTERS = "CLUSTERS"
    DEVICE = "DEVICE"
    OUTPUT = "OUTPUT"
    MAP = "MAP"

    def name(self):
        return "compare"

    def displayName(self):  # noqa: N802
        return "Compare two rasterizations"

    def group(self):
        return "Embeddings"

    def groupId(self):  # noqa: N802
        return "embeddings"

    def tags(self):
        return ["compare", "change", "before", "after", "planning", "scenario", "what if", "difference", "embedding",
                "loc2vec", "cluster"]

    def shortDescription(self):  # noqa: N802
        return "What a change would do: how far each cell's embedding moves between two rasterizations of one area."

    def shortHelpString(self):  # noqa: N802
        return (
            "<p>Compares two <b>area rasters of the same ground</b>: two OpenStreetMap dates, or the same layers "
            "before and after a planner's edit (a new park, a removed industrial block), each made by "
            "<i>Rasterize OpenStreetMap to an area raster</i> with the same extent, CRS, pixel size and channel "
            "spec. Both are embedded with the <b>model</b> (empty = the shipped one) on the grid of <i>Embed "
            "area</i> (<b>stride</b> metres between tile centres).</p>"
            "<p>Per cell: <code>change</code> = 1 − cosine of the two embeddings (0: the cell's tile is the same "
            "in both; tiles are 500 m for the shipped model, so an edit moves every cell whose tile touches it), "
            "and the nearest cluster before and after (<code>cluster_before</code>, <code>cluster_after</code>, "
            "<code>changed_cluster</code> = 1 when they differ): the centroids of k-means with <b>k</b> clusters "
            "fitted on the BEFORE embeddings, or those of a clustered <b>embeddings layer</b> of the same model "
            "(from <i>Cluster embeddings</i>; then k is not used).</p>"
            "<p>The change layer is loaded styled by change (unchanged cells left clear); the log gives the "
            "cells, the mean change, how many switched cluster and where the largest change is. Optionally a "
            "change map PNG.</p>"
            "<p>Rasters on different grids or with different bands, or a model of other channels, are refused "
            "with the reason.</p>"
            f"<p><b>Attribution</b>: {ATTRIBUTION}</p>"
        )

    def createInstance(self):  # noqa: N802
        return CompareAlgorithm()

    def initAlgorithm(self, config=None):  # noqa: N802
        before = QgsProcessingParameterRasterLayer(self.BEFORE, "Before: area raster of the ground as it is")
        self.addParameter(preselect_area(before))
        self.addParameter(QgsProcessingParameterRasterLayer(
            self.AFTER, "After: area raster of the changed ground (same extent, CRS, pixel size, spec)"))
        self.addParameter(QgsProcessingParameterFile(
            self.MODEL, "Model (.onnx; empty = the shipped default model)", behavior=QgsProcessingParameterFile.File,
            extension="onnx", optional=True))
        self.addParameter(QgsProcessingParameterNumber(
            self.STRIDE, "Stride between tile centres (metres)", type=QgsProcessingParameterNumber.Double,
            defaultValue=100.0, minValue=1.0, maxValue=100000.0))
        self.addParameter(QgsProcessingParameterNumber(
            self.K, "Clusters (k-means on the BEFORE embeddings)", type=QgsProcessingParameterNumber.Integer,
            defaultValue=DEFAULT_K, minValue=2, maxValue=1000))
        add_advanced(self, [
            QgsProcessingParameterVectorLayer(
                self.CLUSTERS, "Use the clusters of this embeddings layer instead (same model; from Cluster "
                               "embeddings)", types=[QgsProcessing.TypeVectorPoint], optional=True),
            QgsProcessingParameterEnum(self.DEVICE, "Device", options=DEVICES, defaultValue="auto",
                                       usesStaticStrings=True),
        ])
        self.addParameter(QgsProcessingParameterVectorDestination(
            self.OUTPUT, "Change (GeoPackage: layer change)", type=QgsProcessing.TypeVectorPoint))
        self.addParameter(QgsProcessingParameterFileDestination(
            self.MAP, "Change map", "PNG files (*.png)", optional=True, createByDefault=False))
        self.addOutput(QgsProcessingOutputNumber("CELLS", "Cells compared"))
        self.addOutput(QgsProcessingOutputNumber("MEAN_CHANGE", "Mean change (1 − cosine)"))
        self.addOutput(QgsProcessingOutputNumber("MAX_CHANGE", "Largest change"))
        self.addOutput(QgsProcessingOutputString("LARGEST_AT", "Where the largest change is (LON,LAT)"))
        self.addOutput(QgsProcessingOutputNumber("SWITCHED", "Cells that switched cluster"))

    def processAlgorithm(self, parameters, context, feedback):  # noqa: N802
        before = self._raster(parameters, self.BEFORE, context)
        after = self._raster(parameters, self.AFTER, context)
        model = self.parameterAsFile(parameters, self.MODEL, context) or "default"
        stride = self.parameterAsDouble(parameters, self.STRIDE, context)
        clusters = None
        if parameters.get(self.CLUSTERS) not in (None, ""):
            clusters = embeddings_path(self.parameterAsVectorLayer(parameters, self.CLUSTERS, context),
                                       parameters.get(self.CLUSTERS))
        k = None if clusters else self.parameterAsInt(parameters, self.K, context)
        device = self.parameterAsEnumString(parameters, self.DEVICE, context) or "auto"
        out = self.parameterAsOutputLayer(parameters, self.OUTPUT, context)
        if Path(out).suffix.lower() != ".gpkg":
            raise QgsProcessingException(user_message(f"output {out} is not a GeoPackage",
                                                      "give a file name ending in .gpkg"))
        png = self.parameterAsFileOutput(parameters, self.MAP, context) or None
        with engine_errors(self.displayName()):
            from loc2vec_engine.change import compare_areas  # onnxruntime, numba, scikit-learn: only now

            result = compare_areas(before, after, model=model, out=out, map_png=png, stride_m=stride, k=k,
                                   clusters=clusters, device=device, progress=FeedbackProgress(feedback, stages=2))
        feedback.setProgress(100)
        from loc2vec_engine.change.command import summary_lines

        for line in summary_lines(result):
            feedback.pushInfo(line)
        feedback.pushInfo(f"Wrote {', '.join(str(p) for p in result.written)}. {ATTRIBUTION}")
        if context.willLoadLayerOnCompletion(out):
            details = context.layerToLoadOnCompletionDetails(out)
            details.name = "change"
            details.setPostProcessor(LayerStyler(lambda layer: change_renderer(
                [f["change"] for f in layer.getFeatures()], result.grid.stride_m)))
        row = result.largest
        lon, lat = result.lonlat(row)
        return {self.OUTPUT: out, self.MAP: png, "CELLS": len(result), "MEAN_CHANGE": float(result.change.mean()),
                "MAX_CHANGE": float(result.change[row]), "LARGEST_AT": f"{lon:.6f},{lat:.6f}",
                "SWITCHED": int(result.switched.sum())}

    def _raster(self, parameters, name, context) -> str:
        layer = self.parameterAsRasterLayer(parameters, name, context)
        path = layer.source() if layer is not None else ""
        if not path or not Path(path).is_file():
            raise QgsProcessingException(user_message(
                f"the {name.lower()} raster {path or parameters.get(name)!r} is not a file",
                "give a GeoTIFF made by 'Rasterize OpenStreetMap to an area raster'"))
        return path


def change_renderer(values, stride_m: float | None = None, classes: int = CHANGE_CLASSES,
                    field: str = "change") -> QgsGraduatedSymbolRenderer:
    """'no change' (exactly 0, see-through) and equal-count classes of the cells that changed, pale to dark red.

    Most cells of a local edit do not change at all: quantiles over every cell would spend the classes on 0.
    """
    from loc2vec_engine.project.legend import range_labels

    values = [float(v) for v in values if v is not None]
    moved = [v for v in values if v > 0]
    ranges = [QgsRendererRange(0.0, 0.0, cell_symbol(NO_CHANGE_COLOR, stride_m), "no change (0)")]
    if moved:
        breaks = quantile_breaks(moved, classes)
        breaks[0] = 0.0  # 0 itself is matched by the first range
        labels = range_labels(breaks, "change ", lowest=4) or [f"change class {i + 1}" for i in range(len(breaks) - 1)]
        n = len(breaks) - 1
        for i, (lo, hi) in enumerate(zip(breaks, breaks[1:])):
            ranges.append(QgsRendererRange(lo, hi, cell_symbol(ramp_color(CHANGE_RAMP, (i + 0.5) / n), stride_m),
                                           labels[i]))
    return QgsGraduatedSymbolRenderer(field, ranges)
