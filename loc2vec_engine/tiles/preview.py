"""Preview one tile of an area raster: a false-colour composite with legend, and the channels as panels.

Drawn with matplotlib's Agg canvas directly (no pyplot), so it never changes the backend of a
running QGIS or notebook session.
"""

from __future__ import annotations

import math
import textwrap
from pathlib import Path

import numpy as np

from ..atomic import atomic_output, check_writable
from ..errors import Loc2VecError

OSM_ATTRIBUTION = "© OpenStreetMap contributors (ODbL)"
DPI = 100
# Bottom-to-top drawing order by channel name: broad areas first, thin and sparse things on top.
_LAYER_ORDER = (("landuse", 0), ("green", 1), ("water", 2), ("building", 3), ("path", 4), ("roads_minor", 5),
                ("road", 6), ("transit", 7), ("poi", 8), ("admin", 9))


def render_preview(area, at_lonlat=None, at_xy=None, out="tile.png", panels_out=None, spec=None,
                   size_px=256) -> tuple[Path, Path]:
    """Write the composite of the ``size_px`` tile centred on a point to ``out`` and its channels to
    ``panels_out`` (default ``<out stem>_channels.png``). The point is ``at_lonlat`` (lon, lat),
    ``at_xy`` (area CRS), or the area centre. Returns ``(out, panels_out)``."""
    from ..raster.area import AreaRaster

    area = area if isinstance(area, AreaRaster) else AreaRaster.open(area)
    out = check_writable(out)
    panels_out = check_writable(panels_out or out.with_name(out.stem + "_channels.png"))
    size_px = int(size_px)
    if not 8 <= size_px <= 4096:
        raise Loc2VecError(f"tile size {size_px} px is out of range", "use e.g. 256")

    x, y, lon, lat = _locate(area, at_lonlat, at_xy)
    colf, rowf = (float(v) for v in area.xy_to_pixel(x, y))
    col0, row0 = math.floor(colf) - size_px // 2, math.floor(rowf) - size_px // 2
    data, valid = area.read((col0, row0, size_px, size_px))
    names, descriptions, colors = _styles(area, spec)

    where = f"lon {lon:.5f}, lat {lat:.5f}" if lon is not None else f"x {x:.1f}, y {y:.1f}"
    title = f"{area.path.name}: tile at {where} ({size_px * area.pixel_size:.0f} m square)"
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    fig = _composite_figure(data, valid, names, descriptions, colors, area.pixel_size, title,
                            marker=(colf - col0, rowf - row0))
    FigureCanvasAgg(fig)
    with atomic_output(out) as tmp:
        fig.savefig(tmp, format="png", dpi=DPI)
    fig = _panels_figure(data, valid, names, title)
    FigureCanvasAgg(fig)
    with atomic_output(panels_out) as tmp:
        fig.savefig(tmp, format="png", dpi=DPI)
    return out, panels_out


# ---- where and how ------------------------------------------------------------------------

def _locate(area, at_lonlat, at_xy):
    """The point in area CRS and lon/lat (lon/lat None when the raster has no CRS); checks it is inside."""
    from ..geo.crs import transformer_to_wgs84

    if at_lonlat is not None and at_xy is not None:
        raise Loc2VecError("give the point either as lon/lat or as x/y, not both", "drop one of them")
    to_lonlat = transformer_to_wgs84(area.crs_wkt).transform if area.crs_wkt else None
    x0, y0, x1, y1 = area.bounds
    if at_lonlat is not None:
        if to_lonlat is None:
            raise Loc2VecError(f"area raster {area.path.name} has no CRS, so a lon/lat point cannot be placed",
                               "give the point in the raster's coordinates (x, y)")
        lon, lat = (float(v) for v in at_lonlat)
        x, y = (float(v) for v in area.lonlat_to_xy(lon, lat))
    elif at_xy is not None:
        x, y = (float(v) for v in at_xy)
        lon, lat = to_lonlat(x, y) if to_lonlat else (None, None)
    else:
        x, y = (x0 + x1) / 2, (y0 + y1) / 2
        lon, lat = to_lonlat(x, y) if to_lonlat else (None, None)
    if not (x0 <= x < x1 and y0 < y <= y1):
        if to_lonlat is None:
            raise Loc2VecError(f"point {x:.1f},{y:.1f} is outside area raster {area.path.name} "
                               f"(covers x {x0:.0f}..{x1:.0f}, y {y0:.0f}..{y1:.0f})", "pick a point inside the area")
        # The raster's lon/lat extent: its corners and edge midpoints (UTM edges are slightly curved in lon/lat).
        xs = np.array([x0, (x0 + x1) / 2, x1] * 3)
        ys = np.repeat([y0, (y0 + y1) / 2, y1], 3)
        lons, lats = to_lonlat(xs, ys)
        raise Loc2VecError(f"point {lon:.5f},{lat:.5f} is outside area raster {area.path.name} (covers lon "
                           f"{min(lons):.5f}..{max(lons):.5f}, lat {min(lats):.5f}..{max(lats):.5f})",
                           "pick a point inside the area (lon,lat order)")
    return x, y, lon, lat


