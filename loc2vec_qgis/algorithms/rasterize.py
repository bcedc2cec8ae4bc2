"""Processing algorithm ``loc2vec:rasterize``: OpenStreetMap, any vector file or QGIS map layers -> an area GeoTIFF."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from qgis.core import (
    QgsCoordinateReferenceSystem,
    QgsCoordinateTransform,
    QgsCsException,
    QgsProcessing,
    QgsProcessingAlgorithm,
    QgsProcessingException,
    QgsProcessingLayerPostProcessorInterface,
    QgsProcessingMultiStepFeedback,
    QgsProcessingOutputNumber,
    QgsProcessingOutputString,
    QgsProcessingParameterCrs,
    QgsProcessingParameterEnum,
    QgsProcessingParameterExtent,
    QgsProcessingParameterFeatureSource,
    QgsProcessingParameterFile,
    QgsProcessingParameterMatrix,
    QgsProcessingParameterMultipleLayers,
    QgsProcessingParameterNumber,
    QgsProcessingParameterRasterDestination,
    QgsProcessingUtils,
)

from loc2vec_engine import ATTRIBUTION  # the engine package itself is light: heavy parts load in processAlgorithm

from .clip import clip_polygon_file
from .engine import FeedbackProgress, add_advanced, engine_errors, import_shapely, user_message
from .layer_mapping import HEADERS, LayerExport, mapping_rows

WGS84 = "EPSG:4326"
NO_PRESET = "none"
DEFAULT_PIXEL_SIZE = 1.953125  # 500 m / 256 px, the default spec's pixel size


def preset_names() -> list[str]:
    """'none' and the engine's named places (kyiv, ...); just 'none' if this engine has no presets."""
    try:
        from loc2vec_engine.geo.presets import list_presets
    except ImportError:
        return [NO_PRESET]
    return [NO_PRESET, *[str(getattr(p, "name", p)) for p in list_presets()]]


