"""The land-use class under a cell centre, read from the area raster's own channels at full resolution.

In a ``WINDOW_M`` square centred on the cell (100 m: the block the centre stands in, not its tile):

1. the ``landuse`` channel draws each OSM land-use class at its own intensity level (channel spec,
   ``default.toml``: residential 40, farmland 60, ..., industrial 250). When one level covers at least
   ``LANDUSE_SHARE`` (half) of the window's valid pixels, the cell gets that class;
2. otherwise (much of a city centre has no land-use polygon), the land-cover channel covering most of
   the window, if it covers at least ``COVER_SHARE`` of it: commercial / industrial / residential
   buildings (the spec draws buildings of unknown use as residential), green, water;
3. otherwise "none": such cells are no query of "similar places elsewhere" (they stay in its gallery).

Exact levels need no tolerance: the sampler and ``PalettedArea.decode`` never interpolate. A spec
without the default's levels gets classes named "landuse level N".
"""

from __future__ import annotations

import numpy as np

NONE = "none"
WINDOW_M = 100.0
LANDUSE_SHARE = 0.5
COVER_SHARE = 0.15
LANDUSE_CHANNEL = "landuse"
# The default spec's landuse levels (first tag value of the rule that writes the level).
LANDUSE_LEVELS = {40: "residential", 60: "farmland", 80: "green", 100: "forest", 120: "recreation",
                  140: "construction", 160: "railway", 180: "institutional", 200: "retail", 220: "commercial",
                  250: "industrial"}
# Land-cover channels, as classes; the first one wins a tie of shares.
COVER = (("buildings_commercial", "commercial"), ("buildings_industrial", "industrial"),
         ("buildings_residential", "residential"), ("green", "green"), ("water", "water"))


def level_name(level: int) -> str:
    return LANDUSE_LEVELS.get(int(level), f"landuse level {int(level)}")


def landuse_labels(area, cells_xy, window_m: float = WINDOW_M) -> np.ndarray:
    """Per cell centre (N, 2) in the area's CRS, its land-use class (strings; "none" without one)."""
    xy = np.asarray(cells_xy, float).reshape(-1, 2)
    names = list(area.channel_names)
    lu = names.index(LANDUSE_CHANNEL) if LANDUSE_CHANNEL in names else None
    cover = [(names.index(c), label) for c, label in COVER if c in names]
    half = max(1, int(round(window_m / 2.0 / area.pixel_size)))
    col, row = area.xy_to_pixel(xy[:, 0], xy[:, 1])
    out = np.full(len(xy), NONE, dtype=object)
    for i, (c, r) in enumerate(zip(np.floor(col).astype(np.int64), np.floor(row).astype(np.int64))):
        data, valid = area.decode((c - half, r - half, 2 * half + 1, 2 * half + 1))
        out[i] = window_label(data, valid, lu, cover)
    return out


def window_label(data, valid, landuse_index, cover) -> str:
    """The class of one window: ``data`` (C, h, w) uint8, ``valid`` (h, w); see the module docstring."""
    n = int(valid.sum())
    if n == 0:
        return NONE
    if landuse_index is not None:
        levels = data[landuse_index][valid]
        levels = levels[levels > 0]
        if len(levels):
            vals, counts = np.unique(levels, return_counts=True)
            if counts.max() >= LANDUSE_SHARE * n:
                return level_name(vals[counts.argmax()])
    best, share = NONE, 0.0
    for idx, label in cover:
        s = float((data[idx][valid] > 0).mean())
        if s > share:
            best, share = label, s
    return best if share >= COVER_SHARE else NONE
