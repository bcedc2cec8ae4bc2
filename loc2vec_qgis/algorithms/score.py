"""Processing algorithm ``loc2vec:score``: every cell scored by its likeness to example places, with a mask."""

from __future__ import annotations

from pathlib import Path

from qgis.core import (
    QgsFillSymbol,
    QgsProcessing,
    QgsProcessingAlgorithm,
    QgsProcessingContext,
    QgsProcessingException,
    QgsProcessingOutputNumber,
    QgsProcessingOutputString,
    QgsProcessingOutputVectorLayer,
    QgsProcessingParameterEnum,
    QgsProcessingParameterFeatureSource,
    QgsProcessingParameterFileDestination,
    QgsProcessingParameterNumber,
    QgsProcessingParameterRasterDestination,
    QgsProcessingParameterVectorDestination,
    QgsProcessingParameterVectorLayer,
    QgsSingleSymbolRenderer,
)

from loc2vec_engine import ATTRIBUTION

from .cluster import embeddings_path
from .engine import add_advanced, engine_errors, user_message
from .styles import LayerStyler, score_renderer

# The engine's scoring.score.METHODS, not imported so that the provider loads without numpy.
METHODS = ["auto", "prototype", "logistic"]
MASK_LAYER = "mask"  # the engine's scoring.output.MASK_LAYER
EXAMPLE_TYPES = [QgsProcessing.TypeVectorPoint, QgsProcessing.TypeVectorPolygon]


