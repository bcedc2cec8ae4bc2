"""Every metric of an encoder on an area, beside its baselines, as a dict: ``evaluate``'s work without a report.

``measure_model(encoder, area, osm_source)`` takes any encoder with ``embed(uint8 tiles (N, C, H, W)) ->
(N, D)``, ``tile_size_px``, ``tile_size_m``, ``channel_names`` and ``meta`` (an ``OnnxEncoder``, or a
torch model wrapped so), so a benchmark can score models without writing report folders.
``evaluate_model`` runs the same stages and writes the report.

Stages: inputs (area, venues, urban form) -> cells, views, triplets, labels and folds -> embeddings of
the model and the baselines -> metrics (``scoring``) -> ablation -> tables and verdicts (``tables``).
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from ..errors import Loc2VecError
from ..progress import Progress

STRIDE_M = 50.0
MAX_CELLS = 1500
MAX_QUERIES = 300
MIN_VALID = 0.75
ABLATION_STAGES = 4
# inputs, evaluation set, model, 5 baselines (fractions, multiscale, random_conv, random_init, coordinates)
STAGES = 8
BASELINE_SETS = ("fractions", "multiscale", "random_conv", "random_init", "coordinates")


def measure_model(encoder, area, osm_source, stride_m: float = STRIDE_M, seed: int = 0,
                  max_cells: int = MAX_CELLS, max_queries: int = MAX_QUERIES, min_valid: float = MIN_VALID,
                  device: str = "auto", ablation: bool = True, progress=None) -> dict:
    """The metrics dict of ``encoder`` on ``area`` (an area raster path or a ``PalettedArea``) with venues
    and urban form from ``osm_source``: what ``metrics.json`` holds, less the model's and area's description.

    ``ablation=False`` skips the channel-group ablation (4 more passes of the encoder). ``device``: for the
    random-init baseline's torch model. ``progress``: a ``ProgressCallback`` (cancel raises ``Cancelled``).
    """
    check_numbers(stride_m, max_cells, max_queries, min_valid)
    t0 = time.perf_counter()
    with Progress(STAGES + (ABLATION_STAGES if ablation else 0), "evaluate", progress) as progress_bar:
        bar = Timed(progress_bar)
        inputs = load_inputs(encoder, area, osm_source)
        bar.update(1, "inputs read")
        result = run_measurement(inputs, stride_m, max_cells, max_queries, min_valid, seed, device, bar, ablation)
    result["elapsed_s"] = round(time.perf_counter() - t0, 1)
    result["stage_seconds"] = bar.seconds
    return result


class Timed:
    """Progress updates that also record the seconds each stage took (for metrics.json)."""

    def __init__(self, bar):
        self.bar, self.seconds, self._t = bar, {}, time.perf_counter()

    def update(self, n: int = 1, message: str = "") -> None:
        now = time.perf_counter()
        if message:
            self.seconds[message] = round(now - self._t, 2)
        self._t = now
        self.bar.update(n, message)


def check_numbers(stride_m, max_cells, max_queries, min_valid) -> None:
    from ..embeddings.grid import check_stride

    check_stride(stride_m)
    for name, v in (("--max-cells", max_cells), ("--max-queries", max_queries)):
        if isinstance(v, bool) or not isinstance(v, int) or v < 50:
            raise Loc2VecError(f"{name} must be an integer >= 50, not {v!r}", f"use e.g. {name} 1500")
    if not 0 < min_valid <= 1:
        raise Loc2VecError(f"min_valid must be in (0, 1], not {min_valid!r}", "use e.g. 0.75")


# ---- inputs ------------------------------------------------------------------------------------------

def load_inputs(encoder, area, osm_source) -> dict:
    """Area, venues and urban form, each checked against the encoder: a clear error for the first one wrong."""
    from ..tiles import PalettedArea
    from .form_osm import read_urban_form
    from .venues import read_venues

    area_path = None
    if not isinstance(area, PalettedArea):
        area_path = Path(area)
        area = PalettedArea.from_raster(area_path)
    what = f"area raster {area_path.name}" if area_path is not None else "the area"
    if hasattr(encoder, "check_channels"):
        encoder.check_channels(area.channel_names, what)
    elif list(encoder.channel_names) != list(area.channel_names):
        raise Loc2VecError(f"{what} has channels {list(area.channel_names)}, but the model was trained on "
                           f"{list(encoder.channel_names)}",
                           "rasterize the area with the channel spec the model was trained with "
                           "(loc2vec rasterize --spec)")
    venues = read_venues(osm_source, area.crs_wkt, area.bounds)
    if len(venues) == 0:
        raise Loc2VecError(f"OSM source {Path(str(osm_source)).name} has no venues (POIs) inside the area "
                           f"({venues.read} in the whole source)",
                           "give the OSM extract that covers the area, e.g. the one it was rasterized from")
    form = read_urban_form(osm_source, area.crs_wkt, area.bounds)
    return {"encoder": encoder, "area": area, "venues": venues, "form": form, "area_path": area_path,
            "osm_source": osm_source}


def run_measurement(inputs, stride_m, max_cells, max_queries, min_valid, seed, device, bar,
                    ablation: bool = True) -> dict:
    """From the inputs to the metrics dict; ``bar.update`` after each stage (``Timed``)."""
    es, cells, extra = evaluation_set(inputs, stride_m, max_cells, max_queries, min_valid, seed)
    bar.update(1, "cells, views and triplets")
    result = measure_sets(inputs, es, cells, seed, device, bar, ablation)
    result.update(extra)
    if "probe_majority" in result:
        result["probe"]["majority"] = result.pop("probe_majority")
    result["settings"] = {"stride_m": stride_m, "max_cells": max_cells, "max_queries": max_queries,
                          "min_valid": min_valid, "seed": seed, "device": device}
    result["cells"] = {"grid": cells.grid_cells, "usable": cells.usable_cells, "evaluated": len(cells)}
    return result


def evaluation_set(inputs, stride_m, max_cells, max_queries, min_valid, seed):
    """Cells, views, bands, structure halves, and the probes' labels, targets and folds."""
    from ..tiles import TileSampler
    from .cells import evaluation_cells
    from .elsewhere import plan_elsewhere
    from .form import RADIUS_M as FORM_RADIUS_M
    from .form import form_targets, plan_form
    from .landuse import WINDOW_M, landuse_labels
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
    land = landuse_labels(area, cells.xy)
    elsewhere = [plan_elsewhere("elsewhere_venue_p@10", labels, cells.xy),
                 plan_elsewhere("elsewhere_landuse_p@10", land, cells.xy)]
    targets = form_targets(cells.xy, inputs["form"], area.bounds)
    form = [plan_form(key, y, cells.xy) for key, y in targets.items()]
    es = EvalSet(cells.xy, views, bands, structure_plan(len(cells), rng), plan, seed, elsewhere, form)
    extra = {"bands": [b.describe() for b in bands]}
    probe = plan.describe()
    probe["radius_m"] = RADIUS_M
    probe["all_labels"] = _counts(labels)
    extra["probe"] = probe
    extra["elsewhere"] = {p.key: p.describe() for p in elsewhere}
    extra["elsewhere"]["landuse_labels"] = {"window_m": WINDOW_M, "all_labels": _counts(land)}
    extra["form"] = {"radius_m": FORM_RADIUS_M, **inputs["form"].describe(),
                     "targets": {p.key: p.describe() for p in form}}
    return es, cells, extra


