"""Writing a scoring: the GeoPackage (layer ``score`` on the cells, layer ``mask``), the float32 GeoTIFF on
the embedding grid, and the histogram PNG. Each writer fills the temporary path it is given; the caller
renames them all at the end (``atomic_output``), so a failure leaves none of them behind.
"""

from __future__ import annotations

import struct
from pathlib import Path

import numpy as np

from .. import ATTRIBUTION, __version__
from .mask import NODATA, score_plane

SCORE_LAYER = "score"
MASK_LAYER = "mask"


def ranks(scores, cells) -> np.ndarray:
    """(N,) rank of each cell: 1 = the highest score, ties by ascending cell id."""
    order = np.lexsort((np.asarray(cells), -np.asarray(scores, np.float64)))
    out = np.empty(len(order), np.int64)
    out[order] = np.arange(1, len(order) + 1)
    return out


def summary_meta(es, result) -> dict:
    """What the layers' and the raster's metadata record about the scoring."""
    s = result.scores
    return {"attribution": ATTRIBUTION, "loc2vec_version": __version__, "embeddings": es.path.name if es.path else "",
            "model_sha256": es.model_sha256, "method": s.method, "method_why": s.why,
            "heldout_roc_auc": "" if s.heldout_auc is None else f"{s.heldout_auc:.4f}", "heldout": s.heldout_how,
            "threshold": f"{s.threshold:.6g}", "threshold_why": s.threshold_why,
            "positives": result.positives.describe(), "negatives": result.negatives.describe(),
            "cells_above": str(result.mask.cells), "area_km2": f"{result.mask.area_km2:.6g}"}


def write_gpkg(tmp, es, result) -> None:
    """Layer ``score`` (Point per cell: cell, score, rank, example 1/-1/0) and ``mask`` (one MultiPolygon)."""
    from osgeo import ogr, osr

    ogr.UseExceptions()
    ds = ogr.GetDriverByName("GPKG").CreateDataSource(str(tmp))
    srs = osr.SpatialReference()
    srs.ImportFromWkt(es.crs_wkt)
    srs.SetAxisMappingStrategy(osr.OAMS_TRADITIONAL_GIS_ORDER)
    meta = summary_meta(es, result)
    lyr = ds.CreateLayer(SCORE_LAYER, srs, ogr.wkbPoint, ["GEOMETRY_NAME=geom", "FID=fid"])
    for name, kind in (("cell", ogr.OFTInteger64), ("score", ogr.OFTReal), ("rank", ogr.OFTInteger),
                       ("example", ogr.OFTInteger)):
        lyr.CreateField(ogr.FieldDefn(name, kind))
    lyr.SetMetadata(meta)
    example = np.zeros(len(es), np.int64)
    example[result.positives.rows] = 1
    example[result.negatives.rows] = -1
    columns = zip(es.xy.tolist(), es.cell.tolist(), result.scores.values.astype(np.float64).tolist(),
                  ranks(result.scores.values, es.cell).tolist(), example.tolist())  # Python numbers: faster
    defn = lyr.GetLayerDefn()
    lyr.StartTransaction()
    for (x, y), cell, score, rank, kind in columns:
        f = ogr.Feature(defn)
        f.SetGeometryDirectly(ogr.CreateGeometryFromWkb(struct.pack("<BIdd", 1, 1, x, y)))
        f.SetField(0, cell)
        f.SetField(1, score)
        f.SetField(2, rank)
        f.SetField(3, kind)
        lyr.CreateFeature(f)
    lyr.CommitTransaction()

    write_mask_layer(ds, srs, result.mask, result.scores.method, meta)
    lyr = None  # layers before their dataset (GDAL's Python bindings)
    ds = None


def write_mask_layer(ds, srs, mask, method: str, meta: dict) -> None:
    """Layer ``mask`` of the OGR dataset ``ds``: one MultiPolygon of the cells at or above the threshold."""
    from osgeo import ogr

    mlyr = ds.CreateLayer(MASK_LAYER, srs, ogr.wkbMultiPolygon, ["GEOMETRY_NAME=geom", "FID=fid"])
    for name, kind in (("threshold", ogr.OFTReal), ("cells", ogr.OFTInteger64), ("area_km2", ogr.OFTReal),
                       ("method", ogr.OFTString)):
        mlyr.CreateField(ogr.FieldDefn(name, kind))
    mlyr.SetMetadata(meta)
    if mask.geometry is not None:
        f = ogr.Feature(mlyr.GetLayerDefn())
        f.SetGeometry(mask.geometry)
        f.SetField("threshold", float(mask.threshold))
        f.SetField("cells", int(mask.cells))
        f.SetField("area_km2", float(mask.area_km2))
        f.SetField("method", method)
        mlyr.CreateFeature(f)
    mlyr = None


