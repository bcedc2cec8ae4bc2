"""The two cluster pictures: a map of the cells in cluster colours over the area's roads, and the UMAP scatter.

Drawn on matplotlib's Agg canvas directly (no pyplot), so a running QGIS or notebook keeps its backend.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .. import ATTRIBUTION
from .colors import cluster_color

DPI = 100
CELL_ALPHA = 0.6  # cells see-through enough to show the roads under them
MAX_BACKGROUND_PX = 2000  # long side of the decimated road rendering
MAX_CELL_IMAGE = 4_000_000  # cell-grid pixels before cells are merged into coarser squares
MAX_LEGEND = 20
ROAD_GREY = 0.65  # grey level of a full-strength road: light, so the cluster colours stay readable
STRIP_ROWS = 256  # raster rows read at once for the background (bounds memory on city-size rasters)


@dataclass
class Background:
    """A light rendering of the road channels: ``image`` (h, w) grey levels in [0, 1] over ``extent``."""

    image: np.ndarray | None
    extent: tuple[float, float, float, float] | None  # left, right, bottom, top (map units)
    note: str  # what the subtitle says about it


# ---- the road background -----------------------------------------------------------------------
def road_background(area_path, crs_wkt: str, bbox) -> Background:
    """Roads (channels named ``roads*``) of the area raster inside ``bbox`` (x0, y0, x1, y1), or why not."""
    from ..errors import Loc2VecError
    from ..raster.area import AreaRaster

    if not area_path:
        return Background(None, None, "no area raster recorded: cells drawn without the road background")
    path = Path(area_path)
    if not path.is_file():
        return Background(None, None, f"area raster {path.name} not found: cells drawn without the road background")
    try:
        area = AreaRaster.open(path)
    except Loc2VecError as e:
        return Background(None, None, f"{e.problem}: cells drawn without the road background")
    why_not = unusable_reason(area, crs_wkt)
    if why_not:
        return Background(None, None, f"area raster {path.name} {why_not}: cells drawn without the road background")
    return _read_roads(area, bbox)


def unusable_reason(area, crs_wkt: str) -> str:
    """Why the raster cannot be drawn under the cells ('' when it can)."""
    if not any(n.startswith("roads") for n in area.channel_names):
        return "has no roads channel"
    if crs_wkt and area.crs_wkt and not _same_crs(area.crs_wkt, crs_wkt):
        return "is in another CRS than the embeddings"
    return ""


def _same_crs(a: str, b: str) -> bool:
    from pyproj import CRS

    try:
        return CRS.from_user_input(a).equals(CRS.from_user_input(b), ignore_axis_order=True)
    except Exception:  # an unreadable CRS text: cannot tell, so do not draw
        return False


def _read_roads(area, bbox) -> Background:
    """Max of the road channels in the window of ``bbox``, block-max decimated (thin roads stay visible)."""
    x0, y0, x1, y1 = bbox
    c0, r0 = (math.floor(v) for v in area.xy_to_pixel(x0, y1))
    c1, r1 = (math.ceil(v) for v in area.xy_to_pixel(x1, y0))
    c0, r0, c1, r1 = max(c0, 0), max(r0, 0), min(c1, area.width), min(r1, area.height)
    if c1 <= c0 or r1 <= r0:
        return Background(None, None, f"area raster {area.path.name} does not cover the cells: no road background")
    step = max(1, math.ceil(max(c1 - c0, r1 - r0) / MAX_BACKGROUND_PX))
    roads = [i for i, n in enumerate(area.channel_names) if n.startswith("roads")]
    rows = []
    strip = max(step, STRIP_ROWS // step * step)
    for r in range(r0, r1, strip):
        data, valid = area.read((c0, r, c1 - c0, min(strip, r1 - r)))
        rows.append(_block_max(np.where(valid, data[roads].max(axis=0), 0), step))
    value = np.concatenate(rows, axis=0).astype(np.float32) / 255.0
    left, top = area.pixel_to_xy(c0, r0)
    right, bottom = area.pixel_to_xy(c0 + value.shape[1] * step, r0 + value.shape[0] * step)
    grey = 1.0 - (1.0 - ROAD_GREY) * value  # white ground, roads up to ROAD_GREY by intensity
    return Background(grey, (float(left), float(right), float(bottom), float(top)),
                      f"roads from {area.path.name}")


def _block_max(a: np.ndarray, step: int) -> np.ndarray:
    """Max over ``step`` x ``step`` blocks (edges padded with 0)."""
    if step == 1:
        return a
    h, w = a.shape
    padded = np.zeros((math.ceil(h / step) * step, math.ceil(w / step) * step), a.dtype)
    padded[:h, :w] = a
    return padded.reshape(padded.shape[0] // step, step, padded.shape[1] // step, step).max(axis=(1, 3))


# ---- the cells ---------------------------------------------------------------------------------
def cell_image(xy, labels, stride: float):
    """RGBA image of the cells as ``stride`` squares in cluster colours, and its extent.

    Returns ``(rgba (h, w, 4) float32, (left, right, bottom, top))``; pixel (row, col) holds the cell
    at ``(left + (col + .5) * s, top - (row + .5) * s)`` with s = stride (or a multiple of it for huge grids).
    """
    xy = np.asarray(xy, np.float64)
    xmin, ymax = xy[:, 0].min(), xy[:, 1].max()
    col = np.rint((xy[:, 0] - xmin) / stride).astype(np.int64)
    row = np.rint((ymax - xy[:, 1]) / stride).astype(np.int64)
    f = max(1, math.ceil(math.sqrt((col.max() + 1) * (row.max() + 1) / MAX_CELL_IMAGE)))
    col, row, size = col // f, row // f, stride * f
    rgba = np.zeros((row.max() + 1, col.max() + 1, 4), np.float32)
    rgba[row, col] = _rgba(labels, CELL_ALPHA)
    left, top = xmin - stride / 2, ymax + stride / 2
    return rgba, (left, left + rgba.shape[1] * size, top - rgba.shape[0] * size, top)


def _rgba(labels, alpha: float) -> np.ndarray:
    """(N, 4) colours of the labels."""
    from matplotlib.colors import to_rgba

    labels = np.asarray(labels, np.int64)
    ids, inverse = np.unique(labels, return_inverse=True)
    table = np.array([to_rgba(cluster_color(int(i)), alpha) for i in ids], np.float32)
    return table[inverse]


def map_bbox(xy, stride: float | None) -> tuple[float, float, float, float]:
    """(x0, y0, x1, y1) the map shows: the cell squares and a margin of one stride (points: 10 %, >= 100 m)."""
    xy = np.asarray(xy, np.float64)
    m = 1.5 * stride if stride else max(100.0, 0.1 * float(np.ptp(xy, axis=0).max()))
    return (xy[:, 0].min() - m, xy[:, 1].min() - m, xy[:, 0].max() + m, xy[:, 1].max() + m)


def estimate_stride(xy) -> float:
    """Grid step of cell centres when the file does not say: the smallest non-zero x or y spacing."""
    steps = [np.diff(np.unique(np.round(np.asarray(xy)[:, j], 3))) for j in (0, 1)]
    steps = np.concatenate([s[s > 0] for s in steps])
    return float(steps.min()) if len(steps) else 1.0


# ---- figures -----------------------------------------------------------------------------------
def cluster_map_figure(xy, labels, stride: float | None, background: Background, title: str):
    """The cluster map: cells over the road background, legend with sizes, scale bar, attribution.

    stride: the grid step (cells drawn as squares); None for single points (drawn as dots).
    """
    from matplotlib.figure import Figure

    x0, y0, x1, y1 = map_bbox(xy, stride)
    xlim, ylim = (x0, x1), (y0, y1)
    map_w, map_h = _box(xlim[1] - xlim[0], ylim[1] - ylim[0], 900)
    left, legend_w, top, bottom = 20, 260, 64, 36
    width, height = left + map_w + 20 + legend_w, top + max(map_h, 300) + bottom
    fig = Figure(figsize=(width / DPI, height / DPI), dpi=DPI)
    ax = fig.add_axes([left / width, (height - top - map_h) / height, map_w / width, map_h / height])
    ax.set_facecolor("white")
    if background.image is not None:
        ax.imshow(background.image, extent=background.extent, cmap="gray", vmin=0, vmax=1,
                  interpolation="nearest", zorder=0)
    if stride:
        rgba, extent = cell_image(xy, labels, stride)
        ax.imshow(rgba, extent=extent, interpolation="nearest", zorder=1)
        what = f"one square = one cell, {stride:g} m apart"
    else:
        xy = np.asarray(xy, np.float64)
        ax.scatter(xy[:, 0], xy[:, 1], c=_rgba(labels, 0.9), s=60, edgecolors="black", linewidths=0.6, zorder=1)
        what = "one dot = one embedded point"
    ax.set_xlim(*xlim)
    ax.set_ylim(*ylim)
    ax.set_xticks([])
    ax.set_yticks([])
    _scale_bar(ax, xlim[1] - xlim[0])
    _legend(fig, labels, ((left + map_w + 20) / width, 1 - top / height))
    _titles(fig, title, f"{background.note}; {what}", height)
    return fig


def umap_figure(umap, labels, title: str, note: str = ""):
    """The UMAP scatter in cluster colours, legend with sizes, attribution."""
    from matplotlib.figure import Figure

    left, side, legend_w, top, bottom = 40, 700, 260, 64, 56
    width, height = left + side + 20 + legend_w, top + side + bottom
    fig = Figure(figsize=(width / DPI, height / DPI), dpi=DPI)
    ax = fig.add_axes([left / width, bottom / height, side / width, side / height])
    umap, labels = np.asarray(umap, np.float64), np.asarray(labels, np.int64)
    # Noise under everything, clusters in a fixed shuffled order so that no cluster hides another.
    order = np.random.default_rng(0).permutation(len(labels))
    order = np.concatenate([order[labels[order] < 0], order[labels[order] >= 0]])
    size = float(np.clip(20000 / max(len(labels), 1), 0.5, 25))
    ax.scatter(umap[order, 0], umap[order, 1], c=_rgba(labels[order], 0.85), s=size, linewidths=0,
               rasterized=True)
    ax.set_xticks([])
    ax.set_yticks([])
    ax.set_xlabel("UMAP 1", labelpad=2)
    ax.set_ylabel("UMAP 2", labelpad=2)
    _legend(fig, labels, ((left + side + 20) / width, 1 - top / height))
    _titles(fig, title, note or "2-D UMAP of the embeddings; near points = similar map tiles", height)
    return fig


def _box(w_m: float, h_m: float, longest: int) -> tuple[int, int]:
    """Pixel size of a map of w_m x h_m metres whose long side is ``longest`` px (short side >= 200)."""
    if w_m >= h_m:
        return longest, max(200, round(longest * h_m / w_m))
    return max(200, round(longest * w_m / h_m)), longest


def _nice_length(max_m: float) -> float:
    """The largest 1-2-5 length not above ``max_m``."""
    exp = 10 ** math.floor(math.log10(max_m))
    return max(m * exp for m in (1, 2, 5) if m * exp <= max_m)


def _scale_bar(ax, width_m: float) -> None:
    from mpl_toolkits.axes_grid1.anchored_artists import AnchoredSizeBar

    bar = _nice_length(width_m / 4)
    label = f"{bar / 1000:g} km" if bar >= 1000 else f"{bar:g} m"
    ax.add_artist(AnchoredSizeBar(ax.transData, bar, label, "lower left", pad=0.5, borderpad=0.6, sep=4,
                                  frameon=True, size_vertical=width_m / 250, fontproperties={"size": 8}))


def _legend(fig, labels, anchor) -> None:
    from matplotlib.patches import Patch

    from .cluster import cluster_sizes

    sizes = cluster_sizes(labels)
    handles = [Patch(facecolor=cluster_color(c), edgecolor="0.3", linewidth=0.5,
                     label=f"noise: {n} cells" if c < 0 else f"cluster {c}: {n} cells")
               for c, n in list(sizes.items())[:MAX_LEGEND]]
    if len(sizes) > MAX_LEGEND:
        handles.append(Patch(facecolor="none", edgecolor="none", label=f"... and {len(sizes) - MAX_LEGEND} more"))
    fig.legend(handles=handles, loc="upper left", bbox_to_anchor=anchor, fontsize=8, frameon=False,
               handlelength=1.4)


def _titles(fig, title: str, subtitle: str, height: int) -> None:
    fig.text(0.02, 1 - 10 / height, title, ha="left", va="top", fontsize=11)
    fig.text(0.02, 1 - 32 / height, subtitle, ha="left", va="top", fontsize=8.5, color="0.25")
    fig.text(0.99, 8 / height, ATTRIBUTION, ha="right", va="bottom", fontsize=7, color="0.3")


def save_png(fig, path) -> None:
    """Render ``fig`` with Agg into ``path`` (the caller makes it atomic)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    FigureCanvasAgg(fig)
    fig.savefig(path, format="png", dpi=DPI)
