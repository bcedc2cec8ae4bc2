"""Similar-place search on real embeddings: central Porto tiles run through the shipped ONNX model."""

import numpy as np
import pytest

from loc2vec_engine import ATTRIBUTION
from loc2vec_engine.cli import main
from loc2vec_engine.embeddings.store import read_embeddings, write_embeddings
from loc2vec_engine.encoders.composition import hybrid_parts
from loc2vec_engine.errors import Loc2VecError
from loc2vec_engine.search import (PlaceSearch, VectorIndex, exact_search, query_cells, query_vector, recall_at_k,
                                   similar, similar_across, similar_at, similarity_all)

from ..conftest import REPO

MODEL = REPO / "resources" / "models" / "loc2vec-default.onnx"
STRIDE_M = 40.0
# Inside the Porto test area: Baixa (streets, dense blocks) and the Douro by Ribeira (water).
BAIXA = (-8.6110, 41.1460)
RIBEIRA = (-8.6120, 41.1405)


@pytest.fixture(scope="module")
def porto_embeddings(porto_area, tmp_path_factory):
    """Every cell of a 40 m grid over the Porto area, embedded by the shipped model (about 900 cells)."""
    from loc2vec_engine.embeddings.onnx_encoder import OnnxEncoder
    from loc2vec_engine.raster.area import AreaRaster
    from loc2vec_engine.tiles import TileSampler

    area = AreaRaster.open(porto_area)
    w, s, e, n = area.bounds
    xs, ys = np.arange(w + STRIDE_M / 2, e, STRIDE_M), np.arange(n - STRIDE_M / 2, s, -STRIDE_M)
    gx, gy = np.meshgrid(xs, ys)
    xy = np.stack([gx.ravel(), gy.ravel()], axis=1)
    enc = OnnxEncoder(MODEL, "cpu")
    sampler = TileSampler(area)
    vectors = np.concatenate([enc.embed(sampler.sample(xy[i:i + 256], size=64)[0]) for i in range(0, len(xy), 256)])
    # The shipped model is hybrid; its whole 164-D vectors of these ~900 cells spread so evenly that the IVF
    # tuner rightly keeps exact search (test_hybrid_vectors_of_a_small_area_keep_exact_search). The index tests
    # need an index, so they search the learned part alone: real embeddings that form neighbourhoods.
    learned = next(p for p in hybrid_parts(enc.meta) if p["name"] == "learned") if hybrid_parts(enc.meta) else None
    if learned is not None:
        vectors = vectors[:, learned["start"]:learned["stop"]]
        vectors = (vectors / np.linalg.norm(vectors, axis=1, keepdims=True)).astype(np.float32)
    meta = {"model_sha256": enc.sha256, "stride_m": STRIDE_M, "tile_size_m": 500.0, "tile_size_px": 64,
            "area": porto_area.name}
    d = tmp_path_factory.mktemp("search")
    path = write_embeddings(d / "porto.gpkg", xy, vectors, area.crs_wkt, meta)
    # Two files from the same model (west and east halves) for cross-file search, and one "other model".
    west = xy[:, 0] < np.median(xs)
    write_embeddings(d / "west.gpkg", xy[west], vectors[west], area.crs_wkt, meta, cell=np.flatnonzero(west))
    write_embeddings(d / "east.gpkg", xy[~west], vectors[~west], area.crs_wkt, meta, cell=np.flatnonzero(~west))
    write_embeddings(d / "other_model.gpkg", xy[~west], vectors[~west], area.crs_wkt,
                     {**meta, "model_sha256": "0" * 64}, cell=np.flatnonzero(~west))
    return read_embeddings(path)


@pytest.fixture()
def files(porto_embeddings):
    d = porto_embeddings.path.parent
    return {name: d / f"{name}.gpkg" for name in ("porto", "west", "east", "other_model")}


