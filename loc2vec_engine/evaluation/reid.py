"""Re-identification: triplet accuracy by distance band, and recall@k / MRR of rotated, shifted views.

Queries are views of cells: the tile at the cell centre plus a shift (at most half the grid stride per
axis, so the source cell stays the nearest grid cell), turned by a random angle. Each query with a
positive (a rotated view 100-200 m from the cell centre) is also the anchor of one triplet per band,
whose negative is a cell (unrotated) at the band's distance from the anchor's cell centre.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from .cells import cut_tiles, valid_share

BANDS = (("triplet_acc_0.5-1km", "0.5–1 km", 500.0, 1000.0),
         ("triplet_acc_1-2km", "1–2 km", 1000.0, 2000.0),
         ("triplet_acc_ge2km", "≥ 2 km", 2000.0, math.inf))
POSITIVE_M = (100.0, 200.0)
MIN_TRIPLETS = 20  # fewer triplets in a band than this: the band is "not measurable here"
POS_TRIES = 16
KS = (1, 5, 10)


@dataclass
class Views:
    """Query views of cells (``query_cell`` indexes the cells) and, per query, a positive view."""

    query_cell: np.ndarray  # (Q,)
    query_tiles: np.ndarray  # (Q, C, S, S)
    pos_tiles: np.ndarray  # (P, C, S, S), for the queries where has_pos
    has_pos: np.ndarray  # (Q,) bool
    shift_m: float


@dataclass
class Band:
    key: str
    label: str
    min_m: float
    max_m: float
    anchors: np.ndarray  # indexes into the positives (rows of Views.pos_tiles)
    negatives: np.ndarray  # cell index of each anchor's negative

    @property
    def measurable(self) -> bool:
        return len(self.anchors) >= MIN_TRIPLETS

    def describe(self) -> dict:
        d = {"key": self.key, "label": self.label, "min_m": self.min_m,
             "max_m": None if math.isinf(self.max_m) else self.max_m, "triplets": int(len(self.anchors)),
             "measurable": self.measurable}
        if not self.measurable:
            d["reason"] = (f"not measurable here (area too small): only {len(self.anchors)} anchors have a cell "
                           f"{self.label} away (need {MIN_TRIPLETS})")
        return d


def make_views(cells, sampler, size: int, n_queries: int, shift_m: float, min_valid: float,
               rng: np.random.Generator) -> Views:
    """``n_queries`` seeded query views of distinct cells, each with a positive where one fits in the area."""
    q = np.sort(rng.choice(len(cells), size=min(n_queries, len(cells)), replace=False))
    centres = cells.xy[q]
    query_xy = centres + rng.uniform(-shift_m, shift_m, (len(q), 2))
    query_tiles, _ = cut_tiles(sampler, query_xy, size, rng.uniform(0.0, 360.0, len(q)))
    pos_xy, has_pos = _positives(sampler, centres, min_valid, rng)
    pos_tiles, _ = cut_tiles(sampler, pos_xy[has_pos], size, rng.uniform(0.0, 360.0, int(has_pos.sum())))
    return Views(q, query_tiles, pos_tiles, has_pos, float(shift_m))


def _positives(sampler, centres, min_valid, rng):
    """Per centre, the first of POS_TRIES random points 100-200 m away whose tile is ``min_valid`` valid."""
    m = len(centres)
    d = rng.uniform(*POSITIVE_M, (m, POS_TRIES))
    t = rng.uniform(0.0, 2 * math.pi, (m, POS_TRIES))
    cand = centres[:, None, :] + np.stack([d * np.cos(t), d * np.sin(t)], axis=-1)
    ok = (valid_share(sampler, cand.reshape(-1, 2)) >= min_valid).reshape(m, POS_TRIES)
    return cand[np.arange(m), ok.argmax(axis=1)], ok.any(axis=1)


def make_bands(cells_xy, views: Views, rng: np.random.Generator) -> list[Band]:
    """One negative per anchor and band: a random cell whose centre is within the band from the anchor's."""
    anchor_cells = views.query_cell[views.has_pos]
    d = np.hypot(*(cells_xy[anchor_cells][:, None, :] - cells_xy[None, :, :]).transpose(2, 0, 1))
    bands = []
    for key, label, lo, hi in BANDS:
        inside = (d >= lo) & (d < hi)
        rows = np.flatnonzero(inside.any(axis=1))
        negs = np.array([rng.choice(np.flatnonzero(inside[r])) for r in rows], dtype=np.int64)
        bands.append(Band(key, label, lo, hi, rows, negs))
    return bands


def triplet_hits(e_pos_anchor, e_pos, e_cells, band: Band) -> np.ndarray:
    """Per triplet of ``band``: 1.0 when the anchor is nearer its positive than its negative (Euclidean)."""
    a, p, n = e_pos_anchor[band.anchors], e_pos[band.anchors], e_cells[band.negatives]
    return (((a - p) ** 2).sum(1) < ((a - n) ** 2).sum(1)).astype(float)


def retrieval(e_query, e_cells, query_cell, cells_xy, rng: np.random.Generator) -> dict:
    """Per query: hit@k (k in KS) and reciprocal rank of its own cell among all cells; top-1 error (m).

    Ties with the true cell are broken at random (seeded), so identical embeddings score chance, not 0 or 1.
    """
    d = _sq_dist(e_query, e_cells)
    true = d[np.arange(len(query_cell)), query_cell][:, None]
    less = (d < true).sum(axis=1)
    ties = (d == true).sum(axis=1) - 1
    rank = 1 + less + np.floor(rng.random(len(ties)) * (ties + 1)).astype(np.int64)
    out = {f"recall@{k}": (rank <= k).astype(float) for k in KS}
    out["mrr"] = 1.0 / rank
    top1 = d.argmin(axis=1)
    out["top1_error_m"] = np.hypot(*(cells_xy[top1] - cells_xy[query_cell]).T)
    return out


def _sq_dist(a, b) -> np.ndarray:
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    d = (a * a).sum(1)[:, None] + (b * b).sum(1)[None, :] - 2.0 * a @ b.T
    return np.maximum(d, 0.0)
