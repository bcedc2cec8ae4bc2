"""Embedding throughput on the CPU: onnxruntime against torch eager for the same model and batch, and
end-to-end cells/s of ``loc2vec embed`` (tile sampling + inference + GeoPackage).

    .venv/bin/python benchmarks/embed.py [--area out/train/porto.tif] [--batch-size 64] [--rounds 5]

Both engines get the same uint8 tiles already cut (so only inference is compared), one batch after
the other, taking turns for ``--rounds`` rounds; medians are reported. Target: onnxruntime ≥ 1.5x torch.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--area", default=str(REPO / "out/train/porto.tif"),
                    help="area raster (default: out/train/porto.tif, else the bundled Porto extract rasterized now)")
    ap.add_argument("--batch-size", type=int, default=64)
    ap.add_argument("--batches", type=int, default=8, help="batches per engine and round")
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--stride", type=float, default=50.0, help="grid stride of the end-to-end run")
    args = ap.parse_args()

    import numpy as np
    import torch

    from loc2vec_engine.embeddings.embed import embed_area
    from loc2vec_engine.embeddings.grid import cell_grid
    from loc2vec_engine.embeddings.onnx_encoder import DEFAULT_MODEL, OnnxEncoder
    from loc2vec_engine.encoders.pretrained import load_encoder
    from loc2vec_engine.tiles import PalettedArea, TileSampler

    if not Path(args.area).is_file():  # a clean checkout: rasterize the bundled Porto extract first
        from loc2vec_engine.raster.rasterize import rasterize

        args.area = str(Path(tempfile.mkdtemp()) / "porto.tif")
        print(f"rasterizing the bundled Porto extract into {args.area} ...")
        rasterize(REPO / "resources/data/porto_center_2020-07-20.osm.pbf", args.area, progress=lambda f, m: None)
    ort_enc = OnnxEncoder(DEFAULT_MODEL, "cpu")
    torch_enc = load_encoder(DEFAULT_MODEL.with_suffix(".pt"), "cpu").eval()
    area = PalettedArea.from_raster(args.area)
    grid = cell_grid(area, args.stride)
    n = args.batch_size * args.batches
    xy = grid.xy[np.resize(np.arange(len(grid)), n)]
    tiles, _ = TileSampler(area, tile_size_m=ort_enc.tile_size_m).sample(xy, size=ort_enc.tile_size_px)
    tiles = np.ascontiguousarray(tiles)
    batches = [tiles[i:i + args.batch_size] for i in range(0, n, args.batch_size)]

    def run_ort():
        for b in batches:
            ort_enc.embed(b)

    def run_torch():
        with torch.inference_mode():
            for b in batches:
                torch_enc(torch.from_numpy(b).float().div_(255))

    # Same answers first (the comparison is meaningless otherwise).
    with torch.inference_mode():
        diff = np.abs(ort_enc.embed(batches[0]) - torch_enc(torch.from_numpy(batches[0]).float() / 255).numpy()).max()
    run_ort(), run_torch()  # warm-up
    times = {"onnxruntime": [], "torch eager": []}
    for _ in range(args.rounds):
        for name, fn in (("onnxruntime", run_ort), ("torch eager", run_torch)):
            t = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - t)
    rate = {k: n / statistics.median(v) for k, v in times.items()}

    with tempfile.TemporaryDirectory() as tmp:
        res = embed_area(DEFAULT_MODEL, args.area, Path(tmp) / "e.gpkg", stride_m=args.stride, device="cpu",
                         batch_size=args.batch_size, progress=lambda f, m: None)
        t = time.perf_counter()
        embed_area(DEFAULT_MODEL, args.area, Path(tmp) / "e2.gpkg", stride_m=args.stride, device="cpu",
                   batch_size=args.batch_size, progress=lambda f, m: None)
        total = time.perf_counter() - t

    print(f"machine: {platform.machine()}, {os.cpu_count()} CPUs, torch {torch.__version__} "
          f"({torch.get_num_threads()} threads), onnxruntime {__import__('onnxruntime').__version__}")
    print(f"model: {DEFAULT_MODEL.name} ({ort_enc.meta['encoder']}, {ort_enc.tile_size_px} px, "
          f"{ort_enc.embedding_size}-D); batch {args.batch_size}; max |ort - torch| = {diff:.2e}")
    for name, r in rate.items():
        print(f"  {name:12s} {r:8.0f} embeddings/s")
    print(f"  onnxruntime / torch eager = {rate['onnxruntime'] / rate['torch eager']:.2f}x (target >= 1.5x)")
    print(f"end to end (loc2vec embed, {res.cells} cells of {Path(args.area).name} at {args.stride:g} m): "
          f"{res.cells_per_s:.0f} cells/s inside embed_area, {res.cells / total:.0f} cells/s including "
          f"reading the raster and writing the GeoPackage")


if __name__ == "__main__":
    main()