# ---- the engine API -------------------------------------------------------------------------
@pytest.mark.parametrize("place", [BAIXA, RIBEIRA])
def test_query_cell_is_its_own_best_match(porto_embeddings, place):
    es = porto_embeddings
    res = similar_at(es, [place], k=10, exclude_radius_m=0)  # 0: the query's surroundings are searched too
    (cell,) = query_cells(es, [place])
    assert res.indices[0] == cell and res.scores[0] == pytest.approx(1.0, abs=1e-5)
    assert np.all(np.diff(res.scores) <= 0)
    assert res.distance_m[0] <= STRIDE_M * np.sqrt(0.5) + 1
    # Scores are the true cosines of the returned cells, and nothing left out beats the 10th.
    np.testing.assert_allclose(res.scores, es.vectors[res.indices] @ es.vectors[cell], atol=1e-6)
    others = np.delete(es.vectors @ es.vectors[cell], res.indices)
    assert others.max() <= res.scores[-1] + 1e-6


def test_distances_are_ground_metres_from_the_query(porto_embeddings):
    from pyproj import Geod

    res = similar_at(porto_embeddings, [BAIXA], k=25, exclude_radius_m=0)
    _, _, d = Geod(ellps="WGS84").inv(res.lonlat[:, 0], res.lonlat[:, 1], np.full(25, BAIXA[0]),
                                      np.full(25, BAIXA[1]))
    np.testing.assert_allclose(res.distance_m, d, rtol=1e-9)
    assert res.distance_m.max() > 2 * STRIDE_M  # hits are spread out, not only the neighbours


def test_mean_of_several_places(porto_embeddings):
    es = porto_embeddings
    cells = query_cells(es, [BAIXA, RIBEIRA])
    q = query_vector(es, cells)
    expected = es.vectors[cells].sum(axis=0)
    np.testing.assert_allclose(q, expected / np.linalg.norm(expected), atol=1e-6)
    res = similar_at(es, [BAIXA, RIBEIRA], k=5, exclude_radius_m=0)
    np.testing.assert_allclose(res.scores, es.vectors[res.indices] @ q, atol=1e-6)
    # The mean query is less like either reference than each is like itself, and distances go to the nearer.
    assert res.scores[0] < 1.0 - 1e-4
    near = similar(es, q, k=len(es), query_lonlat=[BAIXA, RIBEIRA])
    assert near.distance_m[list(near.indices).index(cells[1])] < STRIDE_M


def test_similarity_all_is_the_heat_map_of_the_click(porto_embeddings):
    es = porto_embeddings
    search = PlaceSearch(es)
    res, heat = search.highlight([BAIXA], k=10, exclude_radius_m=0)
    (cell,) = query_cells(es, [BAIXA])
    np.testing.assert_allclose(heat, similarity_all(es, es.vectors[cell]), atol=1e-6)
    assert heat.shape == (len(es),) and heat[cell] == pytest.approx(1.0, abs=1e-5)
    np.testing.assert_allclose(res.scores, np.sort(heat)[::-1][:10], atol=1e-6)
    np.testing.assert_allclose(search.top([BAIXA], k=10, exclude_radius_m=0).scores, res.scores, atol=1e-6)
    # By default the heat map still scores every cell, the left-out neighbourhood too.
    res_default, heat_default = search.highlight([BAIXA], k=10)
    assert np.array_equal(heat_default, heat) and res_default.cells[0] != es.cell[cell]


def test_exclude_radius_leaves_out_the_neighbourhood(porto_embeddings):
    res = similar_at(porto_embeddings, [BAIXA], k=10, exclude_radius_m=150)
    assert res.distance_m.min() > 140  # planar radius in UTM vs geodesic distance: within a metre
    assert res.scores[0] < 1.0 and res.exclude_radius_m == 150


