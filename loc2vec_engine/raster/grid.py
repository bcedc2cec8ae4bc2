"""Pixel <-> map geometry shared by everything laid on a north-up raster grid."""

from __future__ import annotations

import numpy as np

from ..errors import Loc2VecError


class GridGeometry:
    """Mixin for classes with ``transform`` (GDAL geotransform), ``width``, ``height`` and ``crs_wkt``."""

    @property
    def pixel_size(self) -> float:
        return float(self.transform[1])

    @property
    def bounds(self) -> tuple[float, float, float, float]:
        x0, px, _, y0, _, py = self.transform
        return (x0, y0 + py * self.height, x0 + px * self.width, y0)

    def xy_to_pixel(self, x, y):
        """Map coordinates (area CRS) to fractional pixel coordinates (col, row); pixel centres at .5."""
        x0, px, _, y0, _, py = self.transform
        return (np.asarray(x, dtype=np.float64) - x0) / px, (np.asarray(y, dtype=np.float64) - y0) / py

    def pixel_to_xy(self, col, row):
        x0, px, _, y0, _, py = self.transform
        return x0 + np.asarray(col, dtype=np.float64) * px, y0 + np.asarray(row, dtype=np.float64) * py

    def lonlat_to_xy(self, lon, lat):
        """WGS84 lon/lat to the grid's CRS."""
        if not self.crs_wkt:
            raise Loc2VecError("the area has no CRS, so lon/lat cannot be placed on it",
                               "build it from an area raster, or give its CRS")
        from ..geo.crs import transformer_from_wgs84

        return transformer_from_wgs84(self.crs_wkt).transform(lon, lat)
