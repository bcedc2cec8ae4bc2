"""The cells at or above a threshold, dissolved into one (multi)polygon, and the scores as a raster plane.

A cell is a square of the grid stride around its centre: one pixel of the layout. GDAL's Polygonize
dissolves the pixels at or above the threshold into one polygon per edge-connected group (holes
included), traced along the pixel edges, so the area is exactly cells x stride². The groups are
disjoint (at most touching at a corner), so together they are already a valid MultiPolygon; a
further union would only cost time (13 s for 45,000 scattered groups on a 1000 x 1000 grid).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

NODATA = -9999.0  # the score raster outside the embedded cells


@dataclass
class Mask:
    geometry: object  # osgeo.ogr.Geometry (MultiPolygon, in the embeddings' CRS); None when no cell passes
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


def score_plane(layout, scores) -> np.ndarray:
    """(rows, cols) float32 scores on the embedding grid, ``NODATA`` where there is no cell."""
    return layout.plane(np.asarray(scores, np.float32), NODATA, np.float32)
