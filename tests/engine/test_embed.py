"""loc2vec embed / merge on real Porto data with the shipped model: what is stored, and bad input."""

import json

import numpy as np
import pytest

from loc2vec_engine.cli import main
from loc2vec_engine.embeddings import read_embeddings
from loc2vec_engine.embeddings.embed import embed_area
from loc2vec_engine.embeddings.onnx_encoder import DEFAULT_MODEL, OnnxEncoder
from loc2vec_engine.progress import Cancelled
from loc2vec_engine.tiles import PalettedArea, TileSampler

STRIDE = 100.0


@pytest.fixture(scope="module")
def porto_emb(porto_area, tmp_path_factory):
    out = tmp_path_factory.mktemp("embed") / "porto.gpkg"
    assert main(["embed", "default", str(porto_area), "--out", str(out), "--stride", str(STRIDE)]) == 0
    return out


def _run(capsys, *argv):
    rc = main([str(a) for a in argv])
    return rc, capsys.readouterr().err


def _assert_clean_failure(rc, err, folder, expected):
    assert rc == 2, err
    assert err.startswith("error: ") and "\n  fix: " in err and "Traceback" not in err, err
    assert expected in err, err
    assert [p.name for p in folder.iterdir() if ".gpkg" in p.name] == []


# ---- what is stored -------------------------------------------------------------------------
def test_grid_cells_are_the_valid_centres_and_vectors_are_unit(porto_emb, porto_area):
    es = read_embeddings(porto_emb)
    area = PalettedArea.from_raster(porto_area)
    grid = es.meta["grid"]
    assert grid["stride_m"] == STRIDE and len(es) <= grid["cols"] * grid["rows"]
    assert len(es) >= 0.9 * grid["cols"] * grid["rows"]  # the Porto fixture is valid almost everywhere
    col, row = area.xy_to_pixel(es.xy[:, 0], es.xy[:, 1])
    assert (area.ids[row.astype(int), col.astype(int)] != 0).all()
    assert np.allclose(np.linalg.norm(es.vectors, axis=1), 1, atol=1e-4)
    assert np.diff(es.cell).min() > 0 and es.cluster is None and es.umap is None
    assert es.meta["model_sha256"] == OnnxEncoder(DEFAULT_MODEL, "cpu").sha256
    assert "OpenStreetMap" in es.meta["attribution"] and es.meta["area"] == porto_area.name


