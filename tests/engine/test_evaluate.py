"""`loc2vec evaluate`: the shipped model on real central Porto with its real OSM extract, venue types, bad input."""

import json

import numpy as np
import pytest

from loc2vec_engine.cli import main
from loc2vec_engine.evaluation.scoring import METRICS

from ..conftest import PORTO_BBOX, REPO

MODEL = REPO / "resources" / "models" / "loc2vec-default.onnx"
SETS = ("model", "fractions", "multiscale", "random_conv", "random_init", "coordinates")
BASELINES = set(SETS) - {"model"}
PARTS = {"model_learned", "model_composition"}  # the shipped model is hybrid: each part is scored alone too


@pytest.fixture(scope="module")
def report(porto_area, porto_pbf, tmp_path_factory):
    """One evaluation of the shipped model on the Porto test area, through the CLI."""
    out = tmp_path_factory.mktemp("evaluate") / "report"
    rc = main(["evaluate", str(MODEL), str(porto_area), "--osm", str(porto_pbf), "--out", str(out),
               "--max-cells", "300", "--max-queries", "100", "--seed", "3", "--device", "cpu"])
    assert rc == 0
    return out, json.loads((out / "metrics.json").read_text(encoding="utf-8"))


def _value(metrics, key, s="model"):
    return metrics["metrics"][key][s]["value"]


def test_every_metric_is_reported_in_range(report):
    _, m = report
    labels_not_measured = set(m["not_measured"])
    for key, (label, _) in METRICS.items():
        assert key in m["metrics"] or label in labels_not_measured, key
    # Central Porto (1.2 km) has no room for 2 km negatives: said so, not failed.
    assert "triplet_acc_ge2km" not in m["metrics"]
    assert "area too small" in m["not_measured"]["triplet accuracy, negatives ≥ 2 km"]
    bands = {b["key"]: b for b in m["bands"]}
    assert bands["triplet_acc_0.5-1km"]["measurable"] and bands["triplet_acc_0.5-1km"]["triplets"] >= 50
    assert not bands["triplet_acc_ge2km"]["measurable"]
    for key, row in m["metrics"].items():
        for s in SETS:
            if row.get(s) is None:
                continue
            v = row[s]["value"]
            lo = -1.0 if key in ("silhouette", "spearman_geo_embedding") else -np.inf if key.endswith("_r2") else 0.0
            assert lo <= v <= 1.0, (key, s, v)
            assert row[s]["spread"] >= 0
    r1, r5, r10 = (_value(m, f"recall@{k}") for k in (1, 5, 10))
    assert r1 <= r5 <= r10 and r1 <= _value(m, "mrr") <= 1
    assert 250 <= m["cells"]["evaluated"] <= 300 < m["cells"]["usable"] <= m["cells"]["grid"]
    assert m["attribution"].startswith("Map data © OpenStreetMap contributors")


def test_model_recognises_its_own_rotated_views(report):
    _, m = report
    chance = 1 / m["cells"]["evaluated"]
    assert m["retrieval"]["chance_recall@1"] == pytest.approx(chance)
    assert _value(m, "recall@1") > 10 * chance  # observed ~30x chance
    assert _value(m, "recall@10") > 0.25
    # Triplets: the trained model separates 100-200 m from 0.5-1 km far better than chance (0.5).
    assert _value(m, "triplet_acc_0.5-1km") > 0.7


def test_probe_reports_all_three_baselines(report):
    _, m = report
    p = m["probe"]
    assert p["measurable"] and p["folds"] >= 2 and p["blocks"] >= 2
    assert sum(p["classes"].values()) == p["cells"]
    assert all(n >= p["min_class_cells"] for n in p["classes"].values())
    assert all(n < p["min_class_cells"] for n in p["skipped_classes"].values())
    for key in ("probe_accuracy", "probe_macro_f1"):
        row = m["metrics"][key]
        for s in SETS:
            assert row[s]["n"] == p["folds"] and len(row[s]["values"]) == p["folds"]
        verdicts = {v["baseline"] for v in m["verdicts"] if v["metric"] == key}
        assert verdicts == BASELINES | PARTS
    assert "fractions baseline" in m["headline"]
    assert m["baselines"]["random_init"]["available"]


