"""A polygon parameter handed to the engine as a file: the layer's own file, or its features copied out."""

from __future__ import annotations

import os

from qgis.core import (
    QgsCoordinateReferenceSystem,
    QgsCoordinateTransform,
    QgsFeature,
    QgsFields,
    QgsProcessingException,
    QgsProcessingFeatureSourceDefinition,
    QgsProcessingUtils,
    QgsProviderRegistry,
    QgsVectorFileWriter,
)

from .engine import user_message

WGS84 = "EPSG:4326"


def clip_polygon_file(alg, parameters, name, context, feedback):
    """CLIP as a polygon file for the engine: the layer's own file when the whole of it is used,
    else (memory layers, selections, sublayers, filters) its polygons copied to a temporary GeoJSON."""
    value = parameters.get(name)
    if value in (None, ""):
        return None
    whole = True
    if isinstance(value, QgsProcessingFeatureSourceDefinition):
        whole = not value.selectedFeaturesOnly and value.featureLimit < 0
    layer = alg.parameterAsVectorLayer(parameters, name, context)
    if whole and layer is not None and layer.providerType() == "ogr" and not layer.subsetString():
        parts = QgsProviderRegistry.instance().decodeUri("ogr", layer.source())
        path = parts.get("path", "")
        if os.path.isfile(path) and not parts.get("layerName") and parts.get("layerId") in (None, ""):
            return path
    source = alg.parameterAsSource(parameters, name, context)
    if source is None:
        raise QgsProcessingException(user_message(
            f"cannot open the clip layer {value!r}", "give a polygon layer or a polygon file"))
    wgs84 = QgsCoordinateReferenceSystem(WGS84)
    path = QgsProcessingUtils.generateTempFilename("loc2vec_clip.geojson")
    options = QgsVectorFileWriter.SaveVectorOptions()
    options.driverName = "GeoJSON"
    writer = QgsVectorFileWriter.create(path, QgsFields(), source.wkbType(), wgs84, context.transformContext(),
                                        options)
    if writer.hasError() != QgsVectorFileWriter.NoError:
        raise QgsProcessingException(user_message(
            f"cannot write the clip polygons to {path}: {writer.errorMessage()}", "check the temporary folder"))
    transform = QgsCoordinateTransform(source.sourceCrs(), wgs84, context.transformContext())
    count = 0
    for feature in source.getFeatures():
        geom = feature.geometry()
        if geom.isEmpty():
            continue
        geom.transform(transform)
        out = QgsFeature()
        out.setGeometry(geom)
        writer.addFeature(out)
        count += 1
    del writer  # closes the file
    feedback.pushInfo(f"Clip: {count} polygon feature(s) copied to {path}")
    return path