def write_mask_gpkg(path, es, result, threshold: float):
    """A GeoPackage with the layer ``mask`` of ``result`` at ``threshold`` (traced now), written whole or not
    at all; its path. The map tool's "Save mask…": the live mask there is only drawn, not traced."""
    from osgeo import ogr, osr

    from ..atomic import atomic_output
    from .mask import threshold_mask

    ogr.UseExceptions()
    mask = threshold_mask(result.layout, result.scores.values, float(threshold))
    meta = {**summary_meta(es, result), "threshold": f"{mask.threshold:.6g}", "threshold_why": "chosen by the user",
            "cells_above": str(mask.cells), "area_km2": f"{mask.area_km2:.6g}"}
    with atomic_output(path, suffix=".part.gpkg") as tmp:
        srs = osr.SpatialReference()
        srs.ImportFromWkt(es.crs_wkt)
        srs.SetAxisMappingStrategy(osr.OAMS_TRADITIONAL_GIS_ORDER)
        ds = ogr.GetDriverByName("GPKG").CreateDataSource(str(tmp))
        write_mask_layer(ds, srs, mask, result.scores.method, meta)
        ds = None
    return Path(path)


def write_raster(tmp, es, result) -> None:
    """Float32 GeoTIFF of the scores on the embedding grid, ``NODATA`` outside the cells."""
    from osgeo import gdal

    gdal.UseExceptions()
    layout = result.layout
    ds = gdal.GetDriverByName("GTiff").Create(str(tmp), layout.cols, layout.rows, 1, gdal.GDT_Float32,
                                              ["COMPRESS=DEFLATE", "PREDICTOR=3", "TILED=YES"])
    ds.SetGeoTransform(layout.geotransform)
    ds.SetProjection(es.crs_wkt)
    meta = {k.upper(): v for k, v in summary_meta(es, result).items()}
    ds.SetMetadata({"TIFFTAG_COPYRIGHT": ATTRIBUTION, **{f"LOC2VEC_{k}": v for k, v in meta.items()}})
    band = ds.GetRasterBand(1)
    band.SetDescription("score")
    band.SetNoDataValue(NODATA)
    band.WriteArray(score_plane(layout, result.scores.values))
    band = None  # the band before its dataset (GDAL's Python bindings)
    ds.FlushCache()
    ds = None


def write_histogram(tmp, es, result) -> None:
    """PNG: histogram of the scores (log counts), the threshold line, the examples' scores as ticks."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    s = result.scores
    fig = Figure(figsize=(7.5, 4.2), dpi=100)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot(1, 1, 1)
    ax.hist(s.values, bins=100, color="#7f8c8d", log=True)
    counts = ax.get_ylim()
    ax.axvline(s.threshold, color="#d7191c", lw=1.5,
               label=f"threshold {s.threshold:.4g}: {result.mask.cells:,} cells, {result.mask.area_km2:,.3g} km²")
    for rows, colour, name in ((result.positives.rows, "#1a9641", "positive"),
                               (result.negatives.rows, "#2c7bb6", "negative")):
        if len(rows):
            ax.vlines(s.values[rows], 0, 0.1, color=colour, lw=1.5, transform=ax.get_xaxis_transform(),
                      label=f"{len(rows)} {name} cell{'s' if len(rows) != 1 else ''}")  # ticks along the bottom
    ax.set_ylim(counts)  # the ticks are in axes units: they must not stretch the count axis
    held = "" if s.heldout_auc is None else f", held-out ROC AUC {s.heldout_auc:.3f}"
    ax.set_title(f"{es.path.name if es.path else 'scores'}: {s.method}{held}", fontsize=10)
    ax.set_xlabel("calibrated probability" if s.method == "logistic" else
                  "score: cosine to the mean positive" + (" − cosine to the mean negative" if s.n_neg else ""))
    ax.set_ylabel("cells")
    ax.legend(fontsize=8, loc="upper center")
    fig.text(0.01, 0.01, ATTRIBUTION, fontsize=6, color="#555555")
    fig.tight_layout(rect=(0, 0.03, 1, 1))
    fig.savefig(str(tmp), format="png")

