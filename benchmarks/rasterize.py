"""Rasterization time and peak memory on an area of Kyiv's size or larger, one run.

    .venv/bin/python benchmarks/rasterize.py [--pbf resources/data/andorra_2020-05-01.osm.pbf]

Kyiv is ≈1,500 km², ≈400 Mpx at 500 m / 256 px. Andorra (≈31 x 25 km) at the default 1.953 m/px is
213 Mpx; at 1 m/px it is ≈810 Mpx, twice Kyiv's pixel count. Each run is a fresh `loc2vec rasterize`
process, so its peak resident memory is measured alone (target ≤ 4 GB).
"""

from __future__ import annotations

import argparse
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def run(pbf: str, pixel_size: float, chunk_px: int, out: Path) -> tuple[float, float]:
    before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    t = time.perf_counter()
    subprocess.run([sys.executable, "-m", "loc2vec_engine.cli", "rasterize", pbf, "--out", str(out),
                    "--pixel-size", str(pixel_size), "--chunk-px", str(chunk_px)], check=True, cwd=REPO,
                   stdout=subprocess.DEVNULL)
    seconds = time.perf_counter() - t
    peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss  # KiB, max over children so far
    return seconds, max(peak, before) / 2**20


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--pbf", default=str(REPO / "resources/data/andorra_2020-05-01.osm.pbf"))
    args = ap.parse_args()
    sys.path.insert(0, str(REPO))
    from loc2vec_engine.raster.area import AreaRaster

    tmp = Path(tempfile.mkdtemp(prefix="loc2vec-bench-"))
    print(f"{'pixel size':>10} {'chunk':>6} {'size (px)':>14} {'Mpx':>6} {'seconds':>8} {'Mpx/s':>6} {'peak RSS':>9}")
    # Smallest first: RUSAGE_CHILDREN keeps the maximum, so each row's peak is its own only if it grows.
    for px, chunk in ((1.953125, 2048), (1.953125, 4096), (1.0, 4096)):
        out = tmp / f"area_{px}_{chunk}.tif"
        seconds, peak_gib = run(args.pbf, px, chunk, out)
        a = AreaRaster.open(out)
        mpx = a.width * a.height / 1e6
        print(f"{px:>10g} {chunk:>6} {a.width:>6} x {a.height:<6} {mpx:>6.0f} {seconds:>8.1f} {mpx / seconds:>6.1f} "
              f"{peak_gib:>7.2f} GiB")
        out.unlink()


if __name__ == "__main__":
    main()
