"""The report folder: ``metrics.json``, ``report.md`` and ``plots/*.png``, written whole or not at all."""

from __future__ import annotations

import contextlib
import json
import math
import os
import shutil
import tempfile
from pathlib import Path

from .. import ATTRIBUTION
from ..atomic import check_folder_writable
from ..errors import Loc2VecError

SETS = {"model": "model", "model_learned": "learned part", "model_composition": "composition part",
        "fractions": "fractions baseline", "multiscale": "multi-scale fractions baseline",
        "random_conv": "random-convolution baseline", "random_init": "random-init model",
        "coordinates": "coordinates baseline"}
PART_SETS = ("model_learned", "model_composition")  # only for a hybrid model (its parts scored alone)


def present_sets(r: dict) -> dict[str, str]:
    """SETS less the hybrid parts when the model is not hybrid (no empty columns)."""
    have = {s for row in r.get("metrics", {}).values() for s in row if isinstance(row.get(s), dict)}
    return {s: name for s, name in SETS.items() if s not in PART_SETS or s in have}
PLOTS = ("probe.png", "triplets.png", "ablation.png")


# ---- the folder --------------------------------------------------------------------------------------

def check_report_dir(out_dir) -> Path:
    """Fail before any work when ``out_dir`` cannot become a report folder (an earlier report is replaced)."""
    out = Path(out_dir)
    parent = out.parent if str(out.parent) else Path(".")
    if not parent.is_dir():
        raise Loc2VecError(f"output folder {parent} does not exist", f"create it first: mkdir -p {parent}")
    check_folder_writable(parent)  # really creates a file: os.access says yes to root everywhere
    if out.exists() and not out.is_dir():
        raise Loc2VecError(f"{out} is a file, not a report folder", "give a folder name for --out, e.g. report")
    if out.is_dir() and any(out.iterdir()) and not (out / "metrics.json").is_file():
        raise Loc2VecError(f"{out} exists and is not a loc2vec report folder",
                           "give a new folder name for --out, or empty that folder")
    return out


@contextlib.contextmanager
def report_folder(out_dir):
    """Yield a temporary folder next to ``out_dir``; it becomes ``out_dir`` only if the block succeeds."""
    out = check_report_dir(out_dir)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", suffix=".part", dir=out.parent if str(out.parent) else "."))
    try:
        yield tmp
        old = None
        if out.exists():  # an earlier report (or an empty folder): swap, then remove the old one
            old = Path(tempfile.mkdtemp(prefix=f".{out.name}.", suffix=".old", dir=tmp.parent))
            os.replace(out, old / "report")
        os.replace(tmp, out)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def write_report(folder, result: dict) -> None:
    """Plots, ``report.md`` and ``metrics.json`` of ``result`` (what ``evaluate_model`` measured)."""
    folder = Path(folder)
    (folder / "plots").mkdir(exist_ok=True)
    result["plots"] = [f"plots/{name}" for name in PLOTS]
    _plot_probe(result, folder / "plots" / "probe.png")
    _plot_triplets(result, folder / "plots" / "triplets.png")
    _plot_ablation(result, folder / "plots" / "ablation.png")
    (folder / "report.md").write_text(render_markdown(result), encoding="utf-8")
    (folder / "metrics.json").write_text(json.dumps(_clean(result), indent=2, ensure_ascii=False) + "\n",
                                         encoding="utf-8")


