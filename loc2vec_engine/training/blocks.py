"""Where tile centres may go: spatially disjoint train / val / test blocks with a guard band, and
coarse per-cell statistics (valid share, built-up share, channel means) to weight and check centres.

Random tiles from one city overlap each other, so a random split of *tiles* leaks training ground into
validation. Instead each area is cut into square blocks, and whole blocks go to one split. A tile
reaches ``margin`` beyond its centre (half its diagonal at the largest scale, plus the largest shift),
so a split's tile centres must stay ``margin`` away from every block of another split: the guard band.
Ground of the band is still seen, by the tiles of the split that owns it.

``BlockSplit`` holds the block assignment of one area; ``allowed(split, margin_m)`` the coarse mask of
cells (``cell_px`` pixels square) where that split's centres may lie. Both are conservative: a cell is
allowed only if a tile centred *anywhere* in it, at any rotation, stays clear of foreign blocks.

Block size: a centre's guard square is 2 x margin wide (about 1.05 km for 500 m tiles, scale 1.1 and a
50 px shift), so with 1 km blocks every centre's square meets 4 blocks, and a 15 % split keeps
0.15^4 of its ground: nothing. Blocks of about 5 margins (``auto_block_m``) keep about half.
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass, field

import numpy as np

from ..errors import Loc2VecError

SPLITS = ("train", "val", "test")
DEFAULT_FRACTIONS = (0.7, 0.15, 0.15)
DEFAULT_CELL_PX = 8
NO_GROUND = -1  # label of a block without valid pixels: it belongs to no split


def guard_margin_m(tile_size_m: float, max_scale: float = 1.0, max_shift_m: float = 0.0) -> float:
    """How far a tile can read from its (unshifted) centre: half the diagonal at ``max_scale`` plus the
    diagonal of the largest shift (shifts are drawn per axis, up to ``max_shift_m`` each)."""
    return math.sqrt(0.5) * tile_size_m * max_scale + math.sqrt(2.0) * max_shift_m


def auto_block_m(margin_m: float) -> float:
    """A block size that leaves an isolated block about half its area for centres: 5 margins, in
    whole 500 m, at least 1 km."""
    return max(1000.0, 500.0 * math.ceil(5.0 * margin_m / 500.0))


def split_index(split: str) -> int:
    if split not in SPLITS:
        raise Loc2VecError(f"unknown split {split!r}", f"use one of: {', '.join(SPLITS)}")
    return SPLITS.index(split)


def area_key(area) -> int:
    """A stable number for an area (its grid and CRS), so its split never depends on the list order."""
    text = f"{tuple(round(v, 6) for v in area.transform)}|{area.width}x{area.height}|{area.crs_wkt}"
    return int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "little")


@dataclass(frozen=True)
class BlockSplit:
    """The block assignment of one area: ``labels`` (rows, cols) int8, 0/1/2 = train/val/test, -1 = no ground.

    Pixel (row, col) belongs to block ``(floor((row + .5) / block_px), floor((col + .5) / block_px))``.
    """

    labels: np.ndarray
    block_px: float
    pixel_size: float
    height: int
    width: int
    _masks: dict = field(default_factory=dict, compare=False, repr=False)

    @property
    def block_m(self) -> float:
        return self.block_px * self.pixel_size

    def counts(self) -> dict[str, int]:
        return {s: int((self.labels == i).sum()) for i, s in enumerate(SPLITS)}

    def pixel_labels(self, col0: int, row0: int, col1: int, row1: int) -> np.ndarray:
        """Split labels of the pixels in the inclusive window, clipped to the area (outside: -1)."""
        c0, r0 = max(int(col0), 0), max(int(row0), 0)
        c1, r1 = min(int(col1), self.width - 1), min(int(row1), self.height - 1)
        if c1 < c0 or r1 < r0:
            return np.zeros((0, 0), np.int8)
        bc = np.floor((np.arange(c0, c1 + 1) + 0.5) / self.block_px).astype(np.int64)
        br = np.floor((np.arange(r0, r1 + 1) + 0.5) / self.block_px).astype(np.int64)
        return self.labels[br[:, None], bc[None, :]]

    def allowed(self, split: str, margin_m: float, cell_px: int = DEFAULT_CELL_PX) -> np.ndarray:
        """(ceil(H / cell_px), ceil(W / cell_px)) bool: cells where ``split``'s tile centres may lie.

        A cell is allowed when the axis-aligned square ``margin`` (+1 px for nearest-pixel rounding)
        around the cell holds no pixel of another split's block; that square contains every rotated,
        scaled, shifted tile centred in the cell.
        """
        key = (split_index(split), round(float(margin_m), 6), int(cell_px))
        if key not in self._masks:
            self._masks[key] = self._allowed(*key)
        return self._masks[key]

    def _allowed(self, s: int, margin_m: float, cell_px: int) -> np.ndarray:
        m = margin_m / self.pixel_size + 1.0
        foreign = ((self.labels != s) & (self.labels != NO_GROUND)).astype(np.int64)
        # summed-area table over blocks: count of foreign blocks in any block rectangle
        sat = np.zeros((foreign.shape[0] + 1, foreign.shape[1] + 1), np.int64)
        sat[1:, 1:] = foreign.cumsum(0).cumsum(1)

        def block_range(n_cells, n_px, n_blocks):
            lo = np.arange(n_cells) * cell_px
            hi = np.minimum(lo + cell_px, n_px)
            # pixels the square can read -> the blocks those pixels belong to
            b0 = np.floor((np.floor(lo - m) + 0.5) / self.block_px).astype(np.int64)
            b1 = np.floor((np.floor(hi + m) + 0.5) / self.block_px).astype(np.int64)
            return np.clip(b0, 0, n_blocks - 1), np.clip(b1, 0, n_blocks - 1) + 1

        hc, wc = -(-self.height // cell_px), -(-self.width // cell_px)
        r0, r1 = block_range(hc, self.height, self.labels.shape[0])
        c0, c1 = block_range(wc, self.width, self.labels.shape[1])
        n = (sat[r1][:, c1] - sat[r0][:, c1] - sat[r1][:, c0] + sat[r0][:, c0])
        return n == 0


def split_blocks(area, *, block_m: float = 3000.0, fractions=DEFAULT_FRACTIONS, seed: int = 0) -> BlockSplit:
    """Assign the blocks of ``area`` (a PalettedArea) with valid ground to train / val / test.

    The shuffle is seeded by ``seed`` and the area itself (not its position in a list), so every sampler
    built with the same ``block_m``, ``fractions`` and ``seed`` sees the same split. Each split with a
    non-zero fraction gets at least one block when there are enough blocks (train first, then val, test).
    """
    if not (isinstance(block_m, (int, float)) and math.isfinite(block_m) and block_m > 0):
        raise Loc2VecError(f"block size must be a positive number of metres, not {block_m!r}",
                           "use e.g. block_size_m=3000")
    fr = np.asarray(fractions, dtype=np.float64)
    if fr.shape != (3,) or not np.all(np.isfinite(fr)) or np.any(fr < 0) or fr.sum() <= 0:
        raise Loc2VecError(f"split fractions must be three non-negative numbers (train, val, test), not {fractions!r}",
                           "use e.g. fractions=(0.7, 0.15, 0.15)")
    fr = fr / fr.sum()
    block_px = float(block_m) / area.pixel_size
    by, bx = math.ceil(area.height / block_px - 1e-9), math.ceil(area.width / block_px - 1e-9)
    ground = _blocks_with_ground(area.ids, block_px, by, bx)
    idx = np.flatnonzero(ground.ravel())
    counts = _split_counts(len(idx), fr)
    rng = np.random.default_rng([int(seed) & 0xFFFFFFFF, area_key(area)])
    order = rng.permutation(idx)
    labels = np.full(by * bx, NO_GROUND, np.int8)
    labels[order] = np.repeat(np.arange(3, dtype=np.int8), counts)
    return BlockSplit(labels.reshape(by, bx), block_px, area.pixel_size, area.height, area.width)


def _split_counts(n: int, fr: np.ndarray) -> np.ndarray:
    """Block counts per split: nearest to ``fr * n``, summing to n, >= 1 for every wanted split if n allows."""
    counts = np.floor(fr * n).astype(np.int64)
    for i in np.argsort(-(fr * n - counts), kind="stable")[: n - counts.sum()]:
        counts[i] += 1  # largest remainders
    for i in np.flatnonzero((fr > 0) & (counts == 0)):
        donor = int(np.argmax(counts))
        if counts[donor] > 1:
            counts[donor] -= 1
            counts[i] += 1
    return counts


def _blocks_with_ground(ids: np.ndarray, block_px: float, by: int, bx: int) -> np.ndarray:
    """(by, bx) bool: blocks holding at least one valid pixel; one band of block rows at a time."""
    h, w = ids.shape
    col_block = np.floor((np.arange(w) + 0.5) / block_px).astype(np.int64)
    starts = np.flatnonzero(np.r_[True, np.diff(col_block) != 0])
    out = np.zeros((by, bx), bool)
    row_block = np.floor((np.arange(h) + 0.5) / block_px).astype(np.int64)
    for j in range(by):
        rows = np.flatnonzero(row_block == j)
        if len(rows) == 0:
            continue
        any_col = (ids[rows[0]:rows[-1] + 1] != 0).any(axis=0)
        out[j, col_block[starts]] = np.logical_or.reduceat(any_col, starts)
    return out


# ---- coarse cells ------------------------------------------------------------------------------

@dataclass
class CellStats:
    """Per-cell statistics of an area on a grid of ``cell_px`` pixel cells (edge cells are partial)."""

    cell_px: int
    valid: np.ndarray                 # (hc, wc) float32: share of valid pixels
    built_up: np.ndarray | None       # (hc, wc) float32: share of pixels with a non-zero built-up channel
    means: np.ndarray | None          # (C, hc, wc) float32: mean intensity / 255, invalid pixels as 0


def cell_stats(area, cell_px: int = DEFAULT_CELL_PX, built_up_channels=(), means: bool = False,
               chunk_cells: int = 64) -> CellStats:
    """Cell statistics of a PalettedArea, ``chunk_cells`` cell rows at a time (bounded memory).

    Everything is looked up per palette entry first, so a pixel costs one gather per statistic.
    """
    h, w = area.height, area.width
    hc, wc = -(-h // cell_px), -(-w // cell_px)
    valid = np.zeros((hc, wc), np.float32)
    bu_pal = None
    if len(built_up_channels):
        bu_pal = (area.palette[:, list(built_up_channels)] > 0).any(axis=1)
        bu_pal[0] = False
    built = np.zeros((hc, wc), np.float32) if bu_pal is not None else None
    mean = np.zeros((area.count, hc, wc), np.float32) if means else None
    n_px = float(cell_px * cell_px)
    for r0 in range(0, hc, chunk_cells):
        r1 = min(r0 + chunk_cells, hc)
        ids = np.zeros(((r1 - r0) * cell_px, wc * cell_px), area.ids.dtype)
        part = area.ids[r0 * cell_px:r1 * cell_px]
        ids[:part.shape[0], :w] = part

        def per_cell(pixels):  # (rows, cols) -> (cell rows, cell cols) sums
            return pixels.reshape(r1 - r0, cell_px, wc, cell_px).sum(axis=(1, 3), dtype=np.float64)

        valid[r0:r1] = per_cell(ids != 0) / n_px
        if built is not None:
            built[r0:r1] = per_cell(bu_pal[ids]) / n_px
        if mean is not None:
            for c in range(area.count):
                mean[c, r0:r1] = per_cell(area.palette[:, c][ids]) / (n_px * 255.0)
    return CellStats(cell_px, valid, built, mean)


def window_mean(cell_map: np.ndarray, k: int) -> np.ndarray:
    """Mean of ``cell_map`` (..., hc, wc) over the k x k cells centred on each cell; outside counts as 0."""
    k = max(int(k), 1)
    lead = cell_map.shape[:-2]
    hc, wc = cell_map.shape[-2:]
    pad = [(0, 0)] * len(lead) + [(k // 2 + 1, k - k // 2), (k // 2 + 1, k - k // 2)]
    sat = np.pad(cell_map.astype(np.float64), pad).cumsum(-2).cumsum(-1)
    s = (sat[..., k:k + hc, k:k + wc] - sat[..., :hc, k:k + wc]
         - sat[..., k:k + hc, :wc] + sat[..., :hc, :wc])
    return (s / (k * k)).astype(np.float32)
