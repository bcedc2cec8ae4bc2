"""Processing algorithm ``loc2vec:similar``: the k cells most like a place (a point, or reference features)."""

from __future__ import annotations

from pathlib import Path

from qgis.core import (
    QgsCoordinateReferenceSystem,
    QgsCoordinateTransform,
    QgsPointXY,
    QgsProcessing,
    QgsProcessingAlgorithm,
    QgsProcessingException,
    QgsProcessingOutputNumber,
    QgsProcessingParameterBoolean,
    QgsProcessingParameterFeatureSource,
    QgsProcessingParameterNumber,
    QgsProcessingParameterPoint,
    QgsProcessingParameterVectorDestination,
    QgsProcessingParameterVectorLayer,
)

from loc2vec_engine import ATTRIBUTION

from .cluster import embeddings_path
from .engine import add_advanced, engine_errors, user_message
from .styles import LayerStyler, score_renderer

WGS84 = QgsCoordinateReferenceSystem("EPSG:4326")
# The dialog's exclude radius: one tile of the shipped model (the engine's DEFAULT_TILE_M, not imported so
# that the provider loads without numpy). Left out in a script, the engine takes the chosen embeddings' own tile.
ONE_TILE_M = 500.0
# The end of the fix when EXPLAIN cannot find the area raster (the command line's names --area).
AREA_HINT = "embed the area again with 'Embed area' (it records where its area raster is)"


