"""Encoders compared under one training budget: held-out blocks and an unseen city, against the baseline.

    .venv/bin/python benchmarks/quality.py --minutes 4 --tile-size 64 --out docs/quality.md

Trains each encoder on Andorra + Porto (bundled) for the same number of minutes with the same
settings, then scores its best checkpoint on (a) validation triplets from held-out blocks of the
training areas and (b) 1,000 triplets from Liechtenstein (../shared/data), a country it never saw.
Both next to the no-learning baseline (standardised per-channel pixel fractions) on the same
triplets. Writes a Markdown table (and a JSON twin) and prints it.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
SHARED = REPO.parent / "shared" / "data"
ENCODERS = ["loc2vec", "resnet18", "resnet34", "efficientnet_b0", "mobilenetv3_small_100"]
UNSEEN = {"liechtenstein": (SHARED / "liechtenstein_2015-07-27.osm.pbf", None)}


def area(name: str, pbf: Path, folder: Path, bbox=None) -> Path:
    from loc2vec_engine.raster.rasterize import rasterize

    out = folder / f"{name}.tif"
    if not out.exists():
        rasterize(pbf, out, bbox=bbox, progress=lambda f, m: None)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--minutes", type=float, default=4.0, help="training budget per encoder")
    ap.add_argument("--tile-size", type=int, default=64)
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--encoders", default=",".join(ENCODERS))
    ap.add_argument("--work", default=str(REPO / "out" / "quality"), help="rasters and run folders")
    ap.add_argument("--out", default=str(REPO / "docs" / "quality.md"))
    ap.add_argument("--device", default="auto")
    args = ap.parse_args()

    import torch

    from loc2vec_engine.encoders import load_encoder
    from loc2vec_engine.training.config import TrainConfig
    from loc2vec_engine.training.loop import train
    from loc2vec_engine.training.unseen import score_on_area

    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    train_areas = [area("andorra", REPO / "resources/data/andorra_2020-05-01.osm.pbf", work),
                   area("porto", REPO / "resources/data/porto_center_2020-07-20.osm.pbf", work)]
    unseen = {k: area(k, pbf, work, bbox) for k, (pbf, bbox) in UNSEEN.items() if pbf.is_file()}
    device = "cuda" if args.device == "auto" and torch.cuda.is_available() else ("cpu" if args.device == "auto" else args.device)

    rows = []
    for name in args.encoders.split(","):
        run = work / f"run_{name}_{args.tile_size}px"
        if not (run / "summary.json").exists():
            cfg = TrainConfig(areas=[str(a) for a in train_areas], out=str(run), encoder=name, tile_size_px=args.tile_size,
                              batch_size=args.batch_size, lr=5e-4, steps=1_000_000, max_minutes=args.minutes,
                              val_every=100, val_triplets=512, patience=1000, built_up_weight=0.5, balance_areas=True,
                              device=device)
            t = time.perf_counter()
            train(cfg, progress=lambda f, m: None)
            print(f"{name}: trained {time.perf_counter() - t:.0f} s", flush=True)
        summary = json.loads((run / "summary.json").read_text())
        model = load_encoder(run / "best.pt")
        params = sum(p.numel() for p in model.parameters()) / 1e6
        row = {"encoder": name, "params_m": round(params, 2), "steps": summary["step"],
               "val_acc": summary["best_val_acc"], "val_baseline": summary["baseline_val_acc"]}
        for key, path in unseen.items():
            s = score_on_area(model, model.meta, path, n=1000, seed=0, device=device)
            row[f"{key}_acc"], row[f"{key}_baseline"], row[f"{key}_hybrid"] = s.model_acc, s.baseline_acc, s.hybrid_acc
        rows.append(row)
        print(row, flush=True)

    lines = [f"# Encoders under one budget ({args.minutes:g} min each, {args.tile_size}-px tiles of 500 m)", "",
             f"Command: `.venv/bin/python benchmarks/quality.py --minutes {args.minutes:g} --tile-size {args.tile_size}`  ",
             f"Machine: {platform.machine()}, device {device}, torch {torch.__version__}, {time.strftime('%Y-%m-%d')}.  ",
             "Training: Andorra + Porto (bundled; Porto is too small for held-out blocks and trains only), batch "
             f"{args.batch_size} triplets, Adam 5e-4, semi-hard mining, anchors weighted to built-up land, areas balanced.  ",
             "Triplets: positive 100–200 m, negative ≥ 2 km, every view rotated, shifted ≤ 50 px and scaled ±10 %. "
             "Baseline: standardised per-channel pixel fractions, Euclidean distance, the same triplets. Hybrid: model "
             "and baseline squared distances, each scaled to unit mean, added.", "",
             "| encoder | params (M) | steps | held-out blocks: model | baseline | Liechtenstein (unseen): model | baseline "
             "| hybrid |",
             "|---|---:|---:|---:|---:|---:|---:|---:|"]
    for r in rows:
        lines.append(f"| {r['encoder']} | {r['params_m']} | {r['steps']} | {r['val_acc']:.3f} | {r['val_baseline']:.3f} | "
                     f"{r.get('liechtenstein_acc', float('nan')):.3f} | {r.get('liechtenstein_baseline', float('nan')):.3f} | "
                     f"{r.get('liechtenstein_hybrid', float('nan')):.3f} |")
    text = "\n".join(lines) + "\n"
    Path(args.out).write_text(text)
    Path(args.out).with_suffix(".json").write_text(json.dumps(rows, indent=2))
    print(text)


if __name__ == "__main__":
    main()
