"""The grid of tile centres an area is embedded on: which cells exist, which are kept, and shards."""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

import numpy as np

from ..errors import Loc2VecError


@dataclass
class CellGrid:
    """Kept cells of a row-major grid of ``cols`` x ``rows`` centres spaced ``stride_m`` apart."""

    xy: np.ndarray  # (N, 2) centres in the area's CRS
    cell: np.ndarray  # (N,) int64 row-major index in the full grid (stable across shards and clips)
    x0: float  # centre of cell 0 (top-left)
    y0: float
    cols: int
    rows: int
    stride_m: float

    def __len__(self) -> int:
        return len(self.cell)

    def describe(self) -> dict:
        return {"x0": self.x0, "y0": self.y0, "cols": self.cols, "rows": self.rows, "stride_m": self.stride_m}

    def shard(self, index: int, count: int) -> "CellGrid":
        """The ``index``-th of ``count`` interleaved parts (cells i, i+count, ...): even work per part."""
        keep = slice(index, None, count)
        return CellGrid(self.xy[keep], self.cell[keep], self.x0, self.y0, self.cols, self.rows, self.stride_m)


def check_stride(stride_m) -> float:
    if not isinstance(stride_m, (int, float)) or not math.isfinite(stride_m) or stride_m <= 0:
        raise Loc2VecError(f"stride must be a positive number of metres, not {stride_m!r}", "use e.g. --stride 100")
    return float(stride_m)


def cell_grid(area, stride_m: float, clip_lonlat=None) -> CellGrid:
    """Cells over ``area`` (a PalettedArea or AreaRaster-like grid with ``ids`` or a valid mask).

    A cell is kept when the pixel under its centre is valid (inside the area's mask) and, with
    ``clip_lonlat`` (a shapely polygon in WGS84), inside the clip: an empty tile is never embedded.
    """
    stride = check_stride(stride_m)
    minx, miny, maxx, maxy = area.bounds
    cols, rows = int((maxx - minx) // stride), int((maxy - miny) // stride)
    if cols < 1 or rows < 1:
        raise Loc2VecError(f"the area ({maxx - minx:.0f} x {maxy - miny:.0f} m) is smaller than one {stride:g} m cell",
                           "use a smaller --stride or a larger area")
    # Centre the grid on the area so that both edges lose the same margin.
    x0 = minx + (maxx - minx - (cols - 1) * stride) / 2
    y0 = maxy - (maxy - miny - (rows - 1) * stride) / 2
    r, c = np.divmod(np.arange(rows * cols, dtype=np.int64), cols)
    xy = np.stack([x0 + c * stride, y0 - r * stride], axis=1)
    keep = _valid_at(area, xy)
    if clip_lonlat is not None:
        keep &= _inside_clip(area, xy, clip_lonlat)
    return CellGrid(xy[keep], np.flatnonzero(keep).astype(np.int64), float(x0), float(y0), cols, rows, stride)


def _valid_at(area, xy) -> np.ndarray:
    col, row = area.xy_to_pixel(xy[:, 0], xy[:, 1])
    col, row = np.floor(col).astype(np.int64), np.floor(row).astype(np.int64)
    inside = (col >= 0) & (col < area.width) & (row >= 0) & (row < area.height)
    ok = np.zeros(len(xy), bool)
    ok[inside] = area.ids[row[inside], col[inside]] != 0  # palette entry 0 = invalid pixel
    return ok


def _inside_clip(area, xy, clip_lonlat) -> np.ndarray:
    import shapely

    from ..geo.crs import project_geometries, transformer_from_wgs84

    clip = project_geometries(clip_lonlat, transformer_from_wgs84(area.crs_wkt))
    return shapely.contains_xy(clip, xy[:, 0], xy[:, 1])


def parse_shard(text: str | None) -> tuple[int, int] | None:
    """``"I/N"`` -> (I, N) with 0 <= I < N; None stays None."""
    if text is None:
        return None
    m = re.fullmatch(r"\s*(\d+)\s*/\s*(\d+)\s*", str(text))
    if not m or not 0 <= int(m.group(1)) < int(m.group(2)):
        raise Loc2VecError(f"bad shard {text!r}", "use --shard I/N with 0 <= I < N, e.g. --shard 0/4 ... --shard 3/4")
    return int(m.group(1)), int(m.group(2))