class ScoreAlgorithm(QgsProcessingAlgorithm):
    """Score places from examples: prototype or logistic regression on the embeddings (``loc2vec score``)."""

    INPUT = "INPUT"
    POSITIVES = "POSITIVES"
    NEGATIVES = "NEGATIVES"
    METHOD = "METHOD"
    THRESHOLD = "THRESHOLD"
    OUTPUT = "OUTPUT"
    RASTER = "RASTER"
    HISTOGRAM = "HISTOGRAM"

    def name(self):
        return "score"

    def displayName(self):  # noqa: N802
        return "Score places from examples"

    def group(self):
        return "Embeddings"

    def groupId(self):  # noqa: N802
        return "embeddings"

    def tags(self):
        return ["score", "examples", "classify", "logistic", "prototype", "mask", "suitability", "embedding",
                "loc2vec", "places"]

    def shortDescription(self):  # noqa: N802
        return "Scores every cell of an embeddings layer by how much it looks like example places."

    def shortHelpString(self):  # noqa: N802
        return (
            "<p>Scores every cell of the <b>embeddings layer</b> by how much its map tiles look like the "
            "<b>positive examples</b> and unlike the <b>negative examples</b>: point features (the nearest cell "
            "of each) or polygons (every cell whose centre lies inside), in any CRS; tick <i>Selected features "
            "only</i> to use a selection.</p>"
            "<p><b>Method</b>: <i>prototype</i> = cosine to the mean positive, minus the cosine to the mean "
            "negative when there are negatives (works from one example); <i>logistic</i> = a class-balanced "
            "logistic regression with probabilities calibrated on cross-validated decisions (at least 5 positive "
            "and 5 negative cells); <i>auto</i> takes the logistic regression when there are enough examples. "
            "The log says which method ran and how well it held out (cross-validated or leave-one-out ROC "
            "AUC).</p>"
            "<p><b>Threshold</b> (empty = the method's default): 0.5 for the logistic probability; for the "
            "prototype, the weakest positive's score, but never above the best 5 % of cells.</p>"
            "<p>Writes a GeoPackage with the layer <code>score</code> (a point per cell: <code>score</code>, "
            "<code>rank</code>, <code>example</code> = 1 / -1 / 0) and the layer <code>mask</code> (the cells at or "
            "above the threshold dissolved, with <code>cells</code> and <code>area_km2</code>); optionally the "
            "scores as a float32 raster on the embedding grid and a histogram PNG.</p>"
            "<p>A point farther than one grid step from every cell, a polygon around no cell, or the same cell "
            "among the positives and the negatives is refused with the reason.</p>"
            f"<p><b>Attribution</b>: {ATTRIBUTION}</p>"
        )

    def createInstance(self):  # noqa: N802
        return ScoreAlgorithm()

    def initAlgorithm(self, config=None):  # noqa: N802
        self.addParameter(QgsProcessingParameterVectorLayer(
            self.INPUT, "Embeddings layer (from Embed area)", types=[QgsProcessing.TypeVectorPoint]))
        self.addParameter(QgsProcessingParameterFeatureSource(
            self.POSITIVES, "Positive examples (points or polygons: places like the ones to find)", types=EXAMPLE_TYPES))
        self.addParameter(QgsProcessingParameterFeatureSource(
            self.NEGATIVES, "Negative examples (points or polygons: places unlike them)", types=EXAMPLE_TYPES,
            optional=True))
        self.addParameter(QgsProcessingParameterEnum(self.METHOD, "Method", options=METHODS, defaultValue="auto",
                                                     usesStaticStrings=True))
        add_advanced(self, [QgsProcessingParameterNumber(
            self.THRESHOLD, "Mask threshold (empty: 0.5 for logistic; the weakest positive, at most the best 5 %, "
                            "for prototype)", type=QgsProcessingParameterNumber.Double, optional=True)])
        self.addParameter(QgsProcessingParameterVectorDestination(
            self.OUTPUT, "Scores (GeoPackage: layers score and mask)", type=QgsProcessing.TypeVectorPoint))
        self.addParameter(QgsProcessingParameterRasterDestination(
            self.RASTER, "Score raster", optional=True, createByDefault=False))
        self.addParameter(QgsProcessingParameterFileDestination(
            self.HISTOGRAM, "Histogram of the scores", "PNG files (*.png)", optional=True, createByDefault=False))
        self.addOutput(QgsProcessingOutputVectorLayer("MASK", "Mask", QgsProcessing.TypeVectorPolygon))
        self.addOutput(QgsProcessingOutputString("METHOD_USED", "Method used"))
        self.addOutput(QgsProcessingOutputNumber("HELDOUT_AUC", "Held-out ROC AUC (empty: not measured)"))
        self.addOutput(QgsProcessingOutputNumber("THRESHOLD_USED", "Threshold"))
        self.addOutput(QgsProcessingOutputNumber("CELLS_ABOVE", "Cells at or above the threshold"))
        self.addOutput(QgsProcessingOutputNumber("AREA_KM2", "Area at or above the threshold (km²)"))

    def processAlgorithm(self, parameters, context, feedback):  # noqa: N802
        emb = embeddings_path(self.parameterAsVectorLayer(parameters, self.INPUT, context), parameters.get(self.INPUT))
        positives = self._examples(parameters, self.POSITIVES, context, "positive")
        negatives = self._examples(parameters, self.NEGATIVES, context, "negative")
        method = self.parameterAsEnumString(parameters, self.METHOD, context) or "auto"
        threshold = None
        if parameters.get(self.THRESHOLD) not in (None, ""):
            threshold = self.parameterAsDouble(parameters, self.THRESHOLD, context)
        out = self.parameterAsOutputLayer(parameters, self.OUTPUT, context)
        if Path(out).suffix.lower() != ".gpkg":
            raise QgsProcessingException(user_message(f"output {out} is not a GeoPackage",
                                                      "give a file name ending in .gpkg"))
        raster = self.parameterAsOutputLayer(parameters, self.RASTER, context) or None
        histogram = self.parameterAsFileOutput(parameters, self.HISTOGRAM, context) or None
        if feedback.isCanceled():
            raise QgsProcessingException("Cancelled: no output was written.")
        with engine_errors(self.displayName()):
            from loc2vec_engine.scoring import score_places  # numpy, GDAL, scikit-learn: only now

            result = score_places(emb, positives, negatives, out=out, raster=raster, histogram=histogram,
                                  method=method, threshold=threshold)
        feedback.setProgress(100)
        from loc2vec_engine.scoring.command import summary_lines

        for line in summary_lines(result):
            feedback.pushInfo(line)
        feedback.pushInfo(f"Wrote {', '.join(str(p) for p in result.written)}. {ATTRIBUTION}")
        s, mask = result.scores, result.mask
        self._load(context, out, raster, result.layout.stride)
        return {self.OUTPUT: out, self.RASTER: raster, self.HISTOGRAM: histogram,
                "MASK": f"{out}|layername={MASK_LAYER}", "METHOD_USED": s.method, "HELDOUT_AUC": s.heldout_auc,
                "THRESHOLD_USED": s.threshold, "CELLS_ABOVE": mask.cells, "AREA_KM2": mask.area_km2}

    def _examples(self, parameters, name, context, role) -> list:
        """The features of an example layer (or its selection) as WKB with their CRS, for the engine."""
        if parameters.get(name) in (None, ""):
            return []
        source = self.parameterAsSource(parameters, name, context)
        if source is None:
            raise QgsProcessingException(user_message(f"{parameters.get(name)!r} is not a layer",
                                                      f"give a point or polygon layer of {role} examples"))
        from loc2vec_engine.scoring.examples import Geometries

        crs = source.sourceCrs()
        wkb = [bytes(f.geometry().asWkb()) for f in source.getFeatures() if not f.geometry().isNull()]
        if not wkb:
            raise QgsProcessingException(user_message(
                f"the {role} examples layer has no features (or none selected)",
                "select at least one feature, or untick 'Selected features only'"))
        return [Geometries(wkb, crs.authid() or crs.toWkt(), f"the {role} examples layer {source.sourceName()!r}")]

    def _load(self, context, out, raster, stride) -> None:
        """Style the score points by score, load the mask layer too, and name the raster."""
        if context.willLoadLayerOnCompletion(out):
            details = context.layerToLoadOnCompletionDetails(out)
            details.name = "place scores"
            details.setPostProcessor(LayerStyler(lambda layer: score_renderer(
                [f["score"] for f in layer.getFeatures()], stride)))
        project = context.project()
        if project is not None and context.willLoadLayerOnCompletion(out):
            mask = QgsProcessingContext.LayerDetails("score mask", project, "MASK")
            mask.setPostProcessor(LayerStyler(lambda layer: _mask_renderer()))
            context.addLayerToLoadOnCompletion(f"{out}|layername={MASK_LAYER}", mask)
        if raster and context.willLoadLayerOnCompletion(raster):
            context.layerToLoadOnCompletionDetails(raster).name = "score raster"


def _mask_renderer() -> QgsSingleSymbolRenderer:
    return QgsSingleSymbolRenderer(QgsFillSymbol.createSimple(
        {"color": "26,150,65,70", "outline_color": "26,150,65,255", "outline_width": "0.6"}))
