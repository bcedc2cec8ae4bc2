"""Two ways to score every cell from example cells, and the default threshold of each.

* **prototype** (any number of examples): the cosine of a cell to the mean of the positives, minus
  its cosine to the mean of the negatives when there are negatives. Works from a single example.
  With two or more positives and a negative its held-out quality is a leave-one-out ROC AUC: each
  example scored by the prototypes of the others.
* **logistic** (at least ``MIN_PER_CLASS`` positive and negative cells): a class-balanced logistic
  regression on the embeddings (scikit-learn). Its probabilities are calibrated (Platt scaling) on
  out-of-fold decisions of a k-fold cross-validation, and the same out-of-fold decisions give the
  cross-validated ROC AUC. Folds keep the cells of one tile-sized block together when there are
  enough blocks: neighbouring cells share most of their map tile, so splitting them would grade the
  model on near-copies of its training cells.

``auto`` takes the logistic regression when both sides have enough cells, else the prototype.

Default thresholds: the logistic probability 0.5 (even odds: the classes are balanced, so the
numbers of positives and negatives given do not move it). For the prototype, the score of the
weakest positive, so that the mask holds every example, but never above the 95th percentile of all
scores: a single example scores 1 with itself, and its own cell alone would be no answer.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from ..errors import Loc2VecError

METHODS = ("auto", "prototype", "logistic")
MIN_PER_CLASS = 5  # positive and negative cells the logistic regression needs
FOLDS = 5
PROTOTYPE_TOP_SHARE = 0.05  # the prototype's threshold keeps at least this share of the cells
LOGISTIC_THRESHOLD = 0.5
_BLOCK_ROWS = 262_144  # rows scored at a time: bounds the float32 temporaries for millions of cells


@dataclass
class Scores:
    """A score for every cell, how it was made, and how well it held out."""

    values: np.ndarray  # (N,) float32
    method: str  # "prototype" or "logistic"
    why: str  # why this method (auto's choice, or asked for)
    heldout_auc: float | None  # ROC AUC on held-out examples; None when it cannot be measured
    heldout_how: str  # how it was held out, or why not
    threshold: float
    threshold_why: str
    n_pos: int = 0
    n_neg: int = 0

    def describe(self) -> str:
        if self.method == "logistic":
            return "class-balanced logistic regression, probabilities calibrated on cross-validated decisions"
        return "prototype: cosine to the mean positive" + (" minus cosine to the mean negative"
                                                            if self.n_neg else "")


def choose_method(method: str, n_pos: int, n_neg: int) -> tuple[str, str]:
    """(method, why) for ``method`` in METHODS; too few examples for an asked method is an error."""
    if method not in METHODS:
        raise Loc2VecError(f"unknown scoring method {method!r}", f"use one of {', '.join(METHODS)}")
    if n_pos < 1:
        raise Loc2VecError("no positive example", "give at least one place like the ones to find (--positive)")
    enough = n_pos >= MIN_PER_CLASS and n_neg >= MIN_PER_CLASS
    if method == "logistic" and not enough:
        raise Loc2VecError(
            f"--method logistic needs at least {MIN_PER_CLASS} positive and {MIN_PER_CLASS} negative cells, "
            f"and got {n_pos} positive and {n_neg} negative",
            "give more examples (a polygon gives every cell inside it), or use --method prototype or auto")
    if method == "logistic":
        return "logistic", "asked for (--method logistic)"
    if method == "prototype":
        return "prototype", "asked for (--method prototype)"
    if enough:
        return "logistic", f"auto: {n_pos} positive and {n_neg} negative cells (>= {MIN_PER_CLASS} each)"
    return "prototype", (f"auto: fewer than {MIN_PER_CLASS} positive and {MIN_PER_CLASS} negative cells "
                         f"({n_pos} and {n_neg}) for the logistic regression")


def score_cells(vectors, pos, neg, method: str = "auto", threshold: float | None = None, seed: int = 0,
                groups=None) -> Scores:
    """Scores of every row of ``vectors`` (N, D) from example rows ``pos`` and ``neg``.

    ``groups`` (N,) optional block id per cell: cross-validation keeps a block in one fold.
    """
    pos, neg = np.asarray(pos, np.int64), np.asarray(neg, np.int64)
    method, why = choose_method(method, len(pos), len(neg))
    if method == "logistic":
        values, auc, how = logistic_scores(vectors, pos, neg, seed=seed, groups=groups)
    else:
        values = prototype_scores(vectors, pos, neg)
        auc, how = prototype_heldout(vectors, pos, neg)
    if threshold is None:
        threshold, threshold_why = default_threshold(method, values, pos)
    else:
        threshold, threshold_why = check_threshold(threshold), "given (--threshold)"
    return Scores(values=values, method=method, why=why, heldout_auc=auc, heldout_how=how,
                  threshold=float(threshold), threshold_why=threshold_why, n_pos=len(pos), n_neg=len(neg))


# ---- prototype -------------------------------------------------------------------------------
def prototype_scores(vectors, pos, neg) -> np.ndarray:
    """(N,) cos(v, mean positive) - cos(v, mean negative) (the second term only with negatives)."""
    q = [_unit_mean(vectors, pos, "positive")]
    if len(neg):
        q.append(_unit_mean(vectors, neg, "negative"))
    weights = np.stack(q, axis=1).astype(np.float32)
    out = np.empty(len(vectors), np.float32)
    for start in range(0, len(vectors), _BLOCK_ROWS):
        block = np.asarray(vectors[start:start + _BLOCK_ROWS], np.float32) @ weights
        out[start:start + len(block)] = block[:, 0] - block[:, 1] if len(neg) else block[:, 0]
    return out


def prototype_heldout(vectors, pos, neg) -> tuple[float | None, str]:
    """Leave-one-out ROC AUC of the prototype: every example scored by the means of the others."""
    if len(pos) < 2 or len(neg) < 1:
        return None, "not measured: a held-out score needs 2 or more positive and 1 or more negative cells"
    vp = np.asarray(vectors[pos], np.float64)
    vn = np.asarray(vectors[neg], np.float64)
    sp, sn = vp.sum(0), vn.sum(0)

    def cos(v, m):  # rows of v against rows of m, each row of m normalised
        norm = np.linalg.norm(m, axis=-1)
        return np.einsum("ij,ij->i", v, m) / np.where(norm > 1e-12, norm, np.inf)

    up, un = _unit(sp), _unit(sn)
    pos_scores = cos(vp, sp - vp) - vp @ un  # each positive without itself
    neg_scores = vn @ up - (cos(vn, sn - vn) if len(neg) > 1 else 0.0)
    return roc_auc(pos_scores, neg_scores), f"leave-one-out over {len(pos)} positive and {len(neg)} negative cells"


# ---- logistic regression ---------------------------------------------------------------------
def logistic_scores(vectors, pos, neg, seed: int = 0, groups=None) -> tuple[np.ndarray, float, str]:
    """(N,) calibrated probabilities, the cross-validated ROC AUC, and how the folds were made."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import cross_val_predict

    rows = np.concatenate([pos, neg])
    y = np.concatenate([np.ones(len(pos), int), np.zeros(len(neg), int)])
    dim = vectors.shape[1]
    scale = math.sqrt(dim)  # unit vectors -> features of about unit variance, so C=1 is a mild penalty
    x = np.asarray(vectors[rows], np.float64) * scale
    model = LogisticRegression(C=1.0, class_weight="balanced", max_iter=2000)
    cv, how, fold_groups = _folds(y, None if groups is None else np.asarray(groups)[rows], seed)
    try:
        oof = cross_val_predict(model, x, y, cv=cv, groups=fold_groups, method="decision_function")
    except ValueError:  # grouped folds that left a class out of a training set: plain stratified folds
        cv, how, _ = _folds(y, None, seed)
        oof = cross_val_predict(model, x, y, cv=cv, method="decision_function")
    auc = roc_auc(oof[y == 1], oof[y == 0])
    platt = LogisticRegression(C=1e4, class_weight="balanced", max_iter=2000).fit(oof[:, None], y)
    a, c = float(platt.coef_[0, 0]), float(platt.intercept_[0])
    a = max(a, 0.0)  # held-out decisions that go the wrong way: no ranking is better than an inverted one
    model.fit(x, y)
    w = (model.coef_[0] * scale * a).astype(np.float32)
    b = float(model.intercept_[0]) * a + c
    out = np.empty(len(vectors), np.float32)
    for start in range(0, len(vectors), _BLOCK_ROWS):
        z = np.asarray(vectors[start:start + _BLOCK_ROWS], np.float32) @ w + np.float32(b)
        out[start:start + len(z)] = 1.0 / (1.0 + np.exp(-np.clip(z, -60, 60)))
    return out, auc, how


