"""Example sets as GeoJSON (the map tool's Save / Load examples): the format, its errors, and
``loc2vec score --positive ex.geojson --negative ex.geojson`` reading the same file through OGR."""

import json

import numpy as np
import pytest

from loc2vec_engine import ATTRIBUTION
from loc2vec_engine.errors import Loc2VecError
from loc2vec_engine.scoring import read_examples_geojson, score_embeddings, write_examples_geojson

from .test_score import grid, rows_of, run  # noqa: F401  the module's synthetic grid with two kinds of place


def _lonlats(es, rows):
    return [tuple(float(v) for v in es.lonlat()[r]) for r in rows]


def test_save_and_load_round_trip_and_the_file_is_wgs84_geojson_with_the_attribution(tmp_path):
    pos, neg = [(-8.6110123, 41.1460456), (-8.6, 41.14)], [(-8.6125, 41.1418)]
    path = write_examples_geojson(tmp_path / "ex.geojson", pos, neg, embeddings="porto.gpkg")
    data = json.loads(path.read_text(encoding="utf-8"))
    assert data["type"] == "FeatureCollection" and data["attribution"] == ATTRIBUTION
    assert data["crs"]["properties"]["name"] == "urn:ogc:def:crs:OGC:1.3:CRS84" and data["embeddings"] == "porto.gpkg"
    assert [f["properties"]["example"] for f in data["features"]] == ["positive", "positive", "negative"]
    assert data["features"][0]["geometry"] == {"type": "Point", "coordinates": [-8.6110123, 41.1460456]}
    back = read_examples_geojson(path)
    assert back.positives == pos and back.negatives == neg
    assert not list(tmp_path.glob(".*part*"))

    from osgeo import ogr

    ds = ogr.Open(str(path))  # any OGR reader: a point layer in WGS84 with the text field 'example'
    lyr = ds.GetLayer(0)
    assert lyr.GetSpatialRef().GetAuthorityCode(None) == "4326"
    assert lyr.GetFeatureCount() == 3
    assert lyr.GetGeomType() == ogr.wkbPoint
    defn = lyr.GetLayerDefn()
    assert defn.GetFieldDefn(defn.GetFieldIndex("example")).GetType() == ogr.OFTString
    del defn, lyr, ds


def test_score_reads_a_saved_example_set_with_ogr(grid, tmp_path, capsys):
    path, es, kind = grid
    pos, neg = rows_of(es, kind, 3, seed=11), rows_of(es, ~kind, 2, seed=12)
    ex = write_examples_geojson(tmp_path / "ex.geojson", _lonlats(es, pos), _lonlats(es, neg))
    by_file = score_embeddings(es, [str(ex)], [str(ex)])
    assert by_file.positives.rows.tolist() == sorted(pos) and by_file.negatives.rows.tolist() == sorted(neg)
    by_points = score_embeddings(es, _lonlats(es, pos), _lonlats(es, neg))
    np.testing.assert_array_equal(by_file.scores.values, by_points.scores.values)
    rc, printed, err = run(capsys, "score", path, "--positive", ex, "--negative", ex, "--out", tmp_path / "s.gpkg",
                           "--no-histogram")
    assert rc == 0, err
    assert "from 3 positive and 2 negative cells" in printed and "3 points of" in printed


def test_a_saved_set_without_negatives_given_as_negative_says_so(grid, tmp_path, capsys):
    path, es, kind = grid
    ex = write_examples_geojson(tmp_path / "only.geojson", _lonlats(es, rows_of(es, kind, 2, seed=13)))
    rc, _, err = run(capsys, "score", path, "--positive", ex, "--negative", ex, "--out", tmp_path / "s.gpkg")
    assert rc == 2 and "holds no negative examples" in err and "'example' has positive" in err
    assert not (tmp_path / "s.gpkg").exists()


BAD = {
    "not JSON": ("{\"type\": \"FeatureCollection\",", "is not JSON (line 1"),
    "a list": ("[1, 2]", "holds a JSON list that is not GeoJSON"),
    "a feature": ('{"type": "Feature", "properties": {}, "geometry": null}', "is a GeoJSON Feature, not a"),
    "no features": ('{"type": "FeatureCollection", "features": []}', "holds no features"),
    "a line": ('{"type": "FeatureCollection", "features": [{"type": "Feature", "properties": {"example": "positive"},'
               ' "geometry": {"type": "LineString", "coordinates": [[0, 0], [1, 1]]}}]}',
               "feature 1 of bad.geojson is a LineString, not a point"),
    "no role": ('{"type": "FeatureCollection", "features": [{"type": "Feature", "properties": {"name": "x"},'
                ' "geometry": {"type": "Point", "coordinates": [-8.6, 41.1]}}]}',
                "feature 1 of bad.geojson has no property \"example\""),
    "a wrong role": ('{"type": "FeatureCollection", "features": [{"type": "Feature", "properties": {"example": "yes"},'
                     ' "geometry": {"type": "Point", "coordinates": [-8.6, 41.1]}}]}', "has \"example\": \"yes\""),
    "off the globe": ('{"type": "FeatureCollection", "features": [{"type": "Feature", "properties": {"example": '
                      '"negative"}, "geometry": {"type": "Point", "coordinates": [500000, 4560000]}}]}',
                      "not a longitude (-180..180) and latitude"),
    "another CRS": ('{"type": "FeatureCollection", "crs": {"type": "name", "properties": {"name": "EPSG:32629"}},'
                    ' "features": [{"type": "Feature", "properties": {"example": "positive"}, "geometry": {"type": '
                    '"Point", "coordinates": [500000, 4560000]}}]}', "\"EPSG:32629\", not WGS84"),
}


@pytest.mark.parametrize("case", BAD)
def test_bad_geojson_is_a_clear_message(tmp_path, case):
    text, expect = BAD[case]
    (tmp_path / "bad.geojson").write_text(text)
    with pytest.raises(Loc2VecError) as e:
        read_examples_geojson(tmp_path / "bad.geojson")
    assert expect in e.value.problem and e.value.fix


def test_nothing_to_save_or_nowhere_to_save(tmp_path):
    with pytest.raises(Loc2VecError, match="no examples to save"):
        write_examples_geojson(tmp_path / "none.geojson", [], [])
    with pytest.raises(Loc2VecError, match="does not exist"):
        write_examples_geojson(tmp_path / "missing" / "ex.geojson", [(-8.6, 41.1)])
    with pytest.raises(Loc2VecError, match="does not exist"):
        read_examples_geojson(tmp_path / "gone.geojson")
    assert not list(tmp_path.iterdir())