def _clean(x):
    """JSON without NaN/inf (null instead), so any reader can parse metrics.json."""
    if isinstance(x, dict):
        return {str(k): _clean(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_clean(v) for v in x]
    if isinstance(x, float) and not math.isfinite(x):
        return None
    return x


# ---- report.md ---------------------------------------------------------------------------------------

def _fmt(v, digits: int = 3) -> str:
    return "—" if v is None else f"{v:.{digits}f}"


def _cell(s: dict | None) -> str:
    if not s or s.get("value") is None:
        return "—"
    sign = "±" if s["spread_kind"] == "std" else "± se"
    return f"{s['value']:.3f} {sign} {s['spread']:.3f}"


def render_markdown(r: dict) -> str:
    m, a = r["model"], r["area"]
    sets = present_sets(r)
    lines = [f"# loc2vec evaluation: {m['file']} on {a['file']}", "",
             f"- model: `{m['file']}` ({m['encoder']}, {m['tile_size_px']} px tiles of {m['tile_size_m']:g} m, "
             f"{m['embedding_size']}-D), sha256 `{m['sha256'][:16]}…`",
             f"- area: `{a['file']}` ({a['pixel_size_m']:g} m/px), OSM source `{r['osm_source']['file']}`",
             f"- cells: {r['cells']['evaluated']} evaluated of {r['cells']['usable']} usable "
             f"(tile ≥ {r['settings']['min_valid']:.0%} inside the area) of {r['cells']['grid']} on the "
             f"{r['settings']['stride_m']:g} m grid; seed {r['settings']['seed']}; {r['elapsed_s']:.0f} s",
             *(["", f"Note: the model's training areas ({', '.join(m['training_areas'])}) include a raster named "
                 f"{a['file']}: if it is the same ground, these scores are not held-out scores."]
               if a.get("named_like_a_training_area") else []),
             "", "## Headline", "", r["headline"], "", r["scoreboard"]["text"], "",
             *_health_lines(r),
             "## Every metric", "",
             "Mean ± spread: ± se = standard error over triplets / queries; ± = std over folds (probes) or over "
             f"{r['structure']['repeats']} random halves of the cells (structure). Higher is better everywhere. "
             "best no-learning: the highest of the fractions, multi-scale fractions and random-convolution "
             "baselines on that metric.", "",
             "| metric | " + " | ".join(sets.values()) + " | best no-learning | chance |",
             "|---|" + "---|" * (len(sets) + 2)]
    for key, row in r["metrics"].items():
        best = row.get("best_baseline")
        lines.append(f"| {row['label']} | " + " | ".join(_cell(row.get(s)) for s in sets)
                     + f" | {SETS[best] if best else '—'}"
                     + f" | {row.get('chance') if row.get('chance') is not None else '—'} |")
    for key, reason in r["not_measured"].items():
        lines.append(f"| {key} | not measured: {reason} |" + " |" * (len(sets) + 1))
    lines += ["", "## Against the best no-learning baseline", "",
              "Per metric, the model against whichever no-learning baseline scores highest there (picked after "
              "the fact, so the demanding comparison).", ""]
    lines += [f"- {v['text']}" for v in r.get("verdicts_vs_best", [])] or ["- no metric could be compared."]
    if r.get("learned_part_verdicts"):
        lv = r["learned_part_verdicts"]
        wins = {b: sum(v["verdict"] == "beats" for v in lv if v["baseline"] == b) for b in ("random_init", "random_conv")}
        n = {b: sum(v["baseline"] == b for v in lv) for b in wins}
        lines += ["", "## The hybrid's learned part alone", "",
                  "This model is hybrid: the learned embedding joined with the standardised multi-scale composition "
                  "(columns named in its metadata). Its learned part alone beats the random-init model on "
                  f"{wins['random_init']} of {n['random_init']} metrics and the random-convolution features on "
                  f"{wins['random_conv']} of {n['random_conv']}.", ""]
        lines += [f"- {v['text']}" for v in lv]
    lines += ["", "## Verdicts", "",
              "A difference counts when it exceeds one spread of the paired differences (same triplets, queries, "
              "halves or folds for model and baseline); otherwise the two tie.", ""]
    lines += [f"- {v['text']}" for v in r["verdicts"]]
    losses = [v for v in r["verdicts"] if v["verdict"] != "beats"]
    lines += ["", "## Where the model does not beat a baseline", ""]
    lines += [f"- {v['text']}" for v in losses] if losses else ["- nowhere: the model beats every baseline on every "
                                                                "metric measured here."]
    lines += ["", "## Distance bands", ""]
    for b in r["bands"]:
        lines.append(f"- {b['label']}: " + (f"{b['triplets']} triplets" if b["measurable"] else b["reason"]))
    rt = r["retrieval"]
    lines += ["", "## Re-identification of views", "",
              f"{rt['queries']} queries (each a view of a cell turned by a random angle and shifted by up to "
              f"{rt['shift_m']:g} m per axis) against a gallery of all {rt['gallery']} cells; chance recall@1 = "
              f"{rt['chance_recall@1']:.4f}. Median distance from the true cell to the top-1 cell: "
              + ", ".join(f"{SETS[s]} {_fmt(v, 0)} m" for s, v in rt["median_top1_error_m"].items()) + ".",
              "", "## Venue probe", ""]
    p = r["probe"]
    lines.append(f"Dominant POI category within {p['radius_m']:g} m of each cell centre; logistic regression "
                 f"(class-balanced, standardised in each fold), {p['folds']}-fold cross-validation over "
                 f"{p['blocks']} spatial blocks of {p['block_m']:g} m.")
    if not p["measurable"]:
        lines.append(f"Not measurable here: {p['reason']}.")
    lines.append("Cells per class: " + ", ".join(f"{k} {v}" for k, v in p["classes"].items()) + ".")
    if p["skipped_classes"]:
        lines.append(f"Left out (fewer than {p['min_class_cells']} cells): "
                     + ", ".join(f"{k} {v}" for k, v in p["skipped_classes"].items()) + ".")
    if p.get("majority"):
        lines.append(f"Majority-class reference: accuracy {_cell(p['majority']['probe_accuracy'])}, "
                     f"macro-F1 {_cell(p['majority']['probe_macro_f1'])}.")
    lines += _elsewhere_lines(r) + _form_lines(r)
    lines += ["", "## Channel-group ablation", "",
              "Each group zeroed in every tile at inference; drop = full model − ablated model (positive: the "
              "metric needs that group).", ""]
    ab = r["ablation"]
    keys = [k for k in r["metrics"] if any(k in d for d in ab["drops"].values())]
    lines += ["| group (channels) | " + " | ".join(r["metrics"][k]["label"] for k in keys) + " |",
              "|---|" + "---|" * len(keys)]
    for g, drops in ab["drops"].items():
        lines.append(f"| {g} ({', '.join(ab['groups'][g])}) | " + " | ".join(_fmt(drops.get(k)) for k in keys) + " |")
    if r["baselines"]["random_init"].get("reason"):
        lines += ["", f"Random-init baseline not measured: {r['baselines']['random_init']['reason']}."]
    lines += ["", "## Plots", ""] + [f"![{p}]({p})" for p in r["plots"]]
    lines += ["", "## Reproduce", "", "```", r["command"], "```", "", "## Data", "", ATTRIBUTION, ""]
    return "\n".join(lines)


def _health_lines(r: dict) -> list[str]:
    """Mean pairwise cosine and effective rank of each feature set's cell embeddings: collapse at a glance."""
    h = r.get("health") or {}
    if "model" not in h:
        return []
    m = h["model"]
    lines = ["## Embedding health", "",
             f"The model's {m['n']} cell embeddings: mean pairwise cosine {_fmt(m['mean_cos'])} (1 = every place "
             f"the same direction, collapsed), effective rank {_fmt(m['eff_rank'], 1)} of {m['dim']} dimensions "
             "(exp of the entropy of the normalised singular values; 1 = a single direction), "
             f"{_fmt(m['eff_rank_centred'], 1)} after subtracting the mean embedding (the directions in which "
             "places differ).", "",
             "| features | mean pairwise cosine | effective rank | effective rank, centred | dimensions |",
             "|---|---|---|---|---|"]
    for s, v in h.items():
        lines.append(f"| {SETS.get(s, s)} | {_fmt(v['mean_cos'])} | {_fmt(v['eff_rank'], 1)} | "
                     f"{_fmt(v['eff_rank_centred'], 1)} | {v['dim']} |")
    return lines + [""]


def _elsewhere_lines(r: dict) -> list[str]:
    e = r.get("elsewhere") or {}
    if not e:
        return []
    lu = e.get("landuse_labels", {})
    lines = ["", "## Similar places elsewhere", "",
             "For each labelled cell, its 10 most similar cells at least 1 km away (cosine for the model and its "
             "random initialisation, Euclidean for the other baselines): the share with the same label "
             "(precision@10). Chance: the share of the query's far cells with its label. Venue type: the probe's "
             f"label; land-use class: the landuse channel's class covering most of a {lu.get('window_m', 100):g} m "
             "window at the cell centre, else the land-cover channel (buildings by use, green, water) covering most "
             "of it.", ""]
    for key, d in e.items():
        if key == "landuse_labels":
            continue
        text = (f"{d['queries']} queries, chance {_fmt(d['chance'])}; query labels: "
                + ", ".join(f"{k} {v}" for k, v in d["query_labels"].items())) if d["measurable"] else d["reason"]
        lines.append(f"- {d['label']}: {text}")
    if lu.get("all_labels"):
        lines.append("- land-use classes of all cells: " + ", ".join(f"{k} {v}" for k, v in lu["all_labels"].items()))
    return lines


def _form_lines(r: dict) -> list[str]:
    f = r.get("form") or {}
    if not f:
        return []
    lines = ["", "## Urban form", "",
             f"Within {f['radius_m']:g} m of each cell centre, from the OSM source ({f['buildings']} buildings, "
             f"{f['intersections']} street intersections — nodes where at least {f['min_degree']} street segments "
             "meet — inside the area): ridge regression from the features (standardised on the training folds, the "
             "penalty chosen by a blocked cross-validation inside them), out-of-sample R² on spatially blocked "
             "held-out folds as the venue probe's (0 = no better than predicting the training folds' mean).", ""]
    for key, d in f["targets"].items():
        text = (f"{d['cells']} cells, {d['folds']} folds over {d['blocks']} blocks; target mean "
                f"{_fmt(d['target_mean'], 2)}, std {_fmt(d['target_std'], 2)}") if d["measurable"] else d["reason"]
        lines.append(f"- {d['target']}: {text}")
    return lines


# ---- plots -----------------------------------------------------------------------------------------

def _figure(width=7.0, height=4.0):
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), dpi=100)
    fig.text(0.99, 0.01, ATTRIBUTION, ha="right", va="bottom", fontsize=6, color="0.35")
    return fig


