"""Why alike (`loc2vec similar --explain`): channel groups blanked in both tiles through the shipped ONNX model.

Synthetic tiles made by code (the same building blocks in both, roads in one, water in the other) and real
Porto embeddings; every cosine comes from the model, nothing is mocked.
"""

import shutil

import numpy as np
import pytest

from loc2vec_engine.cli import main
from loc2vec_engine.embeddings.store import read_embeddings, update_columns, write_embeddings
from loc2vec_engine.errors import Loc2VecError
from loc2vec_engine.evaluation.ablation import CHANNEL_GROUPS, zero_channels
from loc2vec_engine.explain import Explainer, explain_columns, explain_similar, find_area
from loc2vec_engine.explain.explain import compare
from loc2vec_engine.search.similar import similar_at

from ..conftest import REPO

MODEL = REPO / "resources" / "models" / "loc2vec-default.onnx"
RIBEIRA = (-8.6110, 41.1405)  # the Douro's bank: water, dense blocks
S, PX = 64, 500 / 64  # the shipped model's tiles: 64 px of 7.8125 m


@pytest.fixture(scope="module")
def encoder():
    from loc2vec_engine.embeddings.onnx_encoder import OnnxEncoder

    return OnnxEncoder(MODEL, "cpu")


# ---- synthetic tiles: alike only in their buildings ---------------------------------------------
@pytest.fixture(scope="module")
def pair(encoder):
    """A query tile (building blocks + two major roads) and a result tile (the same blocks + water), with a
    blank tile between them; the explanation of the pair."""
    from pyproj import CRS

    from loc2vec_engine.tiles import PalettedArea

    names = encoder.channel_names
    data = np.zeros((len(names), S, 3 * S), np.uint8)
    for x0 in (0, 2 * S):
        for r in range(4, S - 8, 12):
            for c in range(4, S - 8, 12):
                data[names.index("buildings_residential"), r:r + 7, x0 + c:x0 + c + 7] = 255
    data[names.index("roads_major"), :, 10:13] = 255
    data[names.index("roads_major"), 30:33, :S] = 255
    data[names.index("water"), 40:, 2 * S:] = 255
    area = PalettedArea.from_arrays(data, transform=(0.0, PX, 0.0, S * PX, 0.0, -PX), channel_names=names,
                                    crs_wkt=CRS.from_epsg(32629).to_wkt())
    ex = Explainer(encoder, area)
    query = ex.mean_side([(S * PX / 2, S * PX / 2)])
    (hit,) = ex.sides([(2.5 * S * PX, S * PX / 2)])
    return ex, compare(query, hit, ex.groups, names, rank=1, cell=0)


def test_tiles_alike_only_in_buildings_have_buildings_as_top_group(pair):
    _, e = pair
    drops = e.drops()
    assert list(drops) == list(CHANNEL_GROUPS)  # the ablation's groups, in its order
    assert e.top_group == "buildings" and drops["buildings"] > 0.05
    assert drops["buildings"] == max(drops.values())
    assert drops["nature"] < 0 and drops["roads"] < 0  # without what differs they are closer
    buildings = next(g for g in e.groups if g.group == "buildings")
    assert buildings.query_share == pytest.approx(buildings.result_share) and 0.2 < buildings.query_share < 0.4
    assert e.text.startswith(f"alike mostly for buildings (−{drops['buildings']:.3f} when blanked)")


def test_blanking_a_group_both_tiles_lack_changes_nothing(pair):
    _, e = pair
    transit = next(g for g in e.groups if g.group == "transit+poi")
    assert transit.query_share == transit.result_share == 0
    assert abs(transit.drop) < 1e-6 and transit.blanked_cosine == pytest.approx(e.cosine, abs=1e-6)


def test_the_words_name_a_channel_only_one_tile_has(pair):
    _, e = pair
    water = e.channel_names.index("water")
    assert e.query_shares[water] == 0 and e.result_shares[water] > 0.3
    assert f"the query has no water (result {100 * e.result_shares[water]:.0f} %)" in e.text
    assert "both: residential buildings 30/30 %" in e.text
    assert "closer without nature + land use" in e.text  # blanking the water (nature) brings them together


# ---- real Porto embeddings -------------------------------------------------------------------------
@pytest.fixture(scope="module")
def emb(porto_area, tmp_path_factory):
    """Porto every 100 m by the shipped model, as `loc2vec embed` writes it (about 150 cells)."""
    from loc2vec_engine.embeddings.embed import embed_area

    out = tmp_path_factory.mktemp("explain") / "porto.gpkg"
    return embed_area(MODEL, porto_area, out, stride_m=100, device="cpu", progress=lambda f, m: None).path


@pytest.fixture(scope="module")
def es(emb):
    return read_embeddings(emb)


@pytest.fixture(scope="module")
def explained(es):
    result = similar_at(es, [RIBEIRA], 5)
    return result, explain_similar(es, result)


