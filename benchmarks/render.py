"""``loc2vec render`` of a million cells: the whole command (read the GeoPackage, fit, colour, write), timed.

    .venv/bin/python benchmarks/render.py [--cells 1000000] [--dim 164] [--all-bands] [--keep DIR]

Makes (once, untimed; kept in --keep to rerun) an embeddings GeoPackage of a square grid of --cells
cells of 100 m with --dim-dimensional unit vectors like real embeddings (a Gaussian mixture in a
low-dimensional latent space, as the search benchmark's), then runs ``loc2vec render EMB.gpkg --out
EMB_rgb.tif`` in a fresh process, best of --repeat runs, with the time of each stage from one run in
this process. Target (issue 12): 1M cells in <= 10 s on the CPU. --all-bands also times --bands all.
"""

from __future__ import annotations

import argparse
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import numpy as np  # noqa: E402


def mixture(n: int, d: int, rng, components: int = 200, latent: int = 16) -> np.ndarray:
    """Unit vectors clustered in a 16-D latent space, in a cone (as in benchmarks/search.py)."""
    centres = rng.standard_normal((components, latent)).astype(np.float32)
    label = rng.integers(0, components, n)
    z = centres[label] + 0.3 * rng.standard_normal((n, latent), dtype=np.float32)
    x = z @ (rng.standard_normal((latent, d)).astype(np.float32) / np.sqrt(latent))
    x += 0.05 * rng.standard_normal((n, d), dtype=np.float32) + rng.standard_normal(d).astype(np.float32)
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


def make_embeddings(path: Path, cells: int, dim: int, seed: int = 0) -> Path:
    from pyproj import CRS

    from loc2vec_engine.embeddings.store import write_embeddings

    side = int(np.ceil(np.sqrt(cells)))
    r, c = np.divmod(np.arange(cells, dtype=np.int64), side)
    xy = np.stack([400_050.0 + c * 100.0, 5_600_050.0 - r * 100.0], axis=1)
    vectors = mixture(cells, dim, np.random.default_rng(seed))
    meta = {"model_sha256": "b" * 64, "stride_m": 100.0,
            "grid": {"x0": 400_050.0, "y0": 5_600_050.0, "cols": side, "rows": side, "stride_m": 100.0}}
    return write_embeddings(path, xy, vectors, CRS.from_epsg(32636).to_wkt(), meta, cell=r * side + c)


def stages(emb: Path, out: Path) -> dict[str, float]:
    """Seconds of each step of render_files, in this process (the same calls, one at a time)."""
    from loc2vec_engine.embeddings.store import read_embeddings
    from loc2vec_engine.render.grid_raster import cell_raster, write_rgb
    from loc2vec_engine.render.pca_rgb import fit_colour_pca

    t = [time.perf_counter()]
    es = read_embeddings(emb)
    t.append(time.perf_counter())
    pca = fit_colour_pca([es.vectors], [emb.name])
    t.append(time.perf_counter())
    colours = pca.colours(es.vectors)
    t.append(time.perf_counter())
    raster = cell_raster(es)
    write_rgb(out, es, raster, colours, pca)
    t.append(time.perf_counter())
    return dict(zip(("read GeoPackage", "fit PCA + percentiles", "colour every cell", "place + write GeoTIFF"),
                    np.diff(t)))


def run_cli(*argv) -> float:
    """Wall seconds of one ``loc2vec render`` process, start-up included."""
    t = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "loc2vec_engine.cli", "render", *map(str, argv)], cwd=REPO,
                          capture_output=True, text=True)
    seconds = time.perf_counter() - t
    if proc.returncode != 0:
        sys.exit(proc.stderr)
    return seconds


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cells", type=int, default=1_000_000)
    ap.add_argument("--dim", type=int, default=164, help="embedding size (default 164, the shipped hybrid model's)")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--all-bands", action="store_true", help="also time --bands all (one float32 band per dim)")
    ap.add_argument("--keep", type=Path, help="folder to keep the test GeoPackage in (made once, reused)")
    args = ap.parse_args()

    folder = args.keep or Path(tempfile.mkdtemp(prefix="loc2vec-render-bench-"))
    folder.mkdir(parents=True, exist_ok=True)
    emb = folder / f"grid_{args.cells}_{args.dim}.gpkg"
    if not emb.exists():
        t = time.perf_counter()
        make_embeddings(emb, args.cells, args.dim)
        print(f"(made {emb.name} in {time.perf_counter() - t:.0f} s, untimed: {emb.stat().st_size / 2**20:.0f} MiB)")
    print(f"# {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, Python {platform.python_version()}")
    out = folder / "grid_rgb.tif"
    best = min(run_cli(emb, "--out", out) for _ in range(args.repeat))
    print(f"loc2vec render {emb.name} --out {out.name}: {args.cells:,} cells x {args.dim} dims, "
          f"best of {args.repeat}: {best:.1f} s (target <= 10 s)")
    for name, seconds in stages(emb, folder / "stages_rgb.tif").items():
        print(f"  {name:24s} {seconds:6.2f} s")
    if args.all_bands:
        seconds = run_cli(emb, "--bands", "all", "--out", folder / "grid_bands.tif")
        size = (folder / "grid_bands.tif").stat().st_size / 2**20
        print(f"loc2vec render {emb.name} --bands all: {seconds:.1f} s ({size:.0f} MiB GeoTIFF)")


if __name__ == "__main__":
    main()
