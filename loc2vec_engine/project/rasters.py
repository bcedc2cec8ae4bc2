"""Raster layers of a QGIS project: one band of an area raster in grey, or three bands as true colours."""

from __future__ import annotations

import os
import xml.etree.ElementTree as ET
from dataclasses import dataclass

from ..errors import Loc2VecError
from .sources import check_raster, relative
from .xml_parts import maplayer, num, text


@dataclass
class RasterLayer:
    """One band of an area raster in grey; by default 0 -> white, 255 -> black, half transparent."""

    tif_path: str | os.PathLike
    name: str = "area"
    band: int = 1
    opacity: float = 0.5
    gradient: str = "WhiteToBlack"  # or "BlackToWhite"
    min_value: float = 0.0
    max_value: float = 255.0


@dataclass
class RgbRasterLayer:
    """Three bands of a uint8 raster as red, green and blue exactly as stored: no contrast stretch.

    For ``loc2vec render``'s PCA colours (the Processing algorithm loads them the same way): QGIS would
    stretch each band to the raster's own range, and two cities rendered with one colour transform would no
    longer share their colours. The file's nodata (0 in every band: no cell) is drawn transparent.
    """

    tif_path: str | os.PathLike
    name: str = "embeddings (PCA colours)"
    bands: tuple[int, int, int] = (1, 2, 3)
    opacity: float = 1.0
    visible: bool = True  # False: in the layers panel, unticked


def grey_layer(spec: RasterLayer, home, srs, layer_id) -> dict:
    path, count, extent = check_raster(spec.tif_path)
    _check_bands(path, count, [spec.band])
    if spec.gradient not in ("WhiteToBlack", "BlackToWhite"):
        raise Loc2VecError(f"gradient {spec.gradient!r}", "use 'WhiteToBlack' or 'BlackToWhite'")
    source = relative(path, home)
    ml = maplayer("raster", layer_id, source, spec.name, srs, "gdal")
    pipe = ET.SubElement(ml, "pipe")
    rr = ET.SubElement(pipe, "rasterrenderer", type="singlebandgray", grayBand=str(int(spec.band)),
                       gradient=spec.gradient, opacity=num(spec.opacity), alphaBand="-1", nodataColor="")
    ce = ET.SubElement(rr, "contrastEnhancement")
    text(ce, "minValue", num(spec.min_value))
    text(ce, "maxValue", num(spec.max_value))
    text(ce, "algorithm", "StretchToMinimumMaximum")
    text(ml, "blendMode", "0")
    return {"xml": ml, "id": layer_id, "name": spec.name, "source": source, "provider": "gdal", "extent": extent}


def rgb_layer(spec: RgbRasterLayer, home, srs, layer_id) -> dict:
    """A ``multibandcolor`` renderer with no contrast enhancement elements: QGIS then draws the stored bytes as
    they are (what QgsMultiBandColorRenderer(provider, 1, 2, 3) writes)."""
    path, count, extent = check_raster(spec.tif_path)
    if len(spec.bands) != 3:
        raise Loc2VecError(f"{len(spec.bands)} bands for the colour layer {spec.name!r}",
                           "give three bands: red, green, blue")
    _check_bands(path, count, spec.bands)
    source = relative(path, home)
    ml = maplayer("raster", layer_id, source, spec.name, srs, "gdal")
    pipe = ET.SubElement(ml, "pipe")
    red, green, blue = (str(int(b)) for b in spec.bands)
    rr = ET.SubElement(pipe, "rasterrenderer", type="multibandcolor", redBand=red, greenBand=green, blueBand=blue,
                       opacity=num(spec.opacity), alphaBand="-1", nodataColor="")
    origin = ET.SubElement(rr, "minMaxOrigin")
    text(origin, "limits", "None")  # and no <redContrastEnhancement> etc.: no stretch, now or when reloaded
    text(origin, "extent", "WholeRaster")
    ET.SubElement(pipe, "rasterresampler", maxOversampling="2")  # nearest neighbour: one cell, one flat colour
    text(ml, "blendMode", "0")
    return {"xml": ml, "id": layer_id, "name": spec.name, "source": source, "provider": "gdal", "extent": extent,
            "visible": bool(spec.visible)}


def _check_bands(path, count: int, bands) -> None:
    for band in bands:
        if not 1 <= int(band) <= count:
            raise Loc2VecError(f"band {band} of {path.name}, which has {count} bands",
                               f"give a band from 1 to {count}")
