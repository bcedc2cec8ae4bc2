"""Leave one city out: train a recipe on every shared city but one, score it on the one left out.

    .venv/bin/python benchmarks/loco.py --recipe triplet --minutes 6 \\
        --held-out liechtenstein,helsinki,porto,novosibirsk --out docs/quality_loco.md

For each held-out city: train the recipe for ``--minutes`` on all the other shared cities (areas
balanced; ``benchmarks/cities.py`` rasterizes them), export the best checkpoint to ONNX, and run the
full ``loc2vec evaluate`` on the held-out city (its own OSM extract gives the venues and urban-form
labels). Every metric is reported for the model and every baseline of that run — the no-learning ones
(fractions, multi-scale fractions, random convolutions, coordinates) and the random-init model — per
city and as mean ± std over the held-out cities. Run folders are kept under ``--work`` and reused, so a
second call only re-scores; ``--fresh`` retrains. Map data © OpenStreetMap contributors, ODbL 1.0.
"""

from __future__ import annotations

import argparse
import json
import platform
import shutil
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "benchmarks"))

from cities import CITIES, NOT_SCORED, area, source  # noqa: E402

from loc2vec_engine.training.recipes import recipe as engine_recipe  # noqa: E402

# The training settings of each recipe (TrainConfig fields); the budget and areas come from the command line.
RECIPES = {
    # the report's triplets, semi-hard mining, 64-px tiles (the engine's "triplet" recipe)
    "triplet": dict(encoder="loc2vec", tile_size_px=64, batch_size=32, **engine_recipe("triplet")),
    # the shipped default's (the engine's "contrastive" recipe): InfoNCE over two views that share the tile
    # centre (<= 100 m apart), in-batch negatives with places < 300 m masked out, a uniformity term, and a
    # head regressing the 30/60/100 % window composition
    "infonce_comp": dict(encoder="loc2vec", tile_size_px=64, batch_size=48, **engine_recipe("contrastive")),
    # the shipped recipe on 128-px tiles of the same 500 m (3.9 m pixels): about 5.5 times the compute of a
    # 64-px step on the CPU, so a GPU budget (benchmarks/gpu_loco.sh)
    "infonce_comp_128": dict(encoder="loc2vec", tile_size_px=128, batch_size=48, **engine_recipe("contrastive")),
    # the same with hard negatives: of 16 places >= 2 km away, the one whose composition is closest
    "infonce_hard": dict(encoder="loc2vec", tile_size_px=64, batch_size=48, **engine_recipe("contrastive"),
                         neg_mode="similar"),
    # the same with the report's §3.6 semantic positives: for 30 % of the anchors the positive is, of 16
    # places >= 2 km away (often in another city), the one of closest composition
    "infonce_sem": dict(encoder="loc2vec", tile_size_px=64, batch_size=48, **engine_recipe("contrastive"),
                        semantic_share=0.3),
    # InfoNCE on the hybrid itself (learned ⊕ sqrt composition, share 0.5; no composition head, which the
    # hybrid already holds): the network is pushed to learn what the composition lacks
    "infonce_through_hybrid": dict(encoder="loc2vec", tile_size_px=64, batch_size=48,
                                   **dict(engine_recipe("contrastive"), composition_weight=0.0), hybrid_share=0.5,
                                   composition_transform="sqrt"),
}
SET_ORDER = ("model", "model_learned", "model_composition", "fractions", "multiscale", "random_conv", "random_init",
             "coordinates")
DEFAULT_HELD_OUT = "liechtenstein,helsinki,porto,novosibirsk"
# Headline metrics of the table, in the order the issue states its targets.
HEADLINE = ["elsewhere_venue_p@10", "elsewhere_landuse_p@10", "probe_macro_f1", "triplet_acc_ge2km", "recall@10",
            "form_building_size_r2", "form_intersections_r2", "mean_cos", "eff_rank"]