def _save(fig, path) -> None:
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    FigureCanvasAgg(fig)
    fig.savefig(path)


def _bars(ax, groups: list[str], series: dict[str, list], errors: dict[str, list] | None = None) -> None:
    import numpy as np

    x = np.arange(len(groups))
    w = 0.8 / max(len(series), 1)
    for i, (name, vals) in enumerate(series.items()):
        v = [np.nan if t is None else t for t in vals]
        e = None if errors is None else [0 if t is None else t for t in errors[name]]
        ax.bar(x + (i - (len(series) - 1) / 2) * w, v, w, yerr=e, label=name, capsize=3)
    ax.set_xticks(x, groups)
    ax.legend(fontsize=7, ncol=min(len(series), 3), loc="upper center")
    ax.grid(axis="y", alpha=0.3)


def _plot_probe(r, path) -> None:
    fig = _figure()
    ax = fig.add_axes([0.1, 0.15, 0.85, 0.75])
    keys = ("probe_macro_f1", "probe_accuracy")
    series, errors = {}, {}
    for s, name in present_sets(r).items():
        rows = [r["metrics"].get(k, {}).get(s) or {} for k in keys]
        series[name] = [row.get("value") for row in rows]
        errors[name] = [row.get("spread") for row in rows]
    _bars(ax, ["macro-F1", "accuracy"], series, errors)
    ax.set_ylim(0, 1.3)  # room for the legend above the bars
    ax.set_title("Venue-type probe (spatially blocked CV, mean ± std over folds)", fontsize=10)
    if not r["probe"]["measurable"]:
        ax.text(0.5, 0.5, "not measurable here", transform=ax.transAxes, ha="center")
    _save(fig, path)