def test_new_yardsticks_and_the_best_no_learning_baseline(report):
    out, m = report
    for key in ("elsewhere_venue_p@10", "elsewhere_landuse_p@10", "form_building_size_r2", "form_intersections_r2"):
        assert key in m["metrics"] or METRICS[key][0] in m["not_measured"], key
    # Central Porto: buildings and streets everywhere, so both urban-form targets are defined on every cell.
    for key in ("form_building_size_r2", "form_intersections_r2"):
        t = m["form"]["targets"][key]
        assert t["measurable"] and t["cells"] == m["cells"]["evaluated"] and t["folds"] == m["probe"]["folds"]
        for s in SETS:
            assert m["metrics"][key][s]["n"] == t["folds"]
    assert m["form"]["buildings"] > 1000 and m["form"]["intersections"] > 100
    for key, d in m["elsewhere"].items():
        if key != "landuse_labels" and d["measurable"]:
            assert 0 < d["chance"] < 1 and m["metrics"][key]["chance"] == pytest.approx(d["chance"], abs=1e-4)
            assert d["queries"] == m["metrics"][key]["model"]["n"] >= 20
    assert sum(m["elsewhere"]["landuse_labels"]["all_labels"].values()) == m["cells"]["evaluated"]
    # The best no-learning baseline is the highest of the three pixel baselines, per metric.
    for key, row in m["metrics"].items():
        values = {s: row[s]["value"] for s in ("fractions", "multiscale", "random_conv") if row.get(s)}
        values = {s: v for s, v in values.items() if v is not None}
        if values:
            assert row["best_baseline"] == max(values, key=values.get), key
    best = {v["metric"]: v for v in m["verdicts_vs_best"]}
    assert set(best) <= set(m["metrics"]) and len(best) >= 10
    for key, v in best.items():
        assert v["baseline"] == m["metrics"][key]["best_baseline"]
        assert v["model"] == pytest.approx(m["metrics"][key]["model"]["value"])
    sb = m["scoreboard"]
    assert sb["beats"] + sb["ties with"] + sb["loses to"] == sb["metrics"] == len(best)
    md = (out / "report.md").read_text(encoding="utf-8")
    assert sb["text"] in md and "## Against the best no-learning baseline" in md
    assert all(v["text"] in md for v in best.values())


def test_embedding_health_is_reported(report):
    out, m = report
    h = m["health"]
    assert set(h) == {"model", "fractions", "multiscale", "random_conv", "random_init"} | PARTS
    for s, v in h.items():
        assert v["n"] == m["cells"]["evaluated"]
        assert -1.0 <= v["mean_cos"] <= 1.0 and 1.0 <= v["eff_rank"] <= v["dim"] and 1.0 <= v["eff_rank_centred"]
    assert h["fractions"]["dim"] == 12 and h["multiscale"]["dim"] == 36 and h["random_conv"]["dim"] == 256
    assert h["model"]["dim"] == m["model"]["embedding_size"]
    # Standardised baselines are centred: their mean cosine is near 0 (no shared direction).
    assert abs(h["fractions"]["mean_cos"]) < 0.05 and abs(h["multiscale"]["mean_cos"]) < 0.05
    md = (out / "report.md").read_text(encoding="utf-8")
    assert "## Embedding health" in md and f"mean pairwise cosine {h['model']['mean_cos']:.3f}" in md


def test_ablation_drops_every_group(report):
    _, m = report
    ab = m["ablation"]
    assert set(ab["groups"]) == {"roads", "buildings", "nature", "transit+poi"}
    assert ab["groups"]["transit+poi"] == ["transit", "poi"]
    for g, drops in ab["drops"].items():
        assert set(drops) == set(m["metrics"])
        for key, d in drops.items():
            assert d == pytest.approx(_value(m, key) - ab["metrics"][g][key])
    # Zeroing a real layer changes what the model measures somewhere.
    assert max(abs(d) for drops in ab["drops"].values() for d in drops.values() if d is not None) > 0.01


