"""loc2vec engine: OpenStreetMap -> 12-channel area rasters -> tiles -> location embeddings.

This package never imports Qt or QGIS; the plugin in ``loc2vec_qgis`` is a thin layer over it.
Data flow, one subpackage per step::

    sources/ (OSM, OGR readers) -> channels/ (spec: which tags go to which channel)
    -> raster/ (chunked burning into an area GeoTIFF) -> tiles/ (sampler, preview)
"""

__version__ = "0.1.0"

ATTRIBUTION = "Map data © OpenStreetMap contributors, ODbL 1.0 (https://www.openstreetmap.org/copyright)"
