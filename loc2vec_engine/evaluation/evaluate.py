"""``evaluate_model``: every metric of an ONNX model on an area, beside its baselines, into a report folder.

Order: check every input (model, area, channels, OSM source, output folder) before the long work; then
cells, views and triplets; embeddings of the model and the baselines; metrics; the ablation; the report.
"""

from __future__ import annotations

import shlex
import time
from pathlib import Path

import numpy as np

from .. import ATTRIBUTION, __version__
from ..errors import Loc2VecError
from ..progress import Progress

STRIDE_M = 50.0
MAX_CELLS = 1500
MAX_QUERIES = 300
MIN_VALID = 0.75
STAGES = 11  # inputs, evaluation set, model, 3 baselines, 4 ablation groups, report


def evaluate_model(model_path, area_path, osm_source, out_dir, stride_m: float = STRIDE_M, seed: int = 0,
                   max_cells: int = MAX_CELLS, max_queries: int = MAX_QUERIES, min_valid: float = MIN_VALID,
                   device: str = "auto", progress=None, command: str | None = None) -> dict:
    """Evaluate ``model_path`` on ``area_path`` with venues from ``osm_source``; write ``out_dir``.

    Returns the dict written as ``metrics.json``. ``progress``: a ``ProgressCallback`` (cancel raises
    ``Cancelled`` and leaves nothing behind).
    """
    from .report import check_report_dir, report_folder, write_report

    t0 = time.perf_counter()
    _check_numbers(stride_m, max_cells, max_queries, min_valid)
    check_report_dir(out_dir)
    with Progress(STAGES, "evaluate", progress) as progress_bar:
        bar = _Timed(progress_bar)
        inputs = _load_inputs(model_path, area_path, osm_source, device)
        bar.update(1, "inputs read")
        es, cells, extra = _evaluation_set(inputs, stride_m, max_cells, max_queries, min_valid, seed)
        bar.update(1, "cells, views and triplets")
        result = _measure(inputs, es, cells, seed, device, bar)
        result.update(extra)
        if "probe_majority" in result:
            result["probe"]["majority"] = result.pop("probe_majority")
        result.update(_describe(inputs, stride_m, max_cells, max_queries, min_valid, seed, device, out_dir,
                                command, cells))
        result["elapsed_s"] = round(time.perf_counter() - t0, 1)
        result["stage_seconds"] = bar.seconds
        with report_folder(out_dir) as tmp:
            write_report(tmp, result)
        progress_bar.finish("report written")  # after the rename: too late to cancel
    return result


class _Timed:
    """Progress updates that also record the seconds each stage took (for metrics.json)."""

    def __init__(self, bar):
        self.bar, self.seconds, self._t = bar, {}, time.perf_counter()

    def update(self, n: int = 1, message: str = "") -> None:
        now = time.perf_counter()
        if message:
            self.seconds[message] = round(now - self._t, 2)
        self._t = now
        self.bar.update(n, message)


def _check_numbers(stride_m, max_cells, max_queries, min_valid) -> None:
    from ..embeddings.grid import check_stride

    check_stride(stride_m)
    for name, v in (("--max-cells", max_cells), ("--max-queries", max_queries)):
        if isinstance(v, bool) or not isinstance(v, int) or v < 50:
            raise Loc2VecError(f"{name} must be an integer >= 50, not {v!r}", f"use e.g. {name} 1500")
    if not 0 < min_valid <= 1:
        raise Loc2VecError(f"min_valid must be in (0, 1], not {min_valid!r}", "use e.g. 0.75")


# ---- inputs ------------------------------------------------------------------------------------------

def _load_inputs(model_path, area_path, osm_source, device) -> dict:
    """Model, area and venues, each checked: a clear error for the first one that is wrong."""
    from ..embeddings.onnx_encoder import OnnxEncoder
    from ..tiles import PalettedArea
    from .venues import read_venues

    encoder = OnnxEncoder(model_path, device)
    area = PalettedArea.from_raster(area_path)
    encoder.check_channels(area.channel_names, f"area raster {Path(area_path).name}")
    venues = read_venues(osm_source, area.crs_wkt, area.bounds)
    if len(venues) == 0:
        raise Loc2VecError(f"OSM source {Path(osm_source).name} has no venues (POIs) inside the area "
                           f"({venues.read} in the whole source)",
                           "give the OSM extract that covers the area, e.g. the one it was rasterized from")
    return {"encoder": encoder, "area": area, "venues": venues, "area_path": Path(area_path),
            "osm_source": osm_source}


