"""Urban-form probes: can a linear read-out of the features tell building size and street density?

Per evaluated cell, within ``RADIUS_M`` (250 m) of its centre (``form_osm`` reads the objects):

- ``form_building_size_r2``: log10 of the mean footprint area (m²) of the buildings whose centroid lies
  in the disc (log: footprints span four orders of magnitude, and one warehouse should not make the
  score); cells without a building are left out.
- ``form_intersections_r2``: street intersections per km² in the disc, the disc's area taken inside the
  area's bounds (where the map, and so the tile, ends).

Pixel counts need not answer these: a block of small houses and one large hall can cover the same share
of a tile. Ridge regression (features standardised on the training fold, the penalty chosen by a
blocked cross-validation inside the training fold), scored by R² on held-out folds; the folds are the
venue probe's kind, whole ``BLOCK_M`` spatial blocks held out (``probe.spatial_blocks``,
``GroupKFold``). R² is out-of-sample: about the training folds' mean, so 0 = no better than predicting
that mean everywhere, below 0 = worse.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .probe import BLOCK_M, FOLDS, spatial_blocks

RADIUS_M = 250.0
MIN_CELLS = 30
ALPHAS = np.logspace(-2, 6, 17)  # on standardised features: from almost least squares to the mean
TARGETS = {"form_building_size_r2": "log10 mean building footprint (m²)",
           "form_intersections_r2": "street intersections per km²"}


@dataclass
class FormPlan:
    """One regression target: its values, the cells used and the folds; ``reason`` when it cannot run."""

    key: str
    target: np.ndarray  # (N,) over the evaluated cells, NaN where undefined
    keep: np.ndarray  # (N,) bool
    folds: list = field(default_factory=list)
    blocks: int = 0
    block_m: float = BLOCK_M
    reason: str = ""
    xy: np.ndarray | None = None  # (N, 2) cell centres, for the inner (penalty) folds

    @property
    def measurable(self) -> bool:
        return not self.reason

    def describe(self) -> dict:
        y = self.target[self.keep]
        d = {"key": self.key, "target": TARGETS.get(self.key, self.key), "radius_m": RADIUS_M,
             "cells": int(self.keep.sum()), "blocks": self.blocks, "folds": len(self.folds),
             "block_m": self.block_m, "measurable": self.measurable,
             "target_mean": float(y.mean()) if len(y) else None, "target_std": float(y.std()) if len(y) else None}
        if self.reason:
            d["reason"] = self.reason
        return d


def form_targets(cells_xy, form, bounds=None, radius_m: float = RADIUS_M) -> dict[str, np.ndarray]:
    """Per cell: ``building_size`` (log10 mean footprint m², NaN without a building) and ``intersections``
    (per km² of the disc inside ``bounds``)."""
    from scipy.spatial import cKDTree

    xy = np.asarray(cells_xy, float).reshape(-1, 2)
    size = np.full(len(xy), np.nan)
    if len(form.building_area_m2):
        tree = cKDTree(form.building_xy)
        for i, hits in enumerate(tree.query_ball_point(xy, r=radius_m)):
            if hits:
                size[i] = np.log10(form.building_area_m2[hits].mean())
    count = np.zeros(len(xy))
    if len(form.intersection_xy):
        count = np.asarray([len(h) for h in cKDTree(form.intersection_xy).query_ball_point(xy, r=radius_m)], float)
    disc_km2 = disc_area_inside(xy, radius_m, bounds) / 1e6
    return {"form_building_size_r2": size,
            "form_intersections_r2": np.where(disc_km2 > 0, count / np.maximum(disc_km2, 1e-12), np.nan)}


def disc_area_inside(xy, radius_m: float, bounds=None) -> np.ndarray:
    """Area (m²) of the disc of ``radius_m`` around each point that lies inside ``bounds`` (w, s, e, n)."""
    import shapely

    xy = np.asarray(xy, float).reshape(-1, 2)
    if bounds is None:
        return np.full(len(xy), np.pi * radius_m ** 2)
    discs = shapely.buffer(shapely.points(xy), radius_m, quad_segs=32)
    # the 128-gon's area, scaled to the true disc's: the clip is what matters, not the polygon's corners
    full = shapely.area(discs)
    return shapely.area(shapely.intersection(discs, shapely.box(*bounds))) * (np.pi * radius_m ** 2) / full


def plan_form(key: str, target, xy, block_m: float = BLOCK_M, n_folds: int = FOLDS,
              min_cells: int = MIN_CELLS) -> FormPlan:
    """Cells with a defined target, grouped by spatial block into folds (or the reason there can be none)."""
    from sklearn.model_selection import GroupKFold

    target = np.asarray(target, float)
    keep = np.isfinite(target)
    groups = spatial_blocks(np.asarray(xy)[keep], block_m) if keep.any() else np.zeros(0, np.int64)
    plan = FormPlan(key, target, keep, blocks=int(len(np.unique(groups))), block_m=float(block_m),
                    xy=np.asarray(xy, float))
    if keep.sum() < min_cells:
        plan.reason = f"only {int(keep.sum())} cells have a value (need {min_cells})"
    elif np.ptp(target[keep]) == 0:
        plan.reason = "the target is the same for every cell"
    elif plan.blocks < 2:
        plan.reason = f"the cells fall in fewer than two {block_m:g} m blocks, so no block can be held out"
    else:
        splitter = GroupKFold(n_splits=min(n_folds, plan.blocks))
        plan.folds = list(splitter.split(np.zeros(len(groups)), target[keep], groups))
    return plan


def run_form_probe(plan: FormPlan, features) -> np.ndarray:
    """Per fold: R² of a ridge regression from ``features`` to the target (NaN on a constant test fold).

    The penalty is chosen inside each training fold by a blocked inner cross-validation over its own
    blocks (leave-one-out would pick too weak a penalty: a cell's neighbours are near-copies of it).
    """
    x = np.asarray(features, np.float64)[plan.keep]
    y = plan.target[plan.keep]
    groups = spatial_blocks(plan_xy(plan), plan.block_m) if plan.xy is not None else None
    r2 = []
    for train, test in plan.folds:
        alpha = choose_alpha(x[train], y[train], None if groups is None else groups[train])
        pred = ridge_predict(x[train], y[train], x[test], [alpha])[:, 0]
        r2.append(r_squared(y[test], pred, reference=y[train].mean()))
    return np.asarray(r2, float)


def plan_xy(plan: FormPlan) -> np.ndarray:
    return np.asarray(plan.xy)[plan.keep]


def ridge_predict(x_train, y_train, x_test, alphas) -> np.ndarray:
    """(T, len(alphas)) predictions of ridge regressions on standardised features (one SVD for all alphas).

    Features are standardised with the training mean and std (constant features are left at 0), the
    target centred on its training mean, which is the intercept.
    """
    mean, std = x_train.mean(axis=0), x_train.std(axis=0)
    std = np.where(std > 1e-12, std, 1.0)
    a, b = (x_train - mean) / std, (x_test - mean) / std
    y0 = y_train.mean()
    u, s, vt = np.linalg.svd(a, full_matrices=False)
    uty = u.T @ (y_train - y0)
    proj = b @ vt.T  # (T, r)
    shrink = s[None, :] / (s[None, :] ** 2 + np.asarray(alphas, float)[:, None])  # (A, r)
    return y0 + proj @ (shrink * uty[None, :]).T


def choose_alpha(x, y, groups=None, n_inner: int = 3) -> float:
    """The ``ALPHAS`` value with the least squared error over an inner GroupKFold of the training blocks
    (plain 3-fold by order when there are fewer than two blocks)."""
    from sklearn.model_selection import GroupKFold, KFold

    if groups is not None and len(np.unique(groups)) >= 2:
        splits = GroupKFold(n_splits=min(n_inner, len(np.unique(groups)))).split(x, y, groups)
    else:
        splits = KFold(n_splits=min(n_inner, len(y))).split(x)
    err = np.zeros(len(ALPHAS))
    for tr, te in splits:
        pred = ridge_predict(x[tr], y[tr], x[te], ALPHAS)
        err += ((pred - y[te][:, None]) ** 2).sum(axis=0)
    return float(ALPHAS[int(err.argmin())])


def r_squared(y, pred, reference: float | None = None) -> float:
    """1 - SSE / SST, SST about ``reference`` (default: the test values' own mean); NaN when SST is 0.

    The probe passes the training folds' mean: out-of-sample R², 0 for predicting that mean everywhere,
    so a held-out block whose own values barely vary cannot make a fair prediction look hopeless.
    """
    y, pred = np.asarray(y, float), np.asarray(pred, float)
    ref = y.mean() if reference is None else float(reference)
    sst = float(((y - ref) ** 2).sum())
    if sst == 0:
        return float("nan")
    return 1.0 - float(((y - pred) ** 2).sum()) / sst
