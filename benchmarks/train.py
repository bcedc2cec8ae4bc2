"""Training throughput fed by the real triplet sampler against the same step fed by pre-made tensors.

    .venv/bin/python benchmarks/train.py [--encoder loc2vec --tile-size 64 --batch-size 32 --steps 6 --rounds 5]

The difference is the sampling overhead (cutting 3 x batch tiles, moving them to the device); target:
≤ 10 % of the step time. The sampler feeds the step two ways: called in line before each step, and
prefetched one batch ahead in a thread (``training/prefetch.py``; the training loop does that when a
core is spare, e.g. ``--threads 1`` on 2 cores). All arms run the same model, optimizer, augmentation
and loss, and take turns round by round, so that other work on the machine hits them alike.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
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
    ap.add_argument("--steps", type=int, default=6, help="timed steps per arm and round")
    ap.add_argument("--rounds", type=int, default=5,
                    help="the arms take turns this many times; each arm's best round is its figure")
    ap.add_argument("--device", default="auto")
    ap.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's choice)")
    args = ap.parse_args()

    import torch

    if args.threads:
        torch.set_num_threads(args.threads)

    device = torch.device("cuda" if args.device == "auto" and torch.cuda.is_available() else
                          ("cpu" if args.device == "auto" else args.device))
    load = os.getloadavg()[0]  # before this run adds its own threads to it
    sampler, step = _setup(args, device)
    times = _measure(args, sampler, step)
    t0 = time.perf_counter()
    for _ in range(args.steps):
        sampler.sample(args.batch_size)
    t_sample = (time.perf_counter() - t0) / args.steps
    _report(args, device, times, t_sample, load)


def _setup(args, device):
    """The sampler and one training step (model, optimizer, augmentation, semi-hard loss)."""
    import torch

    from loc2vec_engine.encoders import create_encoder
    from loc2vec_engine.raster.rasterize import rasterize
    from loc2vec_engine.training.augment import Augment
    from loc2vec_engine.training.losses import triplet_loss
    from loc2vec_engine.training.triplets import TripletSampler

    area = REPO / "out" / "train" / "andorra.tif"
    if not area.exists():
        area.parent.mkdir(parents=True, exist_ok=True)
        rasterize(REPO / "resources/data/andorra_2020-05-01.osm.pbf", area, progress=lambda f, m: None)
    sampler = TripletSampler([area], split="train", tile_size_px=args.tile_size, device=device,
                             backend="cpu" if device.type == "cpu" else "torch", seed=0)
    augment = Augment(seed=0, device=device)
    model = create_encoder(args.encoder, in_channels=12, embedding_dim=128).to(device)
    opt = torch.optim.Adam(model.parameters(), lr=1e-4)

    def step(trip):
        x = torch.cat([augment(trip.anchor), augment(trip.positive), augment(trip.negative)])
        ea, ep, en = model(x).split(args.batch_size)
        loss, _ = triplet_loss(ea, ep, en, mining="semi_hard", centres=trip.centres_m, area_index=trip.area_index)
        opt.zero_grad()
        loss.backward()
        opt.step()
        if device.type == "cuda":
            torch.cuda.synchronize()

    return sampler, step


def _measure(args, sampler, step) -> dict:
    """Seconds per step of each arm, one list entry per round; the arms alternate within a round."""
    from loc2vec_engine.training.prefetch import Prefetcher

    premade = sampler.sample(args.batch_size)

    def timed(feed) -> float:
        step(feed())  # warm-up (and, prefetched, the first batch, which nothing overlaps)
        t = time.perf_counter()
        for _ in range(args.steps):
            step(feed())
        return (time.perf_counter() - t) / args.steps

    times = {"premade": [], "inline": [], "prefetched": []}
    for _ in range(args.rounds):
        times["premade"].append(timed(lambda: premade))
        times["inline"].append(timed(lambda: sampler.sample(args.batch_size)))
        with Prefetcher(sampler, args.batch_size) as ahead:
            times["prefetched"].append(timed(ahead.next))
    return times


def _report(args, device, times: dict, t_sample: float, load: float) -> None:
    import torch

    from loc2vec_engine.training.prefetch import spare_core, usable_cores

    # The best round, not the mean: on a shared machine other work only ever adds time, so the fastest
    # round is the closest to the arm's own cost. The median shows how much the load moved things.
    best = {k: min(v) for k, v in times.items()}
    med = {k: statistics.median(v) for k, v in times.items()}
    print(f"machine: {platform.machine()}, {usable_cores()} cores, device {device}, torch {torch.__version__}, "
          f"{torch.get_num_threads()} threads; load average before {load:.2f} (others' work skews the times)")
    print(f"{args.encoder}, {args.tile_size}-px tiles, batch {args.batch_size} triplets ({3 * args.batch_size} tiles), "
          f"best of {args.rounds} rounds x {args.steps} steps (median in brackets)")
    names = {"premade": "pre-made tensors", "inline": "the sampler, in line", "prefetched": "the sampler, prefetched"}
    for key, name in names.items():
        line = f"  step fed by {name:<23}: {args.batch_size / best[key]:6.1f} triplets/s, {1000 * best[key]:4.0f} ms"
        if key != "premade":
            line += f", overhead {_pct(best[key], best['premade'])} ({_pct(med[key], med['premade'])})"
        print(line + f"   rounds: {' '.join(f'{1000 * t:.0f}' for t in times[key])} ms")
    print(f"  one sampler call alone             : {1000 * t_sample:.0f} ms")
    chosen = "prefetched" if device.type == "cpu" and spare_core(torch.get_num_threads()) else "inline"
    print(f"  sampling overhead as trained here ({names[chosen]}, the loop's default): "
          f"{_pct(best[chosen], best['premade'])} of the step (target <= 10 %)")


def _pct(t, ref) -> str:
    return f"{100 * (t - ref) / ref:+.1f} %"


if __name__ == "__main__":
    main()