def _evaluation_set(inputs, stride_m, max_cells, max_queries, min_valid, seed):
    from ..tiles import TileSampler
    from .cells import evaluation_cells
    from .probe import plan_probe
    from .reid import make_bands, make_views
    from .scoring import EvalSet
    from .structure import structure_plan
    from .venues import RADIUS_M, dominant_category

    enc, area = inputs["encoder"], inputs["area"]
    rng = np.random.default_rng(seed)
    sampler = TileSampler(area, backend="cpu", tile_size_m=enc.tile_size_m)
    size = enc.tile_size_px
    cells = evaluation_cells(area, sampler, stride_m, size, max_cells, min_valid, rng)
    shift_m = min(stride_m / 2, 0.1 * enc.tile_size_m)
    views = make_views(cells, sampler, size, max_queries, shift_m, min_valid, rng)
    bands = make_bands(cells.xy, views, rng)
    if not any(b.measurable for b in bands):
        span = float(np.hypot(*np.ptp(cells.xy, axis=0))) if len(cells) else 0.0
        raise Loc2VecError(f"the area is too small for the distance bands: its {len(cells)} usable cells span at most "
                           f"{span:.0f} m, and the nearest band (negatives 0.5–1 km away) needs room for at least "
                           f"20 triplets", "evaluate on a larger area raster (at least ~1.5 km across)")
    labels = dominant_category(cells.xy, inputs["venues"], RADIUS_M)
    plan = plan_probe(labels, cells.xy)
    es = EvalSet(cells.xy, views, bands, structure_plan(len(cells), rng), plan, seed)
    extra = {"bands": [b.describe() for b in bands]}
    probe = plan.describe()
    probe["radius_m"] = RADIUS_M
    probe["all_labels"] = {str(k): int(v) for k, v in zip(*np.unique(labels.astype(str), return_counts=True))}
    extra["probe"] = probe
    return es, cells, extra


# ---- measuring ---------------------------------------------------------------------------------------

def _measure(inputs, es, cells, seed, device, bar) -> dict:
    """Embeddings of the model and the baselines, their metrics and verdicts, and the ablation."""
    from .ablation import channel_groups, zero_channels
    from .baselines import FractionsFeatures, random_init_model
    from .probe import majority_probe
    from .scoring import score

    enc, views = inputs["encoder"], es.views

    def embed_all(fn, zero=None):
        tiles = (cells.tiles, views.query_tiles, views.pos_tiles)
        if zero is not None:
            tiles = tuple(zero_channels(t, zero) for t in tiles)
        return tuple(_embed(fn, t) for t in tiles)

    scores = {"model": score(es, *embed_all(enc.embed))}
    bar.update(1, "model")
    fr = FractionsFeatures(cells.tiles)
    scores["fractions"] = score(es, *embed_all(fr.embed))
    bar.update(1, "fractions baseline")
    rand, reason = random_init_model(enc.meta, seed, device)
    if rand is not None:
        scores["random_init"] = score(es, *embed_all(rand.embed))
    bar.update(1, "random-init baseline")
    scores["coordinates"] = score(es, cells.xy, distances=False)
    bar.update(1, "coordinates baseline")
    groups = channel_groups(enc.channel_names)
    ablated = {}
    for g, idx in groups.items():
        ablated[g] = score(es, *embed_all(enc.embed, zero=idx))
        bar.update(1, f"ablation: {g}")
    bar.update(max(0, 4 - len(groups)))  # keep the stage count whatever groups the spec has
    out = _tables(es, scores, ablated)
    out["ablation"]["groups"] = {g: [enc.channel_names[i] for i in idx] for g, idx in groups.items()}
    out["baselines"] = {"random_init": {"available": rand is not None, "reason": reason,
                                        "seed": seed, "encoder": enc.meta.get("encoder")}}
    if es.probe.measurable:
        from .scoring import summary

        out["probe_majority"] = {k: summary(v, "std") for k, v in majority_probe(es.probe).items()}
    return out


def _embed(fn, tiles, batch: int = 256) -> np.ndarray:
    if len(tiles) == 0:
        return np.zeros((0, 1), np.float32)
    return np.concatenate([np.asarray(fn(tiles[i:i + batch])) for i in range(0, len(tiles), batch)])