def _planar_m(es, rows, lonlat):
    """Metres in the set's CRS from cells ``rows`` to ``lonlat``: what the exclusion measures."""
    from loc2vec_engine.geo.crs import transformer_from_wgs84

    q = np.asarray(transformer_from_wgs84(es.crs_wkt).transform(*lonlat), float)
    return np.linalg.norm(es.xy[rows] - q, axis=1)


def test_by_default_the_query_tile_is_left_out(porto_embeddings):
    """Similar places elsewhere: nothing within one tile (the model's 500 m) of the query comes back."""
    es = porto_embeddings
    (cell,) = query_cells(es, [BAIXA])
    d = _planar_m(es, np.arange(len(es)), BAIXA)
    assert (d <= 500).sum() >= 100 and (d > 500).sum() >= 100  # the area holds both sides of the radius
    search = PlaceSearch(es)
    for res in (similar_at(es, [BAIXA], k=10), search.highlight([BAIXA], k=10)[0], search.top([BAIXA], k=10)):
        assert res.exclude_radius_m == 500.0 and res.n_excluded == int((d <= 500).sum())
        assert _planar_m(es, res.indices, BAIXA).min() > 500
        assert cell not in res.indices and res.scores[0] < 1.0 - 1e-4
        # ... and they are the best cells beyond the radius: nothing farther out beats the 10th.
        beyond = np.flatnonzero(d > 500)
        cosines = es.vectors[beyond] @ es.vectors[cell]
        np.testing.assert_allclose(res.scores, np.sort(cosines)[::-1][:10], atol=1e-6)
    kept = similar_at(es, [BAIXA], k=10, exclude_radius_m=0)
    assert kept.indices[0] == cell and kept.scores[0] == pytest.approx(1.0, abs=1e-5)
    assert kept.exclude_radius_m == 0 and kept.n_excluded == 0
    assert _planar_m(es, kept.indices, BAIXA).max() <= 500  # without the exclusion: its own neighbourhood


def test_one_tile_is_the_tile_size_of_the_model_that_made_the_embeddings(porto_embeddings, tmp_path):
    from loc2vec_engine.search import DEFAULT_TILE_M, one_tile_m

    es = porto_embeddings
    base = {k: v for k, v in es.meta.items() if k != "tile_size_m"}
    cases = {"small_tiles": ({**base, "tile_size_m": 250.0}, 250.0),
             "onnx_meta_only": ({**base, "model": {"tile_size_px": 64, "metres_per_px": 3.0}}, 192.0),
             "unrecorded": (base, DEFAULT_TILE_M)}
    nearest = {}
    for name, (meta, tile) in cases.items():
        other = read_embeddings(write_embeddings(tmp_path / f"{name}.gpkg", es.xy, es.vectors, es.crs_wkt, meta,
                                                 cell=es.cell))
        assert one_tile_m(other) == tile, name
        res = similar_at(other, [BAIXA], k=10)
        nearest[name] = _planar_m(other, res.indices, BAIXA).min()
        assert res.exclude_radius_m == tile and nearest[name] > tile, name
    assert DEFAULT_TILE_M == 500.0 and nearest["small_tiles"] < 500  # 250 m tiles: hits come closer than 500 m


def test_explicit_radius_overrides_the_default(porto_embeddings):
    es = porto_embeddings
    res = similar_at(es, [BAIXA], k=10, exclude_radius_m=300.0)
    d = _planar_m(es, res.indices, BAIXA)
    assert res.exclude_radius_m == 300 and d.min() > 300 and d.min() < 500


@pytest.mark.parametrize("bad", [-1.0, float("nan"), float("inf"), "wide"])
def test_a_bad_radius_is_one_clear_error(porto_embeddings, bad):
    search = PlaceSearch(porto_embeddings)
    for call in (lambda: similar_at(porto_embeddings, [BAIXA], 10, exclude_radius_m=bad),
                 lambda: search.highlight([BAIXA], 10, exclude_radius_m=bad)):
        with pytest.raises(Loc2VecError, match="exclude radius must be 0 or more metres") as e:
            call()
        assert "--exclude-radius 0" in e.value.fix


