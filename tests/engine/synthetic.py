"""Small synthetic area rasters for tests: a few roads, blocks, land-use patches and a clip polygon."""

from __future__ import annotations

import cv2
import numpy as np

PIXEL = 500.0 / 256  # 1.953125 m: dyadic, so corners' map coordinates convert to pixels exactly
ORIGIN = (500_000.0, 4_560_000.0)  # UTM-like upper-left corner
CRS = "EPSG:32629"  # UTM 29N (Porto)


def transform(origin=ORIGIN, pixel=PIXEL):
    return (origin[0], pixel, 0.0, origin[1], 0.0, -pixel)


def make_area(h: int = 320, w: int = 400, seed: int = 0, n_channels: int = 12, clip: bool = True):
    """``(data (C, h, w) uint8, valid (h, w) bool)``: map-like content, zero outside ``valid``."""
    rng = np.random.default_rng(seed)
    data = np.zeros((n_channels, h, w), np.uint8)
    last = n_channels - 1
    for _ in range(6):  # land use: big patches at a few intensity levels
        x, y = int(rng.integers(0, w)), int(rng.integers(0, h))
        cv2.rectangle(data[last], (x, y), (x + int(rng.integers(40, 160)), y + int(rng.integers(40, 160))),
                      int(rng.choice([64, 128, 192, 255])), -1)
    for _ in range(25):  # buildings: small blocks in two channels / levels
        ch = int(rng.integers(3, min(6, n_channels))) if n_channels > 3 else 0
        x, y = int(rng.integers(0, w)), int(rng.integers(0, h))
        cv2.rectangle(data[ch], (x, y), (x + int(rng.integers(5, 25)), y + int(rng.integers(5, 25))),
                      int(rng.choice([128, 255])), -1)
    for ch, width, count in ((0, 9, 3), (1 % n_channels, 5, 5), (2 % n_channels, 2, 6)):  # roads, paths
        for _ in range(count):
            p = tuple(int(v) for v in rng.integers(0, [w, h]))
            q = tuple(int(v) for v in rng.integers(0, [w, h]))
            cv2.line(data[ch], p, q, 255 if ch != 1 else int(rng.choice([160, 255])), width)
    for ch in range(6, last):  # points
        for _ in range(4):
            cv2.circle(data[ch], tuple(int(v) for v in rng.integers(0, [w, h])), int(rng.integers(2, 6)), 255, -1)
    valid = np.ones((h, w), bool)
    if clip:  # an irregular clip polygon leaves invalid corners
        poly = np.array([[w * 0.1, 0], [w, h * 0.05], [w * 0.95, h], [w * 0.3, h * 0.9], [0, h * 0.4]], np.int32)
        m = np.zeros((h, w), np.uint8)
        cv2.fillPoly(m, [poly], 1)
        valid = m.astype(bool)
    data[:, ~valid] = 0
    return data, valid


def write_geotiff(path, data, valid, names=None, crs=CRS):
    """Write an area GeoTIFF like the rasterizer's: N uint8 bands, band names, internal mask."""
    from osgeo import gdal, osr

    gdal.UseExceptions()
    c, h, w = data.shape
    ds = gdal.GetDriverByName("GTiff").Create(str(path), w, h, c, gdal.GDT_Byte, ["TILED=YES", "INTERLEAVE=PIXEL"])
    ds.SetGeoTransform(transform())
    srs = osr.SpatialReference()
    srs.SetFromUserInput(crs)
    ds.SetProjection(srs.ExportToWkt())
    for i in range(c):
        band = ds.GetRasterBand(i + 1)
        band.WriteArray(data[i])
        if names:
            band.SetDescription(names[i])
    gdal.SetConfigOption("GDAL_TIFF_INTERNAL_MASK", "YES")
    ds.CreateMaskBand(gdal.GMF_PER_DATASET)
    ds.GetRasterBand(1).GetMaskBand().WriteArray(valid.astype(np.uint8) * 255)
    ds.FlushCache()
    ds = None
    return path
