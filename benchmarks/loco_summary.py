"""One table of every leave-one-city-out run: each direction tried is a row, the no-learning baselines below.

    .venv/bin/python benchmarks/loco_summary.py docs/quality_loco_triplet.json docs/quality_loco.json \\
        docs/quality_loco_hard.json --out docs/quality_loco_summary.md

Reads the JSON twins that ``benchmarks/loco.py --out`` writes and prints the mean over the held-out
cities of the headline metrics, for the model of each run and (for hybrid runs) its learned part alone;
the baselines come from the first file (every run scores them on the same cells). Numbers are copied
from those files, never typed. Map data © OpenStreetMap contributors, ODbL 1.0.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

KEYS = [("elsewhere_venue_p@10", "similar elsewhere, venue p@10"), ("elsewhere_landuse_p@10", "… land use p@10"),
        ("probe_macro_f1", "venue probe F1"), ("triplet_acc_ge2km", "triplets ≥ 2 km"), ("recall@10", "recall@10"),
        ("mean_cos", "mean cosine")]
BASELINES = ("fractions", "multiscale", "random_conv", "random_init")


def targets_met(per_city: dict, s: str) -> str:
    """'met of all' of the issue's per-city targets (``loco.targets``), scoring feature set ``s`` as the model."""
    from loco import targets

    met = total = 0
    for v in per_city.values():
        as_model = {k: dict(row, model=row[s]) for k, row in v.items() if s in row}
        for _, ok, _ in targets(as_model):
            total += ok is not None
            met += bool(ok)
    return f"{met} / {total}"


def mean(per_city: dict, key: str, s: str):
    xs = [v[key][s] for v in per_city.values() if key in v and s in v[key]]
    return float(np.mean(xs)) if xs else None


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("runs", nargs="+", help="JSON files written by benchmarks/loco.py --out")
    ap.add_argument("--out", default=None)
    ap.add_argument("--section-of", default=None, metavar="MD",
                    help="also put the table into this Markdown file, between loco-summary markers (replaced)")
    args = ap.parse_args()
    runs = [json.loads(Path(p).read_text()) for p in args.runs]
    cities = sorted({c for r in runs for c in r["per_city"]})
    lines = ["# Leave one city out: every direction tried", "",
             f"Mean over the held-out cities ({', '.join(cities)}); per-city values and spreads in each run's own "
             "table. Command: `python benchmarks/loco_summary.py " + " ".join(args.runs) + "`.", "",
             "| features | minutes | steps (per city) | " + " | ".join(label for _, label in KEYS)
             + " | city targets met |",
             "|---|---:|---|" + "---:|" * len(KEYS) + "---:|"]

    def fmt(x):
        return "—" if x is None else f"{x:.3f}"

    learned_seen = set()  # one "learned part alone" row per trained run (shares of one run repeat it)
    for r in runs:
        tf = r.get("composition_transform") or "linear"
        name = r["recipe"] + (f" + composition (hybrid {r['hybrid_share']:g}{'' if tf == 'linear' else ', ' + tf})"
                              if r.get("hybrid_share") else "")
        steps = ", ".join(f"{c} {n}" for c, n in (r.get("steps") or {}).items()) or "—"
        once = (r["recipe"], steps) not in learned_seen
        learned_seen.add((r["recipe"], steps))
        sets = [("model", name)] + ([("model_learned", f"{r['recipe']}: learned part alone")]
                                    if r.get("hybrid_share") and once else [])
        for s, label in sets:
            lines.append(f"| {label} | {r['minutes']:g} | {steps} | "
                         + " | ".join(fmt(mean(r["per_city"], k, s)) for k, _ in KEYS)
                         + f" | {targets_met(r['per_city'], s)} |")
    base = runs[0]["per_city"]
    for s in BASELINES:
        lines.append(f"| baseline: {s} | — | — | " + " | ".join(fmt(mean(base, k, s)) for k, _ in KEYS) + " | — |")
    lines += ["", "The issue's per-city targets are checked in each run's own table (section \"The issue's targets\").",
              ""]
    text = "\n".join(lines)
    print(text)
    if args.out:
        Path(args.out).write_text(text)
    if args.section_of:
        put_section(Path(args.section_of), text)


BEGIN, END = "<!-- loco-summary: written by benchmarks/loco_summary.py -->", "<!-- /loco-summary -->"


def put_section(path: Path, text: str) -> None:
    """Replace the marked section of ``path`` with ``text`` (one level deeper), or put it first."""
    old = path.read_text() if path.is_file() else ""
    body = f"{BEGIN}\n#{text}\n{END}\n"
    if BEGIN in old and END in old:
        new = old[:old.index(BEGIN)] + body + old[old.index(END) + len(END) + 1:]
    else:
        new = body + "\n" + old
    path.write_text(new)


if __name__ == "__main__":
    sys.exit(main())