def test_hybrid_vectors_of_a_small_area_keep_exact_search(porto_area):
    """No index is built where it would not pay: the tuner falls back to exact search, and says why."""
    from loc2vec_engine.embeddings.onnx_encoder import OnnxEncoder
    from loc2vec_engine.raster.area import AreaRaster
    from loc2vec_engine.tiles import TileSampler

    enc = OnnxEncoder(MODEL, "cpu")
    assert hybrid_parts(enc.meta), "the shipped model is hybrid (docs/default_model.md)"
    rng = np.random.default_rng(0)
    w, s, e, n = AreaRaster.open(porto_area).bounds
    xy = np.stack([rng.uniform(w + 250, e - 250, 600), rng.uniform(s + 250, n - 250, 600)], axis=1)
    v = enc.embed(np.ascontiguousarray(TileSampler(porto_area).sample(xy, size=64)[0]))
    index = VectorIndex.build(v, exact_below=200, seed=0)
    assert index.kind == "exact" and "near-full scan" in index.note
    exact, _ = exact_search(v, v[:5], 10)
    found, _ = index.search(v[:5], 10)
    assert np.array_equal(exact, found)


def test_index_agrees_with_exact_search_on_real_embeddings(porto_embeddings):
    v = porto_embeddings.vectors
    index = VectorIndex.build(v, exact_below=200, seed=0)  # lowered threshold: the IVF path on ~900 cells
    assert index.kind == "ivf", index.note
    exact, _ = exact_search(v, v, 10)
    found, idx = index.search(v, 10)
    assert recall_at_k(exact, found) >= 0.98
    np.testing.assert_allclose(found, np.take_along_axis(v @ v.T, idx, 1), atol=1e-5)  # true cosines
    assert np.all(np.diff(found, axis=1) <= 1e-7)
    again = VectorIndex.build(v, exact_below=200, seed=0)
    assert np.array_equal(again.search(v, 10)[1], idx)  # deterministic for a seed


def _unit(x):
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


def test_index_on_clustered_and_random_vectors():
    rng = np.random.default_rng(1)
    centres = _unit(rng.standard_normal((60, 128)))
    clustered = _unit(centres[rng.integers(0, 60, 12_000)] + 0.1 * rng.standard_normal((12_000, 128)))
    queries = clustered[rng.choice(12_000, 200, replace=False)] + 0.02 * rng.standard_normal((200, 128))
    index = VectorIndex.build(clustered, exact_below=5_000, seed=0)
    assert index.kind == "ivf" and index.nprobe < index.nlist // 4, repr(index)
    assert recall_at_k(exact_search(clustered, _unit(queries), 10)[0], index.search(queries, 10)[0]) >= 0.98
    # Random 128-D vectors have no neighbourhoods for IVF to exploit: the tuner falls back to exact search.
    noise = _unit(rng.standard_normal((8_000, 128)))
    index = VectorIndex.build(noise, exact_below=5_000, seed=0)
    assert index.kind == "exact" and "exact search" in index.note
    np.testing.assert_array_equal(index.search(noise[:5], 3)[1][:, 0], np.arange(5))


