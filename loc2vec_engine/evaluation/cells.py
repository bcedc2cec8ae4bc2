"""The cells an area is evaluated on: grid centres whose tile lies mostly inside the area, with their tiles.

The grid is ``loc2vec embed``'s (``cell_grid``); a cell is kept when at least ``min_valid`` of its tile is
valid ground (the model was trained on tiles >= 90 % valid; tiles cut half outside the area would test
something else), then a seeded subsample bounds the work.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..errors import Loc2VecError

CHECK_PX = 16  # tile size used to estimate a tile's valid share cheaply before cutting full tiles


@dataclass
class EvalCells:
    """The evaluated cells: centres ``xy`` (N, 2) in the area's CRS, grid ``cell`` ids, ``tiles`` (N, C, S, S)."""

    xy: np.ndarray
    cell: np.ndarray
    tiles: np.ndarray
    valid_share: np.ndarray
    grid_cells: int  # cells of the grid with a valid centre
    usable_cells: int  # of those, with a tile at least min_valid valid

    def __len__(self) -> int:
        return len(self.cell)


def valid_share(sampler, xy, angles_deg=0.0, size: int = CHECK_PX) -> np.ndarray:
    """Share of valid pixels of the tiles centred at ``xy`` (estimated on ``size`` px tiles)."""
    _, valid = sampler.sample(np.asarray(xy, float).reshape(-1, 2), angles_deg=angles_deg, size=size)
    return valid.reshape(len(valid), -1).mean(axis=1)


def cut_tiles(sampler, xy, size: int, angles_deg=0.0, batch: int = 512) -> tuple[np.ndarray, np.ndarray]:
    """C-contiguous uint8 tiles (N, C, S, S) and their valid shares, cut ``batch`` at a time."""
    xy = np.asarray(xy, float).reshape(-1, 2)
    angles = np.broadcast_to(np.asarray(angles_deg, float), (len(xy),))
    tiles = np.empty((len(xy), sampler.area.count, size, size), np.uint8)
    share = np.empty(len(xy))
    for i in range(0, len(xy), batch):
        t, v = sampler.sample(xy[i:i + batch], angles_deg=angles[i:i + batch], size=size)
        tiles[i:i + batch] = t
        share[i:i + batch] = v.reshape(len(v), -1).mean(axis=1)
    return tiles, share


def evaluation_cells(area, sampler, stride_m: float, size: int, max_cells: int, min_valid: float,
                     rng: np.random.Generator) -> EvalCells:
    """At most ``max_cells`` cells (seeded subsample) of the area's grid whose tiles are ``min_valid`` valid."""
    from ..embeddings.grid import cell_grid

    grid = cell_grid(area, stride_m)
    usable = np.flatnonzero(valid_share(sampler, grid.xy) >= min_valid)
    if len(usable) == 0:
        raise Loc2VecError(f"the area is too small: no {sampler.tile_size_m:g} m tile fits {min_valid:.0%} inside it",
                           f"rasterize a larger area (at least ~{2 * sampler.tile_size_m:g} m across)")
    pick = np.sort(rng.choice(usable, size=min(max_cells, len(usable)), replace=False))
    tiles, share = cut_tiles(sampler, grid.xy[pick], size)
    keep = share >= min_valid  # the full-size check, which the 16 px estimate only approximates
    return EvalCells(grid.xy[pick][keep], grid.cell[pick][keep], tiles[keep], share[keep], len(grid), len(usable))
