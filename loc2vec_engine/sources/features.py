"""What every reader returns: geometries in lon/lat with the channel and drawing rule they feed."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

DRAW_CODES = {"line": 0, "fill": 1, "outline": 2, "point": 3}


@dataclass
class Features:
    """Parallel arrays, one entry per (object, channel) pair; geometries in EPSG:4326 (lon, lat)."""

    geoms: np.ndarray  # shapely geometries
    band: np.ndarray  # int16, 0-based channel index
    value: np.ndarray  # uint8 intensity
    draw: np.ndarray  # int8, DRAW_CODES
    size_m: np.ndarray  # float32: line/outline width or point radius, metres

    def __len__(self) -> int:
        return len(self.geoms)

    @classmethod
    def from_lists(cls, wkbs: list, bands: list, rules: list) -> "Features":
        """Build from WKB blobs (bytes or hex) and the matching ``Rule`` of each."""
        import shapely

        # A broken ring (e.g. 2 points) in the source becomes None here and is dropped below.
        geoms = shapely.from_wkb(np.asarray(wkbs, dtype=object), on_invalid="ignore") if wkbs \
            else np.empty(0, dtype=object)
        feats = cls(
            geoms=geoms,
            band=np.asarray(bands, dtype=np.int16),
            value=np.asarray([r.value for r in rules], dtype=np.uint8),
            draw=np.asarray([DRAW_CODES[r.draw] for r in rules], dtype=np.int8),
            size_m=np.asarray([r.width_m if r.draw in ("line", "outline") else r.radius_m for r in rules],
                              dtype=np.float32),
        )
        ok = ~shapely.is_missing(feats.geoms)
        return feats if ok.all() else feats.select(ok)

    def select(self, keep: np.ndarray) -> "Features":
        return Features(self.geoms[keep], self.band[keep], self.value[keep], self.draw[keep], self.size_m[keep])

    def clipped_to(self, region_lonlat) -> "Features":
        """Only the features that touch ``region_lonlat`` (a shapely geometry in lon/lat)."""
        import shapely

        if len(self) == 0:
            return self
        shapely.prepare(region_lonlat)
        return self.select(shapely.intersects(region_lonlat, self.geoms))

    @staticmethod
    def concat(parts: list["Features"]) -> "Features":
        parts = [p for p in parts if len(p)]
        if not parts:
            return Features.from_lists([], [], [])
        return Features(*(np.concatenate([getattr(p, f) for p in parts])
                          for f in ("geoms", "band", "value", "draw", "size_m")))
