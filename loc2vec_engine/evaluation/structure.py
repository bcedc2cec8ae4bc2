"""Structure of an embedding over an area: KMeans silhouette, geographic vs embedding distance, trustworthiness.

Each metric is measured on ``repeats`` seeded random halves of the cells (the same halves for every
feature set), which gives a spread to judge differences by. Trustworthiness@10 (scikit-learn) treats the
geographic positions as the original space: are a cell's 10 nearest cells in the embedding also among
its nearest on the ground?
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

N_CLUSTERS = 8
NEIGHBOURS = 10
REPEATS = 5
MAX_PAIRS = 20000


@dataclass
class StructurePlan:
    subsets: list[np.ndarray]  # cell indexes of each repeat
    pairs: list[np.ndarray]  # (P, 2) cell-index pairs of each repeat for the Spearman correlation
    k: int


def structure_plan(n_cells: int, rng: np.random.Generator, repeats: int = REPEATS,
                   k: int = N_CLUSTERS) -> StructurePlan:
    """Seeded halves of the cells (all of them when there are too few) and their distance pairs."""
    half = n_cells // 2 if n_cells >= 8 * NEIGHBOURS else n_cells
    subsets, pairs = [], []
    for _ in range(repeats):
        s = np.sort(rng.choice(n_cells, size=half, replace=False))
        i, j = np.triu_indices(len(s), k=1)
        if len(i) > MAX_PAIRS:
            pick = rng.choice(len(i), size=MAX_PAIRS, replace=False)
            i, j = i[pick], j[pick]
        subsets.append(s)
        pairs.append(np.stack([s[i], s[j]], axis=1))
    return StructurePlan(subsets, pairs, int(min(k, max(2, half // 10))))


def structure_metrics(features, xy, plan: StructurePlan, seed: int = 0) -> dict[str, np.ndarray]:
    """Per repeat: ``silhouette``, ``spearman_geo_embedding`` and ``trustworthiness@10`` (NaN where undefined)."""
    features = np.asarray(features, np.float64)
    out = {"silhouette": [], "spearman_geo_embedding": [], "trustworthiness@10": []}
    for s, p in zip(plan.subsets, plan.pairs):
        out["silhouette"].append(_silhouette(features[s], plan.k, seed))
        out["spearman_geo_embedding"].append(_spearman(features, xy, p))
        out["trustworthiness@10"].append(_trust(xy[s], features[s]))
    return {k: np.asarray(v, float) for k, v in out.items()}


def _silhouette(f, k, seed) -> float:
    from sklearn.cluster import KMeans
    from sklearn.metrics import silhouette_score

    if len(np.unique(f.round(9), axis=0)) < k:
        return float("nan")  # fewer distinct points than clusters (e.g. every channel zeroed)
    labels = KMeans(n_clusters=k, n_init=3, random_state=seed).fit_predict(f)
    if len(np.unique(labels)) < 2:
        return float("nan")
    return float(silhouette_score(f, labels))


def _spearman(f, xy, pairs) -> float:
    from scipy.stats import spearmanr

    geo = np.hypot(*(xy[pairs[:, 0]] - xy[pairs[:, 1]]).T)
    emb = np.sqrt(((f[pairs[:, 0]] - f[pairs[:, 1]]) ** 2).sum(1))
    if np.ptp(emb) == 0:
        return float("nan")
    return float(spearmanr(geo, emb).statistic)


def _trust(xy, f) -> float:
    from sklearn.manifold import trustworthiness

    if len(xy) <= 2 * NEIGHBOURS:
        return float("nan")  # scikit-learn needs more than twice the neighbours
    return float(trustworthiness(xy, f, n_neighbors=NEIGHBOURS))