def test_cross_file_search_needs_the_same_model(files):
    west, east, other = (read_embeddings(files[n]) for n in ("west", "east", "other_model"))
    place = tuple(west.lonlat()[len(west) // 2])
    res = similar_across(west, east, [place], k=10)
    q = west.vectors[query_cells(west, [place])[0]]
    np.testing.assert_allclose(res.scores, east.vectors[res.indices] @ q, atol=1e-6)
    assert np.all(np.isin(res.cells, east.cell)) and res.distance_m.min() > 0
    with pytest.raises(Loc2VecError, match="different models"):
        similar_across(west, other, [place], k=10)


def test_in_another_file_only_its_cells_near_the_query_are_left_out(files, tmp_path):
    """The neighbouring half: its cells within a tile of the query are left out. Another city: none are."""
    west, east = (read_embeddings(files[n]) for n in ("west", "east"))
    place = tuple(west.lonlat()[len(west) // 2])  # in the middle of the west half, near the east half
    near = _planar_m(east, np.arange(len(east)), place) <= 500
    assert near.any()
    res = similar_at(west, [place], k=10, target=east)
    assert res.n_excluded == int(near.sum()) and _planar_m(east, res.indices, place).min() > 500
    far = read_embeddings(write_embeddings(tmp_path / "far.gpkg", east.xy + [60_000.0, 0.0], east.vectors,
                                           east.crs_wkt, east.meta, cell=east.cell))  # 60 km east: another city
    res = similar_at(west, [place], k=10, target=far)
    assert res.n_excluded == 0 and res.exclude_radius_m == 500
    assert np.array_equal(res.cells, similar_at(west, [place], k=10, target=far, exclude_radius_m=0).cells)


# ---- the command line -----------------------------------------------------------------------
def _run(capsys, *argv):
    rc = main([str(a) for a in argv])
    cap = capsys.readouterr()
    return rc, cap.out, cap.err


def _at(p):
    return f"{p[0]},{p[1]}"


def test_cli_prints_the_table_and_writes_the_layer(files, tmp_path, capsys):
    from osgeo import ogr, osr

    out = tmp_path / "similar.gpkg"
    rc, text, err = _run(capsys, "similar", files["porto"], "--at", _at(BAIXA), "--k", 7, "--out", out,
                         "--exclude-radius", 0)  # 0: the query cell comes back first, a sanity check
    assert rc == 0, err
    rows = [line.split() for line in text.splitlines() if line.strip()[:1].isdigit()]
    assert len(rows) == 7 and rows[0][:2] == ["1", "1.000000"]
    assert "every cell searched" in text
    assert ATTRIBUTION in text
    ds = ogr.Open(str(out))
    lyr = ds.GetLayerByName("similar")
    assert lyr.GetFeatureCount() == 7 and lyr.GetGeomType() == ogr.wkbPoint
    es = read_embeddings(files["porto"])
    assert lyr.GetSpatialRef().IsSame(osr.SpatialReference(wkt=es.crs_wkt))
    feats = list(lyr)
    assert [f["rank"] for f in feats] == list(range(1, 8))
    assert feats[0]["score"] == pytest.approx(1.0, abs=1e-5)
    assert all(a["score"] >= b["score"] for a, b in zip(feats, feats[1:]))
    row = {c: i for i, c in enumerate(es.cell)}[feats[0]["cell"]]
    assert (feats[0].GetGeometryRef().GetX(), feats[0].GetGeometryRef().GetY()) == pytest.approx(tuple(es.xy[row]))
    assert feats[0]["distance_m"] < STRIDE_M


def test_cli_several_places_and_another_file(files, tmp_path, capsys):
    west = read_embeddings(files["west"])
    a, b = (tuple(p) for p in west.lonlat()[[10, len(west) - 10]])
    rc, text, err = _run(capsys, "similar", files["west"], "--at", _at(a), "--at", _at(b), "--in", files["east"],
                         "--k", 3, "--exclude-radius", 100)
    assert rc == 0, err
    assert "in east.gpkg" in text and len([x for x in text.splitlines() if x.strip()[:1].isdigit()]) == 3


def _table(text):
    return [line.split() for line in text.splitlines() if line.strip()[:1].isdigit()]


def _distance_m(row):
    """The printed distance column ('1,234 m' or '12.3 km') in metres."""
    value, unit = row[-2:]
    return float(value.replace(",", "")) * (1000 if unit == "km" else 1)


def test_cli_leaves_out_one_tile_by_default(files, tmp_path, capsys):
    from osgeo import ogr

    es = read_embeddings(files["porto"])
    n_near = int((_planar_m(es, np.arange(len(es)), BAIXA) <= 500).sum())
    out = tmp_path / "similar.gpkg"
    rc, text, err = _run(capsys, "similar", files["porto"], "--at", _at(BAIXA), "--k", 10, "--out", out)
    assert rc == 0, err
    assert f"left out the {n_near:,} cells within 500 m of the query (one tile of the model, the default" in text
    rows = _table(text)
    assert len(rows) == 10 and float(rows[0][1]) < 0.9999
    assert min(_distance_m(r) for r in rows) > 500 * 0.99  # printed geodesic metres vs the planar radius
    ds = ogr.Open(str(out))  # kept: its layers die with it
    lyr = ds.GetLayerByName("similar")
    assert lyr.GetMetadataItem("exclude_radius_m") == "500"
    assert min(f["distance_m"] for f in lyr) > 500 * 0.99
    rc, text, err = _run(capsys, "similar", files["porto"], "--at", _at(BAIXA), "--k", 10,
                         "--exclude-radius", 200)
    assert rc == 0 and "within 200 m of the query (--exclude-radius;" in text
    assert 200 * 0.99 < min(_distance_m(r) for r in _table(text)) < 500
    rc, text, err = _run(capsys, "similar", files["porto"], "--at", _at(BAIXA), "--k", 3, "--exclude-radius", 0)
    assert rc == 0 and _table(text)[0][1] == "1.000000"


def test_cli_help_says_one_tile_and_0_is_off(capsys):
    with pytest.raises(SystemExit):
        main(["similar", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "default: one tile" in text and "500 m for the shipped model" in text and "0 = off" in text


def test_cli_index_is_built_once_kept_and_rebuilt_when_the_file_changes(porto_embeddings, tmp_path, capsys):
    import shutil

    from loc2vec_engine.embeddings import update_columns
    from loc2vec_engine.search.index_file import index_path

    path = tmp_path / "porto.gpkg"
    shutil.copy(porto_embeddings.path, path)
    args = ["similar", path, "--at", _at(BAIXA), "--k", 10, "--exact-below", 200]
    rc, exact_text, err = _run(capsys, "similar", path, "--at", _at(BAIXA), "--k", 10)
    assert rc == 0 and "exact search" in exact_text and not index_path(path).exists()
    rc, first, err = _run(capsys, *args)
    assert rc == 0, err
    assert "ivf index built" in first and index_path(path).is_file()
    rc, second, err = _run(capsys, *args)
    assert rc == 0 and f"index reused from {index_path(path).name}" in second
    assert _table(first) == _table(second)
    _assert_same_scores(_table(first), _table(exact_text))
    update_columns(path, cluster=np.zeros(len(porto_embeddings), int))  # the file changed: the index is stale
    rc, third, err = _run(capsys, *args)
    assert rc == 0 and "ivf index built" in third
    _assert_same_scores(_table(third), _table(exact_text))


def _assert_same_scores(ivf_rows, exact_rows):
    """The index is approximate (recall@10 >= 0.99 by calibration), so it may miss a cell; but a cell it
    finds is printed exactly as the exact search prints it: score, place and distance, to the last digit."""
    exact = {tuple(r[2:4]): r[1:] for r in exact_rows}
    common = [r for r in ivf_rows if tuple(r[2:4]) in exact]
    assert len(common) >= 9, (ivf_rows, exact_rows)
    assert all(r[1:] == exact[tuple(r[2:4])] for r in common)
    assert [r[0] for r in ivf_rows] == [str(i) for i in range(1, len(ivf_rows) + 1)]


# ---- one scoring path: the index only chooses candidates ------------------------------------
def _full_probe(index):
    """The same IVF index scanning every list: its candidates then hold the true top k by construction."""
    index._faiss.nprobe = index.nlist
    return index


def _crowded(n=6000, d=64, seed=3):
    """Embeddings whose cosines crowd near 1 (tiny offsets from 40 centres), with exact duplicates and cell
    ids out of row order: near-ties and true ties everywhere, where a last-digit difference reorders results."""
    rng = np.random.default_rng(seed)
    centres = _unit(rng.standard_normal((40, d)))
    v = _unit(centres[rng.integers(0, 40, n)] + 2e-4 * rng.standard_normal((n, d)))
    v[1::7] = v[0::7][: len(v[1::7])]  # duplicated vectors: equal scores, decided by cell id
    return v, rng.permutation(np.arange(10_000, 10_000 + n))


@pytest.mark.parametrize("data", ["porto", "crowded"])
def test_index_and_exact_search_return_identical_ids_ranks_and_scores(porto_embeddings, data):
    from loc2vec_engine.search.index import exact_top, train_ivf

    if data == "porto":
        v, cells = porto_embeddings.vectors, porto_embeddings.cell
    else:
        v, cells = _crowded()
    ivf = train_ivf(v, seed=0)
    index = _full_probe(VectorIndex(v, "ivf", ivf, cells=cells))
    rng = np.random.default_rng(0)
    for i, row in enumerate(rng.choice(len(v), 40, replace=False)):
        q = v[row]
        excluded = (rng.random(len(v)) < 0.05) if i % 2 else None
        rows_e, scores_e = exact_top(v, cells, q, 10, excluded)
        rows_i, scores_i = index.top(q, 10, excluded)
        assert np.array_equal(rows_e, rows_i) and np.array_equal(scores_e, scores_i)  # bit for bit
        # ranked by score, then by cell id among equal scores
        keys = list(zip(-scores_e, cells[rows_e]))
        assert keys == sorted(keys)
    if data == "crowded":
        row0 = int(np.flatnonzero(cells == cells[0])[0])
        rows, scores = exact_top(v, cells, v[row0], 10)
        assert np.sum(scores == scores[0]) >= 2  # the planted duplicate ties with the query itself ...
        tied = cells[rows][scores == scores[0]]
        assert list(tied) == sorted(tied)  # ... and the lower cell id ranks first


def test_the_calibrated_index_prints_the_scores_exact_search_prints(porto_embeddings):
    """Whatever the index finds is scored by the one scoring path: the same number a full scan gives."""
    from loc2vec_engine.search.cosine import cosine_scores

    es = porto_embeddings
    index = VectorIndex.build(es.vectors, exact_below=200, seed=0, cells=es.cell)
    assert index.kind == "ivf"
    for row in range(0, len(es), 37):
        rows, scores = index.top(es.vectors[row], 10)
        assert np.array_equal(scores, cosine_scores(es.vectors, es.vectors[row])[rows])
        res = similar(es, es.vectors[row], 10, index=index)
        assert np.array_equal(res.scores, scores) and np.array_equal(res.indices, rows)


def test_a_cells_score_does_not_depend_on_which_rows_are_scored_with_it():
    from loc2vec_engine.search.cosine import cosine_scores

    v, _ = _crowded(n=20_000, d=48)
    q = v[11]
    whole = cosine_scores(v, q)
    rows = np.random.default_rng(1).permutation(len(v))[:7_777]
    assert np.array_equal(cosine_scores(v, q, rows), whole[rows])
    assert np.array_equal(cosine_scores(v[rows[:5]], q), whole[rows[:5]])
    np.testing.assert_allclose(whole, v.astype(np.float64) @ q.astype(np.float64), atol=1e-12)


def test_heat_map_and_top_k_agree_to_the_last_digit(porto_embeddings):
    es = porto_embeddings
    res, heat = PlaceSearch(es).highlight([BAIXA], k=10)
    assert np.array_equal(res.scores, heat[res.indices])
    exact = similar_at(es, [BAIXA], k=10)
    assert np.array_equal(exact.indices, res.indices) and np.array_equal(exact.scores, res.scores)


@pytest.fixture()
def out_dir(tmp_path):
    d = tmp_path / "out"
    d.mkdir()
    return d


def _empty_gpkg(path):
    from pyproj import CRS

    write_embeddings(path, np.zeros((0, 2)), np.zeros((0, 128), np.float32), CRS.from_epsg(32629).to_wkt(),
                     {"model_sha256": "0" * 64})
    return path


def _foreign_gpkg(path):
    from osgeo import ogr

    ds = ogr.GetDriverByName("GPKG").CreateDataSource(str(path))
    ds.CreateLayer("roads", None, ogr.wkbLineString)
    ds = None
    return path


def _no_model_gpkg(path, files):
    es = read_embeddings(files["east"])
    write_embeddings(path, es.xy, es.vectors, es.crs_wkt, {"stride_m": STRIDE_M})  # no model_sha256
    assert "model_sha256" not in read_embeddings(path).meta
    return path


@pytest.mark.parametrize("case, expected", [
    ("empty", "no embedded cells"),
    ("foreign", "not a loc2vec embeddings GeoPackage"),
    ("not_gpkg", "is not a GeoPackage"),
    ("outside", "outside the embedded area"),
    ("k_too_large", "larger than the"),
    ("k_zero", "k must be a positive whole number"),
    ("exclude_everything", "left after leaving out"),
    ("other_model", "different models"),
    ("no_model", "does not say which model"),
    ("bad_point", "is not LON,LAT"),
    ("off_globe", "not a point on the globe"),
    ("negative_radius", "exclude radius"),
    ("nan_radius", "exclude radius must be 0 or more metres"),
    ("out_is_input", "is an input file"),
])
def test_bad_input_is_one_clear_error(case, expected, files, tmp_path, out_dir, capsys):
    out = out_dir / "similar.gpkg"
    emb, extra = files["porto"], []
    k = 5
    at = _at(BAIXA)
    if case == "empty":
        emb = _empty_gpkg(tmp_path / "empty.gpkg")
    elif case == "foreign":
        emb = _foreign_gpkg(tmp_path / "roads.gpkg")
    elif case == "not_gpkg":
        emb = tmp_path / "notes.gpkg"
        emb.write_text("not a database, just text " * 100)
    elif case == "outside":
        at = "-8.70,41.15"  # 7 km west, in the Atlantic
    elif case == "k_too_large":
        k = 100_000
    elif case == "k_zero":
        k = 0
    elif case == "exclude_everything":
        extra = ["--exclude-radius", 5000]
    elif case == "other_model":
        emb, extra = files["west"], ["--in", files["other_model"]]
        at = _at(tuple(read_embeddings(emb).lonlat()[0]))
    elif case == "no_model":
        extra = ["--in", _no_model_gpkg(tmp_path / "nomodel.gpkg", files)]
    elif case == "bad_point":
        at = "41.146"
    elif case == "off_globe":
        at = "41.146,-8.611e3"
    elif case == "negative_radius":
        extra = ["--exclude-radius", -5]
    elif case == "nan_radius":
        extra = ["--exclude-radius", "nan"]
    elif case == "out_is_input":
        out = files["porto"]
    before = files["porto"].stat().st_mtime_ns
    rc, text, err = _run(capsys, "similar", emb, "--at", at, "--k", k, "--out", out, *extra)
    assert rc == 2, (text, err)
    assert err.startswith("error: ") and "\n  fix: " in err and err.count("error: ") == 1, err
    assert expected in err, err
    assert "Traceback" not in err
    assert text == ""  # no partial table either
    assert sorted(p.name for p in out_dir.iterdir()) == []
    assert files["porto"].stat().st_mtime_ns == before


def test_exact_below_must_be_positive(files, capsys):
    rc, text, err = _run(capsys, "similar", files["porto"], "--at", _at(BAIXA), "--exact-below", 0)
    assert rc == 2 and "--exact-below must be a positive number" in err and "fix:" in err
