"""The cells at or above a threshold, dissolved into one (multi)polygon, and the scores as a raster plane.

A cell is a square of the grid stride around its centre: one pixel of the layout. GDAL's Polygonize
dissolves the pixels at or above the threshold into one polygon per edge-connected group (holes
included), traced along the pixel edges, so the area is exactly cells x stride². The groups are
disjoint (at most touching at a corner), so together they are already a valid MultiPolygon; a
further union would only cost time (13 s for 45,000 scattered groups on a 1000 x 1000 grid).

A threshold that moves live (the map tool's slider) does not trace polygons: ``ScoreOrder`` ranks the cells
once, and a threshold is then a cut in that order (a binary search), drawn as a raster of the ranks whose
colours change at the cut; the polygons are traced when the mask is saved.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

NODATA = -9999.0  # the score raster outside the embedded cells


@dataclass
class Mask:
    geometry: object  # osgeo.ogr.Geometry (MultiPolygon, in the embeddings' CRS); None when no cell passes,
    #                   or when the mask was only counted (``ScoreOrder.mask``)
    cells: int
    area_km2: float
    threshold: float


def threshold_mask(layout, scores, threshold: float) -> Mask:
    """The cells with ``scores >= threshold`` as one dissolved MultiPolygon and their area in km²."""
    from osgeo import gdal, ogr

    gdal.UseExceptions()
    above = np.asarray(scores) >= threshold
    n = int(above.sum())
    if n == 0:
        return Mask(None, 0, 0.0, float(threshold))
    band_data = layout.plane(above.astype(np.uint8), 0, np.uint8)
    ds = gdal.GetDriverByName("MEM").Create("", layout.cols, layout.rows, 1, gdal.GDT_Byte)
    ds.SetGeoTransform(layout.geotransform)
    band = ds.GetRasterBand(1)
    band.WriteArray(band_data)
    src = ogr.GetDriverByName("Memory").CreateDataSource("")
    lyr = src.CreateLayer("mask", None, ogr.wkbPolygon)
    lyr.CreateField(ogr.FieldDefn("value", ogr.OFTInteger))
    gdal.Polygonize(band, band, lyr, 0)  # the band is its own mask: only the pixels above the threshold
    merged = ogr.Geometry(ogr.wkbMultiPolygon)
    for feature in lyr:
        merged.AddGeometry(feature.GetGeometryRef())  # copied
    feature = band = lyr = None  # before their datasets (GDAL's Python bindings)
    ds = src = None
    return Mask(merged, n, n * layout.stride ** 2 / 1e6, float(threshold))


class ScoreOrder:
    """The cells ranked by score once, so that any threshold's mask is a cut in that order.

    ``rank``: (N,) int32, each cell's place in the ascending order of the scores (0 = the lowest; equal
    scores by cell row). The cells at or above a threshold are exactly those whose rank is at least
    ``cut(threshold)``: the same cells as ``scores >= threshold``, ties included.
    """

    def __init__(self, scores):
        scores = np.asarray(scores)
        order = np.argsort(scores, kind="stable")
        self.sorted = scores[order]
        self.rank = np.empty(len(order), np.int32)
        self.rank[order] = np.arange(len(order), dtype=np.int32)

    def __len__(self) -> int:
        return len(self.sorted)

    def cut(self, threshold: float) -> int:
        """The lowest rank at or above ``threshold`` (``len(self)`` when no cell is)."""
        return int(np.searchsorted(self.sorted, threshold, side="left"))

    def mask(self, layout, threshold: float) -> Mask:
        """The size of the mask at ``threshold``, without its polygons (``geometry`` is None)."""
        n = len(self) - self.cut(threshold)
        return Mask(None, n, n * layout.stride ** 2 / 1e6, float(threshold))


def rank_plane(layout, order: ScoreOrder) -> np.ndarray:
    """(rows, cols) int32 rank of each cell's score on the embedding grid, -1 where there is no cell."""
    return layout.plane(order.rank, -1, np.int32)


def score_plane(layout, scores) -> np.ndarray:
    """(rows, cols) float32 scores on the embedding grid, ``NODATA`` where there is no cell."""
    return layout.plane(np.asarray(scores, np.float32), NODATA, np.float32)