def test_zeroing_all_channels_changes_the_embedding(porto_area):
    from loc2vec_engine.embeddings.onnx_encoder import OnnxEncoder
    from loc2vec_engine.evaluation.ablation import channel_groups, zero_channels
    from loc2vec_engine.tiles import TileSampler

    enc = OnnxEncoder(MODEL, device="cpu")
    sampler = TileSampler(porto_area, tile_size_m=enc.tile_size_m)
    w, s, e, n = sampler.area.bounds
    xy = np.array([[(w + e) / 2, (s + n) / 2], [(w + e) / 2 + 150, (s + n) / 2 - 100]])
    tiles, _ = sampler.sample(xy, size=enc.tile_size_px)
    full = enc.embed(tiles)
    none = enc.embed(zero_channels(tiles, range(tiles.shape[1])))
    assert np.linalg.norm(full - none, axis=1).min() > 0.1
    assert np.allclose(none[0], none[1])  # nothing left to tell two places apart
    roads = enc.embed(zero_channels(tiles, channel_groups(enc.channel_names)["roads"]))
    assert np.linalg.norm(full - roads, axis=1).min() > 1e-3
    assert tiles.any()  # zero_channels copies; the original tiles are untouched


def test_report_md_states_the_verdicts_and_plots_exist(report):
    out, m = report
    md = (out / "report.md").read_text(encoding="utf-8")
    assert m["verdicts"]
    for v in m["verdicts"]:
        assert v["text"] in md
        assert v["verdict"] in ("beats", "ties with", "loses to")
        assert f"The model {v['verdict']} the" in v["text"]
    assert "## Where the model does not beat a baseline" in md
    assert m["headline"] in md
    assert m["command"] in md and m["command"].startswith("loc2vec evaluate ")
    assert "© OpenStreetMap contributors" in md
    assert "not measurable here (area too small)" in md
    for p in m["plots"]:
        data = (out / p).read_bytes()
        assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 10_000
    assert sorted(q.name for q in out.iterdir()) == ["metrics.json", "plots", "report.md"]
    assert not [q for q in out.parent.iterdir() if q.name.startswith(".report.")]  # no temp folders left


def test_a_second_run_replaces_an_earlier_report(report, porto_area, porto_pbf):
    from loc2vec_engine.evaluation.report import report_folder

    out, m = report
    target = out.parent / "again"
    target.mkdir()
    (target / "metrics.json").write_text("{}")
    (target / "stale.txt").write_text("old")
    with report_folder(target) as tmp:
        (tmp / "metrics.json").write_text(json.dumps({"new": 1}))
    assert json.loads((target / "metrics.json").read_text()) == {"new": 1}
    assert not (target / "stale.txt").exists()
    assert not [q for q in target.parent.iterdir() if q.name.startswith(".again.")]


def test_cancel_leaves_nothing_behind(tmp_path, porto_area, porto_pbf):
    from loc2vec_engine.evaluation.evaluate import evaluate_model
    from loc2vec_engine.progress import Cancelled

    seen = []
    out = tmp_path / "report"
    with pytest.raises(Cancelled):
        evaluate_model(MODEL, porto_area, porto_pbf, out, device="cpu",
                       progress=lambda f, msg: seen.append((f, msg)) or len(seen) >= 2)
    assert [m for _, m in seen] == ["inputs read", "cells, views and triplets"] and 0 < seen[0][0] < seen[1][0] < 1
    assert seen[0][0] == pytest.approx(1 / 13)  # inputs, set, model, 5 baselines, 4 ablation groups, report
    assert list(tmp_path.iterdir()) == []


# ---- venue categories ------------------------------------------------------------------------------

_OSM = """<?xml version='1.0' encoding='UTF-8'?>
<osm version="0.6" generator="test">
  <node id="1" lat="0.0000" lon="0.0000" version="1"><tag k="amenity" v="restaurant"/></node>
  <node id="2" lat="0.0003" lon="0.0000" version="1"><tag k="amenity" v="cafe"/></node>
  <node id="3" lat="0.0000" lon="0.0004" version="1"><tag k="shop" v="bakery"/></node>
  <node id="4" lat="0.0200" lon="0.0000" version="1"><tag k="shop" v="clothes"/></node>
  <node id="5" lat="0.0200" lon="0.0009" version="1"><tag k="amenity" v="school"/></node>
  <node id="6" lat="0.0400" lon="0.0000" version="1"><tag k="amenity" v="pharmacy"/><tag k="shop" v="chemist"/></node>
  <node id="7" lat="0.0400" lon="0.0003" version="1"><tag k="tourism" v="museum"/></node>
  <node id="8" lat="0.0400" lon="0.0006" version="1"><tag k="highway" v="bus_stop"/></node>
  <node id="9" lat="0.0400" lon="0.0007" version="1"><tag k="public_transport" v="platform"/></node>
  <node id="10" lat="0.0400" lon="0.0008" version="1"><tag k="amenity" v="bench"/></node>
  <node id="11" lat="0.0600" lon="0.0000" version="1"><tag k="amenity" v="parking"/></node>
  <node id="20" lat="0.0800" lon="0.0000" version="1"/>
  <node id="21" lat="0.0800" lon="0.0010" version="1"/>
  <node id="22" lat="0.0810" lon="0.0010" version="1"/>
  <node id="23" lat="0.0810" lon="0.0000" version="1"/>
  <way id="100" version="1">
    <nd ref="20"/><nd ref="21"/><nd ref="22"/><nd ref="23"/><nd ref="20"/>
    <tag k="amenity" v="hospital"/><tag k="building" v="yes"/>
  </way>
</osm>
"""