class RasterizeAlgorithm(QgsProcessingAlgorithm):
    """Rasterize OpenStreetMap to an area raster."""

    INPUT = "INPUT"
    LAYERS = "LAYERS"
    MAPPING = "MAPPING"
    EXTENT = "EXTENT"
    CLIP = "CLIP"
    PRESET = "PRESET"
    CRS = "CRS"
    PIXEL_SIZE = "PIXEL_SIZE"
    SPEC = "SPEC"
    OUTPUT = "OUTPUT"

    def name(self):
        return "rasterize"

    def displayName(self):  # noqa: N802
        return "Rasterize OpenStreetMap to an area raster"

    def group(self):
        return "Prepare data"

    def groupId(self):  # noqa: N802
        return "prepare"

    def tags(self):
        return ["openstreetmap", "osm", "pbf", "rasterize", "channels", "loc2vec", "embedding", "tiles", "layers",
                "vector", "mapping"]

    def shortDescription(self):  # noqa: N802
        return ("Burns OpenStreetMap objects (or your map layers) into the 12 channels of an area GeoTIFF, once, for "
                "tiles to be cut from.")

    def shortHelpString(self):  # noqa: N802
        return (
            "<p>Reads an OpenStreetMap extract (<b>.osm.pbf</b> or <b>.osm</b>) or any vector file, and burns "
            "its objects into one band per channel of the channel spec (the default spec has 12: major and "
            "minor roads, paths, three kinds of buildings, water, green, transit, points of interest, "
            "administrative boundaries, land use). The result is a tiled, compressed 8-bit GeoTIFF in a metric "
            "CRS with named bands and a validity mask; loc2vec cuts its training tiles from it.</p>"
            "<p><b>Map layers</b>: QGIS vector layers to rasterize instead of, or with, the file. A layer with "
            "OSM-like columns (<i>highway</i>, <i>building</i>, <i>other_tags</i>, ...) is matched by the channel "
            "spec's rules. For any other layer add <b>Layer mapping</b> rows: <i>layer</i> (name or id), "
            "<i>filter expression</i> (a QGIS expression, empty = every feature), <i>channel</i> (e.g. "
            "roads_major), <i>draw</i> (line, fill, outline or point) and <i>width (m)</i> (line width or point "
            "radius in metres; empty for fill). A layer with rows is drawn only by its rows.</p>"
            "<p><b>Area</b>: give an <i>extent</i>, a <i>clip</i> polygon layer, a <i>preset</i> place, or "
            "several (they are intersected). With none of them the whole input is rasterized.</p>"
            "<p><b>CRS</b>: a projected CRS in metres; empty means the preset's CRS or else the local UTM "
            "zone. A geographic CRS (degrees) is replaced by that default, with a warning.</p>"
            "<p><b>Pixel size</b>: metres per pixel (default 1.953125 = 500 m per 256-pixel tile). "
            "<b>Channel spec</b>: a TOML file; empty means the built-in 12-channel spec.</p>"
            f"<p><b>Attribution</b>: data derived from OpenStreetMap is under the Open Database License: "
            f"{ATTRIBUTION}. Keep this notice with the raster and anything made from it.</p>"
        )

    def createInstance(self):  # noqa: N802
        return RasterizeAlgorithm()

    def initAlgorithm(self, config=None):  # noqa: N802
        self.addParameter(QgsProcessingParameterFile(
            self.INPUT, "OpenStreetMap file (.osm.pbf, .osm) or vector file",
            behavior=QgsProcessingParameterFile.File,
            fileFilter="OpenStreetMap (*.osm.pbf *.pbf *.osm *.osm.bz2 *.osm.gz);;"
                       "Vector files (*.gpkg *.geojson *.json *.shp *.fgb *.sqlite);;All files (*)", optional=True))
        self.addParameter(QgsProcessingParameterMultipleLayers(
            self.LAYERS, "Map layers (instead of or with the file)", layerType=QgsProcessing.TypeVectorAnyGeometry,
            optional=True))
        self.addParameter(QgsProcessingParameterMatrix(
            self.MAPPING, "Layer mapping (layer, filter expression, channel, draw, width in m)", numberRows=1,
            hasFixedNumberRows=False, headers=HEADERS, optional=True))
        self.addParameter(QgsProcessingParameterExtent(self.EXTENT, "Extent", optional=True))
        self.addParameter(QgsProcessingParameterFeatureSource(
            self.CLIP, "Clip to polygons", types=[QgsProcessing.TypeVectorPolygon], optional=True))
        presets = preset_names()
        self.addParameter(QgsProcessingParameterEnum(
            self.PRESET, "Preset place (area and CRS)", options=presets, defaultValue=NO_PRESET,
            optional=True, usesStaticStrings=True))
        advanced = [
            QgsProcessingParameterCrs(self.CRS, "CRS of the raster (metres; empty = preset's or local UTM zone)",
                                      optional=True),
            QgsProcessingParameterNumber(self.PIXEL_SIZE, "Pixel size (metres)",
                                         type=QgsProcessingParameterNumber.Double,
                                         defaultValue=DEFAULT_PIXEL_SIZE, minValue=0.01, maxValue=100.0),
            QgsProcessingParameterFile(self.SPEC, "Channel spec (TOML; empty = built-in 12 channels)",
                                       behavior=QgsProcessingParameterFile.File, extension="toml", optional=True),
        ]
        add_advanced(self, advanced)
        self.addParameter(QgsProcessingParameterRasterDestination(self.OUTPUT, "Area raster"))
        self.addOutput(QgsProcessingOutputString("CRS", "CRS of the area raster"))
        self.addOutput(QgsProcessingOutputNumber("WIDTH", "Width (pixels)"))
        self.addOutput(QgsProcessingOutputNumber("HEIGHT", "Height (pixels)"))
        self.addOutput(QgsProcessingOutputNumber("BANDS", "Number of bands (channels)"))

    # ---- parameters -> engine arguments -----------------------------------------------------
    def _source(self, parameters, context, layers) -> str | None:
        source = self.parameterAsFile(parameters, self.INPUT, context)
        if not source and not layers:
            raise QgsProcessingException(user_message(
                "no input: neither a file (INPUT) nor map layers (LAYERS) are given",
                "give an OpenStreetMap extract (.osm.pbf) or a vector file, or choose map layers"))
        if not source:
            return None
        if not os.path.isfile(source):
            raise QgsProcessingException(user_message(
                f"input file {source or '(none)'} not found",
                "give an OpenStreetMap extract (.osm.pbf) or a vector file; get one with `loc2vec fetch-osm`"))
        return source

    def _layers(self, parameters, context):
        """LAYERS as vector layers (other kinds of layer are refused by the parameter itself)."""
        if parameters.get(self.LAYERS) in (None, "", []):
            return []
        return [lyr for lyr in self.parameterAsLayerList(parameters, self.LAYERS, context) if lyr is not None]

    def _bbox(self, parameters, context, feedback):
        """EXTENT as (lon_min, lat_min, lon_max, lat_max), or None."""
        if parameters.get(self.EXTENT) in (None, ""):
            return None
        rect = self.parameterAsExtent(parameters, self.EXTENT, context)
        if rect is None or rect.isNull() or rect.isEmpty():
            return None
        crs = self.parameterAsExtentCrs(parameters, self.EXTENT, context)
        wgs84 = QgsCoordinateReferenceSystem(WGS84)
        if not crs.isValid():
            lonlat = -180 <= rect.xMinimum() <= rect.xMaximum() <= 180 and -90 <= rect.yMinimum() <= rect.yMaximum() <= 90
            if not lonlat:
                raise QgsProcessingException(user_message(
                    f"the extent {rect.toString()} has no CRS and is not in degrees",
                    "add its CRS, e.g. 'xmin,xmax,ymin,ymax [EPSG:3857]'"))
            feedback.pushInfo("The extent has no CRS: reading it as longitude/latitude (EPSG:4326).")
            crs = wgs84
        if crs != wgs84:
            try:
                rect = QgsCoordinateTransform(crs, wgs84, context.transformContext()).transformBoundingBox(rect)
            except QgsCsException as e:
                raise QgsProcessingException(user_message(
                    f"cannot transform the extent from {crs.authid() or crs.description()} to longitude/latitude: {e}",
                    "draw the extent again, or give it in EPSG:4326")) from None
        return (rect.xMinimum(), rect.yMinimum(), rect.xMaximum(), rect.yMaximum())

    def _clip(self, parameters, context, feedback):
        return clip_polygon_file(self, parameters, self.CLIP, context, feedback)

    def _preset(self, parameters, context):
        name = self.parameterAsEnumString(parameters, self.PRESET, context)
        return None if not name or name == NO_PRESET else name

    def _crs(self, parameters, context, feedback):
        """CRS as a string for the engine, or None for the default (the preset's, else the local UTM zone)."""
        if parameters.get(self.CRS) in (None, ""):
            return None
        crs = self.parameterAsCrs(parameters, self.CRS, context)
        if not crs.isValid():
            return None
        if crs.isGeographic():
            feedback.pushWarning(
                f"CRS {crs.authid() or crs.description()} is geographic (degrees), but area raster pixels are "
                "metres: using the default instead (the preset's CRS, else the local UTM zone).")
            return None
        return crs.authid() if crs.authid().upper().startswith("EPSG:") else crs.toWkt(
            QgsCoordinateReferenceSystem.WKT_PREFERRED)

    def _output(self, parameters, context) -> str:
        out = self.parameterAsOutputLayer(parameters, self.OUTPUT, context)
        if Path(out).suffix.lower() not in (".tif", ".tiff"):
            raise QgsProcessingException(user_message(
                f"output {out} is not a GeoTIFF", "give a file name ending in .tif"))
        return out

    # ---- run ----------------------------------------------------------------------------------
    def processAlgorithm(self, parameters, context, feedback):  # noqa: N802
        layers = self._layers(parameters, context)
        source = self._source(parameters, context, layers)
        bbox = self._bbox(parameters, context, feedback)
        clip = self._clip(parameters, context, feedback)
        preset = self._preset(parameters, context)
        crs = self._crs(parameters, context, feedback)
        pixel_size = self.parameterAsDouble(parameters, self.PIXEL_SIZE, context)
        spec = self.parameterAsFile(parameters, self.SPEC, context) or None
        out = self._output(parameters, context)
        if bbox:
            feedback.pushInfo("Extent (lon/lat): " + ",".join(f"{v:.6f}" for v in bbox))

        options = dict(spec=spec, bbox=bbox, clip=clip, crs=crs, pixel_size=pixel_size, preset=preset)
        with engine_errors(self.displayName()):
            # Rows are checked before any reading, so a typo costs nothing; rows without LAYERS are refused.
            mapping = self.parameterAsMatrix(parameters, self.MAPPING, context) if parameters.get(self.MAPPING) else []
            if layers:
                options["spec"] = _load_spec(spec)
                rows = mapping_rows(mapping, layers, options["spec"])
                area = self._rasterize_layers(source, layers, rows, out, options, context, feedback)
            else:
                if mapping:
                    mapping_rows(mapping, layers, _load_spec(spec))  # refuses its first row: no LAYERS
                import_shapely()
                from loc2vec_engine.raster.rasterize import rasterize  # osmium, shapely, numba: only now

                area = rasterize(source, out, progress=FeedbackProgress(feedback, stages=2), **options)
        feedback.setProgress(100)
        crs_name = f"EPSG:{area.epsg}" if area.epsg else "custom CRS"
        feedback.pushInfo(f"Wrote {out}: {area.width} x {area.height} px, {area.count} bands "
                          f"({', '.join(area.channel_names)}), {area.pixel_size:g} m/px, {crs_name}")
        feedback.pushInfo(ATTRIBUTION)

        if context.willLoadLayerOnCompletion(out):
            context.layerToLoadOnCompletionDetails(out).setPostProcessor(AreaRasterStyler.create())
        return {self.OUTPUT: out, "CRS": crs_name, "WIDTH": area.width, "HEIGHT": area.height, "BANDS": area.count}

    def _rasterize_layers(self, source, layers, rows, out, options, context, feedback):
        """Map layers (and the file, if any) -> one temporary GeoPackage + layer map -> the engine; temp files go."""
        import_shapely()
        from loc2vec_engine.raster.rasterize import rasterize

        spec = options["spec"]
        steps = QgsProcessingMultiStepFeedback(2, feedback)
        with tempfile.TemporaryDirectory(prefix="loc2vec_layers_", dir=QgsProcessingUtils.tempFolder(),
                                         ignore_cleanup_errors=True) as folder:
            extra = _file_features(source, spec, options["bbox"], feedback) if source else None
            gpkg, layer_map = LayerExport(folder, spec, options["bbox"], context.transformContext(), steps).write(
                layers, rows, extra)
            steps.setCurrentStep(1)
            return rasterize(gpkg, out, layer_map=layer_map, progress=FeedbackProgress(steps, stages=2), **options)


def _load_spec(spec):
    from loc2vec_engine.channels import get_spec

    return get_spec(spec)


def _file_features(source, spec, bbox, feedback):
    """The INPUT file's features for the channels (lon/lat), inside the extent, to rasterize with the layers."""
    import shapely
    from loc2vec_engine.sources.read import read_source

    feedback.pushInfo(f"Reading {source} ...")
    features = read_source(source, spec)
    if bbox:
        features = features.clipped_to(shapely.box(*bbox))
    feedback.pushInfo(f"{Path(source).name}: {len(features)} feature-channel pairs to draw with the map layers")
    return features


class AreaRasterStyler(QgsProcessingLayerPostProcessorInterface):
    """Adds the OSM attribution to the loaded area raster (band names come from the GeoTIFF)."""

    instance = None  # Processing does not own post-processors: keep the last one alive

    def postProcessLayer(self, layer, context, feedback):  # noqa: N802
        if layer is not None and layer.isValid():
            layer.setAttribution(ATTRIBUTION)
            layer.setAttributionUrl("https://www.openstreetmap.org/copyright")

    @staticmethod
    def create():
        AreaRasterStyler.instance = AreaRasterStyler()
        return AreaRasterStyler.instance
