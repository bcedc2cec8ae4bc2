"""Channel specs: which OSM objects go to which band of an area raster, and how they are drawn."""

from .registry import get_spec, list_specs, register_spec
from .spec import Channel, ChannelSpec, Rule, parse_spec

__all__ = ["Channel", "ChannelSpec", "Rule", "get_spec", "list_specs", "parse_spec", "register_spec"]
