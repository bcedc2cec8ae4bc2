"""Study: learned embedding, composition, and the two joined, on held-out cities (one table per city).

    .venv/bin/python benchmarks/hybrid_study.py --models out/loco --recipes triplet,infonce_comp \\
        --held-out liechtenstein,helsinki,porto,novosibirsk --shares 0.25,0.5,0.75

For each held-out city: the LOCO models trained without it (``benchmarks/loco.py --train-only``) are
scored beside composition-only and hybrid vectors built as the shipped hybrid ONNX graph builds them
(``encoders.composition``): multi-scale fractions standardised with the *training* cities' statistics
(not the held-out city's), and ``hybrid = [sqrt(1 - a) * learned, sqrt(a) * composition / sqrt(D_c)]``,
L2-normalised, compared by cosine. The no-learning baselines are those of ``loc2vec evaluate`` (fitted
on the evaluated cells). One process scores everything on the same cells, views and folds, so the rows
are paired. Map data © OpenStreetMap contributors, ODbL 1.0.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "benchmarks"))

from cities import CITIES, area, source  # noqa: E402
from loc2vec_engine.encoders.composition import multiscale_fractions  # noqa: E402

KEYS = ["elsewhere_venue_p@10", "elsewhere_landuse_p@10", "probe_macro_f1", "triplet_acc_ge2km", "recall@10",
        "form_building_size_r2", "form_intersections_r2"]


TRANSFORMS = {"linear": lambda f: f, "sqrt": np.sqrt, "log": lambda f: np.log(f + 0.01)}


def training_fractions(areas, tile_size_m, tile_size_px, n=400):
    """Multi-scale fractions of n tiles per training area (the statistics' sample)."""
    from loc2vec_engine.tiles import TileSampler
    from loc2vec_engine.training.hybrid import valid_centres

    out = []
    for i, a in enumerate(areas):
        s = TileSampler(a, backend="cpu", tile_size_m=tile_size_m)
        xy = valid_centres(s, n, 0.9, np.random.default_rng([0, 53, i]))
        out.append(multiscale_fractions(np.ascontiguousarray(s.sample(xy, size=tile_size_px)[0])))
    return np.concatenate(out)


def unit(x):
    x = np.asarray(x, np.float64)
    return x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)


def main() -> None:
    from loc2vec_engine.embeddings.onnx_encoder import OnnxEncoder
    from loc2vec_engine.evaluation.baselines import FractionsFeatures, MultiscaleFeatures, RandomConvFeatures
    from loc2vec_engine.evaluation.health import embedding_health
    from loc2vec_engine.evaluation.measure import embed, evaluation_set, load_inputs
    from loc2vec_engine.evaluation.scoring import score

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", default=str(REPO / "out" / "loco"))
    ap.add_argument("--recipes", default="triplet,infonce_comp")
    ap.add_argument("--held-out", default="liechtenstein,helsinki,porto,novosibirsk")
    ap.add_argument("--shares", default="0.25,0.5,0.75", help="composition shares a of the hybrid")
    ap.add_argument("--transforms", default="linear,sqrt,log")
    ap.add_argument("--areas", default=str(REPO / "out" / "cities"))
    ap.add_argument("--out", default=None, help="JSON of every value")
    args = ap.parse_args()
    transforms = args.transforms.split(",")
    shares = [float(s) for s in args.shares.split(",") if s]
    areas_dir = Path(args.areas)
    everything = {}
    for city in [c for c in args.held_out.split(",") if c]:
        t0 = time.perf_counter()
        train_areas = [area(n, areas_dir) for n in CITIES if n != city]
        models = {r: Path(args.models) / f"{r}_without_{city}" / "model.onnx" for r in args.recipes.split(",")}
        models = {r: p for r, p in models.items() if p.is_file()}
        first = OnnxEncoder(next(iter(models.values())), "cpu")
        stats_raw = training_fractions(train_areas, first.tile_size_m, first.tile_size_px)
        inputs = load_inputs(first, area(city, areas_dir), source(city))
        es, cells, _ = evaluation_set(inputs, 50.0, 1500, 300, 0.75, 0)
        tiles = (cells.tiles, es.views.query_tiles, es.views.pos_tiles)
        rows = {}

        def add(name, e, cosine):
            rows[name] = {k: float(np.nanmean(v)) for k, v in score(es, *e, cosine=cosine).items()}
            rows[name].update({f"health_{k}": v for k, v in embedding_health(e[0]).items()
                               if isinstance(v, (int, float))})

        for fn, name in ((FractionsFeatures(cells.tiles).embed, "fractions"),
                         (MultiscaleFeatures(cells.tiles).embed, "multiscale")):
            add(name, tuple(embed(fn, t) for t in tiles), cosine=False)
        rc = RandomConvFeatures(cells.tiles, seed=0)
        add("random_conv", (rc.fitted, embed(rc.embed, tiles[1]), embed(rc.embed, tiles[2])), cosine=False)
        raw = tuple(multiscale_fractions(t) for t in tiles)
        comps = {}
        for tname, tf in TRANSFORMS.items():
            if tname not in transforms:
                continue
            ref = tf(stats_raw)
            mu, sd = ref.mean(0), np.where(ref.std(0) > 1e-6, ref.std(0), 1.0)
            comps[tname] = tuple((tf(r) - mu) / sd / np.sqrt(mu.size) for r in raw)
            add(f"comp[{tname}] euclid", comps[tname], cosine=False)
            add(f"comp[{tname}] cos", tuple(unit(c) for c in comps[tname]), cosine=True)
        for r, path in models.items():
            enc = OnnxEncoder(path, "cpu")
            learned = tuple(embed(enc.embed, t).astype(np.float64) for t in tiles)
            add(f"{r}", learned, cosine=True)
            for tname, comp in comps.items():
                for a in shares:
                    hyb = tuple(unit(np.concatenate([np.sqrt(1 - a) * l, np.sqrt(a) * c], axis=1))
                                for l, c in zip(learned, comp))
                    add(f"{r}+comp[{tname}] a={a:g}", hyb, cosine=True)
        everything[city] = rows
        print(f"\n## {city} ({len(cells)} cells, {time.perf_counter() - t0:.0f} s)\n")
        print("| set | " + " | ".join(k.replace("elsewhere_", "else_") for k in KEYS) + " | mean_cos |")
        print("|---|" + "---:|" * (len(KEYS) + 1))
        for name, v in rows.items():
            print(f"| {name} | " + " | ".join(f"{v.get(k, float('nan')):.3f}" for k in KEYS)
                  + f" | {v.get('health_mean_cos', float('nan')):.3f} |", flush=True)
    if args.out:
        Path(args.out).write_text(json.dumps(everything, indent=2))


if __name__ == "__main__":
    main()
