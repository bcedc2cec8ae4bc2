"""The composition statistics a hybrid model standardises with, from the training areas' tiles; and the
hybrid a run trains through when ``hybrid_share`` > 0.

A hybrid model (``encoders.hybrid``) joins the learned embedding with the tile's multi-scale
composition, standardised so that every fraction counts alike. The mean and std come from tiles of the
*training* areas (never from the area being embedded), so a place gets the same vector whatever else is
embedded with it, and cities are comparable. Each area gives the same number of tiles (a large city
must not set the scale for all), centred at seeded random points whose tile is at least ``min_valid``
valid ground.
"""

from __future__ import annotations

import numpy as np

from ..encoders.composition import WINDOWS, CompositionStats, multiscale_fractions
from ..errors import Loc2VecError

TILES_PER_AREA = 400
CHECK_PX = 16  # valid share estimated on small tiles first, as the evaluation cells do
MAX_DRAWS = 20  # rounds of candidate centres per area before settling for what was found


def composition_statistics(areas, tile_size_m: float, tile_size_px: int, tiles_per_area: int = TILES_PER_AREA,
                           min_valid: float = 0.9, seed: int = 0, windows=WINDOWS,
                           transform: str = "linear") -> CompositionStats:
    """``CompositionStats`` of the multi-scale fractions of ``tiles_per_area`` tiles from each of ``areas``.

    ``areas``: area raster paths or ``PalettedArea`` objects. Tiles are cut as the model sees them
    (``tile_size_m`` metres on ``tile_size_px`` pixels, north up).
    """
    from ..encoders.composition import transform_shares
    from ..tiles import TileSampler

    transform_shares(np.zeros(1), transform)  # an unknown transform fails before any tile is cut
    feats = []
    for i, a in enumerate(areas):
        sampler = TileSampler(a, backend="cpu", tile_size_m=float(tile_size_m))
        rng = np.random.default_rng([int(seed), 53, i])
        xy = valid_centres(sampler, tiles_per_area, min_valid, rng)
        if len(xy) == 0:
            name = getattr(a, "name", str(a))
            raise Loc2VecError(f"area {name} has no place where a whole {tile_size_m:g} m tile is "
                               f"{min_valid:.0%} valid", "leave it out of the composition statistics")
        tiles, _ = sampler.sample(xy, size=int(tile_size_px))
        feats.append(multiscale_fractions(np.ascontiguousarray(tiles), windows))
    if not feats:
        raise Loc2VecError("no areas given for the composition statistics", "pass the training areas")
    return CompositionStats.fit(np.concatenate(feats), windows, transform)


def hybrid_for_training(cfg, model, areas, device):
    """The hybrid encoder the loss sees when ``cfg.hybrid_share`` > 0 (else None).

    Trained this way the learned part is pushed to carry what the fixed composition part lacks (the
    layout) instead of repeating it, which a stand-alone model must do. The statistics are computed as
    ``export_run`` computes them from the same areas, so the exported hybrid is the one trained; only the
    learned part's weights are trained and saved.
    """
    if not cfg.hybrid_share:
        return None
    from ..encoders.hybrid import HybridEncoder

    stats = composition_statistics(areas, cfg.tile_size_m, cfg.tile_size_px, transform=cfg.composition_transform)
    return HybridEncoder(model, stats, cfg.hybrid_share).to(device)


def valid_centres(sampler, n: int, min_valid: float, rng) -> np.ndarray:
    area = sampler.area
    x0, y0, x1, y1 = area.bounds
    found = []
    for _ in range(MAX_DRAWS):
        xy = np.stack([rng.uniform(x0, x1, 4 * n), rng.uniform(y0, y1, 4 * n)], axis=1)
        _, valid = sampler.sample(xy, size=CHECK_PX)
        found.append(xy[valid.reshape(len(xy), -1).mean(axis=1) >= min_valid])
        if sum(len(f) for f in found) >= n:
            break
    return np.concatenate(found)[:n]
