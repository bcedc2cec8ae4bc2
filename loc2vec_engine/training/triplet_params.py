"""The triplet sampler's arguments checked, each bad one refused with what to give instead.

Kept apart from ``triplets.py`` so the sampler reads as the drawing it does; only the sampler uses these.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from ..errors import Loc2VecError
from ..tiles import PalettedArea

NEG_MODES = ("far", "landuse", "similar")
BACKENDS = ("torch", "cpu")
BUILT_UP_PREFIXES = ("roads", "buildings")  # channels that count as built-up land by default


def check_count(n, what: str) -> int:
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 1:
        raise Loc2VecError(f"{what} must be a positive integer, not {n!r}", f"use e.g. {what}=32")
    return int(n)


def check_areas(areas) -> list:
    if isinstance(areas, (PalettedArea, str, Path)):
        areas = [areas]
    areas = [PalettedArea.from_raster(a) if isinstance(a, (str, Path)) else a for a in (areas or [])]
    if not areas:
        raise Loc2VecError("no areas to draw triplets from", "give at least one area raster (PalettedArea or path)")
    for a in areas:
        if not isinstance(a, PalettedArea):
            raise Loc2VecError(f"cannot draw triplets from a {type(a).__name__}",
                               "give PalettedArea objects or area GeoTIFF paths")
    names = list(areas[0].channel_names)
    for i, a in enumerate(areas[1:], 2):
        if list(a.channel_names) != names:
            raise Loc2VecError(f"area {i} has channels {a.channel_names}, area 1 {names}",
                               "rasterize all training areas with the same channel spec")
    return areas


def check_params(**p) -> dict:
    def bad(name, fix):
        raise Loc2VecError(f"{name}={p[name]!r} is out of range", fix)

    def num(x):
        return isinstance(x, (int, float, np.integer, np.floating)) and not isinstance(x, bool) and math.isfinite(x)

    if not isinstance(p["tile_size_px"], (int, np.integer)) or not 8 <= p["tile_size_px"] <= 2048:
        bad("tile_size_px", "use e.g. tile_size_px=128")
    if not num(p["tile_size_m"]) or p["tile_size_m"] <= 0:
        bad("tile_size_m", "use e.g. tile_size_m=500")
    pr = p["pos_range_m"]
    if not (isinstance(pr, (tuple, list)) and len(pr) == 2 and all(num(v) for v in pr) and 0 <= pr[0] <= pr[1]
            and pr[1] > 0):
        bad("pos_range_m", "use e.g. pos_range_m=(100, 200)")
    p["pos_range_m"] = (float(pr[0]), float(pr[1]))
    if not num(p["neg_min_m"]) or p["neg_min_m"] <= p["pos_range_m"][1]:
        bad("neg_min_m", "negatives must lie farther than positives: use e.g. neg_min_m=2000")
    if not num(p["max_shift_px"]) or p["max_shift_px"] < 0:
        bad("max_shift_px", "use e.g. max_shift_px=50 (0 = no shift)")
    if not num(p["scale_jitter"]) or not 0 <= p["scale_jitter"] < 0.9:
        bad("scale_jitter", "use e.g. scale_jitter=0.1 (scales 0.9 .. 1.1)")
    if not num(p["min_valid"]) or not 0 <= p["min_valid"] <= 1:
        bad("min_valid", "use a fraction, e.g. min_valid=0.9")
    if not num(p["built_up_weight"]) or not 0 <= p["built_up_weight"] <= 1:
        bad("built_up_weight", "use a fraction, e.g. built_up_weight=0.5 (0 = uniform)")
    if p["neg_mode"] not in NEG_MODES:
        bad("neg_mode", f"use one of: {', '.join(NEG_MODES)}")
    if not isinstance(p["neg_candidates"], (int, np.integer)) or p["neg_candidates"] < 1:
        bad("neg_candidates", "use e.g. neg_candidates=16")
    if not num(p["semantic_share"]) or not 0 <= p["semantic_share"] <= 1:
        bad("semantic_share", "use a fraction, e.g. semantic_share=0.5 (0 = near positives only)")
    if p["backend"] not in BACKENDS:
        bad("backend", f"use one of: {', '.join(BACKENDS)}")
    if not isinstance(p["cell_px"], (int, np.integer)) or not 1 <= p["cell_px"] <= 256:
        bad("cell_px", "use e.g. cell_px=8")
    for k in ("tile_size_m", "neg_min_m", "max_shift_px", "scale_jitter", "min_valid", "built_up_weight",
              "semantic_share"):
        p[k] = float(p[k])
    return p


def check_built_up(names, given, weight) -> list[int]:
    if given is not None:
        idx = [names.index(c) if isinstance(c, str) and c in names else c for c in given]
        if not all(isinstance(i, (int, np.integer)) and 0 <= i < len(names) for i in idx):
            raise Loc2VecError(f"built_up_channels {list(given)!r} are not channels of the areas ({names})",
                               "give channel names or indices")
        return [int(i) for i in idx]
    idx = [i for i, c in enumerate(names) if c.startswith(BUILT_UP_PREFIXES)]
    if weight > 0 and not idx:
        raise Loc2VecError(f"built_up_weight needs built-up channels, and none of {names} is named roads* / buildings*",
                           "pass built_up_channels=[...] or built_up_weight=0")
    return idx
