"""Processing algorithm ``loc2vec:cluster``: label the cells of an embeddings layer, one colour per cluster.

The engine updates the GeoPackage in place (atomically, at the very end), so the output is the input
layer itself: reloaded and restyled when it is in the project, else loaded styled on completion.
"""

from __future__ import annotations

import json
import os
import sqlite3

from qgis.core import (
    QgsProcessing,
    QgsProcessingAlgorithm,
    QgsProcessingContext,
    QgsProcessingException,
    QgsProcessingOutputFile,
    QgsProcessingOutputNumber,
    QgsProcessingOutputVectorLayer,
    QgsProcessingParameterEnum,
    QgsProcessingParameterNumber,
    QgsProcessingParameterRasterLayer,
    QgsProcessingParameterVectorLayer,
    QgsProviderRegistry,
    QgsVectorLayer,
)

from loc2vec_engine import ATTRIBUTION

from .defaults import preselect_area
from .engine import FeedbackProgress, add_advanced, engine_errors, user_message
from .styles import CLUSTER_OPACITY, LayerStyler, cluster_renderer

METHODS = ["kmeans", "hdbscan"]
EMBEDDINGS_LAYER = "embeddings"  # loc2vec_engine.embeddings.store.LAYER (not imported: numpy at plugin load)
_EMBEDDINGS_HINT = "give the embeddings layer written by 'Embed area' (a GeoPackage with an 'embeddings' layer)"


class ClusterAlgorithm(QgsProcessingAlgorithm):
    """Cluster the embeddings of a loc2vec GeoPackage (k-means or HDBSCAN) and colour the cells by cluster."""

    INPUT = "INPUT"
    K = "K"
    METHOD = "METHOD"
    MIN_CLUSTER_SIZE = "MIN_CLUSTER_SIZE"
    SEED = "SEED"
    AREA = "AREA"
    OUTPUT = "OUTPUT"

    def __init__(self):
        super().__init__()
        self._done = None  # (GeoPackage path, {label: cells}, stride) for postProcessAlgorithm

    def name(self):
        return "cluster"

    def displayName(self):  # noqa: N802
        return "Cluster embeddings"

    def group(self):
        return "Embeddings"

    def groupId(self):  # noqa: N802
        return "embeddings"

    def tags(self):
        return ["cluster", "kmeans", "k-means", "hdbscan", "umap", "embedding", "loc2vec", "categorized"]

    def shortDescription(self):  # noqa: N802
        return "Groups the cells of an embeddings layer by how alike their map tiles are, one colour per group."

    def shortHelpString(self):  # noqa: N802
        return (
            "<p>Clusters the embeddings of the <b>embeddings layer</b> (made by <i>Embed area</i>) and writes "
            "each cell's cluster into its <code>cluster</code> field and a 2-D UMAP into <code>umap_x</code>, "
            "<code>umap_y</code>. The GeoPackage is <b>updated in place</b>, all at once at the end: Cancel or an "
            "error leave it as it was. The layer is then shown with one colour per cluster (cluster 0 is the "
            "largest; the palette has 20 colours, repeated beyond 20 clusters); a layer already in the project is "
            "reloaded and restyled, not added twice.</p>"
            "<p><b>Method</b>: <i>kmeans</i> makes exactly <b>k</b> clusters (seeded: the same seed gives the same "
            "clusters); <i>hdbscan</i> finds the number of clusters itself and marks cells that fit none as noise "
            "(-1, grey); its <b>minimum cluster size</b> (0 = 1 % of the cells) replaces k. HDBSCAN is "
            "limited to 50,000 cells.</p>"
            "<p>Also draws <code>&lt;name&gt;_clusters.png</code> (the map, on the roads of the optional "
            "<b>area raster</b>, else of the raster the embeddings were made from) and "
            "<code>&lt;name&gt;_umap.png</code> next to the GeoPackage, and reports the silhouette score.</p>"
            f"<p><b>Attribution</b>: {ATTRIBUTION}</p>"
        )

    def createInstance(self):  # noqa: N802
        return ClusterAlgorithm()

    def initAlgorithm(self, config=None):  # noqa: N802
        self.addParameter(QgsProcessingParameterVectorLayer(
            self.INPUT, "Embeddings layer (from Embed area)", types=[QgsProcessing.TypeVectorPoint]))
        self.addParameter(QgsProcessingParameterNumber(
            self.K, "Number of clusters (k-means)", type=QgsProcessingParameterNumber.Integer, defaultValue=8,
            minValue=2, maxValue=1000))
        self.addParameter(QgsProcessingParameterEnum(self.METHOD, "Method", options=METHODS, defaultValue="kmeans",
                                                     usesStaticStrings=True))
        self.addParameter(preselect_area(QgsProcessingParameterRasterLayer(
            self.AREA, "Area raster for the map's road background", optional=True)))
        advanced = [
            QgsProcessingParameterNumber(self.MIN_CLUSTER_SIZE, "Minimum cluster size (HDBSCAN; 0 = 1 % of the "
                                         "cells)", type=QgsProcessingParameterNumber.Integer, defaultValue=0,
                                         minValue=0),
            QgsProcessingParameterNumber(self.SEED, "Random seed", type=QgsProcessingParameterNumber.Integer,
                                         defaultValue=0, minValue=0),
        ]
        add_advanced(self, advanced)
        self.addOutput(QgsProcessingOutputVectorLayer(self.OUTPUT, "Clustered embeddings",
                                                      QgsProcessing.TypeVectorPoint))
        self.addOutput(QgsProcessingOutputFile("MAP_PNG", "Cluster map (PNG)"))
        self.addOutput(QgsProcessingOutputFile("UMAP_PNG", "UMAP scatter (PNG)"))
        self.addOutput(QgsProcessingOutputNumber("CLUSTERS", "Number of clusters (noise not counted)"))
        self.addOutput(QgsProcessingOutputNumber("SILHOUETTE", "Silhouette score"))

    def processAlgorithm(self, parameters, context, feedback):  # noqa: N802
        layer = self.parameterAsVectorLayer(parameters, self.INPUT, context)
        path = embeddings_path(layer, parameters.get(self.INPUT))
        if layer.isEditable():
            raise QgsProcessingException(user_message(
                f"layer {layer.name()!r} is being edited", "save or discard its edits, then cluster it"))
        method = self.parameterAsEnumString(parameters, self.METHOD, context) or "kmeans"
        area = self.parameterAsRasterLayer(parameters, self.AREA, context)
        with engine_errors(self.displayName()):
            from loc2vec_engine.clusters.cluster import cluster_file  # sklearn, umap, matplotlib: only now

            result = cluster_file(
                path, k=self.parameterAsInt(parameters, self.K, context), method=method,
                area=area.source() if area is not None else None,
                seed=self.parameterAsInt(parameters, self.SEED, context),
                min_cluster_size=self.parameterAsInt(parameters, self.MIN_CLUSTER_SIZE, context) or None,
                progress=FeedbackProgress(feedback))
        feedback.setProgress(100)
        noise = result.sizes.get(-1, 0)
        sil = "n/a" if result.silhouette is None else f"{result.silhouette:.3f}"
        feedback.pushInfo(f"{result.n_clusters} clusters ({method}) over {len(result.labels)} cells"
                          + (f", {noise} noise cells" if noise else "") + f"; silhouette {sil}")
        for note in result.notes:
            feedback.pushWarning(note)
        feedback.pushInfo(f"Wrote {result.map_png.name} and {result.umap_png.name}. {ATTRIBUTION}")
        self._done = (path, dict(result.sizes), meta_stride(path))
        return {self.OUTPUT: path, "MAP_PNG": str(result.map_png), "UMAP_PNG": str(result.umap_png),
                "CLUSTERS": result.n_clusters, "SILHOUETTE": result.silhouette}

    def postProcessAlgorithm(self, context, feedback):  # noqa: N802
        """In the main thread: restyle the layer where the project shows it, else load it styled."""
        if self._done is None:
            return {}
        path, sizes, stride = self._done
        styler = LayerStyler(lambda layer: cluster_renderer(sizes, stride), CLUSTER_OPACITY, reload=True)
        project = context.project()
        if project is None:  # qgis_process: nothing to show
            return {}
        loaded = project_layers(project, path)
        for layer in loaded:
            styler.postProcessLayer(layer, context, feedback)
        if loaded:
            return {}
        if context.willLoadLayerOnCompletion(path):  # in a model: Embed's output, loaded at the end; one layer
            details = context.layerToLoadOnCompletionDetails(path)
            details.name = "clusters"
            details.setPostProcessor(styler)
            return {}
        details = QgsProcessingContext.LayerDetails("clusters", project, self.OUTPUT)
        details.setPostProcessor(styler)
        context.addLayerToLoadOnCompletion(f"{path}|layername={EMBEDDINGS_LAYER}", details)
        return {}


