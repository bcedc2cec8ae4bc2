"""Writing a comparison: the GeoPackage layer ``change`` (a point per cell) and the change map PNG.

Each writer fills the temporary path it is given; ``compare_areas`` renames them all at the end.
"""

from __future__ import annotations

import math
import struct

import numpy as np

from .. import ATTRIBUTION, __version__

LAYER = "change"
DPI = 100
CELL_ALPHA = 0.75  # see-through enough to show the roads under the cells
COLORMAP = "YlOrRd"  # pale = no change, dark red = the largest
EDIT_COLOR = "#6a3d9a"  # the outline of the edited ground: purple, apart from the reds, the grey and the ring
MAX_EDIT_PX = 1000  # long side of the decimated edit outline
STRIP_ROWS = 256  # raster rows read at once (bounds memory on city-size rasters)


def summary_meta(result) -> dict:
    """What the layer's metadata records about the comparison (strings, as OGR metadata wants)."""
    row = result.largest
    lon, lat = result.lonlat(row)
    return {"attribution": ATTRIBUTION, "loc2vec_version": __version__, "before": result.before.name,
            "after": result.after.name, "model": result.model.name, "model_sha256": result.model_sha256,
            "stride_m": f"{result.grid.stride_m:g}", "clusters": result.clusters_from, "cells": str(len(result)),
            "mean_change": f"{float(result.change.mean()):.6g}", "switched": str(int(result.switched.sum())),
            "largest_change": f"{float(result.change[row]):.6g}", "largest_at": f"{lon:.6f},{lat:.6f}",
            "change": "1 - cosine of the BEFORE and AFTER embeddings of the cell's tile (0 = the same tile)"}


def write_gpkg(tmp, result) -> None:
    """Layer ``change``: Point per cell with cell, change, cluster_before, cluster_after, changed_cluster (0/1)."""
    from osgeo import ogr, osr

    ogr.UseExceptions()
    ds = ogr.GetDriverByName("GPKG").CreateDataSource(str(tmp))
    srs = osr.SpatialReference()
    srs.ImportFromWkt(result.crs_wkt)
    srs.SetAxisMappingStrategy(osr.OAMS_TRADITIONAL_GIS_ORDER)
    lyr = ds.CreateLayer(LAYER, srs, ogr.wkbPoint, ["GEOMETRY_NAME=geom", "FID=fid"])
    for name, kind in (("cell", ogr.OFTInteger64), ("change", ogr.OFTReal), ("cluster_before", ogr.OFTInteger),
                       ("cluster_after", ogr.OFTInteger), ("changed_cluster", ogr.OFTInteger)):
        lyr.CreateField(ogr.FieldDefn(name, kind))
    lyr.SetMetadata(summary_meta(result))
    columns = zip(result.grid.xy.tolist(), result.grid.cell.tolist(), result.change.tolist(),
                  result.cluster_before.tolist(), result.cluster_after.tolist(),
                  result.switched.astype(np.int64).tolist())  # Python numbers: faster per feature
    defn = lyr.GetLayerDefn()
    lyr.StartTransaction()
    for (x, y), cell, change, before, after, switched in columns:
        f = ogr.Feature(defn)
        f.SetGeometryDirectly(ogr.CreateGeometryFromWkb(struct.pack("<BIdd", 1, 1, x, y)))
        f.SetField(0, cell)
        f.SetField(1, change)
        f.SetField(2, before)
        f.SetField(3, after)
        f.SetField(4, switched)
        lyr.CreateFeature(f)
    lyr.CommitTransaction()
    lyr = None  # the layer before its dataset (GDAL's Python bindings)
    ds = None


def change_plane(result) -> np.ndarray:
    """(rows, cols) change on the full grid, NaN where no cell was compared."""
    g = result.grid
    plane = np.full(g.rows * g.cols, np.nan)
    plane[g.cell] = result.change
    return plane.reshape(g.rows, g.cols)


