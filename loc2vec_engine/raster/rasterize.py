"""Rasterize a vector source once into an area GeoTIFF, chunk by chunk, in bounded memory.

source -> features (lon/lat, per channel) -> drawable polygons (metric CRS) -> chunks of
``chunk_px`` x ``chunk_px`` pixels burned with GDAL and written into one tiled, compressed,
N-band uint8 GeoTIFF with an internal validity mask. The file appears only when complete.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from .. import ATTRIBUTION, __version__
from ..atomic import atomic_output, check_writable
from ..channels import get_spec
from ..errors import Loc2VecError
from ..geo.aoi import area_of_interest, check_bbox
from ..geo.crs import metric_crs, project_geometries, transformer_from_wgs84
from ..progress import Progress
from .area import META_PREFIX, AreaRaster
from .burn import Burnables, burn_mask

GTIFF_OPTIONS = ["TILED=YES", "BLOCKXSIZE=256", "BLOCKYSIZE=256", "COMPRESS=DEFLATE", "INTERLEAVE=PIXEL",
                 "BIGTIFF=IF_SAFER"]


def rasterize(source, out, *, spec=None, bbox=None, clip=None, crs=None, pixel_size=None, preset=None,
              layer_map=None, chunk_px=4096, progress=None) -> AreaRaster:
    """Rasterize ``source`` (.osm.pbf/.osm, or any OGR source) into the area GeoTIFF ``out``.

    spec: channel spec name/path/ChannelSpec (default 'default'); bbox: (lon_min, lat_min, lon_max, lat_max);
    clip: path of a polygon file (any CRS); crs: 'auto' | EPSG code | 'EPSG:32636';
    pixel_size: metres per pixel (default from spec, 500/256); preset: 'kyiv' etc. (clip + CRS);
    layer_map: TOML file mapping OGR layers to channels; progress: callable(fraction, message) -> True
    to cancel. Returns the opened AreaRaster. Raises Loc2VecError for bad input, leaving no output.
    """
    spec = get_spec(spec)
    out = check_writable(out)
    if preset:
        from ..geo.presets import get_preset

        p = get_preset(preset)
        crs = crs or p.crs
        clip = clip or p.boundary_path
        if clip is None and bbox is None:
            bbox = p.bbox
    pixel_size = float(pixel_size or spec.pixel_size_m)
    if not 0 < pixel_size <= 100:
        raise Loc2VecError(f"pixel size {pixel_size} m is out of range", "use e.g. --pixel-size 1.953125 (500 m / 256 px)")
    bbox = check_bbox(bbox) if bbox is not None else None
    clip_lonlat = _load_clip(clip) if clip else None
    _check_crs_early(crs, source, bbox, clip_lonlat)

    with Progress(total=3, desc="rasterize", callback=progress, enabled=progress is None) as steps:
        features, aoi, burnables, target = _prepare(source, spec, bbox, clip, clip_lonlat, crs, layer_map, steps)
    aoi_m = project_geometries(np.array([aoi], dtype=object), transformer_from_wgs84(target.to_wkt()))[0]

    meta = {"SPEC": spec.name, "VERSION": __version__, "ATTRIBUTION": ATTRIBUTION,
            "SOURCE": Path(str(source)).name, "PIXEL_SIZE_M": repr(pixel_size),
            "TILE_SIZE_PX": str(spec.tile_size_px), "AOI": "clip " + Path(str(clip)).name if clip else
            ("bbox " + ",".join(f"{v:.6f}" for v in bbox) if bbox else "source extent")}
    with atomic_output(out) as tmp:
        _write_raster(tmp, burnables, aoi_m, target.to_wkt(), pixel_size, spec.names, meta, chunk_px, progress)
    return AreaRaster.open(out)


def _prepare(source, spec, bbox, clip, clip_lonlat, crs, layer_map, steps):
    """Read the features inside the area of interest and turn them into burnable polygons."""
    from ..sources.read import read_source, source_bbox

    features = read_source(source, spec, layer_map=layer_map)
    aoi = area_of_interest(bbox, clip_lonlat, fallback_bbox=None if (bbox or clip_lonlat) else source_bbox(source, features))
    features = features.clipped_to(aoi)
    if len(features) == 0:
        raise Loc2VecError(f"no objects of channel spec {spec.name!r} inside the area of interest "
                           f"({'bbox ' + ','.join(f'{v:g}' for v in bbox) if bbox else 'clip ' + str(clip)})",
                           f"the area must overlap the data: {Path(str(source)).name} covers "
                           f"{_fmt_bbox(source_bbox(source, None))}; bbox order is lon_min,lat_min,lon_max,lat_max")
    steps.update(1, f"{len(features)} features")
    centre = aoi.centroid
    target = metric_crs(crs, centre.x, centre.y)
    transformer = transformer_from_wgs84(target.to_wkt())
    burnables = Burnables.build(features, transformer, nbands=len(spec))
    steps.update(1, "burning")
    return features, aoi, burnables, target


def _write_raster(path, burnables, aoi_m, crs_wkt, px, names, meta, chunk_px, progress):
    from osgeo import gdal

    gdal.UseExceptions()
    minx, miny, maxx, maxy = aoi_m.bounds
    x0, y1 = math.floor(minx / px) * px, math.ceil(maxy / px) * px
    width, height = math.ceil((maxx - x0) / px), math.ceil((y1 - miny) / px)
    if width * height > 2_000_000_000:
        raise Loc2VecError(f"the area is {width} x {height} px at {px} m/px: too large for one raster",
                           "split it with --bbox, or use a larger --pixel-size")
    gdal.SetConfigOption("GDAL_TIFF_INTERNAL_MASK", "YES")
    ds = gdal.GetDriverByName("GTiff").Create(str(path), width, height, len(names), gdal.GDT_Byte, GTIFF_OPTIONS)
    if ds is None:
        raise Loc2VecError(f"cannot create {path}", "check free disk space and permissions")
    ds.SetGeoTransform((x0, px, 0.0, y1, 0.0, -px))
    ds.SetProjection(crs_wkt)
    ds.SetMetadata({META_PREFIX + k: v for k, v in meta.items()})
    for i, name in enumerate(names):
        ds.GetRasterBand(i + 1).SetDescription(name)
    ds.CreateMaskBand(gdal.GMF_PER_DATASET)
    mask_band = ds.GetRasterBand(1).GetMaskBand()
    chunks = [(c, r) for r in range(0, height, chunk_px) for c in range(0, width, chunk_px)]
    with Progress(total=len(chunks), desc="burn chunks", callback=progress, enabled=progress is None) as bar:
        for c, r in chunks:
            w, h = min(chunk_px, width - c), min(chunk_px, height - r)
            gt = (x0 + c * px, px, 0.0, y1 - r * px, 0.0, -px)
            data = burnables.burn(gt, w, h)
            valid = burn_mask(aoi_m, gt, w, h)
            data[:, ~valid] = 0
            # WriteRaster takes all bands at once: the pixel-interleaved file is written block by block.
            ds.WriteRaster(c, r, w, h, np.ascontiguousarray(data).tobytes(), w, h, gdal.GDT_Byte,
                           list(range(1, len(names) + 1)))
            mask_band.WriteArray(valid.astype(np.uint8) * 255, c, r)
            bar.update(1, f"{len(chunks)} chunks of {chunk_px} px")
    ds.FlushCache()
    ds = None  # closes the file before the rename


def _check_crs_early(crs, source, bbox, clip_lonlat):
    """Refuse a bad --crs before the (possibly long) read, when the place is already known."""
    from ..sources.osm import is_osm_file, osm_header_bbox

    if crs is None:
        return
    box = bbox or (clip_lonlat.bounds if clip_lonlat is not None else None) or \
        (osm_header_bbox(source) if is_osm_file(source) and Path(str(source)).is_file() else None)
    if box:
        metric_crs(crs, (box[0] + box[2]) / 2, (box[1] + box[3]) / 2)


def _load_clip(clip):
    from ..geo.presets import load_clip_polygon

    return load_clip_polygon(clip)


def _fmt_bbox(b) -> str:
    return ",".join(f"{v:.5f}" for v in b) if b else "an unknown extent"