def embeddings_path(layer, given=None) -> str:
    """The GeoPackage file behind an embeddings layer, or a clear refusal (its content is checked by the engine)."""
    if layer is None:
        raise QgsProcessingException(user_message(f"{given!r} is not a vector layer", _EMBEDDINGS_HINT))
    parts = QgsProviderRegistry.instance().decodeUri("ogr", layer.source()) if layer.providerType() == "ogr" else {}
    path = parts.get("path") or ""
    if (not path.lower().endswith(".gpkg") or not os.path.isfile(path)
            or parts.get("layerName") not in (None, "", EMBEDDINGS_LAYER)):
        raise QgsProcessingException(user_message(
            f"layer {layer.name()!r} ({layer.source()}) is not a loc2vec embeddings GeoPackage", _EMBEDDINGS_HINT))
    return path


def project_layers(project, path) -> list:
    """The layers of ``project`` that show the embeddings layer of the GeoPackage ``path``."""
    target = os.path.realpath(path)
    found = []
    for layer in project.mapLayers().values():
        if not isinstance(layer, QgsVectorLayer) or layer.providerType() != "ogr":
            continue
        parts = QgsProviderRegistry.instance().decodeUri("ogr", layer.source())
        if (parts.get("path") and os.path.realpath(parts["path"]) == target
                and parts.get("layerName") in (None, "", EMBEDDINGS_LAYER)):
            found.append(layer)
    return found


def meta_stride(path) -> float | None:
    """The grid stride recorded in the GeoPackage (None for cells off a grid): the size of a cell's square."""
    try:
        con = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
        try:
            meta = dict(con.execute("SELECT key, value FROM loc2vec_meta WHERE key IN ('stride_m', 'points')"))
        finally:
            con.close()
        stride = json.loads(meta.get("stride_m", "null"))
        points = json.loads(meta.get("points", "null"))
    except (sqlite3.Error, ValueError):
        return None
    return float(stride) if isinstance(stride, (int, float)) and stride > 0 and not points else None