def _plot_triplets(r, path) -> None:
    fig = _figure()
    ax = fig.add_axes([0.1, 0.15, 0.85, 0.75])
    bands = r["bands"]
    series, errors = {}, {}
    for s in ("model", "fractions", "multiscale", "random_conv", "random_init"):
        rows = [(r["metrics"].get(b["key"]) or {}).get(s) or {} for b in bands]
        series[SETS[s]] = [row.get("value") for row in rows]
        errors[SETS[s]] = [row.get("spread") for row in rows]
    labels = [b["label"] + ("" if b["measurable"] else "\n(not measurable)") for b in bands]
    _bars(ax, labels, series, errors)
    ax.set_ylim(0, 1.3)
    ax.axhline(0.5, color="0.5", lw=0.8, ls="--")
    ax.set_title("Triplet accuracy by negative distance (positive 100–200 m)", fontsize=10)
    _save(fig, path)


SHORT = {"elsewhere_venue_p@10": "elsewhere: venue p@10", "elsewhere_landuse_p@10": "elsewhere: land-use p@10",
         "form_building_size_r2": "building size R²", "form_intersections_r2": "intersections R²"}
CLIP = 1.0  # ablation bars beyond ±1 (R² of a broken read-out can fall far below 0) are cut there


def _plot_ablation(r, path) -> None:
    ab = r["ablation"]
    keys = [k for k in r["metrics"] if any(d.get(k) is not None for d in ab["drops"].values())]
    fig = _figure(max(7.0, 0.9 * len(keys) + 2), 4.5)
    ax = fig.add_axes([0.08, 0.3, 0.9, 0.6])
    series = {g: [None if d.get(k) is None else max(-CLIP, min(CLIP, d[k])) for k in keys]
              for g, d in ab["drops"].items()}
    short = [SHORT.get(k) or r["metrics"][k]["label"].replace("triplet accuracy, negatives", "triplets")
             .replace("venue ", "").replace(", geographic vs embedding distance", "")
             .replace(" of KMeans clusters", "") for k in keys]
    _bars(ax, short, series)
    ax.tick_params(axis="x", labelrotation=35, labelsize=7)
    ax.axhline(0, color="0.3", lw=0.8)
    ax.set_title(f"Drop of each metric when a channel group is zeroed (bars cut at ±{CLIP:g})", fontsize=10)
    _save(fig, path)
