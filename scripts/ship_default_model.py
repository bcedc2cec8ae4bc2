"""Package a trained run as the default model that ships, and write its score card.

    .venv/bin/python scripts/ship_default_model.py out/ship/infonce_comp_all --hybrid-share 0.5 \\
        --loco docs/quality_loco.json --train-command out/ship/train.sh

Writes ``resources/models/loc2vec-default.onnx`` (the hybrid export when ``--hybrid-share`` is given:
learned embedding ⊕ standardised multi-scale composition, statistics from the run's training areas),
a weights-only checkpoint ``resources/models/loc2vec-default.pt`` (the learned part: model + meta, a
starting point for ``--pretrained``), and ``docs/default_model.md``: how it was trained (from the run's
config and metrics, and the exact command) and how its recipe scores on cities left out of training
(the leave-one-city-out table of ``benchmarks/loco.py``, whose JSON ``--loco`` names).
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
sys.path.insert(0, str(REPO / "benchmarks"))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("run", help="run folder of loc2vec train")
    ap.add_argument("--hybrid-share", type=float, default=None, help="export the hybrid model with this share")
    ap.add_argument("--composition-transform", default="linear", choices=["linear", "sqrt"])
    ap.add_argument("--loco", default=None, help="JSON twin of the leave-one-city-out table of this recipe")
    ap.add_argument("--train-command", default=None, help="the file holding the exact training command")
    args = ap.parse_args()

    import torch

    from loc2vec_engine.encoders import load_encoder
    from loc2vec_engine.training.checkpoint import load_checkpoint
    from loc2vec_engine.training.export import export_run

    run = Path(args.run)
    models = REPO / "resources" / "models"
    models.mkdir(parents=True, exist_ok=True)
    onnx_path = export_run(run, models / "loc2vec-default.onnx", hybrid_share=args.hybrid_share,
                           composition_transform=args.composition_transform)
    ck = load_checkpoint(run / "best.pt")
    torch.save({"model": ck["model"], "meta": ck["meta"], "step": ck["step"]}, models / "loc2vec-default.pt")
    model = load_encoder(run / "best.pt")
    cfg = json.loads((run / "config.json").read_text())
    summary = json.loads((run / "summary.json").read_text())
    minutes = _minutes(run)
    command = Path(args.train_command).read_text().strip() if args.train_command else "(not recorded)"
    rel = run.relative_to(REPO) if run.is_relative_to(REPO) else run
    ship = (f"python scripts/ship_default_model.py {rel}"
            + (f" --hybrid-share {args.hybrid_share:g}" if args.hybrid_share else "")
            + (f" --composition-transform {args.composition_transform}"
               if args.composition_transform != "linear" else "")
            + (f" --loco {args.loco}" if args.loco else "")
            + (f" --train-command {args.train_command}" if args.train_command else ""))
    size = (onnx_path.stat().st_size + (models / "loc2vec-default.pt").stat().st_size) / 2**20
    lines = [
        "# The default model", "",
        f"`resources/models/loc2vec-default.onnx` ({onnx_path.stat().st_size / 2**20:.1f} MiB) and its weights-only "
        f"checkpoint `loc2vec-default.pt` ({(models / 'loc2vec-default.pt').stat().st_size / 2**20:.1f} MiB; "
        f"{size:.1f} MiB together). Map data © OpenStreetMap contributors, ODbL 1.0: the model was trained on "
        "tiles derived from it.", "",
        "## What it is", "",
    ]
    if args.hybrid_share:
        d = int(model.meta["embedding_dim"])
        lines += [
            f"A **hybrid** model: the ONNX graph outputs the learned {d}-D embedding joined with the tile's multi-scale "
            "composition (mean of each of the 12 channels over centred windows of 30, 60 and 100 % of the tile "
            "side: 36 numbers)" + (", square-rooted (so that small shares count: a rural town's 2 against 4 % "
                                   "of buildings like a city's 30 against 40 %)"
                                   if args.composition_transform == "sqrt" else "")
            + ", standardised with the statistics of the training cities' tiles (400 per city, stored in the file), "
            "L2-normalised:", "",
            f"    vector = normalise([ sqrt({1 - args.hybrid_share:g}) · learned,  sqrt({args.hybrid_share:g}) · "
            "composition / sqrt(36) ])", "",
            f"so the cosine of two places is about {1 - args.hybrid_share:g} × the learned similarity + "
            f"{args.hybrid_share:g} × the composition similarity. The metadata (`hybrid.parts`) names the columns; "
            "`loc2vec evaluate` scores each part alone beside the whole. `loc2vec-default.pt` is the learned part.", ""]
    else:
        lines += [f"The learned {model.meta['embedding_dim']}-D embedding alone.", ""]
    lines += [
        "## How it was trained", "",
        f"- Encoder `{cfg['encoder']}` ({sum(p.numel() for p in model.parameters()) / 1e6:.2f} M parameters), embedding "
        f"{cfg['embedding_dim']}, tiles of {cfg['tile_size_m']:g} m at {cfg['tile_size_px']} px.",
        f"- Data: {len(cfg['areas'])} areas, every shared city ({', '.join(Path(a).stem for a in cfg['areas'])}), "
        "rasterized with the default spec by `benchmarks/cities.py` from `../shared/data`.",
        f"- Objective: {cfg.get('loss', 'triplet')}"
        + (f" (τ {cfg['temperature']:g}, candidates of the same area < {cfg['false_negative_m']:g} m masked, "
           f"positives {cfg['pos_range_m'][0]:g}–{cfg['pos_range_m'][1]:g} m away, uniformity weight "
           f"{cfg['uniformity_weight']:g}, composition head weight {cfg['composition_weight']:g})"
           if cfg.get("loss") == "infonce" else f" ({cfg['mining']} mining, margin {cfg['margin']})") + ".",
        f"- {summary['step']} steps of {cfg['batch_size']} in {minutes:.0f} minutes on {platform.machine()} CPU "
        f"(2 cores, shared with other jobs), stopped by: {summary['stopped']}; Adam {cfg['lr']:g}, built-up weight "
        f"{cfg['built_up_weight']:g}, areas balanced: {cfg['balance_areas']}.",
        "- Commands:", "", "```sh", "python benchmarks/cities.py   # rasterizes ../shared/data into out/cities",
        command, ship, "```", "",
    ]
    if args.loco:
        lines += _loco_section(Path(args.loco))
    lines += [f"Written {time.strftime('%Y-%m-%d')} by `{ship}`. The training curve: `curves.png` of the run "
              "(copied to `docs/default_model_curves.png`).", ""]
    (REPO / "docs" / "default_model.md").write_text("\n".join(lines))
    (REPO / "docs" / "default_model_curves.png").write_bytes((run / "curves.png").read_bytes())
    print("\n".join(lines))


def _loco_section(path: Path) -> list[str]:
    from loco import targets

    data = json.loads(path.read_text())
    per_city = data["per_city"]
    lines = ["## How its recipe scores on cities it never saw", "",
             "Every shared city is in the shipped model's training data, so it is scored here through its recipe: "
             f"the same settings trained for {data['minutes']:g} CPU minutes on all cities but one, exported the "
             "same way (composition statistics from those training cities only), and evaluated with "
             "`loc2vec evaluate` on the city left out. Full table: `docs/quality_loco.md` "
             f"(`{data['command']}`).", "",
             "| city | " + " | ".join(t for t, _, _ in targets(next(iter(per_city.values())))) + " |",
             "|---|" + "---|" * len(targets(next(iter(per_city.values()))))]
    met = missed = 0
    for city, v in per_city.items():
        cells = []
        for _, ok, fig in targets(v):
            met += ok is True
            missed += ok is False
            cells.append(("met" if ok else "missed" if ok is not None else "—") + f" ({fig})")
        lines.append(f"| {city} | " + " | ".join(cells) + " |")
    lines += ["", f"**{met} of {met + missed} city targets met, {missed} missed.** Where it still loses is in the "
              "table: read it before relying on \"similar places\".", ""]
    return lines


def _minutes(run: Path) -> float:
    import csv

    with open(run / "metrics.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    return float(rows[-1]["elapsed_s"]) / 60 if rows else 0.0


if __name__ == "__main__":
    main()
