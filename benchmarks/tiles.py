"""Tiles/s of the tile sampler against per-tile vector rasterization and a plain copy, same tiles, one run.

    .venv/bin/python benchmarks/tiles.py [--pbf resources/data/porto_center_2020-07-20.osm.pbf] [--n 2000]

Prints one table and the ratios the issue asks for:
- per-tile rasterization: select the polygons touching each tile (STRtree) and burn them with GDAL,
  as earlier Loc2Vec code did per tile (axis-aligned, which flatters it: rotation would cost more);
  the drawable polygons are built once and not timed;
- plain copy: 256x256x12 bytes from random places of a pixel-interleaved area (the memory ceiling);
- the sampler, CPU (numba, 1 and 2 threads) and torch (CPU here; CUDA where present), with rotation.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


def rate(fn, n_tiles: int, repeat: int = 3) -> float:
    """Best-of-``repeat`` tiles per second."""
    best = float("inf")
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t)
    return n_tiles / best


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--pbf", default=str(REPO / "resources/data/porto_center_2020-07-20.osm.pbf"))
    ap.add_argument("--area", help="an existing area GeoTIFF (skips rasterizing; per-tile baseline needs --pbf)")
    ap.add_argument("--n", type=int, default=2000, help="tiles per timed run")
    ap.add_argument("--n-raster", type=int, default=200, help="tiles for the (slow) per-tile rasterization")
    ap.add_argument("--size", type=int, default=256)
    args = ap.parse_args()

    from loc2vec_engine.channels import get_spec
    from loc2vec_engine.tiles import PalettedArea, TileSampler

    try:  # GDAL and pyosmium: absent on a bare GPU machine, where only the samplers are timed
        import osgeo  # noqa: F401
        import osmium  # noqa: F401

        from loc2vec_engine.geo.crs import transformer_from_wgs84
        from loc2vec_engine.raster.burn import Burnables
        from loc2vec_engine.raster.rasterize import rasterize
        from loc2vec_engine.sources.read import read_source
        have_gdal = True
    except ImportError:
        have_gdal = False
    if not have_gdal and not args.area:
        sys.exit("without GDAL/pyosmium give an existing area raster: --area AREA.tif")

    spec = get_spec()
    tmp = Path(tempfile.mkdtemp(prefix="loc2vec-bench-"))
    t = time.perf_counter()
    area = rasterize(args.pbf, tmp / "area.tif", progress=lambda f, m: None) if not args.area else None
    t_rasterize = time.perf_counter() - t
    if area is None:
        from loc2vec_engine.raster.area import AreaRaster

        area = AreaRaster.open(args.area)
    t = time.perf_counter()
    pal = PalettedArea.from_raster(area)
    t_palette = time.perf_counter() - t
    data, valid = area.read()
    hwc = np.ascontiguousarray(data.transpose(1, 2, 0))  # pixel-interleaved copy for the copy ceiling

    S, n = args.size, args.n
    half = S // 2 + 1
    rng = np.random.default_rng(0)
    rows, cols = np.nonzero(valid[half:-half, half:-half])
    pick = rng.integers(0, len(rows), n)
    centres_px = np.stack([cols[pick] + half + 0.5, rows[pick] + half + 0.5], axis=1)
    angles = rng.uniform(0, 360, n)

    # ---- per-tile vector rasterization -------------------------------------------------------------
    x0, px, _, y0, _, py = area.transform
    m = args.n_raster
    if have_gdal:
        burn = Burnables.build(read_source(args.pbf, spec), transformer_from_wgs84(area.crs_wkt), len(spec))

    def per_tile_rasterize():
        for c, r in centres_px[:m]:
            burn.burn((x0 + (c - S / 2) * px, px, 0.0, y0 + (r - S / 2) * py, 0.0, py), S, S)

    # ---- copy ceiling ------------------------------------------------------------------------------
    out_copy = np.empty((64, S, S, hwc.shape[2]), np.uint8)
    corners = (centres_px - S / 2).astype(int)

    def copy():
        for i, (c, r) in enumerate(corners):
            np.copyto(out_copy[i & 63], hwc[r:r + S, c:c + S])

    results = [("per-tile rasterization (GDAL, axis-aligned)",
                 rate(per_tile_rasterize, m, repeat=1) if have_gdal else float("nan"))]
    results.append(("plain copy 256x256x12 (ceiling)", rate(copy, n)))

    # ---- the sampler ---------------------------------------------------------------------------------
    batch = 64
    for threads in ((1, 2) if importlib.util.find_spec("numba") else ()):
        sampler = TileSampler(pal, backend="cpu", threads=threads)
        buf = sampler.empty(batch, S)
        for rotate in (False, True):
            ang = angles if rotate else np.zeros(n)

            def cpu():
                for i in range(0, n - batch + 1, batch):
                    sampler.sample_pixels(centres_px[i:i + batch], ang[i:i + batch], 1.0, S, out=buf)
            cpu()  # JIT warm-up
            label = f"sampler CPU, {threads} thread{'s' if threads > 1 else ''}, {'rotated' if rotate else 'axis-aligned'}"
            results.append((label, rate(cpu, n // batch * batch)))
    try:
        import torch

        devices = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
        torch.set_num_threads(1)
        for dev in devices:
            sampler = TileSampler(pal, backend="torch", device=dev)
            buf = sampler.empty(batch, S)

            def tor():
                for i in range(0, n - batch + 1, batch):
                    sampler.sample_pixels(centres_px[i:i + batch], angles[i:i + batch], 1.0, S, out=buf)
                if dev == "cuda":
                    torch.cuda.synchronize()
            tor()
            results.append((f"sampler torch on {dev}{' (1 thread)' if dev == 'cpu' else ''}, rotated", rate(tor, n // batch * batch)))
    except ImportError:
        print("torch not installed: torch back-end skipped")

    print(f"\nmachine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}")
    print(f"area: {Path(args.area or args.pbf).name}, {area.width} x {area.height} px x {area.count} bands; "
          f"rasterized in {t_rasterize:.1f} s, paletted in {t_palette:.2f} s ({pal.n_values} distinct pixel values, "
          f"{pal.nbytes / 2**20:.1f} MiB vs {hwc.nbytes / 2**20:.1f} MiB raw)")
    print(f"tiles: {S} px, {n} random centres inside the valid area, rotations uniform in [0, 360)\n")
    width = max(len(r[0]) for r in results)
    for label, tps in results:
        print(f"  {label:<{width}}  {tps:10,.0f} tiles/s")
    base = results[0][1]
    ceiling = results[1][1]
    rot1 = dict(results).get("sampler CPU, 1 thread, rotated", float("nan"))
    rot2 = dict(results).get("sampler CPU, 2 threads, rotated", float("nan"))
    print(f"\nCPU sampler, rotated, 1 thread: {rot1 / base:,.0f}x per-tile rasterization (target >= 100x), "
          f"{100 * rot1 / ceiling:.0f} % of the copy ceiling (target >= 25 %)")
    print(f"CPU sampler, rotated, 2 threads: {rot2 / base:,.0f}x per-tile rasterization, "
          f"{100 * rot2 / ceiling:.0f} % of the copy ceiling")


if __name__ == "__main__":
    main()
