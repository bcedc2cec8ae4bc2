"""`loc2vec demo`: the main job on bundled data, no network.

Today: rasterize central Porto once, draw a preview tile, cut a batch of training-style triplets
(anchor, a rotated view 150 m away, a place ≥ 1.5 km away) with the tile sampler, and time it.
Later steps (train, embed, cluster, search) join here as they land.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from . import ATTRIBUTION
from .atomic import atomic_output

REPO = Path(__file__).resolve().parents[1]
PORTO_PBF = REPO / "resources" / "data" / "porto_center_2020-07-20.osm.pbf"
# Ribeira: the Douro, the riverside tunnel (a primary road), dense old town.
LANDMARK = ("Ribeira, Porto", -8.6125, 41.1418)


def run_demo(out_dir="out/demo", seed: int = 0) -> dict[str, Path]:
    from .raster.rasterize import rasterize
    from .tiles import TileSampler
    from .tiles.preview import render_preview

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    print(f"1/3 rasterizing {PORTO_PBF.name} (bundled, no network) ...")
    t = time.perf_counter()
    area = rasterize(PORTO_PBF, out / "porto.tif")
    print(f"    {area.width} x {area.height} px x {area.count} bands at {area.pixel_size:g} m/px "
          f"in {time.perf_counter() - t:.1f} s")

    name, lon, lat = LANDMARK
    print(f"2/3 preview tile at {name} ...")
    tile_png, panels_png = render_preview(area, at_lonlat=(lon, lat), out=out / "porto_tile.png")

    print("3/3 cutting triplets with the tile sampler ...")
    sampler = TileSampler(area, backend="cpu")
    triplets_png, rate = _triplets(sampler, out / "porto_triplets.png", seed)
    print(f"    {rate:,.0f} rotated 256-px tiles/s on one CPU thread")

    outputs = {"area raster": area.path, "preview": tile_png, "channels": panels_png, "triplets": triplets_png}
    print("\nDone. Outputs:")
    for label, path in outputs.items():
        print(f"  {label:12s} {path}")
    print(f"\nOpen the area raster in QGIS: `qgis {area.path}` (or Layer > Add Raster Layer); its 12 bands are the"
          "\nchannels, named in the layer properties.")
    print(ATTRIBUTION)
    return outputs


def _triplets(sampler, path: Path, seed: int, n: int = 4):
    """A 3 x n picture: anchors, positives (150 m away, rotated) and far negatives; plus tiles/s."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    from .tiles.preview import OSM_ATTRIBUTION, composite
    from .channels import get_spec

    rng = np.random.default_rng(seed)
    area = sampler.area
    metres = area.pixel_size
    valid_rows, valid_cols = np.nonzero(area.ids[::8, ::8])  # index 0 = outside the area
    margin = 300 / metres
    def random_centres(k):
        pick = rng.integers(0, len(valid_rows), 4 * k)
        c = np.stack([valid_cols[pick] * 8.0, valid_rows[pick] * 8.0], axis=1)
        inside = (c[:, 0] > margin) & (c[:, 0] < area.width - margin) & (c[:, 1] > margin) & (c[:, 1] < area.height - margin)
        return c[inside][:k]

    anchors = random_centres(n)
    bearing = rng.uniform(0, 2 * np.pi, n)
    positives = anchors + 150 / metres * np.stack([np.cos(bearing), np.sin(bearing)], axis=1)
    pool = random_centres(64)
    negatives = np.array([pool[np.argmax(np.linalg.norm(pool - a, axis=1))] for a in anchors])
    centres = np.concatenate([anchors, positives, negatives])
    angles = np.concatenate([np.zeros(n), rng.uniform(0, 360, 2 * n)])
    tiles, valid = sampler.sample_pixels(centres, angles, 1.0, 256)

    bench = random_centres(256)
    buf = sampler.empty(len(bench), 256)
    sampler.sample_pixels(bench, rng.uniform(0, 360, len(bench)), 1.0, 256, out=buf)  # warm-up
    t = time.perf_counter()
    sampler.sample_pixels(bench, rng.uniform(0, 360, len(bench)), 1.0, 256, out=buf)
    rate = len(bench) / (time.perf_counter() - t)

    spec = get_spec()
    colors = [_rgb(c.color) for c in spec.channels]
    fig = Figure(figsize=(2.6 * n, 8.4), dpi=100)
    FigureCanvasAgg(fig)
    for k in range(3 * n):
        ax = fig.add_subplot(3, n, k + 1)
        ax.imshow(composite(np.ascontiguousarray(tiles[k]), valid[k], sampler.channel_names, colors),
                  interpolation="nearest")
        ax.set_xticks([]), ax.set_yticks([])
        if k % n == 0:
            ax.set_ylabel(["anchor", "positive\n150 m, rotated", "negative\nfar away"][k // n])
    fig.suptitle("Training triplets cut by the tile sampler (500 m tiles, central Porto)")
    fig.text(0.99, 0.005, OSM_ATTRIBUTION, ha="right", va="bottom", fontsize=8, color="#444444")
    with atomic_output(path) as tmp:
        fig.savefig(tmp, format="png")
    return path, rate


def _rgb(hex_color: str):
    h = hex_color.lstrip("#")
    return tuple(int(h[i:i + 2], 16) / 255 for i in (0, 2, 4))
