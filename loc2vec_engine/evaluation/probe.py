"""The venue-type probe: a logistic regression from features to a cell's dominant POI category.

Cross-validation is spatially blocked: cells are grouped by square blocks of ``block_m`` and whole
blocks are held out (``GroupKFold``), so a test cell's near-identical neighbours are not in training
(cells near a block's edge still see neighbours across it; blocks larger than a tile reduce that).
Features are standardised inside each fold; classes are weighted to balance. Classes with fewer than
``min_class_cells`` cells are left out of the probe and reported.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

BLOCK_M = 500.0
FOLDS = 5
MIN_CLASS_CELLS = 10
MAX_ITER = 2000


@dataclass
class ProbePlan:
    """Which cells the probe uses (``keep``), their labels and the folds; ``reason`` when it cannot run."""

    keep: np.ndarray  # (N,) bool over the evaluated cells
    labels: np.ndarray  # (K,) labels of the kept cells
    folds: list = field(default_factory=list)  # (train, test) index arrays into the kept cells
    classes: dict = field(default_factory=dict)  # class -> cells, of the classes used
    skipped: dict = field(default_factory=dict)  # class -> cells, of the classes left out
    blocks: int = 0
    block_m: float = BLOCK_M
    reason: str = ""

    @property
    def measurable(self) -> bool:
        return not self.reason

    def describe(self) -> dict:
        d = {"measurable": self.measurable, "block_m": self.block_m, "blocks": self.blocks,
             "folds": len(self.folds), "cells": int(self.keep.sum()), "classes": self.classes,
             "skipped_classes": self.skipped, "min_class_cells": MIN_CLASS_CELLS}
        if self.reason:
            d["reason"] = self.reason
        return d


def spatial_blocks(xy, block_m: float) -> np.ndarray:
    """A block id per point: the ``block_m`` square it falls in."""
    b = np.floor(np.asarray(xy, float) / block_m).astype(np.int64)
    _, ids = np.unique(b, axis=0, return_inverse=True)
    return ids.ravel()


def plan_probe(labels, xy, block_m: float = BLOCK_M, n_folds: int = FOLDS,
               min_class_cells: int = MIN_CLASS_CELLS) -> ProbePlan:
    """Drop rare classes, group the rest by block, and make the folds (or say why there can be none)."""
    from sklearn.model_selection import GroupKFold

    labels = np.asarray(labels, dtype=object)
    names, counts = np.unique(labels, return_counts=True)
    used = {str(n): int(c) for n, c in zip(names, counts) if c >= min_class_cells}
    skipped = {str(n): int(c) for n, c in zip(names, counts) if c < min_class_cells}
    keep = np.isin(labels, list(used))
    groups = spatial_blocks(np.asarray(xy)[keep], block_m)
    plan = ProbePlan(keep, labels[keep], classes=used, skipped=skipped, blocks=int(len(np.unique(groups))),
                     block_m=float(block_m))
    if len(used) < 2:
        plan.reason = (f"fewer than two venue classes with at least {min_class_cells} cells "
                       f"(classes: {dict(zip(map(str, names), map(int, counts)))})")
    elif plan.blocks < 2:
        plan.reason = f"the cells fall in fewer than two {block_m:g} m blocks, so no block can be held out"
    else:
        splitter = GroupKFold(n_splits=min(n_folds, plan.blocks))
        plan.folds = list(splitter.split(np.zeros(len(groups)), plan.labels, groups))
    return plan


def run_probe(plan: ProbePlan, features, seed: int = 0) -> dict[str, np.ndarray]:
    """Per fold: ``probe_accuracy`` and ``probe_macro_f1`` of a logistic regression on ``features``."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    x = np.asarray(features, np.float64)[plan.keep]

    def fit_predict(train, test):
        y = plan.labels[train]
        if len(set(y)) < 2:
            return np.full(len(test), y[0], dtype=object)
        model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=MAX_ITER, class_weight="balanced",
                                                                   random_state=seed))
        return model.fit(x[train], y.astype(str)).predict(x[test]).astype(object)

    return _score_folds(plan, fit_predict)


def majority_probe(plan: ProbePlan) -> dict[str, np.ndarray]:
    """The chance reference: every test cell gets the training folds' most frequent class."""

    def fit_predict(train, test):
        names, counts = np.unique(plan.labels[train], return_counts=True)
        return np.full(len(test), names[counts.argmax()], dtype=object)

    return _score_folds(plan, fit_predict)


def _score_folds(plan, fit_predict) -> dict[str, np.ndarray]:
    from sklearn.metrics import accuracy_score, f1_score

    acc, f1 = [], []
    for train, test in plan.folds:
        y, pred = plan.labels[test].astype(str), fit_predict(train, test).astype(str)
        acc.append(accuracy_score(y, pred))
        f1.append(f1_score(y, pred, average="macro", zero_division=0))
    return {"probe_accuracy": np.asarray(acc), "probe_macro_f1": np.asarray(f1)}
