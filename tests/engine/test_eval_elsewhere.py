"""Similar places elsewhere (precision@10 of cells >= 1 km away) and the land-use label under a cell centre."""

import numpy as np
import pytest

from loc2vec_engine.evaluation.elsewhere import neighbours, plan_elsewhere, precision_at_k
from loc2vec_engine.evaluation.landuse import landuse_labels, window_label

KEY = "elsewhere_venue_p@10"


def _planted(n_far=30):
    """Cells on a line: a query at x=0, 12 near cells (< 1 km) that copy its features and label exactly,
    and far cells (>= 1 km) whose features get worse with distance; only some far cells share its label."""
    near_x = np.linspace(50, 950, 12)
    far_x = 1000 + 100 * np.arange(n_far)
    x = np.concatenate([[0.0], near_x, far_x])
    xy = np.column_stack([x, np.zeros_like(x)])
    f = np.zeros((len(x), 3))
    f[1:13] = 0.0  # near cells: identical features to the query (a leak, if they were allowed)
    f[13:, 0] = 1.0 + np.arange(n_far)  # far cells: the first far cells are the most similar
    labels = np.array(["shop"] * 13 + ["food"] * n_far, dtype=object)
    labels[13:13 + 10:2] = "shop"  # 5 of the 10 most similar far cells share the label
    return xy, f, labels


def test_cells_under_1_km_are_never_neighbours():
    xy, f, labels = _planted()
    plan = plan_elsewhere(KEY, labels, xy, min_queries=1)
    q = int(np.flatnonzero(plan.queries == 0)[0])
    nb = neighbours(plan, f)[q]
    assert set(nb) == set(range(13, 23))  # the 10 nearest in features among those >= 1 km, none of the copies
    assert np.hypot(*(xy[nb] - xy[0]).T).min() >= 1000
    p = precision_at_k(plan, f)
    assert p[q] == pytest.approx(0.5, abs=1e-12)
    # every query's far set is exactly the cells >= 1 km away
    d = np.hypot(*(xy[plan.queries][:, None] - xy[None]).transpose(2, 0, 1))
    assert np.array_equal(plan.far, d >= 1000)


def test_queries_need_a_label_and_ten_far_cells():
    xy, f, labels = _planted()
    labels[0] = "none"
    plan = plan_elsewhere(KEY, labels, xy, min_queries=1)
    assert 0 not in plan.queries
    far_counts = (np.hypot(*(xy[:, None] - xy[None]).transpose(2, 0, 1)) >= 1000).sum(1)
    assert set(plan.queries) == {i for i in range(len(xy)) if labels[i] != "none" and far_counts[i] >= 10}
    assert plan.measurable and not plan.reason
    few = plan_elsewhere(KEY, labels, xy, min_queries=len(plan.queries) + 1)
    assert not few.measurable and "not measurable here" in few.reason


def test_chance_is_the_label_share_of_the_far_cells():
    xy, f, labels = _planted()
    plan = plan_elsewhere(KEY, labels, xy, min_queries=1)
    q = int(np.flatnonzero(plan.queries == 0)[0])
    assert plan.chance_per_query[q] == pytest.approx(5 / 30, abs=1e-12)  # 5 "shop" among the 30 far cells


def test_identical_features_score_chance_not_an_order_artefact():
    xy, f, labels = _planted()
    plan = plan_elsewhere(KEY, labels, xy, min_queries=1)
    p = precision_at_k(plan, np.ones_like(f))  # every cell ties: the expected precision of a random pick
    assert np.allclose(p, plan.chance_per_query, atol=1e-12)


def test_cosine_ignores_length_euclidean_does_not():
    rng = np.random.default_rng(0)
    n = 60
    xy = np.column_stack([np.arange(n) * 300.0, np.zeros(n)])
    labels = np.where(np.arange(n) % 2 == 0, "a", "b").astype(object)
    direction = np.where(labels == "a", 0.0, np.pi / 2)[:, None]
    f = np.hstack([np.cos(direction), np.sin(direction)]) * rng.uniform(0.1, 10.0, (n, 1))
    plan = plan_elsewhere(KEY, labels, xy)
    assert plan.measurable
    assert precision_at_k(plan, f, cosine=True).min() == pytest.approx(1.0, abs=1e-12)
    assert precision_at_k(plan, f, cosine=False).mean() < 0.95  # lengths vary 100-fold: Euclidean mixes them


# ---- the land-use label --------------------------------------------------------------------------------

NAMES = ["roads_major", "roads_minor", "paths", "buildings_residential", "buildings_commercial",
         "buildings_industrial", "water", "green", "transit", "poi", "admin", "landuse"]


def _window(**cover):
    data = np.zeros((12, 51, 51), np.uint8)
    for name, (value, rows) in cover.items():
        data[NAMES.index(name), :rows] = value
    return data, np.ones((51, 51), bool)


@pytest.mark.parametrize("cover, expected", [
    ({"landuse": (250, 51)}, "industrial"),
    ({"landuse": (40, 26), "buildings_commercial": (255, 51)}, "residential"),  # landuse >= half wins
    ({"landuse": (40, 20), "buildings_commercial": (255, 12)}, "commercial"),  # else the strongest cover
    ({"buildings_residential": (128, 20), "water": (255, 30)}, "water"),
    ({"green": (255, 5)}, "none"),  # 10 % cover: too little to name the place
    ({}, "none"),
])
def test_window_label(cover, expected):
    data, valid = _window(**cover)
    lu = NAMES.index("landuse")
    cover_idx = [(NAMES.index(c), label) for c, label in
                 (("buildings_commercial", "commercial"), ("buildings_industrial", "industrial"),
                  ("buildings_residential", "residential"), ("green", "green"), ("water", "water"))]
    assert window_label(data, valid, lu, cover_idx) == expected


def test_landuse_labels_of_a_synthetic_area():
    from loc2vec_engine.tiles import PalettedArea

    from .synthetic import PIXEL, transform

    h, w = 200, 400  # two halves: residential land use on the left, an industrial estate on the right
    data = np.zeros((12, h, w), np.uint8)
    data[NAMES.index("landuse"), :, :200] = 40
    data[NAMES.index("landuse"), :, 200:] = 250
    data[NAMES.index("water"), 150:, :] = 255  # a river along the bottom, without land use
    data[NAMES.index("landuse"), 150:, :] = 0
    area = PalettedArea.from_arrays(data, transform=transform(), channel_names=NAMES)
    x0, y0 = area.transform[0], area.transform[3]
    at = lambda col, row: (x0 + col * PIXEL, y0 - row * PIXEL)  # noqa: E731
    cells = np.array([at(100, 60), at(300, 60), at(200, 60), at(100, 185), at(100, 600)])
    got = list(landuse_labels(area, cells))
    # the cell on the border (50/50) goes to the level with the most pixels of the 51 x 51 window
    assert got[:2] == ["residential", "industrial"] and got[2] in ("residential", "industrial")
    assert got[3] == "water" and got[4] == "none"  # outside the area: no valid pixel
