"""Cells of an embeddings file as the pixels of a GeoTIFF: one pixel per grid cell, nodata elsewhere.

The pixel grid is the embedding grid itself (pixel size = the stride, pixel centres = the cell centres),
cut to the cells' extent, so a 100 m embedding of a city is a small raster that any GIS overlays exactly.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

import numpy as np

from .. import ATTRIBUTION, __version__
from ..errors import Loc2VecError

META_PREFIX = "LOC2VEC_"  # as the area rasters' metadata (loc2vec_engine.raster.area.META_PREFIX)
NODATA_FLOAT = float("nan")  # --bands all: a reader that ignores nodata still cannot average a hole in
_TOLERANCE = 0.01  # of a stride: how far a centre may sit from its grid position (rounding of stored floats)
_MAX_PIXELS = 2_000_000_000
_OPTIONS = ["TILED=YES", "BLOCKXSIZE=256", "BLOCKYSIZE=256", "COMPRESS=DEFLATE", "BIGTIFF=IF_SAFER"]
_REMAKE = "embed the area on a grid: loc2vec embed MODEL.onnx AREA.tif --stride 100 --out EMB.gpkg"


@dataclass
class CellRaster:
    """Where each cell (in the file's order) falls in the output raster."""

    row: np.ndarray  # (N,) int64
    col: np.ndarray  # (N,) int64
    width: int
    height: int
    stride_m: float
    geotransform: tuple

    def plane(self, values, fill, dtype) -> np.ndarray:
        """(height, width) image with ``values`` (N,) at the cells and ``fill`` elsewhere."""
        out = np.full((self.height, self.width), fill, dtype)
        out[self.row, self.col] = values
        return out


def grid_stride(es) -> float:
    """The grid spacing recorded in the file (``stride_m``, else the grid's), or a clear refusal."""
    grid = es.meta.get("grid") if isinstance(es.meta.get("grid"), dict) else {}
    stride = es.meta.get("stride_m") or grid.get("stride_m")
    if es.meta.get("points") or not isinstance(stride, (int, float)) or not np.isfinite(stride) or stride <= 0:
        raise Loc2VecError(f"{_name(es)} holds cells at given points, not on a grid (no stride in its metadata): "
                           "there is no pixel grid to draw them on", _REMAKE)
    return float(stride)


def cell_raster(es) -> CellRaster:
    """Pixel row/column of every cell: its centre's place on the file's grid, counted from the top-left cell."""
    stride = grid_stride(es)
    x, y = es.xy[:, 0], es.xy[:, 1]
    left, top = float(x.min()), float(y.max())
    colf, rowf = (x - left) / stride, (top - y) / stride
    col, row = np.rint(colf).astype(np.int64), np.rint(rowf).astype(np.int64)
    off = np.maximum(np.abs(colf - col), np.abs(rowf - row))
    if off.size and float(off.max()) > _TOLERANCE:
        raise Loc2VecError(f"{_name(es)}: the cell centres are not on the {stride:g} m grid its metadata gives "
                           f"(one is {float(off.max()) * stride:.1f} m off)", _REMAKE)
    width, height = int(col.max()) + 1, int(row.max()) + 1
    if width * height > _MAX_PIXELS:
        raise Loc2VecError(f"{_name(es)} spans {width} x {height} cells of {stride:g} m: too large for one raster",
                           "render the parts of a sharded job one by one (before loc2vec merge)")
    if len(np.unique(row * width + col)) != len(col):
        raise Loc2VecError(f"{_name(es)} has two cells at the same place of its {stride:g} m grid", _REMAKE)
    half = stride / 2
    return CellRaster(row, col, width, height, stride, (left - half, stride, 0.0, top + half, 0.0, -stride))


def write_rgb(path, es, raster: CellRaster, colours, pca) -> None:
    """3-band uint8 GeoTIFF (PHOTOMETRIC=RGB), 0 = nodata in every band, the colour transform in the metadata."""
    from osgeo import gdal

    from .pca_rgb import NODATA_RGB

    ds = _create(path, raster, 3, gdal.GDT_Byte, ["PHOTOMETRIC=RGB", "INTERLEAVE=PIXEL"])
    _describe(ds, es, raster, {"bands": "rgb", "pca": pca.describe()})
    for i, (name, interp) in enumerate((("PC1 (red)", gdal.GCI_RedBand), ("PC2 (green)", gdal.GCI_GreenBand),
                                        ("PC3 (blue)", gdal.GCI_BlueBand))):
        band = ds.GetRasterBand(i + 1)
        band.SetDescription(name)
        band.SetColorInterpretation(interp)
        band.SetNoDataValue(NODATA_RGB)
        band.WriteArray(raster.plane(colours[:, i], NODATA_RGB, np.uint8))
    ds.FlushCache()
    ds = None  # closes the file: everything is on disk before atomic_output renames it


def write_bands(path, es, raster: CellRaster, bar=None) -> None:
    """One float32 band per embedding dimension, NaN = nodata: the vectors as they are, for any raster tool."""
    from osgeo import gdal

    dim = es.vectors.shape[1]
    # DEFLATE (every TIFF reader has it) at its fastest level: embedding values hardly compress (15 %, with or
    # without the float predictor), so a higher level or the predictor would only cost time.
    ds = _create(path, raster, dim, gdal.GDT_Float32, ["INTERLEAVE=BAND", "ZLEVEL=1"])
    _describe(ds, es, raster, {"bands": "all"})
    for i in range(dim):
        band = ds.GetRasterBand(i + 1)
        band.SetDescription(f"embedding {i + 1}")
        band.SetNoDataValue(NODATA_FLOAT)
        band.WriteArray(raster.plane(es.vectors[:, i], NODATA_FLOAT, np.float32))
        if bar is not None:
            bar.update(1)
    ds.FlushCache()
    ds = None


def _create(path, raster: CellRaster, count: int, dtype, options):
    from osgeo import gdal

    gdal.UseExceptions()
    ds = gdal.GetDriverByName("GTiff").Create(str(path), raster.width, raster.height, count, dtype,
                                              _OPTIONS + options)
    ds.SetGeoTransform(raster.geotransform)
    return ds


def _describe(ds, es, raster: CellRaster, render: dict) -> None:
    """CRS, attribution (also in the standard TIFF copyright tag) and where the pixels come from."""
    ds.SetProjection(es.crs_wkt)
    meta = {"ATTRIBUTION": ATTRIBUTION, "VERSION": __version__, "SOURCE": _name(es),
            "MODEL_SHA256": es.model_sha256, "STRIDE_M": f"{raster.stride_m:g}", "CELLS": str(len(es)),
            "RENDER": json.dumps(render, separators=(",", ":"))}
    ds.SetMetadata({"TIFFTAG_COPYRIGHT": ATTRIBUTION, **{META_PREFIX + k: v for k, v in meta.items()}})


def _name(es) -> str:
    return es.path.name if getattr(es, "path", None) is not None else "the embeddings"