def _counts(labels) -> dict[str, int]:
    names, counts = np.unique(np.asarray(labels).astype(str), return_counts=True)
    return {str(k): int(v) for k, v in zip(names, counts)}


# ---- measuring ---------------------------------------------------------------------------------------

def measure_sets(inputs, es, cells, seed, device, bar, ablation: bool = True) -> dict:
    """Embeddings of the model and the baselines, their metrics, health and verdicts, and the ablation."""
    from ..encoders.composition import WINDOWS as MULTISCALE
    from ..encoders.composition import hybrid_parts
    from .ablation import channel_groups, zero_channels
    from .baselines import FractionsFeatures, MultiscaleFeatures, RandomConvFeatures, random_init_model
    from .health import embedding_health
    from .probe import majority_probe
    from .scoring import score
    from .tables import tables

    enc, views = inputs["encoder"], es.views

    def embed_all(fn, zero=None, cell_features=None):
        tiles = (cells.tiles, views.query_tiles, views.pos_tiles)
        if zero is not None:
            tiles = tuple(zero_channels(t, zero) for t in tiles)
        out = [cell_features] if cell_features is not None else [embed(fn, tiles[0])]
        return tuple(out + [embed(fn, t) for t in tiles[1:]])

    scores, health = {}, {}

    def add(name, embeddings, cosine=False):
        scores[name] = score(es, *embeddings, cosine=cosine)
        health[name] = embedding_health(embeddings[0])

    model_embeddings = embed_all(enc.embed)
    add("model", model_embeddings, cosine=True)
    for part in hybrid_parts(enc.meta):  # a hybrid model: each part alone, cut from the same vectors
        if part["name"] in ("learned", "composition"):
            cut = slice(part["start"], part["stop"])
            # each part back to unit length: the whole vector's normalisation mixed in the other part's length
            add(f"model_{part['name']}", tuple(unit_rows(e[:, cut]) for e in model_embeddings), cosine=True)
    bar.update(1, "model")
    add("fractions", embed_all(FractionsFeatures(cells.tiles).embed))
    bar.update(1, "fractions baseline")
    add("multiscale", embed_all(MultiscaleFeatures(cells.tiles).embed))
    bar.update(1, "multiscale baseline")
    rc = RandomConvFeatures(cells.tiles, seed=seed)
    add("random_conv", embed_all(rc.embed, cell_features=rc.fitted))
    bar.update(1, "random-conv baseline")
    rand, reason = random_init_model(enc.meta, seed, device)
    if rand is not None:
        add("random_init", embed_all(rand.embed), cosine=True)
    bar.update(1, "random-init baseline")
    scores["coordinates"] = score(es, cells.xy, distances=False)
    bar.update(1, "coordinates baseline")
    groups = channel_groups(enc.channel_names) if ablation else {}
    ablated = {}
    for g, idx in groups.items():
        ablated[g] = score(es, *embed_all(enc.embed, zero=idx), cosine=True)
        bar.update(1, f"ablation: {g}")
    if ablation:
        bar.update(max(0, ABLATION_STAGES - len(groups)))  # keep the stage count whatever groups the spec has
    out = tables(es, scores, ablated)
    out["ablation"]["groups"] = {g: [enc.channel_names[i] for i in idx] for g, idx in groups.items()}
    out["ablation"]["measured"] = bool(ablation)
    out["health"] = health
    out["baselines"] = {
        "random_init": {"available": rand is not None, "reason": reason, "seed": seed,
                        "encoder": enc.meta.get("encoder")},
        "multiscale": {"window_shares": list(MULTISCALE),
                       "features": int(len(MULTISCALE) * len(enc.channel_names))},
        "random_conv": {"features": int(rc.fitted.shape[1]), "seed": seed,
                        "filter_sizes": sorted(rc.filters), "working_px": rc.target_px},
    }
    if es.probe.measurable:
        from .scoring import summary

        out["probe_majority"] = {k: summary(v, "std") for k, v in majority_probe(es.probe).items()}
    return out


def unit_rows(e) -> np.ndarray:
    e = np.asarray(e, np.float32)
    return e / np.maximum(np.linalg.norm(e, axis=1, keepdims=True), 1e-12)


def embed(fn, tiles, batch: int = 256) -> np.ndarray:
    if len(tiles) == 0:
        return np.zeros((0, 1), np.float32)
    return np.concatenate([np.asarray(fn(tiles[i:i + batch])) for i in range(0, len(tiles), batch)])