class SimilarAlgorithm(QgsProcessingAlgorithm):
    """Find the cells whose embeddings are closest (cosine) to the mean embedding of the reference places."""

    INPUT = "INPUT"
    POINT = "POINT"
    REFERENCE = "REFERENCE"
    K = "K"
    SEARCH_IN = "SEARCH_IN"
    EXCLUDE_RADIUS = "EXCLUDE_RADIUS"
    EXPLAIN = "EXPLAIN"
    OUTPUT = "OUTPUT"

    def name(self):
        return "similar"

    def displayName(self):  # noqa: N802
        return "Find similar places"

    def group(self):
        return "Embeddings"

    def groupId(self):  # noqa: N802
        return "embeddings"

    def tags(self):
        return ["similar", "similarity", "search", "nearest", "cosine", "embedding", "loc2vec", "places"]

    def shortDescription(self):  # noqa: N802
        return "Finds the k cells of an embeddings layer whose map tiles look most like a given place."

    def shortHelpString(self):  # noqa: N802
        return (
            "<p>Takes the cell of the <b>embeddings layer</b> nearest to the <b>point</b> (any CRS), and/or the "
            "cells under the features of the <b>reference places</b> layer (tick <i>Selected features only</i> "
            "to use a selection; with several places their mean embedding is searched), and writes the <b>k</b> "
            "cells with the most similar embeddings (cosine similarity, the field <code>score</code>, with "
            "<code>rank</code>, <code>cell</code> and <code>distance_m</code> to the nearest reference place). "
            "The result is coloured by score: red = least, green = most similar of the k (the classes hold "
            "equally many hits, not fixed values: the cosines of the k best can lie close together).</p>"
            "<p><b>Search in</b>: another embeddings layer (another city) to search instead; it must come from the "
            "same model. <b>Exclude radius</b> (advanced): cells this close (metres) to the reference places are "
            "left out, so that the hits are look-alikes elsewhere and not the place's own neighbourhood, which "
            "shares most of its map tile. Default: one tile, 500 m for the shipped model (left out in a script "
            "or qgis_process call, the tile size of the model that made the embeddings); 0 = off, the place's "
            "own cell then comes first with score 1.</p>"
            "<p><b>Explain why alike</b>: for each hit, the channel groups that make it like the place. Both map "
            "tiles are cut again from the area raster the embeddings were made from (where it was, or under its "
            "name next to the embeddings file), each group (roads, buildings, nature + land use, transit + POIs) "
            "is blanked in both and both are embedded again: <code>drop_roads</code>, <code>drop_buildings</code>, "
            "... hold the drop in cosine (positive: the group makes them alike), <code>top_group</code> the group "
            "that carries most of it (empty: none does), <code>explain</code> it in words with the two tiles' "
            "shares of pixels.</p>"
            "<p>A point outside the embedded area is refused with the area's extent.</p>"
            f"<p><b>Attribution</b>: {ATTRIBUTION}</p>"
        )

    def createInstance(self):  # noqa: N802
        return SimilarAlgorithm()

    def initAlgorithm(self, config=None):  # noqa: N802
        self.addParameter(QgsProcessingParameterVectorLayer(
            self.INPUT, "Embeddings layer (from Embed area)", types=[QgsProcessing.TypeVectorPoint]))
        self.addParameter(QgsProcessingParameterPoint(self.POINT, "Place (a point)", optional=True))
        self.addParameter(QgsProcessingParameterFeatureSource(
            self.REFERENCE, "Reference places (point features; instead of or besides the point)",
            types=[QgsProcessing.TypeVectorPoint], optional=True))
        self.addParameter(QgsProcessingParameterNumber(
            self.K, "Number of similar cells (k)", type=QgsProcessingParameterNumber.Integer, defaultValue=10,
            minValue=1, maxValue=100000))
        self.addParameter(QgsProcessingParameterVectorLayer(
            self.SEARCH_IN, "Search in another embeddings layer (same model; empty = the same layer)",
            types=[QgsProcessing.TypeVectorPoint], optional=True))
        add_advanced(self, [QgsProcessingParameterNumber(
            self.EXCLUDE_RADIUS, "Leave out cells within this distance of the places (metres; default: one tile, "
                                 "500 m for the shipped model; 0 = off)",
            type=QgsProcessingParameterNumber.Double, defaultValue=ONE_TILE_M, minValue=0.0)])
        self.addParameter(QgsProcessingParameterBoolean(
            self.EXPLAIN, "Explain why alike (columns explain, top_group, drop_<group>; needs the area raster)",
            defaultValue=False))
        self.addParameter(QgsProcessingParameterVectorDestination(
            self.OUTPUT, "Similar places", type=QgsProcessing.TypeVectorPoint))
        self.addOutput(QgsProcessingOutputNumber("BEST_SCORE", "Highest similarity"))

    def processAlgorithm(self, parameters, context, feedback):  # noqa: N802
        source = embeddings_path(self.parameterAsVectorLayer(parameters, self.INPUT, context),
                                 parameters.get(self.INPUT))
        target = None
        if parameters.get(self.SEARCH_IN) not in (None, ""):
            target = embeddings_path(self.parameterAsVectorLayer(parameters, self.SEARCH_IN, context),
                                     parameters.get(self.SEARCH_IN))
        lonlats = self._places(parameters, context)
        k = self.parameterAsInt(parameters, self.K, context)
        radius = None  # not given (a script): one tile of the model that made the embeddings
        if parameters.get(self.EXCLUDE_RADIUS) not in (None, ""):
            radius = self.parameterAsDouble(parameters, self.EXCLUDE_RADIUS, context)
        explain = self.parameterAsBoolean(parameters, self.EXPLAIN, context)
        out = self._output(parameters, context)
        with engine_errors(self.displayName()):
            from loc2vec_engine.embeddings import read_embeddings
            from loc2vec_engine.search.similar import grid_stride, similar_at, write_similar

            es = read_embeddings(source)
            feedback.setProgress(30)
            other = read_embeddings(target) if target and Path(target).resolve() != Path(source).resolve() else es
            feedback.setProgress(60)
            result = similar_at(es, lonlats, k, target=other, exclude_radius_m=radius)
            columns = _explain_columns(es, other, result, feedback) if explain else None
            if feedback.isCanceled():  # before anything is written
                raise QgsProcessingException("Cancelled: no output was written.")
            write_similar(out, other, result, columns=columns)
        feedback.setProgress(100)
        feedback.pushInfo(f"Wrote {out}: the {len(result)} cells of {other.path.name} most like "
                          f"{len(lonlats)} place(s) of {es.path.name}; scores {result.scores.min():.4f} – "
                          f"{result.scores.max():.4f}. {_exclusion_note(result)} {ATTRIBUTION}")
        if context.willLoadLayerOnCompletion(out):
            stride = grid_stride(other)
            details = context.layerToLoadOnCompletionDetails(out)
            details.name = "similar places"
            details.setPostProcessor(LayerStyler(lambda layer: score_renderer(_scores(layer), stride)))
        return {self.OUTPUT: out, "BEST_SCORE": float(result.scores.max())}

    def _places(self, parameters, context) -> list[tuple[float, float]]:
        """WGS84 lon/lat of the point and of every vertex of the reference features."""
        places = []
        if parameters.get(self.POINT) not in (None, ""):
            p = self.parameterAsPoint(parameters, self.POINT, context, WGS84)
            places.append((p.x(), p.y()))
        if parameters.get(self.REFERENCE) not in (None, ""):
            places += self._reference_places(parameters, context)
        if not places:
            raise QgsProcessingException(user_message(
                "no place to search from", "give a point, or a layer of reference places (or its selection)"))
        return places

    def _reference_places(self, parameters, context) -> list[tuple[float, float]]:
        ref = self.parameterAsSource(parameters, self.REFERENCE, context)
        if ref is None:
            raise QgsProcessingException(user_message(f"{parameters.get(self.REFERENCE)!r} is not a layer",
                                                      "give a point layer of reference places"))
        to_wgs84 = QgsCoordinateTransform(ref.sourceCrs(), WGS84, context.transformContext())
        places = []
        for feature in ref.getFeatures():
            for v in feature.geometry().vertices():
                p = to_wgs84.transform(QgsPointXY(v.x(), v.y()))
                places.append((p.x(), p.y()))
        if not places:
            raise QgsProcessingException(user_message(
                "the reference places layer has no points (or none selected)",
                "select at least one feature, or untick 'Selected features only'"))
        return places

    def _output(self, parameters, context) -> str:
        out = self.parameterAsOutputLayer(parameters, self.OUTPUT, context)
        if Path(out).suffix.lower() != ".gpkg":
            raise QgsProcessingException(user_message(f"output {out} is not a GeoPackage",
                                                      "give a file name ending in .gpkg"))
        return out


def _explain_columns(es, other, result, feedback) -> dict:
    """The engine's explanation of every hit as columns (one pass of the model per hit and group)."""
    from loc2vec_engine.explain import explain_columns, explain_similar

    feedback.pushInfo("Explaining why each place is alike: both tiles re-embedded with each channel group blanked.")
    explanations = explain_similar(es, result, target=None if other is es else other, hint=AREA_HINT)
    feedback.setProgress(90)
    return explain_columns(explanations)


def _exclusion_note(result) -> str:
    if result.exclude_radius_m <= 0:
        return "Every cell was searched (exclude radius 0)."
    return (f"Left out the {result.n_excluded} cells within {result.exclude_radius_m:g} m of the places "
            "(exclude radius; 0 keeps them).")


def _scores(layer) -> list[float]:
    return [f["score"] for f in layer.getFeatures()]
