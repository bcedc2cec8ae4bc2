"""Similar places elsewhere: do a cell's nearest neighbours in feature space, at least 1 km away, share its kind?

For each query cell (every evaluated cell with a label that is not "none" and at least ``k`` cells
``min_m`` or more away), take the ``k`` most similar cells among those ``min_m`` or more away
(everything nearer is excluded by construction: the tile overlap and spatial autocorrelation that make
re-identification easy cannot help) and count the share with the query's label: precision@k. The
gallery is all evaluated cells, unlabelled ones included (a miss). Two labellings: the venue type
(``venues.dominant_category``, the probe's label) and the land-use class (``landuse.landuse_labels``).

Similarity: cosine for the model and its random initialisation (unit vectors, compared as in training),
Euclidean for the standardised baselines and the coordinates (as every other metric compares them).
Ties at the k-th distance are resolved by the expectation over a random pick among the tied cells, so
identical features score chance, not an artefact of the sort order. Chance: the share of a query's far
cells with its label (the precision of k random far cells), averaged over the queries.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

MIN_DIST_M = 1000.0
K = 10
MIN_QUERIES = 20
NONE = "none"
VARIANTS = {"elsewhere_venue_p@10": "venue type", "elsewhere_landuse_p@10": "land-use class"}


@dataclass
class ElsewherePlan:
    key: str
    label: str
    labels: np.ndarray  # (N,) label per evaluated cell
    queries: np.ndarray  # (Q,) cell indexes of the queries
    far: np.ndarray  # (Q, N) bool: cell at least min_m from the query
    chance_per_query: np.ndarray  # (Q,)
    min_m: float = MIN_DIST_M
    k: int = K
    reason: str = ""

    @property
    def measurable(self) -> bool:
        return not self.reason

    @property
    def chance(self) -> float | None:
        return float(self.chance_per_query.mean()) if len(self.chance_per_query) else None

    def describe(self) -> dict:
        names, counts = np.unique(self.labels[self.queries].astype(str), return_counts=True)
        d = {"key": self.key, "label": self.label, "min_m": self.min_m, "k": self.k, "queries": int(len(self.queries)),
             "cells": int(len(self.labels)), "labelled_cells": int((self.labels != NONE).sum()),
             "query_labels": {str(n): int(c) for n, c in zip(names, counts)},
             "chance": self.chance, "measurable": self.measurable}
        if self.reason:
            d["reason"] = self.reason
        return d


def plan_elsewhere(key: str, labels, cells_xy, min_m: float = MIN_DIST_M, k: int = K,
                   min_queries: int = MIN_QUERIES) -> ElsewherePlan:
    """The queries (labelled cells with at least ``k`` cells ``min_m`` away) and their far cells."""
    labels = np.asarray(labels, dtype=object)
    xy = np.asarray(cells_xy, float)
    labelled = np.flatnonzero(labels != NONE)
    d = np.hypot(*(xy[labelled][:, None, :] - xy[None, :, :]).transpose(2, 0, 1)) if len(labelled) else \
        np.zeros((0, len(xy)))
    far = d >= min_m
    ok = far.sum(axis=1) >= k
    queries, far = labelled[ok], far[ok]
    same = labels[None, :] == labels[queries][:, None]
    chance = (same & far).sum(axis=1) / np.maximum(far.sum(axis=1), 1) if len(queries) else np.zeros(0)
    plan = ElsewherePlan(key, VARIANTS.get(key, key), labels, queries, far, chance.astype(float), float(min_m), int(k))
    if len(queries) < min_queries:
        plan.reason = (f"not measurable here (area too small or too few labelled cells): only {len(queries)} "
                       f"labelled cells have {k} cells ≥ {min_m / 1000:g} km away (need {min_queries})")
    return plan


def feature_distances(queries, cells, cosine: bool) -> np.ndarray:
    """(Q, N) distances: 1 - cosine, or squared Euclidean; rounded so float noise makes no false order."""
    a, b = np.asarray(queries, np.float64), np.asarray(cells, np.float64)
    if cosine:
        a = a / np.maximum(np.linalg.norm(a, axis=1, keepdims=True), 1e-12)
        b = b / np.maximum(np.linalg.norm(b, axis=1, keepdims=True), 1e-12)
        d = 1.0 - a @ b.T
    else:
        d = np.maximum((a * a).sum(1)[:, None] + (b * b).sum(1)[None, :] - 2.0 * a @ b.T, 0.0)
    scale = max(float(np.abs(d).max()) if d.size else 0.0, 1e-12)
    return np.round(d / scale, 9)


def precision_at_k(plan: ElsewherePlan, features, cosine: bool = False) -> np.ndarray:
    """Per query: the share of its ``k`` most similar far cells that have its label (ties: expected value)."""
    f = np.asarray(features, np.float64)
    if len(plan.queries) == 0:
        return np.zeros(0)
    d = feature_distances(f[plan.queries], f, cosine)
    d[~plan.far] = np.inf
    k = plan.k
    kth = np.partition(d, k - 1, axis=1)[:, k - 1][:, None]
    match = plan.labels[None, :] == plan.labels[plan.queries][:, None]
    less, tied = d < kth, d == kth
    n_less = less.sum(axis=1)
    hits = (less & match).sum(axis=1) + (k - n_less) * (tied & match).sum(axis=1) / tied.sum(axis=1)
    return hits / k


def neighbours(plan: ElsewherePlan, features, cosine: bool = False) -> np.ndarray:
    """(Q, k) cell indexes of each query's most similar far cells (ties by index), for inspection and tests."""
    f = np.asarray(features, np.float64)
    d = feature_distances(f[plan.queries], f, cosine)
    d[~plan.far] = np.inf
    return np.argsort(d, axis=1, kind="stable")[:, :plan.k]