def write_map(tmp, result) -> None:
    """PNG: the cells coloured by change over AFTER's roads, switched cells outlined, the largest marked."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    fig = map_figure(result)
    FigureCanvasAgg(fig)
    fig.savefig(str(tmp), format="png", dpi=DPI)


def map_figure(result):
    from matplotlib import colormaps
    from matplotlib.cm import ScalarMappable
    from matplotlib.colors import PowerNorm
    from matplotlib.figure import Figure

    from ..clusters.plots import map_bbox, road_background

    g, stride = result.grid, result.grid.stride_m
    x0, y0, x1, y1 = map_bbox(g.xy, stride)
    background = road_background(result.after, result.crs_wkt, (x0, y0, x1, y1))
    map_w, map_h = _box(x1 - x0, y1 - y0, 860)
    left, bar_w, top, bottom = 20, 110, 64, 40
    width, height = left + map_w + 20 + bar_w, top + map_h + bottom
    fig = Figure(figsize=(width / DPI, height / DPI), dpi=DPI)
    ax = fig.add_axes([left / width, bottom / height, map_w / width, map_h / height])
    if background.image is not None:
        ax.imshow(background.image, extent=background.extent, cmap="gray", vmin=0, vmax=1, interpolation="nearest",
                  zorder=0)
    top_change = float(result.change.max())
    # Square root: an edit's effect fades over the tile around it; a linear scale would show only its centre.
    norm = PowerNorm(0.5, vmin=0.0, vmax=top_change if top_change > 0 else 1.0)
    cmap = colormaps[COLORMAP].with_extremes(bad=(0, 0, 0, 0))
    extent = (g.x0 - stride / 2, g.x0 - stride / 2 + g.cols * stride, g.y0 + stride / 2 - g.rows * stride,
              g.y0 + stride / 2)
    plane = change_plane(result)
    plane[plane == 0] = np.nan  # an unchanged cell stays uncoloured: the map shows where something moved
    ax.imshow(np.ma.masked_invalid(plane), extent=extent, cmap=cmap, norm=norm, alpha=CELL_ALPHA,
              interpolation="nearest", zorder=1)
    switched = result.switched
    side_pt = stride * map_w / (x1 - x0) * 72 / DPI  # one cell, in points
    if switched.any():
        ax.scatter(g.xy[switched, 0], g.xy[switched, 1], s=(0.8 * side_pt) ** 2, marker="s", facecolors="none",
                   edgecolors="#2b2b2b", linewidths=1.0, zorder=2)
    edit = edited_ground(result.before, result.after, (x0, y0, x1, y1))
    if edit is not None:  # where the two sources differ: what the reader compares the change with
        ax.contour(edit[0], levels=[0.5], extent=edit[1], origin="upper", colors=EDIT_COLOR, linewidths=1.6,
                   zorder=2)
    row = result.largest
    if top_change > 0:
        ax.scatter([g.xy[row, 0]], [g.xy[row, 1]], s=(0.5 * side_pt) ** 2 + 30, marker="o", facecolors="none",
                   edgecolors="#1f4e9c", linewidths=2.0, zorder=3)
    ax.set_xlim(x0, x1)
    ax.set_ylim(y0, y1)
    ax.set_xticks([])
    ax.set_yticks([])
    _scale_bar(ax, x1 - x0)
    cax = fig.add_axes([(left + map_w + 30) / width, bottom / height + 0.1 * map_h / height, 18 / width,
                        0.8 * map_h / height])
    fig.colorbar(ScalarMappable(norm=norm, cmap=colormaps[COLORMAP]), cax=cax, label="change: 1 − cosine")
    lon, lat = result.lonlat(row)
    n = int(switched.sum())
    title = (f"{result.before.name} → {result.after.name}: {len(result):,} cells, mean change "
             f"{float(result.change.mean()):.3g}, {n:,} cell{'' if n == 1 else 's'} switched cluster")
    where = (f"ring: the largest change, {top_change:.3g} at {lon:.5f},{lat:.5f}" if top_change > 0 else
             "no cell changed")
    edited = "purple line: where AFTER's pixels differ from BEFORE's; " if edit is not None else ""
    subtitle = (f"cells {stride:g} m apart, uncoloured where the tile did not change; {where}\n"
                f"{edited}squares: nearest cluster changed ({result.clusters_from}); {background.note}")
    fig.text(0.02, 1 - 10 / height, title, ha="left", va="top", fontsize=11)
    fig.text(0.02, 1 - 30 / height, subtitle, ha="left", va="top", fontsize=8, color="0.25", linespacing=1.4)
    fig.text(0.99, 8 / height, ATTRIBUTION, ha="right", va="bottom", fontsize=7, color="0.3")
    return fig


def edited_ground(before_path, after_path, bbox):
    """Where the two rasters differ inside ``bbox`` (x0, y0, x1, y1): ``(mask (h, w) float, extent)``, block-any
    decimated so a small edit stays visible, or None when no pixel differs there (or a raster cannot be read)."""
    from ..errors import Loc2VecError
    from ..raster.area import AreaRaster

    try:
        before, after = AreaRaster.open(before_path), AreaRaster.open(after_path)
    except Loc2VecError:
        return None
    x0, y0, x1, y1 = bbox
    c0, r0 = (math.floor(v) for v in before.xy_to_pixel(x0, y1))
    c1, r1 = (math.ceil(v) for v in before.xy_to_pixel(x1, y0))
    c0, r0, c1, r1 = max(c0, 0), max(r0, 0), min(c1, before.width), min(r1, before.height)
    if c1 <= c0 or r1 <= r0:
        return None
    step = max(1, math.ceil(max(c1 - c0, r1 - r0) / MAX_EDIT_PX))
    strip = max(step, STRIP_ROWS // step * step)
    rows = []
    for r in range(r0, r1, strip):
        window = (c0, r, c1 - c0, min(strip, r1 - r))
        (a, va), (b, vb) = before.read(window), after.read(window)
        rows.append(_block_any((a != b).any(axis=0) | (va != vb), step))
    mask = np.concatenate(rows, axis=0)
    if not mask.any():
        return None
    left, top = before.pixel_to_xy(c0, r0)
    right, bottom = before.pixel_to_xy(c0 + mask.shape[1] * step, r0 + mask.shape[0] * step)
    # With ``origin`` set, contour reads the extent as the outer pixel edges and puts each value at its
    # pixel's centre; a frame of one clear pixel closes an outline that reaches the window's edge.
    padded = np.pad(mask, 1).astype(np.float32)
    px_w, px_h = (right - left) / mask.shape[1], (top - bottom) / mask.shape[0]
    return padded, (float(left - px_w), float(right + px_w), float(bottom - px_h), float(top + px_h))


def _block_any(a: np.ndarray, step: int) -> np.ndarray:
    """Whether any pixel of each ``step`` x ``step`` block is set (edges padded with False)."""
    if step == 1:
        return a
    h, w = a.shape
    padded = np.zeros((math.ceil(h / step) * step, math.ceil(w / step) * step), bool)
    padded[:h, :w] = a
    return padded.reshape(padded.shape[0] // step, step, padded.shape[1] // step, step).any(axis=(1, 3))


def _box(w_m: float, h_m: float, longest: int) -> tuple[int, int]:
    """Pixel size of a map of w_m x h_m metres whose long side is ``longest`` px (short side >= 240)."""
    if w_m >= h_m:
        return longest, max(240, round(longest * h_m / w_m))
    return max(240, round(longest * w_m / h_m)), longest


def _scale_bar(ax, width_m: float) -> None:
    from mpl_toolkits.axes_grid1.anchored_artists import AnchoredSizeBar

    most = width_m / 4
    exp = 10 ** math.floor(math.log10(most))
    bar = max(m * exp for m in (1, 2, 5) if m * exp <= most)  # the largest 1-2-5 length that fits
    label = f"{bar / 1000:g} km" if bar >= 1000 else f"{bar:g} m"
    ax.add_artist(AnchoredSizeBar(ax.transData, bar, label, "lower left", pad=0.5, borderpad=0.6, sep=4,
                                  frameon=True, size_vertical=width_m / 250, fontproperties={"size": 8}))
