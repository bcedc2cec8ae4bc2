"""Host-side tile geometry in fixed point, shared by every back-end so that they read the same pixels.

Conventions (all back-ends, all callers):

* Source pixel coordinates are fractional ``(col, row)`` with pixel centres at ``.5``
  (``AreaRaster.xy_to_pixel``). Sampling is nearest: output pixel reads source pixel
  ``(floor(col), floor(row))``.
* A tile of ``size`` S covers ``scale * tile_size_m`` metres; output pixel ``(v, u)`` (row, column) has
  its centre at offset ``((u + .5 - S/2), (v + .5 - S/2)) * step`` source pixels from the tile centre
  before rotation, where ``step = scale * tile_size_m / S / pixel_size``. Hence an axis-aligned tile at
  step 1 whose centre lies on a pixel *corner* is an exact crop of the area.
* ``angle_deg`` > 0 turns the map content counter-clockwise in the tile:
  ``tile(90) == np.rot90(tile(0), axes=(-2, -1))`` (exactly, see below).

Why fixed point: the position of output pixel (v, u) is the integer
``X = xc + (2u+1-S)*hxu + (2v+1-S)*hxv`` (same for Y) with ``FRAC_BITS`` fractional bits, where the
``h*`` are *half*-step increments rounded once on the host. Integer arithmetic is exact and identical
in numba and torch, and because the increments are symmetric (``rint(-a) == -rint(a)``) a 90 degree
rotation permutes exactly the same integer positions as the unrotated tile.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..errors import Loc2VecError

FRAC_BITS = 32  # 32.32 in int64: sub-pixel drift over a 4096 px row stays below 1e-6 px
ONE = float(1 << FRAC_BITS)
MAX_SOURCE_PX = 1 << 28  # larger |coordinates| or tile spans could overflow the int64 products


@dataclass(frozen=True)
class TileGeometry:
    """Per-tile integer sampling parameters (all int64 arrays of shape (N,))."""

    size: int
    xc: np.ndarray   # tile centre, source column, fixed point
    yc: np.ndarray   # tile centre, source row, fixed point
    hxu: np.ndarray  # half-step of X per output column
    hxv: np.ndarray  # half-step of X per output row
    hyu: np.ndarray  # half-step of Y per output column
    hyv: np.ndarray  # half-step of Y per output row

    def __len__(self) -> int:
        return len(self.xc)

    def subset(self, index) -> "TileGeometry":
        return TileGeometry(self.size, self.xc[index], self.yc[index], self.hxu[index], self.hxv[index],
                            self.hyu[index], self.hyv[index])

    def shifted(self, dcol: int, drow: int) -> "TileGeometry":
        """The same tiles in a window whose origin is source pixel (dcol, drow)."""
        return TileGeometry(self.size, self.xc - (np.int64(dcol) << FRAC_BITS), self.yc - (np.int64(drow) << FRAC_BITS),
                            self.hxu, self.hxv, self.hyu, self.hyv)

    def footprint(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Exact inclusive source pixel bounds (col_min, row_min, col_max, row_max) each tile can read."""
        s1 = np.int64(self.size - 1)
        ex = s1 * (np.abs(self.hxu) + np.abs(self.hxv))
        ey = s1 * (np.abs(self.hyu) + np.abs(self.hyv))
        return ((self.xc - ex) >> FRAC_BITS, (self.yc - ey) >> FRAC_BITS,
                (self.xc + ex) >> FRAC_BITS, (self.yc + ey) >> FRAC_BITS)


def _as_per_tile(value, n: int, name: str) -> np.ndarray:
    a = np.asarray(value, dtype=np.float64)
    if a.ndim == 0:
        a = np.full(n, float(a))
    if a.shape != (n,):
        raise Loc2VecError(f"{name} has shape {a.shape}, but there are {n} tile centres",
                           f"give one {name} value, or one per centre (shape ({n},))")
    if not np.all(np.isfinite(a)):
        raise Loc2VecError(f"{name} contains NaN or infinite values", f"give finite {name}")
    return a


def check_size(size) -> int:
    if isinstance(size, bool) or not isinstance(size, (int, np.integer)) or not 0 < int(size) <= 8192:
        raise Loc2VecError(f"tile size must be an integer number of pixels in 1..8192, not {size!r}",
                           "use e.g. size=256")
    return int(size)


def check_centres(centres, what: str = "centres") -> np.ndarray:
    """(N, 2) float64 array of centres; a single (2,) pair is accepted as N = 1."""
    c = np.asarray(centres, dtype=np.float64)
    if c.ndim == 1 and c.shape == (2,):
        c = c[None]
    if c.ndim != 2 or c.shape[1] != 2:
        raise Loc2VecError(f"{what} must have shape (N, 2), not {c.shape}", "pass an array of (x, y) pairs")
    if not np.all(np.isfinite(c)):
        raise Loc2VecError(f"{what} contain NaN or infinite values", "drop those centres")
    return c


def tile_geometry(centres_px, angles_deg, scales, size: int, step_px: float) -> TileGeometry:
    """Fixed-point sampling parameters of N tiles.

    centres_px: (N, 2) fractional source pixel coordinates (col, row) of the tile centres;
    angles_deg: scalar or (N,), counter-clockwise rotation of the map content in the tile;
    scales: scalar or (N,), > 0, multiplies ``step_px`` (source pixels per output pixel at scale 1).
    """
    size = check_size(size)
    c = check_centres(centres_px, "tile centres (pixels)")
    n = len(c)
    ang = np.deg2rad(np.mod(_as_per_tile(angles_deg, n, "angles_deg"), 360.0))
    sc = _as_per_tile(scales, n, "scales")
    if np.any(sc <= 0):
        raise Loc2VecError("scales must be > 0", "use e.g. scales=1.0 (1.1 = 10 % zoomed out)")
    if np.any(np.abs(c) > MAX_SOURCE_PX):
        raise Loc2VecError("tile centres lie more than 2^28 pixels away from the area", "check the centres' CRS")
    step = sc * float(step_px)
    if np.any(step * size > MAX_SOURCE_PX):
        raise Loc2VecError("tiles this large would overflow the sampler's fixed-point arithmetic",
                           "use a smaller scale")
    cos, sin = np.cos(ang), np.sin(ang)
    # The 1e-16 residues of cos(90 deg) vanish in the rounding below; rint is symmetric (-a -> -a).
    half = 0.5 * step * ONE
    return TileGeometry(
        size=size,
        xc=np.rint(c[:, 0] * ONE).astype(np.int64),
        yc=np.rint(c[:, 1] * ONE).astype(np.int64),
        hxu=np.rint(half * cos).astype(np.int64),
        hxv=np.rint(-half * sin).astype(np.int64),
        hyu=np.rint(half * sin).astype(np.int64),
        hyv=np.rint(half * cos).astype(np.int64),
    )