def train_and_export(recipe: str, held_out: str, minutes: float, work: Path, areas_dir: Path, seed: int,
                     fresh: bool, device: str = "cpu") -> Path:
    from loc2vec_engine.training.config import TrainConfig
    from loc2vec_engine.training.export import export_run
    from loc2vec_engine.training.loop import train

    run = work / f"{recipe}_without_{held_out}"
    onnx = run / "model.onnx"
    if fresh and run.exists():
        shutil.rmtree(run)
    if onnx.is_file():
        return onnx
    train_areas = [str(area(n, areas_dir)) for n in CITIES if n != held_out]
    cfg = TrainConfig(areas=train_areas, out=str(run), steps=1_000_000, max_minutes=minutes, val_every=250,
                      val_triplets=512, patience=1000, seed=seed, device=device, **RECIPES[recipe])
    t = time.perf_counter()
    result = train(cfg, progress=lambda f, m: None)
    print(f"  trained without {held_out}: {result.step} steps in {time.perf_counter() - t:.0f} s", flush=True)
    export_run(run, onnx)
    return onnx


def export_hybrid(run_onnx: Path, held_out: str, share: float, areas_dir: Path, transform: str = "linear") -> Path:
    """The run's best checkpoint as a hybrid ONNX (composition statistics from its training areas only)."""
    from loc2vec_engine.training.export import export_run

    out = run_onnx.parent / (f"hybrid_{share:g}" + ("" if transform == "linear" else f"_{transform}")) / "model.onnx"
    if not out.is_file():
        out.parent.mkdir(parents=True, exist_ok=True)
        train_areas = [str(area(n, areas_dir)) for n in CITIES if n != held_out]
        export_run(run_onnx.parent, out, hybrid_share=share, composition_areas=train_areas,
                   composition_transform=transform)
    return out


def evaluate(onnx: Path, held_out: str, work: Path, areas_dir: Path, seed: int) -> dict:
    from loc2vec_engine.evaluation.evaluate import evaluate_model

    out = onnx.parent / f"eval_{held_out}"
    if (out / "metrics.json").is_file():
        return json.loads((out / "metrics.json").read_text())
    if out.exists():
        shutil.rmtree(out)
    return evaluate_model(onnx, area(held_out, areas_dir), source(held_out), out, seed=seed,
                          progress=lambda f, m: None)


def values(metrics: dict) -> dict[str, dict[str, float]]:
    """metric key -> feature set -> mean value, from a metrics.json."""
    out = {}
    for key, row in metrics["metrics"].items():
        out[key] = {s: v["value"] for s, v in row.items() if isinstance(v, dict) and v.get("value") is not None}
    for key in ("mean_cos", "eff_rank"):  # embedding health: the model and its parts
        for s in ("model", "model_learned", "model_composition"):
            health = metrics.get("health", {}).get(s, {})
            if isinstance(health, dict) and isinstance(health.get(key), (int, float)):
                out.setdefault(key, {})[s] = float(health[key])
    return out


def band_key(v: dict) -> str | None:
    """The farthest triplet band measured in this city (>= 2 km where there is room)."""
    for k in ("triplet_acc_ge2km", "triplet_acc_1-2km", "triplet_acc_0.5-1km"):
        if "model" in v.get(k, {}) and "fractions" in v[k]:
            return k
    return None


def targets(v: dict) -> list[tuple[str, bool | None, str]]:
    """The issue's targets for one city: (target, met, figures)."""
    def best(k):
        return max((v[k][s] for s in ("fractions", "multiscale", "random_conv") if s in v.get(k, {})), default=None)

    out = []
    m = v.get("elsewhere_venue_p@10", {})
    b = best("elsewhere_venue_p@10")
    out.append(("similar elsewhere ≥ best baseline + 0.03", None if b is None or "model" not in m else
                m["model"] >= b + 0.03, f"{m.get('model', float('nan')):.3f} vs {b if b is not None else float('nan'):.3f}"))
    m, b = v.get("probe_macro_f1", {}), best("probe_macro_f1")
    out.append(("probe F1 ≥ best baseline", None if b is None or "model" not in m else m["model"] >= b,
                f"{m.get('model', float('nan')):.3f} vs {b if b is not None else float('nan'):.3f}"))
    k = band_key(v)
    if k:
        band = k.replace("triplet_acc_", "")
        out.append(("triplets, farthest band ≥ fractions − 0.01", v[k]["model"] >= v[k]["fractions"] - 0.01,
                    f"{band}: {v[k]['model']:.3f} vs {v[k]['fractions']:.3f}"))
    r = v.get("recall@10", {}).get("model")
    out.append(("recall@10 ≥ 0.9", None if r is None else r >= 0.9, f"{r if r is not None else float('nan'):.3f}"))
    c = v.get("mean_cos", {}).get("model")
    out.append(("mean cosine ≤ 0.6", None if c is None else c <= 0.6, f"{c if c is not None else float('nan'):.3f}"))
    return out


