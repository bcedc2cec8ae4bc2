"""Training throughput fed by the real triplet sampler against the same step fed by pre-made tensors.

    .venv/bin/python benchmarks/train.py [--encoder loc2vec --tile-size 64 --batch-size 32 --steps 20]

The difference is the sampling overhead (cutting 3 x batch tiles, augmenting, moving them to the
device); target: ≤ 10 % of the step time. Both arms run the same model, optimizer and loss.
"""

from __future__ import annotations

import argparse
import platform
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--encoder", default="loc2vec")
    ap.add_argument("--tile-size", type=int, default=64)
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--device", default="auto")
    args = ap.parse_args()

    import torch

    from loc2vec_engine.encoders import create_encoder
    from loc2vec_engine.raster.rasterize import rasterize
    from loc2vec_engine.training.augment import Augment
    from loc2vec_engine.training.losses import triplet_loss
    from loc2vec_engine.training.triplets import TripletSampler

    device = torch.device("cuda" if args.device == "auto" and torch.cuda.is_available() else
                          ("cpu" if args.device == "auto" else args.device))
    area = REPO / "out" / "train" / "andorra.tif"
    if not area.exists():
        area.parent.mkdir(parents=True, exist_ok=True)
        rasterize(REPO / "resources/data/andorra_2020-05-01.osm.pbf", area, progress=lambda f, m: None)
    sampler = TripletSampler([area], split="train", tile_size_px=args.tile_size, device=device,
                             backend="cpu" if device.type == "cpu" else "torch", seed=0)
    augment = Augment(seed=0, device=device)
    model = create_encoder(args.encoder, in_channels=12, embedding_dim=128).to(device)
    opt = torch.optim.Adam(model.parameters(), lr=1e-4)
    premade = sampler.sample(args.batch_size)

    def step(trip):
        x = torch.cat([augment(trip.anchor), augment(trip.positive), augment(trip.negative)])
        ea, ep, en = model(x).split(args.batch_size)
        loss, _ = triplet_loss(ea, ep, en, mining="semi_hard", centres=trip.centres_m, area_index=trip.area_index)
        opt.zero_grad()
        loss.backward()
        opt.step()
        if device.type == "cuda":
            torch.cuda.synchronize()

    def timed(feed) -> float:
        step(feed())  # warm-up
        t = time.perf_counter()
        for _ in range(args.steps):
            step(feed())
        return (time.perf_counter() - t) / args.steps

    t_fed = timed(lambda: premade)
    t_live = timed(lambda: sampler.sample(args.batch_size))
    t0 = time.perf_counter()
    for _ in range(args.steps):
        sampler.sample(args.batch_size)
    t_sample = (time.perf_counter() - t0) / args.steps
    print(f"machine: {platform.machine()}, device {device}, torch {torch.__version__}, {torch.get_num_threads()} threads")
    print(f"{args.encoder}, {args.tile_size}-px tiles, batch {args.batch_size} triplets ({3 * args.batch_size} tiles)")
    print(f"  step fed by pre-made tensors : {args.batch_size / t_fed:8.1f} triplets/s ({1000 * t_fed:.0f} ms/step)")
    print(f"  step fed by the live sampler : {args.batch_size / t_live:8.1f} triplets/s ({1000 * t_live:.0f} ms/step)")
    print(f"  one sampler call alone       : {1000 * t_sample:.0f} ms")
    print(f"  sampling overhead: {100 * (t_live - t_fed) / t_fed:+.1f} % of the step (target <= 10 %)")


if __name__ == "__main__":
    main()
