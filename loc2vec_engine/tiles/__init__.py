"""Tiles: cut rotated, scaled tiles out of an area raster, on CPU (numba) or a torch device.

``PalettedArea`` holds the area as an index image + palette; ``TileSampler`` is the one public API.
"""

from .geometry import TileGeometry, tile_geometry
from .paletted import PalettedArea
from .sampler import TILE_SIZE_M, TileSampler

__all__ = ["PalettedArea", "TILE_SIZE_M", "TileGeometry", "TileSampler", "tile_geometry"]
