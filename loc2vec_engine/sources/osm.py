"""OpenStreetMap files (.osm.pbf, .osm, .osm.bz2, ...) through pyosmium.

The channel spec decides which objects are kept: an object is only turned into a geometry when
one of its tags matches a rule. Areas come from closed ways *and* multipolygon/boundary
relations (osmium's area assembler), so a park mapped as a relation is not lost.
"""

from __future__ import annotations

from pathlib import Path

from ..channels.spec import ChannelSpec
from ..errors import Loc2VecError
from .features import Features

OSM_SUFFIXES = (".pbf", ".osm", ".o5m", ".opl", ".bz2", ".gz")


def is_osm_file(source) -> bool:
    return str(source).lower().endswith(OSM_SUFFIXES)


def osm_header_bbox(path) -> tuple[float, float, float, float] | None:
    """The bbox in the file header (lon_min, lat_min, lon_max, lat_max), if the file has one."""
    import osmium

    try:
        reader = osmium.io.Reader(str(path), osmium.osm.osm_entity_bits.NOTHING)
        box = reader.header().box()
        reader.close()
    except RuntimeError:
        return None
    if not box.valid():
        return None
    return (box.bottom_left.lon, box.bottom_left.lat, box.top_right.lon, box.top_right.lat)


def read_osm(path, spec: ChannelSpec) -> Features:
    """Every object of ``path`` that a rule of ``spec`` takes, with its geometry in lon/lat."""
    import osmium

    path = Path(path)
    if not path.is_file():
        raise Loc2VecError(f"OSM file {path} not found", "check the path, or download one with: loc2vec fetch-osm")
    collector = _Collector(spec)
    try:
        collector.apply_file(str(path), locations=True, idx="flex_mem")
    except RuntimeError as e:
        raise Loc2VecError(f"cannot read {path} as OpenStreetMap data ({e})",
                           "the file is corrupt or truncated: download it again (loc2vec fetch-osm) "
                           "and check it with `osmium fileinfo`") from None
    if collector.seen == 0:
        raise Loc2VecError(f"{path} contains no OpenStreetMap objects",
                           "the file is empty or not OSM data: download it again")
    return Features.from_lists(collector.wkbs, collector.bands, collector.rules)


def _tags_if_relevant(tags, keys) -> dict | None:
    # Most nodes carry no tags or none of the spec's keys: skip them before building a dict.
    for k in keys:
        if k in tags:
            return {t.k: t.v for t in tags}
    return None


class _Collector:
    """A pyosmium handler that keeps the WKB of each matching object once per channel it feeds."""

    def __new__(cls, spec):
        import osmium

        # Subclass lazily so that importing this module does not import osmium.
        class Handler(osmium.SimpleHandler):
            def __init__(self):
                super().__init__()
                self.spec = spec
                self.keys = tuple(spec.keys)
                self.factory = osmium.geom.WKBFactory()
                self.wkbs, self.bands, self.rules = [], [], []
                self.seen = 0

            def _keep(self, tags, geometry, make_wkb):
                t = _tags_if_relevant(tags, self.keys)
                if t is None:
                    return
                matches = list(self.spec.matches(t, geometry))
                if not matches:
                    return
                try:
                    wkb = make_wkb()
                except (RuntimeError, osmium.InvalidLocationError):
                    return  # a way with missing nodes or a broken ring: nothing to draw
                for band, rule in matches:
                    self.wkbs.append(wkb)
                    self.bands.append(band)
                    self.rules.append(rule)

            def node(self, n):
                self.seen += 1
                if len(n.tags):
                    self._keep(n.tags, "node", lambda: self.factory.create_point(n))

            def way(self, w):
                self.seen += 1
                if len(w.tags):
                    self._keep(w.tags, "way", lambda: self.factory.create_linestring(w))

            def area(self, a):
                self._keep(a.tags, "area", lambda: self.factory.create_multipolygon(a))

        return Handler()