def table(recipe: str, per_city: dict[str, dict], minutes: float, command: str) -> str:
    import numpy as np

    sets = []
    for v in per_city.values():
        for row in v.values():
            sets += [s for s in row if s not in sets]
    order = [s for s in SET_ORDER if s in sets] + [s for s in sets if s not in SET_ORDER]
    keys = [k for k in HEADLINE if any(k in v for v in per_city.values())]
    keys += sorted({k for v in per_city.values() for k in v} - set(keys))
    lines = [f"# Leave one city out: recipe `{recipe}`, {minutes:g} CPU minutes per training", "",
             f"Command: `{command}`  ",
             f"Machine: {platform.machine()}, {time.strftime('%Y-%m-%d')}. Held out: {', '.join(per_city)}. "
             "Each model trained on every other shared city (../shared/data; ODbL, © OpenStreetMap contributors).", "",
             "Mean ± std over the held-out cities (per-city values below). Higher is better except mean cosine.", "",
             "| metric | " + " | ".join(order) + " |", "|---|" + "---:|" * len(order)]
    for k in keys:
        cells = []
        for s in order:
            xs = [v[k][s] for v in per_city.values() if k in v and s in v[k]]
            cells.append(f"{np.mean(xs):.3f} ± {np.std(xs):.3f}" if xs else "—")
        lines.append(f"| {k} | " + " | ".join(cells) + " |")
    lines += ["", "## The issue's targets, per held-out city", "",
              "| city | " + " | ".join(t for t, _, _ in targets(next(iter(per_city.values())))) + " |",
              "|---|" + "---|" * len(targets(next(iter(per_city.values()))))] if per_city else []
    for city, v in per_city.items():
        lines.append(f"| {city} | " + " | ".join(("met" if ok else "missed" if ok is not None else "—") + f" ({fig})"
                                                 for _, ok, fig in targets(v)) + " |")
    lines += ["", "## Per city", ""]
    for city, v in per_city.items():
        lines += [f"### {city}", "", "| metric | " + " | ".join(order) + " |", "|---|" + "---:|" * len(order)]
        for k in keys:
            if k in v:
                lines.append(f"| {k} | " + " | ".join(f"{v[k][s]:.3f}" if s in v[k] else "—" for s in order) + " |")
        lines.append("")
    if NOT_SCORED:
        lines += ["Not scored: " + "; ".join(f"{k} ({why})" for k, why in NOT_SCORED.items()) + "."]
    return "\n".join(lines) + "\n"