def _tables(es, scores, ablated) -> dict:
    """metrics (summaries per set), not_measured, verdicts, headline, ablation drops, retrieval extras."""
    from .reid import BANDS
    from .report import SETS
    from .scoring import METRICS, summary, verdict

    n_cells = len(es.cells_xy)
    chance = {"recall@1": 1 / n_cells, "recall@5": 5 / n_cells, "recall@10": 10 / n_cells,
              **{key: 0.5 for key, *_ in BANDS}}
    metrics, not_measured, verdicts = {}, {}, []
    for key, (label, kind) in METRICS.items():
        if key not in scores["model"]:
            not_measured[label] = _why_not(es, key)
            continue
        row = {"label": label, "chance": round(chance[key], 4) if key in chance else None}
        for s, vals in scores.items():
            row[s] = summary(vals[key], kind) if key in vals else None
            if s != "model" and key in vals:
                v = verdict(scores["model"][key], vals[key], kind)
                if v is not None:
                    v.update(metric=key, label=label, baseline=s, text=_verdict_text(v, label, SETS[s]))
                    verdicts.append(v)
        metrics[key] = row
    full = {k: float(np.nanmean(v)) if np.isfinite(v).any() else None for k, v in scores["model"].items()}
    drops, values = {}, {}
    for g, sc in ablated.items():
        values[g] = {k: float(np.nanmean(sc[k])) if k in sc and np.isfinite(sc[k]).any() else None for k in metrics}
        drops[g] = {k: (full[k] - values[g][k]) if full.get(k) is not None and values[g][k] is not None else None
                    for k in metrics}
    rt = {"queries": int(len(es.views.query_cell)), "gallery": n_cells, "chance_recall@1": 1 / n_cells,
          "shift_m": es.views.shift_m,
          "median_top1_error_m": {s: float(np.median(v["top1_error_m"])) for s, v in scores.items()
                                  if "top1_error_m" in v}}
    st = {"k": es.structure.k, "repeats": len(es.structure.subsets),
          "cells_per_repeat": int(len(es.structure.subsets[0])), "neighbours": 10,
          "trustworthiness_original_space": "geographic cell positions"}
    return {"metrics": metrics, "not_measured": not_measured, "verdicts": verdicts,
            "headline": _headline(verdicts), "ablation": {"metrics": values, "drops": drops},
            "retrieval": rt, "structure": st}


def _why_not(es, key) -> str:
    for b in es.bands:
        if b.key == key:
            return b.describe().get("reason", "")
    if key.startswith("probe"):
        return es.probe.reason
    return "undefined on this area"


def _verdict_text(v, label, baseline) -> str:
    spread = "standard error" if v["spread_kind"] == "se" else "std"
    return (f"The model {v['verdict']} the {baseline} on {label}: {v['model']:.3f} vs {v['baseline']:.3f} "
            f"(difference {v['diff']:+.3f}; one {spread} of the paired differences = {v['spread']:.3f}).")


def _headline(verdicts) -> str:
    """Progress is judged by the probe's gain over the fractions baseline, not by triplet accuracy."""
    for v in verdicts:
        if v["metric"] == "probe_macro_f1" and v["baseline"] == "fractions":
            return (f"Venue-probe macro-F1 gain over the fractions baseline: {v['diff']:+.3f} ± {v['spread']:.3f} "
                    f"(std over folds): the model {v['verdict']} the fractions baseline.")
    return "The venue probe could not be measured here, so there is no headline gain over the fractions baseline."


# ---- description -------------------------------------------------------------------------------------

def _describe(inputs, stride_m, max_cells, max_queries, min_valid, seed, device, out_dir, command, cells) -> dict:
    enc, area, venues = inputs["encoder"], inputs["area"], inputs["venues"]
    if command is None:
        parts = ["loc2vec", "evaluate", str(enc.path), str(inputs["area_path"]), "--osm", str(inputs["osm_source"]),
                 "--out", str(out_dir), "--stride", f"{stride_m:g}", "--max-cells", str(max_cells),
                 "--max-queries", str(max_queries), "--seed", str(seed)]
        command = shlex.join(parts + (["--device", device] if device != "auto" else []))
    return {
        "loc2vec_version": __version__, "command": command, "attribution": ATTRIBUTION,
        "model": {"file": enc.path.name, "path": str(enc.path.resolve()), "sha256": enc.sha256,
                  "encoder": enc.meta.get("encoder"), "tile_size_px": enc.tile_size_px,
                  "tile_size_m": enc.tile_size_m, "embedding_size": enc.embedding_size,
                  "training_areas": enc.meta.get("training_areas"), "provider": enc.provider},
        "area": {"file": inputs["area_path"].name, "path": str(inputs["area_path"].resolve()),
                 "named_like_a_training_area": inputs["area_path"].name in (enc.meta.get("training_areas") or []),
                 "pixel_size_m": area.pixel_size, "bounds": list(area.bounds), "width": area.width,
                 "height": area.height},
        "osm_source": {"file": Path(str(inputs["osm_source"])).name, "path": str(inputs["osm_source"]),
                       "venues_read": venues.read, "venues_in_area": len(venues), "by_category": venues.counts()},
        "settings": {"stride_m": stride_m, "max_cells": max_cells, "max_queries": max_queries,
                     "min_valid": min_valid, "seed": seed, "device": device},
        "cells": {"grid": cells.grid_cells, "usable": cells.usable_cells, "evaluated": len(cells)},
    }