def test_vectors_are_the_models_embeddings_of_upright_tiles(porto_emb, porto_area):
    es = read_embeddings(porto_emb)
    enc = OnnxEncoder(DEFAULT_MODEL, "cpu")
    pick = np.array([0, len(es) // 2, len(es) - 1])
    tiles, _ = TileSampler(porto_area, tile_size_m=enc.tile_size_m).sample(es.xy[pick], size=enc.tile_size_px)
    assert np.abs(enc.embed(tiles) - es.vectors[pick]).max() < 1e-5


def test_neighbouring_cells_are_more_alike_than_random_pairs(porto_emb):
    es = read_embeddings(porto_emb)
    d = np.linalg.norm(es.xy[:, None] - es.xy[None], axis=2)
    sim = es.vectors @ es.vectors.T
    neighbours = sim[(d > 0) & (d <= STRIDE * 1.01)].mean()
    far = sim[d > 800].mean()
    assert neighbours > far + 0.05, (neighbours, far)


def test_gpkg_is_a_real_geopackage_for_ogr(porto_emb, porto_area):
    from osgeo import ogr, osr

    from loc2vec_engine.raster.area import AreaRaster

    ds = ogr.Open(str(porto_emb))
    lyr = ds.GetLayerByName("embeddings")
    assert lyr.GetFeatureCount() == len(read_embeddings(porto_emb))
    assert lyr.GetGeomType() == ogr.wkbPoint
    area_srs = osr.SpatialReference(wkt=AreaRaster.open(porto_area).crs_wkt)
    assert lyr.GetSpatialRef().IsSame(area_srs)
    f = lyr.GetNextFeature()
    size = read_embeddings(porto_emb).meta["embedding_size"]  # 164 for the shipped hybrid: 128 learned + 36
    assert len(f.GetFieldAsBinary("embedding")) == 4 * size and f.IsFieldNull("cluster")
    meta = {r.GetField("key"): json.loads(r.GetField("value")) for r in ds.GetLayerByName("loc2vec_meta")}
    assert meta["model"]["channel_names"][0] == "roads_major"


def test_single_points_match_the_grid_cell_there(porto_emb, porto_area, tmp_path):
    es = read_embeddings(porto_emb)
    lonlat = es.lonlat()[7]
    out = tmp_path / "pts.gpkg"
    assert main(["embed", "default", str(porto_area), "--out", str(out), "--at", f"{lonlat[0]:.9f},{lonlat[1]:.9f}"]) == 0
    pts = read_embeddings(out)
    assert len(pts) == 1 and pts.meta["points"] is True
    assert float(pts.vectors[0] @ es.vectors[7]) > 0.9999


def test_clip_keeps_only_cells_inside(porto_emb, porto_area, tmp_path):
    es = read_embeddings(porto_emb)
    ll = es.lonlat()
    west = float(np.median(ll[:, 0]))
    clip = tmp_path / "clip.geojson"
    box = [[-9.0, 41.0], [west, 41.0], [west, 41.3], [-9.0, 41.3], [-9.0, 41.0]]
    clip.write_text(json.dumps({"type": "Polygon", "coordinates": [box]}))
    out = tmp_path / "clipped.gpkg"
    assert main(["embed", "default", str(porto_area), "--out", str(out), "--stride", str(STRIDE), "--clip", str(clip)]) == 0
    part = read_embeddings(out)
    assert 0.3 * len(es) < len(part) < 0.7 * len(es)
    assert (part.lonlat()[:, 0] < west).all()
    assert set(part.cell) <= set(es.cell)  # same grid, fewer cells


def test_shards_merge_into_the_full_file(porto_emb, porto_area, tmp_path):
    parts = []
    for i in range(3):
        parts.append(tmp_path / f"part{i}.gpkg")
        embed_area("default", porto_area, parts[-1], stride_m=STRIDE, shard=f"{i}/3", device="cpu",
                   progress=lambda f, m: None)
    sizes = [len(read_embeddings(p)) for p in parts]
    full = read_embeddings(porto_emb)
    assert sum(sizes) == len(full) and max(sizes) - min(sizes) <= 1
    merged = tmp_path / "merged.gpkg"
    assert main(["merge", *map(str, parts[::-1]), "--out", str(merged)]) == 0
    m = read_embeddings(merged)
    assert np.array_equal(m.cell, full.cell) and np.abs(m.vectors - full.vectors).max() < 1e-6
    assert m.meta["shard"] is None and m.meta["merged_from"] == 3


# ---- bad input ----------------------------------------------------------------------------
@pytest.fixture(scope="module")
def shards(porto_area, tmp_path_factory):
    d = tmp_path_factory.mktemp("shards")
    for i in range(2):
        embed_area("default", porto_area, d / f"p{i}.gpkg", stride_m=250, shard=f"{i}/2", device="cpu",
                   progress=lambda f, m: None)
    return d


@pytest.mark.parametrize("pick, expected", [
    (["p0.gpkg"], "shard(s) 1/2 missing"),
    (["p0.gpkg", "p0.gpkg", "p1.gpkg"], "shard(s) 0/2 given more than once"),
    (["p0.gpkg", "full.gpkg"], "is not a shard"),
])
def test_merge_refuses_incomplete_or_foreign_parts(capsys, shards, porto_emb, tmp_path, pick, expected):
    import shutil

    shutil.copy(porto_emb, shards / "full.gpkg")
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    rc, err = _run(capsys, "merge", *[shards / p for p in pick], "--out", out_dir / "m.gpkg")
    _assert_clean_failure(rc, err, out_dir, expected)


def _foreign_model(tmp_path, channel_names=None, metadata=True):
    import onnx
    from onnx import TensorProto, helper

    if channel_names is not None:
        from loc2vec_engine.encoders import create_encoder
        from loc2vec_engine.export.onnx import export_onnx

        return export_onnx(create_encoder("loc2vec", embedding_dim=16), tmp_path / "other.onnx", tile_size_px=64,
                           metres_per_px=500 / 64, channel_names=channel_names)
    x = helper.make_tensor_value_info("tiles", TensorProto.FLOAT, [None, 12, 64, 64])
    y = helper.make_tensor_value_info("embedding", TensorProto.FLOAT, [None, 12, 64, 64])
    model = helper.make_model(helper.make_graph([helper.make_node("Identity", ["tiles"], ["embedding"])], "g", [x], [y]))
    path = tmp_path / "plain.onnx"
    onnx.save(model, str(path))
    return path


@pytest.mark.parametrize("case, expected", [
    ("no-metadata", "not a loc2vec model"),
    ("other-channels", "was trained on"),
    ("missing-model", "not found"),
    ("missing-area", "area raster"),
    ("bad-stride", "stride must be a positive number"),
    ("bad-shard", "bad shard"),
    ("clip-elsewhere", "no cell of the"),
    ("point-outside", "outside the valid pixels"),
])
def test_embed_bad_input(capsys, porto_area, tmp_path, case, expected):
    model, area, extra = "default", porto_area, []
    if case == "no-metadata":
        model = _foreign_model(tmp_path)
    elif case == "other-channels":
        names = OnnxEncoder(DEFAULT_MODEL, "cpu").channel_names
        model = _foreign_model(tmp_path, channel_names=names[::-1])
    elif case == "missing-model":
        model = tmp_path / "nope.onnx"
    elif case == "missing-area":
        area = tmp_path / "nope.tif"
    elif case == "bad-stride":
        extra = ["--stride", "-5"]
    elif case == "bad-shard":
        extra = ["--shard", "3/3"]
    elif case == "clip-elsewhere":
        clip = tmp_path / "kyiv.geojson"
        clip.write_text(json.dumps({"type": "Polygon", "coordinates": [[[30, 50], [31, 50], [31, 51], [30, 50]]]}))
        extra = ["--clip", clip]
    elif case == "point-outside":
        extra = ["--at", "30.5,50.45"]
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    rc, err = _run(capsys, "embed", model, area, "--out", out_dir / "e.gpkg", *extra)
    _assert_clean_failure(rc, err, out_dir, expected)


def test_cancel_leaves_no_file_and_keeps_the_old_one(porto_area, tmp_path):
    out = tmp_path / "e.gpkg"
    out.write_bytes(b"previous")
    with pytest.raises(Cancelled):
        embed_area("default", porto_area, out, stride_m=50, device="cpu", batch_size=8,
                   progress=lambda f, m: f > 0.2)
    assert out.read_bytes() == b"previous"
    assert [p.name for p in tmp_path.iterdir()] == ["e.gpkg"]