def _utm31n_wkt():
    from pyproj import CRS

    return CRS.from_epsg(32631).to_wkt()


def test_venue_categories_from_a_hand_written_osm_file(tmp_path):
    from loc2vec_engine.evaluation.venues import dominant_category, read_venues
    from loc2vec_engine.geo.crs import transformer_from_wgs84

    path = tmp_path / "venues.osm"
    path.write_text(_OSM, encoding="utf-8")
    wkt = _utm31n_wkt()
    v = read_venues(path, wkt)
    assert sorted(v.category) == sorted(["food & drink", "food & drink", "shop", "shop", "education", "health",
                                         "leisure & culture", "transport", "health"])
    hospital = v.xy[[i for i, c in enumerate(v.category) if c == "health"]]
    to_xy = transformer_from_wgs84(wkt)
    cx, cy = to_xy.transform(0.0005, 0.0805)  # the centroid of the hospital's square outline
    assert np.hypot(hospital[:, 0] - cx, hospital[:, 1] - cy).min() < 1.0
    centres = np.column_stack(to_xy.transform([0.0001, 0.0001, 0.0003, 0.0006, 0.0000, 0.0005],
                                              [0.0001, 0.0200, 0.0400, 0.0600, 0.5000, 0.0805]))
    labels = dominant_category(centres, v, radius_m=150)
    # 2 food vs 1 shop; a shop-school tie goes to the nearer shop; pharmacy+chemist is health and ties with the
    # museum and the bus stop, the museum being nearest; parking is no venue; nothing within 150 m; the hospital.
    assert list(labels) == ["food & drink", "shop", "leisure & culture", "none", "none", "health"]


def test_venues_from_a_geopackage_match_the_osm_file(tmp_path):
    from osgeo import gdal

    from loc2vec_engine.evaluation.venues import read_venues

    gdal.UseExceptions()
    osm = tmp_path / "venues.osm"
    osm.write_text(_OSM, encoding="utf-8")
    gpkg = tmp_path / "venues.gpkg"  # GDAL's OSM driver: OSM keys as columns and an other_tags hstore
    gdal.VectorTranslate(str(gpkg), str(osm), format="GPKG")
    a, b = read_venues(osm, _utm31n_wkt()), read_venues(gpkg, _utm31n_wkt())
    assert sorted(a.category) == sorted(b.category) and len(b) == 9
    order_a, order_b = np.lexsort(a.xy.T), np.lexsort(b.xy.T)
    assert np.allclose(a.xy[order_a], b.xy[order_b], atol=1.0)


def test_venues_outside_the_bounds_are_dropped(tmp_path):
    from loc2vec_engine.evaluation.venues import read_venues
    from loc2vec_engine.geo.crs import transformer_from_wgs84

    path = tmp_path / "venues.osm"
    path.write_text(_OSM, encoding="utf-8")
    wkt = _utm31n_wkt()
    x0, y0 = transformer_from_wgs84(wkt).transform(-0.001, -0.001)
    x1, y1 = transformer_from_wgs84(wkt).transform(0.002, 0.021)
    v = read_venues(path, wkt, bounds=(x0, y0, x1, y1))
    assert sorted(v.category) == ["education", "food & drink", "food & drink", "shop", "shop"] and v.read == 9


# ---- bad input --------------------------------------------------------------------------------------

def _run(capsys, *argv):
    rc = main([str(a) for a in argv])
    return rc, capsys.readouterr().err


def _assert_clean_failure(rc, err, out, expected):
    assert rc == 2, err
    assert err.startswith("error: ") and "\n  fix: " in err, err
    assert expected in err, err
    assert "Traceback" not in err
    assert not out.exists()
    assert not [p.name for p in out.parent.iterdir() if p.name.startswith(f".{out.name}.")]


