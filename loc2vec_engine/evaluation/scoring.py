"""Every metric of one feature set on the shared evaluation set, and the paired verdicts between two sets.

A metric is kept as its per-unit values (per triplet, per query, per repeat, per fold), all units shared
by every feature set, so a comparison is paired: the model and a baseline are judged on the same triplets,
queries, halves and folds.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .elsewhere import ElsewherePlan, precision_at_k
from .form import FormPlan, run_form_probe
from .probe import ProbePlan, run_probe
from .reid import BANDS, Band, Views, retrieval, triplet_hits
from .structure import StructurePlan, structure_metrics

# key -> (label, spread kind): "se" = standard error of per-item values, "std" = std over folds / repeats.
METRICS = {
    **{key: (f"triplet accuracy, negatives {label}", "se") for key, label, _, _ in BANDS},
    "recall@1": ("recall@1", "se"),
    "recall@5": ("recall@5", "se"),
    "recall@10": ("recall@10", "se"),
    "mrr": ("MRR", "se"),
    "silhouette": ("silhouette of KMeans clusters", "std"),
    "spearman_geo_embedding": ("Spearman ρ, geographic vs embedding distance", "std"),
    "trustworthiness@10": ("trustworthiness@10", "std"),
    "probe_accuracy": ("venue probe accuracy", "std"),
    "probe_macro_f1": ("venue probe macro-F1", "std"),
    "elsewhere_venue_p@10": ("similar places ≥ 1 km away: venue-type precision@10", "se"),
    "elsewhere_landuse_p@10": ("similar places ≥ 1 km away: land-use precision@10", "se"),
    "form_building_size_r2": ("urban form: building footprint size within 250 m, ridge R²", "std"),
    "form_intersections_r2": ("urban form: street intersections per km² within 250 m, ridge R²", "std"),
}
SPREAD_WORDS = {"se": "standard error of the paired differences", "std": "std of the paired differences"}


@dataclass
class EvalSet:
    """What every feature set is measured on."""

    cells_xy: np.ndarray
    views: Views
    bands: list[Band]
    structure: StructurePlan
    probe: ProbePlan
    seed: int
    elsewhere: list[ElsewherePlan] = field(default_factory=list)
    form: list[FormPlan] = field(default_factory=list)


def score(es: EvalSet, e_cells, e_query=None, e_pos=None, probe_features=None,
          distances: bool = True, cosine: bool = False) -> dict[str, np.ndarray]:
    """Per-unit values of every metric for embeddings of the cells, queries and positives.

    ``probe_features`` (default ``e_cells``) feed the probes; ``distances=False`` skips re-identification
    and structure (the coordinates, for which they are the answer). ``cosine``: "similar places
    elsewhere" compares by cosine (the model's unit vectors), else by Euclidean distance.
    """
    out: dict[str, np.ndarray] = {}
    if distances:
        anchors = e_query[es.views.has_pos]
        for band in es.bands:
            if band.measurable:
                out[band.key] = triplet_hits(anchors, e_pos, e_cells, band)
        rng = np.random.default_rng([es.seed, 7])  # the same tie-breaks for every feature set
        out.update(retrieval(e_query, e_cells, es.views.query_cell, es.cells_xy, rng))
        out.update(structure_metrics(e_cells, es.cells_xy, es.structure, es.seed))
    features = e_cells if probe_features is None else probe_features
    if es.probe.measurable:
        out.update(run_probe(es.probe, features, es.seed))
    for plan in es.elsewhere:
        if plan.measurable:
            out[plan.key] = precision_at_k(plan, e_cells, cosine)
    for plan in es.form:
        if plan.measurable:
            out[plan.key] = run_form_probe(plan, features)
    return out


def summary(values: np.ndarray, kind: str) -> dict:
    """Mean and spread of per-unit values; NaN (undefined) gives a null value."""
    v = np.asarray(values, float)
    ok = v[np.isfinite(v)]
    if len(ok) == 0:
        return {"value": None, "spread": None, "spread_kind": kind, "n": int(len(v))}
    sd = float(ok.std(ddof=1)) if len(ok) > 1 else 0.0
    d = {"value": float(ok.mean()), "spread": sd / np.sqrt(len(ok)) if kind == "se" else sd, "spread_kind": kind,
         "n": int(len(v))}
    if kind == "std":
        d["values"] = [float(x) for x in v]
    return d


def verdict(model: np.ndarray, base: np.ndarray, kind: str) -> dict | None:
    """Paired comparison: "beats" / "loses to" when the mean difference exceeds one spread, else "ties"."""
    m, b = np.asarray(model, float), np.asarray(base, float)
    if m.shape != b.shape or not (np.isfinite(m).all() and np.isfinite(b).all()) or len(m) == 0:
        return None
    d = m - b
    sd = float(d.std(ddof=1)) if len(d) > 1 else 0.0
    spread = sd / np.sqrt(len(d)) if kind == "se" else sd
    diff = float(d.mean())
    word = "beats" if diff > spread else "loses to" if diff < -spread else "ties with"
    return {"verdict": word, "model": float(m.mean()), "baseline": float(b.mean()), "diff": diff,
            "spread": spread, "spread_kind": kind}
