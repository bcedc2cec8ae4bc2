"""The embedding cells as a raster: their row and column on the grid, a lookup from grid to cell, and
the nearest cell of a point.

``loc2vec embed`` puts cells on a square grid ``stride_m`` apart (row-major, north up). The layout
is the bounding box of the cells on that grid: the score raster, the mask and the polygon examples
(rasterised by GDAL: a cell is inside when its centre is) all use it, so a cell is one pixel.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from ..errors import Loc2VecError

_ON_GRID = 0.01  # of the stride: how far a cell centre may lie off the grid (rounding in other tools)
_MAX_PIXELS = 400_000_000  # a bounding box larger than this is not a grid of embedded cells


@dataclass
class CellLayout:
    """Row and column of each cell of an EmbeddingSet on its grid, cropped to the cells' bounding box."""

    stride: float  # metres between neighbouring cells (= pixel size)
    left: float  # x of the left edge of column 0
    top: float  # y of the top edge of row 0
    cols: int
    rows: int
    col: np.ndarray  # (N,) int64
    row: np.ndarray  # (N,) int64
    lookup: np.ndarray  # (rows, cols) int32: the cell's row in the EmbeddingSet, -1 where there is none

    @property
    def geotransform(self) -> tuple:
        return (self.left, self.stride, 0.0, self.top, 0.0, -self.stride)

    def centres(self, rows, cols) -> np.ndarray:
        """(P, 2) map coordinates of the centres of grid pixels (rows, cols)."""
        return np.stack([self.left + (np.asarray(cols) + 0.5) * self.stride,
                         self.top - (np.asarray(rows) + 0.5) * self.stride], axis=1).reshape(-1, 2)

    def plane(self, values, fill, dtype) -> np.ndarray:
        """(rows, cols) array of ``values`` (one per cell) with ``fill`` where there is no cell."""
        out = np.full((self.rows, self.cols), fill, dtype)
        out[self.row, self.col] = values
        return out

    def nearest(self, xy) -> tuple[np.ndarray, np.ndarray]:
        """(P,) cell of each point (map coordinates) within one stride, -1 where none; (P,) its distance.

        A cell within one stride lies in the 3 x 3 pixels around the pixel under the point, so the
        answer is exact without searching every cell.
        """
        xy = np.asarray(xy, np.float64).reshape(-1, 2)
        c0 = np.floor((xy[:, 0] - self.left) / self.stride).astype(np.int64)
        r0 = np.floor((self.top - xy[:, 1]) / self.stride).astype(np.int64)
        best = np.full(len(xy), -1, np.int64)
        dist = np.full(len(xy), np.inf)
        for dr in (-1, 0, 1):
            for dc in (-1, 0, 1):
                r, c = r0 + dr, c0 + dc
                ok = (r >= 0) & (r < self.rows) & (c >= 0) & (c < self.cols)
                idx = np.full(len(xy), -1, np.int64)
                idx[ok] = self.lookup[r[ok], c[ok]]
                centre = self.centres(r, c)
                d = np.hypot(xy[:, 0] - centre[:, 0], xy[:, 1] - centre[:, 1])
                better = (idx >= 0) & (d < dist)
                best[better], dist[better] = idx[better], d[better]
        within = dist <= self.stride * (1 + 1e-9)
        best[~within] = -1
        return best, dist


def cell_layout(es) -> CellLayout:
    """The layout of ``es``'s cells; cells that are not on a square grid (embedded at points) are an error."""
    from ..search.similar import grid_stride

    stride = grid_stride(es)
    xmin, ymax = float(es.xy[:, 0].min()), float(es.xy[:, 1].max())
    colf = (es.xy[:, 0] - xmin) / stride
    rowf = (ymax - es.xy[:, 1]) / stride
    col, row = np.rint(colf).astype(np.int64), np.rint(rowf).astype(np.int64)
    off = max(float(np.abs(colf - col).max()), float(np.abs(rowf - row).max()))
    cols, rows = int(col.max()) + 1, int(row.max()) + 1
    name = es.path.name if getattr(es, "path", None) is not None else "the embeddings"
    fix = "score embeddings made on a grid: loc2vec embed MODEL.onnx AREA.tif --stride 100 --out EMB.gpkg"
    if off > _ON_GRID or not math.isfinite(off) or rows * cols > _MAX_PIXELS:
        raise Loc2VecError(f"the cells of {name} are not on a square grid {stride:g} m apart", fix)
    lookup = np.full((rows, cols), -1, np.int32)
    lookup[row, col] = np.arange(len(es), dtype=np.int32)
    if int((lookup >= 0).sum()) != len(es):
        raise Loc2VecError(f"{name} holds several cells at the same place of its {stride:g} m grid", fix)
    return CellLayout(stride=stride, left=xmin - stride / 2, top=ymax + stride / 2, cols=cols, rows=rows,
                      col=col, row=row, lookup=lookup)