def test_real_hits_reembedded_give_the_search_scores(explained, es):
    """The tiles are cut again where the cells were embedded: the cosine with nothing blanked is the score."""
    result, explanations = explained
    assert [e.rank for e in explanations] == [1, 2, 3, 4, 5]
    assert [e.cell for e in explanations] == result.cells.tolist()
    assert np.allclose([e.cosine for e in explanations], result.scores, atol=1e-5)
    for e in explanations:
        assert e.text and all(0 <= g.query_share <= 1 and 0 <= g.result_share <= 1 for g in e.groups)
        assert e.channel_names[int(np.argmax(e.query_shares))] == "water"  # Ribeira: the river


def test_a_drop_is_the_ablations_blanking_through_the_model(explained, es, encoder, porto_area):
    """One group by hand: both tiles cut, the group zeroed as the ablation zeroes it, re-embedded, cosine."""
    from loc2vec_engine.evaluation.ablation import channel_groups
    from loc2vec_engine.search.similar import query_cells
    from loc2vec_engine.tiles import TileSampler

    result, explanations = explained
    q = query_cells(es, [RIBEIRA])[0]
    tiles, _ = TileSampler(porto_area).sample(es.xy[[q, result.indices[2]]], size=S)
    blanked = encoder.embed(zero_channels(tiles, channel_groups(encoder.channel_names)["buildings"]))
    drop = float(result.scores[2]) - float(blanked[0] @ blanked[1])
    assert explanations[2].drops()["buildings"] == pytest.approx(drop, abs=1e-5)


def test_cli_explain_prints_each_hit_and_writes_the_columns(emb, explained, tmp_path, capsys):
    from osgeo import ogr

    result, explanations = explained
    out = tmp_path / "similar.gpkg"
    assert main(["similar", str(emb), "--at", "-8.6110,41.1405", "--k", "5", "--explain", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "why alike" in printed and "query: water" in printed
    assert printed.count("alike mostly for") + printed.count("no single group") == 5
    assert "roads " in printed and "transit + POIs " in printed  # the groups side by side
    ds = ogr.Open(str(out))
    feats = sorted(ds.GetLayerByName("similar"), key=lambda f: f["rank"])
    names = [ds.GetLayerByName("similar").GetLayerDefn().GetFieldDefn(i).GetName()
             for i in range(ds.GetLayerByName("similar").GetLayerDefn().GetFieldCount())]
    assert names == ["rank", "cell", "score", "distance_m", "explain", "top_group", "drop_roads", "drop_buildings",
                     "drop_nature", "drop_transit_poi"]
    cols = explain_columns(explanations)
    assert [f["explain"] for f in feats] == cols["explain"]
    assert [f["top_group"] for f in feats] == cols["top_group"]
    assert np.allclose([f["drop_buildings"] for f in feats], cols["drop_buildings"], atol=1e-9)


def test_missing_area_raster_is_an_error_with_the_fix(emb, porto_area, tmp_path, capsys):
    moved = tmp_path / "moved.gpkg"
    shutil.copyfile(emb, moved)
    update_columns(moved, meta_updates={"area_path": str(tmp_path / "gone" / porto_area.name)})
    assert main(["similar", str(moved), "--at", "-8.6110,41.1405", "--k", "2", "--explain"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: the area raster moved.gpkg was made from is not found"), err
    assert f"fix: put {porto_area.name} next to moved.gpkg, or give its path with --area AREA.tif" in err
    # --area points at it; a raster of that name next to the file is found as well
    assert main(["similar", str(moved), "--at", "-8.6110,41.1405", "--k", "2", "--explain",
                 "--area", str(porto_area)]) == 0
    assert capsys.readouterr().out.count("when blanked") >= 1
    shutil.copyfile(porto_area, tmp_path / porto_area.name)
    assert find_area(read_embeddings(moved)) == tmp_path / porto_area.name


def test_a_file_that_records_no_area_and_options_without_explain(es, tmp_path, capsys):
    bare = write_embeddings(tmp_path / "bare.gpkg", es.xy, es.vectors, es.crs_wkt,
                            {"model_sha256": es.model_sha256, "stride_m": 100.0})
    with pytest.raises(Loc2VecError, match="does not record the area raster") as info:
        explain_similar(read_embeddings(bare), similar_at(es, [RIBEIRA], 2))
    assert "--area AREA.tif" in info.value.fix
    assert main(["similar", str(es.path), "--at", "-8.6110,41.1405", "--area", "x.tif"]) == 2
    assert "--explain" in capsys.readouterr().err


def test_search_in_another_file_explains_hits_from_its_area(es, tmp_path):
    """--in: the hits' tiles come from the other file's area raster (here the same one, found by its name)."""
    east = es.xy[:, 0] > np.median(es.xy[:, 0])
    other = write_embeddings(tmp_path / "east.gpkg", es.xy[east], es.vectors[east], es.crs_wkt, es.meta,
                             cell=es.cell[east])
    west = (-8.6150, 41.1420)
    target = read_embeddings(other)
    result = similar_at(es, [west], 3, target=target)
    explanations = explain_similar(es, result, target=target)
    assert np.allclose([e.cosine for e in explanations], result.scores, atol=1e-5)