def _onnx_copy(tmp_path, name, edit):
    import onnx

    m = onnx.load(str(MODEL))
    edit(m)
    path = tmp_path / name
    onnx.save(m, str(path))
    return path


def test_onnx_without_loc2vec_metadata(capsys, tmp_path, porto_area, porto_pbf):
    plain = _onnx_copy(tmp_path, "plain.onnx", lambda m: m.ClearField("metadata_props"))
    out = tmp_path / "report"
    rc, err = _run(capsys, "evaluate", plain, porto_area, "--osm", porto_pbf, "--out", out)
    _assert_clean_failure(rc, err, out, "not a loc2vec model")


def test_model_channels_differ_from_the_area(capsys, tmp_path, porto_area, porto_pbf):
    def rename(m):
        for p in m.metadata_props:
            if p.key == "channel_names":
                p.value = json.dumps(list(reversed(json.loads(p.value))))

    other = _onnx_copy(tmp_path, "other.onnx", rename)
    out = tmp_path / "report"
    rc, err = _run(capsys, "evaluate", other, porto_area, "--osm", porto_pbf, "--out", out)
    _assert_clean_failure(rc, err, out, "was trained on")
    assert "--spec" in err


@pytest.mark.parametrize("name, content, expected", [
    ("corrupt.osm.pbf", bytes(range(256)) * 64, "cannot read OSM source"),
    ("notes.txt", b"not map data at all\n", "cannot read OSM source"),
    ("missing.osm.pbf", None, "not found"),
])
def test_unreadable_osm_source(capsys, tmp_path, porto_area, name, content, expected):
    src = tmp_path / name
    if content is not None:
        src.write_bytes(content)
    out = tmp_path / "report"
    rc, err = _run(capsys, "evaluate", MODEL, porto_area, "--osm", src, "--out", out)
    _assert_clean_failure(rc, err, out, expected)


def test_osm_source_not_covering_the_area(capsys, tmp_path, porto_area):
    src = tmp_path / "elsewhere.osm"
    src.write_text(_OSM, encoding="utf-8")
    out = tmp_path / "report"
    rc, err = _run(capsys, "evaluate", MODEL, porto_area, "--osm", src, "--out", out)
    _assert_clean_failure(rc, err, out, "no venues (POIs) inside the area")


def test_area_too_small_for_the_distance_bands(capsys, tmp_path, porto_pbf):
    from loc2vec_engine.raster.rasterize import rasterize

    w, s = PORTO_BBOX[0] + 0.004, PORTO_BBOX[1] + 0.003
    small = tmp_path / "small.tif"  # about 500 x 500 m: tiles fit, but no two cells are 500 m apart
    rasterize(porto_pbf, small, bbox=(w, s, w + 0.006, s + 0.0045))
    out = tmp_path / "report"
    rc, err = _run(capsys, "evaluate", MODEL, small, "--osm", porto_pbf, "--out", out)
    _assert_clean_failure(rc, err, out, "too small for the distance bands")


def test_output_folder_that_is_not_a_report(capsys, tmp_path, porto_area, porto_pbf):
    out = tmp_path / "mine"
    out.mkdir()
    (out / "thesis.tex").write_text("keep me")
    rc, err = _run(capsys, "evaluate", MODEL, porto_area, "--osm", porto_pbf, "--out", out)
    assert rc == 2 and "is not a loc2vec report folder" in err and "\n  fix: " in err
    assert [p.name for p in out.iterdir()] == ["thesis.tex"]
    rc, err = _run(capsys, "evaluate", MODEL, porto_area, "--osm", porto_pbf, "--out", tmp_path / "no" / "such")
    assert rc == 2 and "does not exist" in err


def test_bad_numbers(capsys, tmp_path, porto_area, porto_pbf):
    out = tmp_path / "report"
    rc, err = _run(capsys, "evaluate", MODEL, porto_area, "--osm", porto_pbf, "--out", out, "--stride", "0")
    _assert_clean_failure(rc, err, out, "stride must be a positive number")
    rc, err = _run(capsys, "evaluate", MODEL, porto_area, "--osm", porto_pbf, "--out", out, "--max-cells", "3")
    _assert_clean_failure(rc, err, out, "--max-cells must be an integer >= 50")