def _folds(y, groups, seed):
    """(splitter, description, groups or None): grouped folds when every class spans enough blocks."""
    from sklearn.model_selection import StratifiedGroupKFold, StratifiedKFold

    k = int(min(FOLDS, (y == 1).sum(), (y == 0).sum()))
    if groups is not None and all(len(np.unique(groups[y == label])) >= k for label in (0, 1)):
        return (StratifiedGroupKFold(n_splits=k, shuffle=True, random_state=seed),
                f"{k}-fold cross-validation, cells of one tile-sized block in the same fold", groups)
    return (StratifiedKFold(n_splits=k, shuffle=True, random_state=seed),
            f"{k}-fold cross-validation over cells (the examples lie in too few tile-sized blocks to keep "
            "neighbours together: optimistic)", None)


# ---- thresholds ------------------------------------------------------------------------------
def default_threshold(method: str, values, pos) -> tuple[float, str]:
    if method == "logistic":
        return LOGISTIC_THRESHOLD, "the default for the calibrated probability: even odds"
    weakest = float(np.min(values[pos]))
    top = float(np.quantile(values, 1.0 - PROTOTYPE_TOP_SHARE))
    if weakest <= top:
        return weakest, "the default for the prototype: the weakest positive's score (every example in the mask)"
    return top, (f"the default for the prototype: the best {PROTOTYPE_TOP_SHARE:.0%} of cells (the weakest "
                 f"positive's score, {weakest:.4f}, would keep fewer)")


