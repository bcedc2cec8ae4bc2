"""Features -> drawable polygons in a metric CRS, and burning them into a pixel window with GDAL.

Lines get their width and points their radius here (shapely buffers in metres), so the GDAL
rasterizer only ever fills polygons. Features are sorted by (band, value) and burned in that
order with "replace", so where objects of one channel overlap the highest value wins.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..geo.crs import project_geometries
from ..sources.features import DRAW_CODES, Features


@dataclass
class Burnables:
    """Polygons ready to burn, in the raster CRS, with a spatial index."""

    wkb: np.ndarray  # object array of WKB bytes
    band: np.ndarray
    value: np.ndarray
    tree: object  # shapely.STRtree over the polygons
    nbands: int

    def __len__(self) -> int:
        return len(self.wkb)

    @classmethod
    def build(cls, features: Features, transformer, nbands: int) -> "Burnables":
        import shapely

        geoms = project_geometries(features.geoms, transformer)
        polys = np.empty(len(geoms), dtype=object)
        size = features.size_m.astype(np.float64)
        for code, make in _SHAPERS.items():
            sel = features.draw == code
            if sel.any():
                polys[sel] = make(geoms[sel], size[sel])
        keep = ~(shapely.is_empty(polys) | shapely.is_missing(polys))
        order = np.lexsort((features.value[keep], features.band[keep]))
        polys = polys[keep][order]
        return cls(wkb=shapely.to_wkb(polys), band=features.band[keep][order], value=features.value[keep][order],
                   tree=shapely.STRtree(polys), nbands=nbands)

    def burn(self, geotransform, width: int, height: int) -> np.ndarray:
        """Burn every polygon touching the window into a ``(nbands, height, width)`` uint8 array."""
        from osgeo import gdal, ogr
        import shapely

        x0, px, _, y0, _, py = geotransform
        window = shapely.box(x0, y0 + py * height, x0 + px * width, y0)
        idx = np.sort(self.tree.query(window))  # sorted: keeps the (band, value) burn order
        ds = gdal.GetDriverByName("MEM").Create("", width, height, self.nbands, gdal.GDT_Byte)
        ds.SetGeoTransform(geotransform)
        if len(idx):
            vds = ogr.GetDriverByName("Memory").CreateDataSource("")
            bands = self.band[idx]
            for b in np.unique(bands):
                layer = vds.CreateLayer(f"b{b}", geom_type=ogr.wkbUnknown)
                layer.CreateField(ogr.FieldDefn("v", ogr.OFTInteger))
                defn = layer.GetLayerDefn()
                for i in idx[bands == b]:
                    feat = ogr.Feature(defn)
                    feat.SetGeometryDirectly(ogr.CreateGeometryFromWkb(self.wkb[i]))
                    feat.SetField(0, int(self.value[i]))
                    layer.CreateFeature(feat)
                _quiet_rasterize(ds, [int(b) + 1], layer, options=["ATTRIBUTE=v"])
        return ds.ReadAsArray().reshape(self.nbands, height, width)


def burn_mask(polygon_m, geotransform, width: int, height: int) -> np.ndarray:
    """Pixels whose centre lies inside ``polygon_m`` (a shapely geometry in the raster CRS)."""
    from osgeo import gdal, ogr

    ds = gdal.GetDriverByName("MEM").Create("", width, height, 1, gdal.GDT_Byte)
    ds.SetGeoTransform(geotransform)
    vds = ogr.GetDriverByName("Memory").CreateDataSource("")
    layer = vds.CreateLayer("clip", geom_type=ogr.wkbUnknown)
    feat = ogr.Feature(layer.GetLayerDefn())
    feat.SetGeometryDirectly(ogr.CreateGeometryFromWkb(polygon_m.wkb))
    layer.CreateFeature(feat)
    _quiet_rasterize(ds, [1], layer, burn_values=[1])
    return ds.ReadAsArray().astype(bool)


def _quiet_rasterize(ds, bands, layer, **kwargs):
    # Layer and window share one CRS by construction; GDAL would warn that neither names it.
    from osgeo import gdal

    gdal.PushErrorHandler("CPLQuietErrorHandler")
    try:
        err = gdal.RasterizeLayer(ds, bands, layer, **kwargs)
    finally:
        gdal.PopErrorHandler()
    if err != 0:
        raise RuntimeError(f"GDAL rasterization failed: {gdal.GetLastErrorMsg()}")


def _lines(g, width):
    import shapely

    return shapely.buffer(g, width / 2.0, quad_segs=2)


def _outlines(g, width):
    import shapely

    return shapely.buffer(shapely.boundary(g), width / 2.0, quad_segs=2)


def _points(g, radius):
    import shapely

    return shapely.buffer(shapely.point_on_surface(g), radius, quad_segs=4)


def _fills(g, _):
    return g


_SHAPERS = {DRAW_CODES["line"]: _lines, DRAW_CODES["outline"]: _outlines, DRAW_CODES["point"]: _points,
            DRAW_CODES["fill"]: _fills}
