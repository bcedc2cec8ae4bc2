"""``measure_model``: the metrics dict of any encoder with ``embed``, without a report, on real Andorra data."""

import pytest

from loc2vec_engine.errors import Loc2VecError
from loc2vec_engine.evaluation.scoring import METRICS

from ..conftest import DATA, REPO

MODEL = REPO / "resources" / "models" / "loc2vec-default.onnx"
ANDORRA_PBF = DATA / "andorra_2020-05-01.osm.pbf"
NEW = ("elsewhere_venue_p@10", "elsewhere_landuse_p@10", "form_building_size_r2", "form_intersections_r2")


class Wrapped:
    """Not an OnnxEncoder: only what measure_model needs (as a benchmark's torch model would offer)."""

    def __init__(self, enc):
        self._enc = enc
        self.tile_size_px, self.tile_size_m = enc.tile_size_px, enc.tile_size_m
        self.channel_names, self.meta = enc.channel_names, enc.meta
        self.calls = 0

    def embed(self, tiles):
        self.calls += 1
        return self._enc.embed(tiles)


@pytest.fixture(scope="module")
def measured(andorra_area, tmp_path_factory):
    from loc2vec_engine.embeddings.onnx_encoder import OnnxEncoder
    from loc2vec_engine.evaluation import measure_model

    enc = Wrapped(OnnxEncoder(MODEL, device="cpu"))
    seen = []
    before = sorted(p.name for p in andorra_area.parent.iterdir())
    m = measure_model(enc, andorra_area, ANDORRA_PBF, max_cells=300, max_queries=100, seed=1, device="cpu",
                      ablation=False, progress=lambda f, msg: seen.append((f, msg)) and False)
    assert sorted(p.name for p in andorra_area.parent.iterdir()) == before  # no report written
    return m, enc, seen


def test_every_new_metric_is_measured_on_a_town(measured):
    m, enc, seen = measured
    assert enc.calls > 0
    for key in NEW:
        assert key in m["metrics"], (key, m["not_measured"])
        row = m["metrics"][key]
        assert row["label"] == METRICS[key][0]
        for s in ("model", "fractions", "multiscale", "random_conv", "random_init", "coordinates"):
            assert row[s] is not None and row[s]["value"] is not None, (key, s)
            assert row[s]["value"] <= 1.0
            if key.startswith("elsewhere"):
                assert row[s]["value"] >= 0.0 and row[s]["n"] == m["elsewhere"][key]["queries"]
        assert row["best_baseline"] in ("fractions", "multiscale", "random_conv")
    for key in NEW[:2]:
        e = m["elsewhere"][key]
        assert e["measurable"] and e["queries"] >= 30 and 0 < e["chance"] < 1
        assert m["metrics"][key]["chance"] == pytest.approx(e["chance"], abs=1e-4)
    # The land-use class of a place is in its map: composition around the centre finds more of the same
    # class a kilometre away than a random pick does.
    lu = m["metrics"]["elsewhere_landuse_p@10"]
    assert lu["multiscale"]["value"] > lu["chance"] + 2 * lu["multiscale"]["spread"]


def test_without_ablation_and_without_a_report(measured):
    m, _, seen = measured
    assert m["ablation"]["measured"] is False and m["ablation"]["drops"] == {} and m["ablation"]["groups"] == {}
    assert "plots" not in m and "model" not in m  # the report's and the model file's parts are evaluate's
    assert m["cells"]["evaluated"] >= 250 and m["settings"]["max_cells"] == 300
    # the shipped model is hybrid, so its learned and composition parts are measured alone as well
    assert set(m["health"]) == {"model", "model_learned", "model_composition", "fractions", "multiscale",
                                "random_conv", "random_init"}
    msgs = [msg for _, msg in seen]
    assert msgs[:2] == ["inputs read", "cells, views and triplets"] and "random-conv baseline" in msgs
    assert [f for f, _ in seen] == sorted(f for f, _ in seen) and seen[-1][0] == pytest.approx(1.0)
    assert set(m["stage_seconds"]) == set(msgs)
    assert m["form"]["buildings"] > 1000 and m["form"]["intersections"] > 100


def test_channels_are_checked_without_check_channels(andorra_area):
    from loc2vec_engine.embeddings.onnx_encoder import OnnxEncoder
    from loc2vec_engine.evaluation.measure import measure_model

    enc = Wrapped(OnnxEncoder(MODEL, device="cpu"))
    enc.channel_names = list(reversed(enc.channel_names))
    with pytest.raises(Loc2VecError, match="the model was trained on"):
        measure_model(enc, andorra_area, ANDORRA_PBF, device="cpu", ablation=False)
    assert enc.calls == 0


def test_numbers_are_checked_first(andorra_area):
    from loc2vec_engine.evaluation.measure import measure_model

    with pytest.raises(Loc2VecError, match="--max-cells must be an integer >= 50"):
        measure_model(object(), andorra_area, ANDORRA_PBF, max_cells=10)