def check_threshold(value) -> float:
    try:
        t = float(value)
    except (TypeError, ValueError):
        t = math.nan
    if isinstance(value, bool) or not math.isfinite(t):
        raise Loc2VecError(f"the threshold must be a number, not {value!r}",
                           "give e.g. --threshold 0.5 (probability) or leave it out for the method's default")
    return t


# ---- helpers ---------------------------------------------------------------------------------
def roc_auc(pos_scores, neg_scores) -> float:
    """Probability that a positive outscores a negative (ties count half): the Mann-Whitney ROC AUC."""
    p, n = np.asarray(pos_scores, float), np.asarray(neg_scores, float)
    both = np.concatenate([p, n])
    _, inverse, counts = np.unique(both, return_inverse=True, return_counts=True)
    ranks = (np.cumsum(counts) - (counts - 1) / 2.0)[inverse]  # 1-based ranks, ties averaged
    return float((ranks[:len(p)].sum() - len(p) * (len(p) + 1) / 2) / (len(p) * len(n)))


def _unit(v):
    norm = np.linalg.norm(v)
    return v / norm if norm > 1e-12 else v * 0.0


def _unit_mean(vectors, rows, what: str) -> np.ndarray:
    v = np.asarray(vectors[rows], np.float64).mean(axis=0)
    if np.linalg.norm(v) < 1e-6:
        raise Loc2VecError(f"the {what} examples cancel out (their mean embedding is zero)",
                           f"give {what} examples that are alike, or fewer of them")
    return v / np.linalg.norm(v)
