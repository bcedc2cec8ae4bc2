"""One entry point for every reader: an OSM file through pyosmium, anything else through OGR."""

from __future__ import annotations

from ..channels.spec import ChannelSpec
from .features import Features
from .osm import is_osm_file, osm_header_bbox, read_osm


def read_source(source, spec: ChannelSpec, layer_map=None) -> Features:
    """The features of ``source`` that feed the channels of ``spec``, in lon/lat."""
    if is_osm_file(source):
        return read_osm(source, spec)
    from .ogr import read_ogr

    return read_ogr(source, spec, layer_map=layer_map)


def source_bbox(source, features: Features | None):
    """The extent of a source in lon/lat: the OSM header box, else the bounds of its features."""
    if is_osm_file(source):
        box = osm_header_bbox(source)
        if box:
            return box
    if features is not None and len(features):
        import shapely

        return tuple(shapely.total_bounds(features.geoms))
    return None
