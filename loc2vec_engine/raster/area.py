"""An area raster: one N-band uint8 GeoTIFF (band i = channel i of the spec) plus a validity mask.

Read through GDAL when its Python bindings are present (QGIS, Debian, conda), otherwise through
``tifffile`` so that GPU machines without GDAL can still train on rasters made elsewhere.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..errors import Loc2VecError
from .grid import GridGeometry

# Keys written into the GeoTIFF's dataset metadata by the rasterizer.
META_PREFIX = "LOC2VEC_"


@dataclass
class AreaRaster(GridGeometry):
    """Metadata of an area raster and windowed reads of its pixels."""

    path: Path
    width: int
    height: int
    channel_names: list[str]
    transform: tuple[float, float, float, float, float, float]  # GDAL geotransform
    crs_wkt: str
    epsg: int | None
    metadata: dict[str, str] = field(default_factory=dict)
    _backend: str = "gdal"
    _cache: tuple | None = None  # tifffile back-end: whole image, read once

    # ---- opening -------------------------------------------------------------------------
    @classmethod
    def open(cls, path, spec=None) -> "AreaRaster":
        """Open an area raster; with ``spec``, refuse one whose bands are not the spec's channels."""
        path = Path(path)
        if not path.is_file():
            raise Loc2VecError(f"area raster {path} not found", "make one with: loc2vec rasterize SOURCE --out AREA.tif")
        try:
            from osgeo import gdal  # noqa: F401
        except ImportError:
            area = _open_tifffile(path)
        else:
            area = _open_gdal(path)
        if spec is not None:
            spec.check_band_names(area.channel_names, f"area raster {path.name}")
        return area

    @property
    def count(self) -> int:
        return len(self.channel_names)

    # ---- pixels --------------------------------------------------------------------------
    def read(self, window: tuple[int, int, int, int] | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Read ``(data (C, h, w) uint8, valid (h, w) bool)`` for ``window = (col, row, w, h)``.

        The window may reach outside the raster: those pixels are zero and not valid.
        """
        if window is None:
            window = (0, 0, self.width, self.height)
        col, row, w, h = (int(v) for v in window)
        data = np.zeros((self.count, h, w), np.uint8)
        valid = np.zeros((h, w), bool)
        c0, r0 = max(col, 0), max(row, 0)
        c1, r1 = min(col + w, self.width), min(row + h, self.height)
        if c1 <= c0 or r1 <= r0:
            return data, valid
        inner, mask = self._read_inside(c0, r0, c1 - c0, r1 - r0)
        data[:, r0 - row:r1 - row, c0 - col:c1 - col] = inner
        valid[r0 - row:r1 - row, c0 - col:c1 - col] = mask
        return data, valid

    def _read_inside(self, col, row, w, h):
        if self._backend == "gdal":
            from osgeo import gdal

            ds = gdal.Open(str(self.path))
            data = ds.ReadAsArray(col, row, w, h)
            if data.ndim == 2:
                data = data[None]
            mask = ds.GetRasterBand(1).GetMaskBand().ReadAsArray(col, row, w, h) > 0
            return data.astype(np.uint8, copy=False), mask
        if self._cache is None:
            self._cache = _read_tifffile_pixels(self.path)
        data, mask = self._cache
        return data[:, row:row + h, col:col + w], mask[row:row + h, col:col + w]


def _open_gdal(path: Path) -> AreaRaster:
    from osgeo import gdal, osr

    gdal.UseExceptions()
    try:
        ds = gdal.Open(str(path))
    except RuntimeError as e:
        raise Loc2VecError(f"cannot read area raster {path}: {e}", "give a GeoTIFF made by loc2vec rasterize") from None
    if ds.RasterCount == 0 or ds.GetRasterBand(1).DataType != gdal.GDT_Byte:
        raise Loc2VecError(f"{path} is not an 8-bit multi-band area raster",
                           "make one with: loc2vec rasterize SOURCE --out AREA.tif")
    wkt = ds.GetProjection()
    epsg = None
    if wkt:
        srs = osr.SpatialReference(wkt=wkt)
        srs.AutoIdentifyEPSG()
        code = srs.GetAuthorityCode(None)
        epsg = int(code) if code else None
    names = [ds.GetRasterBand(i + 1).GetDescription() for i in range(ds.RasterCount)]
    return AreaRaster(path=path, width=ds.RasterXSize, height=ds.RasterYSize, channel_names=names,
                      transform=tuple(ds.GetGeoTransform()), crs_wkt=wkt, epsg=epsg,
                      metadata={k[len(META_PREFIX):].lower(): v for k, v in (ds.GetMetadata() or {}).items()
                                if k.startswith(META_PREFIX)}, _backend="gdal")


def _open_tifffile(path: Path) -> AreaRaster:
    import tifffile

    try:
        with tifffile.TiffFile(path) as tif:
            page = tif.pages[0]
            geo = page.geotiff_tags or {}
            gdal_meta = page.tags.get("GDAL_METADATA")
            shape = page.shape
    except Exception as e:  # tifffile raises many types for a bad file
        raise Loc2VecError(f"cannot read area raster {path}: {e}", "give a GeoTIFF made by loc2vec rasterize") from None
    if len(shape) == 2:
        h, w, c = shape[0], shape[1], 1
    elif page.planarconfig == 1:  # contiguous: (h, w, c)
        h, w, c = shape
    else:
        c, h, w = shape
    scale = geo.get("ModelPixelScale", [1.0, 1.0, 0.0])
    tie = geo.get("ModelTiepoint", [0, 0, 0, 0.0, 0.0, 0.0])
    transform = (tie[3], scale[0], 0.0, tie[4], 0.0, -scale[1])
    epsg = geo.get("ProjectedCSTypeGeoKey")
    epsg = int(epsg.value if hasattr(epsg, "value") else epsg) if epsg else None
    crs_wkt = f"EPSG:{epsg}" if epsg else ""
    names, meta = [""] * c, {}
    if gdal_meta:
        xml = gdal_meta.value
        for sample, name in re.findall(r'<Item name="DESCRIPTION" sample="(\d+)" role="description">([^<]*)</Item>', xml):
            names[int(sample)] = name
        for key, value in re.findall(r'<Item name="' + META_PREFIX + r'([A-Z_]+)">([^<]*)</Item>', xml):
            meta[key.lower()] = value
    return AreaRaster(path=path, width=w, height=h, channel_names=names, transform=transform,
                      crs_wkt=crs_wkt, epsg=epsg, metadata=meta, _backend="tifffile")


def _read_tifffile_pixels(path: Path):
    import tifffile

    with tifffile.TiffFile(path) as tif:
        page = tif.pages[0]
        arr = page.asarray()
        data = np.moveaxis(arr, -1, 0) if page.planarconfig == 1 and arr.ndim == 3 else arr
        if data.ndim == 2:
            data = data[None]
        mask = np.ones(data.shape[1:], bool)
        for other in tif.pages[1:]:  # GDAL's internal mask: a full-size page flagged as a mask
            if other.subfiletype & 4 and other.shape[:2] == data.shape[1:]:
                mask = other.asarray().astype(bool)
                break
    return np.ascontiguousarray(data), mask