def copy_reports(reports: dict[str, Path], per_city: dict, dest: Path, name: str, command: str) -> None:
    """Each city's evaluate report folder into ``dest/CITY`` and an index ``dest/README.md`` from their numbers."""
    dest.mkdir(parents=True, exist_ok=True)
    for city, src in reports.items():
        if (dest / city).exists():
            shutil.rmtree(dest / city)
        shutil.copytree(src, dest / city)
    keys = [("elsewhere_venue_p@10", "similar elsewhere (venue p@10)"), ("probe_macro_f1", "venue probe macro-F1"),
            ("recall@10", "recall@10"), ("elsewhere_landuse_p@10", "similar elsewhere (land use p@10)")]
    lines = [f"# `loc2vec evaluate` reports: recipe `{name}`, each city left out of training", "",
             "Each folder holds the full report (`report.md`, `metrics.json`, `plots/`) of the model trained on every "
             "other shared city and evaluated on this one, with the command line that reproduces it. Made by "
             f"`{command}`. Each cell: model / best no-learning baseline (which one, in the report).", "",
             "| city | " + " | ".join(label for _, label in keys) + " | mean cosine |", "|---|" + "---|" * (len(keys) + 1)]
    for city, v in per_city.items():
        cells = []
        for k, _ in keys:
            row = v.get(k, {})
            best = max((row[s] for s in ("fractions", "multiscale", "random_conv") if s in row), default=None)
            cells.append(f"{row['model']:.3f} / {best:.3f}" if "model" in row and best is not None else "—")
        cos = v.get("mean_cos", {}).get("model")
        lines.append(f"| [{city}]({city}/report.md) | " + " | ".join(cells) + f" | {cos:.3f} |" if cos is not None
                     else f"| [{city}]({city}/report.md) | " + " | ".join(cells) + " | — |")
    lines += ["", "Map data © OpenStreetMap contributors, ODbL 1.0 (https://www.openstreetmap.org/copyright).", ""]
    (dest / "README.md").write_text("\n".join(lines))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--recipe", default="triplet", choices=sorted(RECIPES))
    ap.add_argument("--minutes", type=float, default=6.0, help="training budget per held-out city")
    ap.add_argument("--held-out", default=DEFAULT_HELD_OUT)
    ap.add_argument("--work", default=str(REPO / "out" / "loco"))
    ap.add_argument("--areas", default=str(REPO / "out" / "cities"), help="area rasters (made on first use)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--device", default="cpu",
                    help="where to train (cuda on a GPU machine: train there with --train-only, score here)")
    ap.add_argument("--fresh", action="store_true", help="retrain even where a run folder exists")
    ap.add_argument("--train-only", action="store_true", help="train and export; score later")
    ap.add_argument("--hybrid-share", type=float, default=None,
                    help="score the hybrid export (learned part + composition, this share) of each run")
    ap.add_argument("--composition-transform", default="linear", choices=["linear", "sqrt"],
                    help="the hybrid's composition transform (loc2vec export --composition-transform)")
    ap.add_argument("--reports", default=None,
                    help="also copy each held-out city's full evaluate report into this folder (+ README.md index)")
    ap.add_argument("--out", default=None, help="Markdown table (a JSON twin is written beside it)")
    args = ap.parse_args()

    held = [c for c in args.held_out.split(",") if c]
    unknown = [c for c in held if c not in CITIES]
    if unknown:
        sys.exit(f"error: unknown cities {unknown}\n  fix: choose from {', '.join(CITIES)}")
    work, areas_dir = Path(args.work), Path(args.areas)
    work.mkdir(parents=True, exist_ok=True)
    per_city, steps, reports = {}, {}, {}
    for city in held:
        if city in NOT_SCORED:
            print(f"{city}: not scored ({NOT_SCORED[city]})")
            continue
        print(f"{city}:", flush=True)
        onnx = train_and_export(args.recipe, city, args.minutes, work, areas_dir, args.seed, args.fresh, args.device)
        if args.hybrid_share:
            onnx = export_hybrid(onnx, city, args.hybrid_share, areas_dir, args.composition_transform)
        if args.train_only:
            continue
        metrics = evaluate(onnx, city, work, areas_dir, args.seed)
        reports[city] = onnx.parent / f"eval_{city}"
        run = work / f"{args.recipe}_without_{city}"
        if (run / "summary.json").is_file():
            steps[city] = json.loads((run / "summary.json").read_text())["step"]
        per_city[city] = values(metrics)
        print("  " + ", ".join(f"{k} {v.get('model', float('nan')):.3f}" for k, v in per_city[city].items()
                               if k in HEADLINE), flush=True)
    command = "python benchmarks/loco.py " + " ".join(sys.argv[1:])
    name = args.recipe + (f" + composition (hybrid, share {args.hybrid_share:g}"
                          + ("" if args.composition_transform == "linear" else f", {args.composition_transform}")
                          + ")" if args.hybrid_share else "")
    text = table(name, per_city, args.minutes, command)
    if steps:
        text += ("\nTraining steps reached in the budget: "
                 + ", ".join(f"{c} {n}" for c, n in steps.items()) + ".\n")
    if args.reports:
        copy_reports(reports, per_city, Path(args.reports), name, command)
    print(text)
    if args.out:
        Path(args.out).write_text(text)
        Path(args.out).with_suffix(".json").write_text(json.dumps(
            {"recipe": args.recipe, "hybrid_share": args.hybrid_share,
             "composition_transform": args.composition_transform if args.hybrid_share else None, "steps": steps,
             "settings": RECIPES[args.recipe], "minutes": args.minutes, "command": command, "per_city": per_city},
            indent=2))


if __name__ == "__main__":
    main()
