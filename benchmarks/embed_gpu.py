"""Embedding throughput on a GPU, the way ``loc2vec embed`` works there: a grid of cells, tiles cut
on the device by the torch sampler, the shipped model run by torch (fp16 autocast).

    python benchmarks/embed_gpu.py [--area out/train/andorra.tif] [--cells 150000] [--batch-size 1024]

onnxruntime-gpu cannot be carried to the lent GPU machines (only 64 MiB travel and that machine's
onnxruntime is the CPU build), so the GPU figure is measured through torch with the same weights
(the .pt next to the shipped .onnx). Target (issue 4): >= 20,000 cells/s over a 150k-cell grid.
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--area", default=str(REPO / "out/train/andorra.tif"))
    ap.add_argument("--cells", type=int, default=150_000, help="grid size to aim for (the stride is chosen to fit)")
    ap.add_argument("--batch-size", type=int, default=1024)
    args = ap.parse_args()

    import numpy as np
    import torch

    from loc2vec_engine.embeddings.grid import cell_grid
    from loc2vec_engine.embeddings.onnx_encoder import DEFAULT_MODEL
    from loc2vec_engine.encoders.pretrained import load_encoder
    from loc2vec_engine.tiles import PalettedArea, TileSampler

    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    area = PalettedArea.from_raster(args.area)
    valid_m2 = float((area.ids != 0).sum()) * area.pixel_size ** 2
    grid = cell_grid(area, math.sqrt(valid_m2 / args.cells))
    model = load_encoder(DEFAULT_MODEL.with_suffix(".pt"), device).eval()
    size, tile_m = int(model.meta.get("tile_size_px", 64)), float(model.meta.get("tile_size_m", 500.0))
    sampler = TileSampler(area, backend="torch" if device.type == "cuda" else "cpu", device=device,
                          tile_size_m=tile_m)
    xy = grid.xy

    def run(n):
        out = []
        with torch.inference_mode(), torch.autocast(device.type, dtype=torch.float16, enabled=device.type == "cuda"):
            for start in range(0, n, args.batch_size):
                tiles, _ = sampler.sample(xy[start:start + args.batch_size], size=size)
                x = torch.as_tensor(tiles, device=device).float().div_(255)
                out.append(model(x).float())
        if device.type == "cuda":
            torch.cuda.synchronize()
        return torch.cat(out)

    run(min(len(xy), 4 * args.batch_size))  # warm-up (kernels, cuDNN autotune)
    t = time.perf_counter()
    emb = run(len(xy))
    seconds = time.perf_counter() - t
    name = torch.cuda.get_device_name(0) if device.type == "cuda" else "CPU"
    print(f"device: {name}; torch {torch.__version__}; area {Path(args.area).name}")
    print(f"grid: {len(xy):,} cells at {grid.stride_m:.0f} m; {size}-px tiles of {tile_m:g} m; batch {args.batch_size}")
    print(f"embed (sample on device + model, fp16): {len(xy) / seconds:,.0f} cells/s (target >= 20,000); "
          f"{seconds:.1f} s; unit vectors: {bool(np.allclose(emb.norm(dim=1).cpu().numpy(), 1, atol=1e-2))}")


if __name__ == "__main__":
    main()