def _styles(area, spec):
    """Channel names, descriptions and RGB colours: from the spec when the raster was made with it."""
    from matplotlib.colors import to_rgb

    from ..channels import get_spec

    names = [n or f"band {i + 1}" for i, n in enumerate(area.channel_names)]
    if spec is not None:
        spec = get_spec(spec)
        spec.check_band_names(area.channel_names, f"area raster {area.path.name}")
    else:
        default = get_spec("default")
        spec = default if area.channel_names == default.names else None
    if spec is None:  # unknown bands: a grey ramp still tells them apart
        greys = np.linspace(0.15, 0.6, len(names))
        return names, [""] * len(names), [(g, g, g) for g in greys]
    colors = []
    for ch in spec.channels:
        try:
            colors.append(to_rgb(ch.color))
        except ValueError:
            colors.append((0.5, 0.5, 0.5))
    return names, [ch.description for ch in spec.channels], colors


def _draw_order(names):
    def rank(i):
        lowered = names[i].lower()
        return next((r for key, r in _LAYER_ORDER if key in lowered), 3.5), i

    return sorted(range(len(names)), key=rank)


def _hatch(valid, rgb):
    """Paint invalid (outside the area) pixels with neutral grey diagonal stripes."""
    h, w = valid.shape
    stripes = ((np.add.outer(np.arange(h), np.arange(w)) // 6) % 2).astype(bool)
    rgb[~valid & stripes] = 0.72
    rgb[~valid & ~stripes] = 0.86
    return rgb


def composite(data, valid, names, colors):
    """(h, w, 3) float RGB: channels alpha-blended over white, intensity as alpha, in _draw_order."""
    rgb = np.ones(data.shape[1:] + (3,), np.float32)
    for i in _draw_order(names):
        alpha = data[i].astype(np.float32)[..., None] / 255.0
        rgb = rgb * (1 - alpha) + np.asarray(colors[i], np.float32) * alpha
    return _hatch(valid, rgb)


# ---- figures ------------------------------------------------------------------------------

def _nice_length(max_m: float) -> float:
    """The largest 1-2-5 length not above ``max_m`` (for the scale bar)."""
    exp = 10 ** math.floor(math.log10(max_m))
    return max(m * exp for m in (1, 2, 5) if m * exp <= max_m)


def _composite_figure(data, valid, names, descriptions, colors, pixel_m, title, marker):
    from matplotlib.figure import Figure
    from matplotlib.patches import Patch, Rectangle

    size = data.shape[1]
    scale = max(1, 512 // size)
    map_px, legend_px, top, bottom, left = size * scale, 470, 50, 40, 20
    width, height = left + map_px + 20 + legend_px, top + max(map_px, 330) + bottom
    fig = Figure(figsize=(width / DPI, height / DPI), dpi=DPI)
    # Axes placed in whole pixels so that one tile pixel is exactly scale x scale PNG pixels.
    ax = fig.add_axes([left / width, (height - top - map_px) / height, map_px / width, map_px / height])
    ax.imshow(composite(data, valid, names, colors), extent=(0, size, size, 0), interpolation="nearest")
    ax.set_xticks([])
    ax.set_yticks([])
    ax.plot([marker[0]], [marker[1]], marker="+", color="black", markersize=12, markeredgewidth=1.2)

    bar_m = _nice_length(size * pixel_m / 4)
    bar_px = bar_m / pixel_m
    ax.add_patch(Rectangle((size * 0.03 - 2, size * 0.97 - 14 / scale - 4), bar_px + 4, 14 / scale + 6,
                           facecolor="white", alpha=0.8, edgecolor="none"))
    ax.add_patch(Rectangle((size * 0.03, size * 0.97 - 3 / scale), bar_px, 3 / scale, color="black"))
    ax.text(size * 0.03 + bar_px / 2, size * 0.97 - 4 / scale, f"{bar_m:g} m", ha="center", va="bottom", fontsize=8)

    handles = [Patch(facecolor=colors[i], edgecolor="black", linewidth=0.5,
                     label=textwrap.fill(f"{names[i]}: {descriptions[i]}" if descriptions[i] else names[i], 60))
               for i in reversed(_draw_order(names))]  # top layer first, as it is drawn
    if not valid.all():
        handles.append(Patch(facecolor="0.86", edgecolor="0.6", hatch="//", label="outside the area (no data)"))
    fig.legend(handles=handles, loc="upper left", fontsize=7.5, frameon=False, handlelength=1.6,
               bbox_to_anchor=((left + map_px + 20) / width, 1 - top / height))
    fig.suptitle(title, fontsize=10, x=0.02, y=1 - 14 / height, ha="left")
    fig.text(0.99, 12 / height, OSM_ATTRIBUTION, ha="right", va="bottom", fontsize=8, color="0.3")
    return fig


def _panels_figure(data, valid, names, title):
    from matplotlib.figure import Figure

    n = data.shape[0]
    cols = 4
    rows = max(1, math.ceil(n / cols))
    fig = Figure(figsize=(cols * 3.0, rows * 3.1 + 0.8), dpi=DPI)
    axes = fig.subplots(rows, cols, squeeze=False)
    for i, ax in enumerate(axes.flat):
        ax.set_xticks([])
        ax.set_yticks([])
        if i >= n:
            ax.set_axis_off()
            continue
        grey = np.repeat(data[i].astype(np.float32)[..., None] / 255.0, 3, axis=-1)
        ax.imshow(_hatch(valid, grey), interpolation="nearest")
        ax.set_title(names[i], fontsize=9)
    fig.suptitle(title, fontsize=10, y=1 - 0.12 / (rows * 3.1 + 0.8))
    fig.text(0.99, 0.005, OSM_ATTRIBUTION, ha="right", va="bottom", fontsize=8, color="0.3")
    fig.subplots_adjust(left=0.02, right=0.98, bottom=0.04, top=1 - 0.75 / (rows * 3.1 + 0.8), wspace=0.08, hspace=0.18)
    return fig
