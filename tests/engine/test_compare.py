"""``loc2vec compare`` on real data: central Porto through the OGR path, and a copy edited as a planner would —
one ~150 m block's buildings removed and a park drawn in their place — rasterized on the same grid."""

import re

import numpy as np
import pytest

from loc2vec_engine import ATTRIBUTION
from loc2vec_engine.cli import main
from loc2vec_engine.errors import Loc2VecError

from ..conftest import REPO

MODEL = REPO / "resources" / "models" / "loc2vec-default.onnx"
STRIDE = 100.0
PIXEL_M = 3.90625  # half the default resolution: the model reads 7.8 m pixels anyway, and it is faster
HALF_TILE = 250.0  # the shipped model's tiles are 500 m
# About 920 x 945 m of central Porto: the block sits ~270 m from its west edge, so that cells in the east
# are more than half a tile and a stride from it.
BBOX = (-8.6160, 41.1405, -8.6050, 41.1490)
BLOCK_CENTRE = (-8.6128, 41.1448)  # a dense block of the Baixa (about 77 % buildings)
BLOCK_HALF_M = 75.0
QUIET = {"progress": lambda f, m: None}


def _block_wkt():
    lon, lat = BLOCK_CENTRE
    dlon, dlat = BLOCK_HALF_M / (111_320 * np.cos(np.radians(lat))), BLOCK_HALF_M / 110_540
    x0, x1, y0, y1 = lon - dlon, lon + dlon, lat - dlat, lat + dlat
    return f"POLYGON(({x0} {y0},{x1} {y0},{x1} {y1},{x0} {y1},{x0} {y0}))"


@pytest.fixture(scope="module")
def edit(porto_pbf, tmp_path_factory):
    """before.tif and after.tif (both from GeoPackages: the same OGR path) and the edit's envelope in metres."""
    import shutil

    from osgeo import gdal, ogr

    from loc2vec_engine.raster.rasterize import rasterize

    gdal.UseExceptions()
    d = tmp_path_factory.mktemp("compare")
    source, edited = d / "porto.gpkg", d / "porto_park.gpkg"
    w, s, e, n = BBOX
    gdal.PushErrorHandler("CPLQuietErrorHandler")
    try:  # only what lies near the area: the conversion and both reads stay fast
        gdal.VectorTranslate(str(source), str(porto_pbf), format="GPKG", spatFilter=(w - 0.0005, s - 0.0005,
                                                                                      e + 0.0005, n + 0.0005))
    finally:
        gdal.PopErrorHandler()
    shutil.copyfile(source, edited)
    ds = ogr.Open(str(edited), 1)
    layer = ds.GetLayerByName("multipolygons")
    block = ogr.CreateGeometryFromWkt(_block_wkt())
    layer.SetAttributeFilter("building IS NOT NULL")
    layer.SetSpatialFilter(block)
    removed = [(f.GetFID(), f.GetGeometryRef().Clone()) for f in layer
               if f.GetGeometryRef().Centroid().Within(block)]
    layer.SetAttributeFilter(None)
    layer.SetSpatialFilter(None)
    envelope = block.Clone()
    for fid, geom in removed:
        layer.DeleteFeature(fid)
        envelope = envelope.Union(geom)
    park = ogr.Feature(layer.GetLayerDefn())
    park.SetField("leisure", "park")
    park.SetGeometry(ogr.ForceToMultiPolygon(block))
    layer.CreateFeature(park)
    layer = ds = None
    before = rasterize(source, d / "before.tif", bbox=BBOX, pixel_size=PIXEL_M, **QUIET)
    after = rasterize(edited, d / "after.tif", bbox=BBOX, pixel_size=PIXEL_M, **QUIET)
    lon0, lon1, lat0, lat1 = envelope.GetEnvelope()
    xs, ys = before.lonlat_to_xy([lon0, lon1, lon0, lon1], [lat0, lat0, lat1, lat1])
    return {"dir": d, "before": before.path, "after": after.path, "removed": len(removed),
            "edit_m": (min(xs), min(ys), max(xs), max(ys)), "edit_lonlat": (lon0, lat0, lon1, lat1)}


def read_change(path):
    from osgeo import ogr

    ds = ogr.Open(str(path))
    layer = ds.GetLayerByName("change")
    names = [layer.GetLayerDefn().GetFieldDefn(i).GetName() for i in range(layer.GetLayerDefn().GetFieldCount())]
    rows = [(f.GetGeometryRef().GetX(), f.GetGeometryRef().GetY(), *(f.GetField(n) for n in names)) for f in layer]
    meta = layer.GetMetadata()
    layer = ds = None
    cols = list(zip(*rows))
    out = {"xy": np.stack([np.array(cols[0]), np.array(cols[1])], 1), "meta": meta, "names": names}
    out.update({n: np.array(c) for n, c in zip(names, cols[2:])})
    return out


def gap_m(xy, rect):
    """Chebyshev distance from cell centres to a rectangle (0 inside)."""
    x0, y0, x1, y1 = rect
    dx = np.maximum.reduce([x0 - xy[:, 0], np.zeros(len(xy)), xy[:, 0] - x1])
    dy = np.maximum.reduce([y0 - xy[:, 1], np.zeros(len(xy)), xy[:, 1] - y1])
    return np.maximum(dx, dy)


@pytest.fixture(scope="module")
def compared(edit):
    out = edit["dir"] / "change.gpkg"
    import contextlib
    import io

    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        rc = main(["compare", str(edit["before"]), str(edit["after"]), "--model", str(MODEL), "--out", str(out),
                   "--stride", f"{STRIDE:g}", "--device", "cpu"])
    assert rc == 0
    return {"out": out, "printed": printed.getvalue(), "layer": read_change(out)}


def test_change_is_high_at_the_edit_and_zero_where_no_tile_touches_it(edit, compared):
    c = compared["layer"]
    assert edit["removed"] > 50  # a real block of buildings
    assert c["names"] == ["cell", "change", "cluster_before", "cluster_after", "changed_cluster"]
    gap = gap_m(c["xy"], edit["edit_m"])
    far = gap > HALF_TILE + STRIDE
    at = gap <= STRIDE / 2
    print(f"change at the edit: {np.round(np.sort(c['change'][at])[::-1], 4)}; "
          f"farthest changed cell {gap[c['change'] > 0].max():.0f} m from it; far max {c['change'][far].max()}")
    assert far.sum() >= 15 and at.sum() >= 4
    assert np.all(c["change"][far] == 0.0)  # the same tile, the same embedding: exactly no change
    assert c["change"][at].min() > 0.005 and c["change"][at].max() > 0.03
    largest = int(np.argmax(c["change"]))
    assert gap[largest] <= STRIDE / 2
    assert c["change"].max() > 20 * np.median(c["change"][c["change"] > 0])
    # Switching cluster always means the embedding moved, and the flag says what the columns say.
    assert np.array_equal(c["changed_cluster"], (c["cluster_before"] != c["cluster_after"]).astype(int))
    assert np.all(c["change"][c["changed_cluster"] == 1] > 0)
    assert set(c["cluster_before"]) <= set(range(8))
    assert c["meta"]["attribution"] == ATTRIBUTION and c["meta"]["cells"] == str(len(gap))


def test_summary_names_the_cells_mean_switches_and_where(edit, compared):
    printed, c = compared["printed"], compared["layer"]
    assert f"compared {len(c['change'])} cells of before.tif and after.tif (100 m grid" in printed
    mean = float(re.search(r"mean ([0-9.e-]+)", printed).group(1))
    assert mean == pytest.approx(c["change"].mean(), rel=1e-3)
    assert re.search(rf"{int(c['changed_cluster'].sum())} of {len(c['change'])} cells switched cluster", printed)
    lon, lat = (float(v) for v in re.search(r"largest change at (-?[0-9.]+),(-?[0-9.]+)", printed).groups())
    w, s, e, n = edit["edit_lonlat"]
    assert w - 0.0007 < lon < e + 0.0007 and s - 0.0005 < lat < n + 0.0005  # within half a stride of the edit
    assert ATTRIBUTION in printed
    png = compared["out"].with_name("change_map.png")
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and str(png) in printed


def test_the_map_outlines_where_the_pixels_differ(edit, compared):
    """The change map's purple outline is the edit: the pixels that differ lie on the block, and nowhere else."""
    from loc2vec_engine.change.output import edited_ground

    x0, y0, x1, y1 = edit["edit_m"]
    margin = 600.0
    mask, (left, right, bottom, top) = edited_ground(edit["before"], edit["after"],
                                                     (x0 - margin, y0 - margin, x1 + margin, y1 + margin))
    h, w = mask.shape
    ys, xs = np.nonzero(mask > 0.5)
    mx, my = left + (xs + 0.5) * (right - left) / w, top - (ys + 0.5) * (top - bottom) / h
    px = (right - left) / w
    assert len(xs) > 100  # the removed buildings and the park
    assert mx.min() >= x0 - 2 * px and mx.max() <= x1 + 2 * px and my.min() >= y0 - 2 * px and my.max() <= y1 + 2 * px
    assert mx.max() - mx.min() > 0.8 * (x1 - x0) and my.max() - my.min() > 0.8 * (y1 - y0)
    assert edited_ground(edit["before"], edit["before"], (x0, y0, x1, y1)) is None  # nothing differs: no line


def test_clusters_of_an_embeddings_file_are_used(edit, compared, tmp_path):
    """--clusters with a file clustered as compare clustered BEFORE gives the same columns."""
    from loc2vec_engine.change import compare_areas
    from loc2vec_engine.embeddings.embed import embed_area
    from loc2vec_engine.embeddings.store import read_embeddings, update_columns

    emb = embed_area(MODEL, edit["before"], tmp_path / "before.gpkg", stride_m=STRIDE, device="cpu", **QUIET).path
    es = read_embeddings(emb)
    c = compared["layer"]
    labels = dict(zip(c["cell"].tolist(), c["cluster_before"].tolist()))
    update_columns(emb, cluster=[labels[int(cell)] for cell in es.cell])
    result = compare_areas(edit["before"], edit["after"], MODEL, out=tmp_path / "again.gpkg", stride_m=STRIDE,
                           clusters=emb, device="cpu", **QUIET)
    assert result.clusters_from.startswith(f"the {len(set(labels.values()))} clusters of before.gpkg")
    assert np.array_equal(result.cluster_before, c["cluster_before"])
    assert np.array_equal(result.cluster_after, c["cluster_after"])
    assert np.array_equal(result.change, c["change"])


# ---- bad input: one error with its fix, exit 2, nothing written --------------------------------

def _copy(src, dst, **translate):
    from osgeo import gdal

    gdal.Translate(str(dst), str(src), **translate)
    return dst


def _rename_band(path, band, name):
    from osgeo import gdal

    ds = gdal.Open(str(path), gdal.GA_Update)
    ds.GetRasterBand(band).SetDescription(name)
    ds = None
    return path


def _fails(capsys, out_dir, argv, *expect):
    rc = main([str(a) for a in argv])
    err = capsys.readouterr().err
    assert rc == 2 and "Traceback" not in err, err
    lines = err.splitlines()
    assert lines[0].startswith("error: ") and lines[1].startswith("  fix: "), err
    for text in expect:
        assert text in err, err
    assert sorted(p.name for p in out_dir.iterdir()) == [], "left behind"
    return err


@pytest.fixture()
def out_dir(tmp_path):
    d = tmp_path / "out"
    d.mkdir()
    return d


def _argv(before, after, out_dir, *more):
    return ["compare", before, after, "--model", MODEL, "--out", out_dir / "change.gpkg", "--device", "cpu", *more]


@pytest.mark.parametrize("what, translate, expect", [
    ("extent", {"srcWin": [0, 0, 500, 500]}, "cover different extents"),
    ("pixel size", {"xRes": 7.8125, "yRes": 7.8125}, "3.90625 m pixels but"),
    ("crs", {"outputSRS": "EPSG:32630"}, "is in EPSG:32629 but"),
])
def test_rasters_on_different_grids(edit, tmp_path, out_dir, capsys, what, translate, expect):
    other = _copy(edit["after"], tmp_path / "other.tif", **translate)
    err = _fails(capsys, out_dir, _argv(edit["before"], other, out_dir), expect, "other.tif")
    assert "--bbox -8.616000,41.140500,-8.605000,41.149000 --crs EPSG:32629 --pixel-size 3.90625" in err


def test_rasters_with_different_bands(edit, tmp_path, out_dir, capsys):
    other = _rename_band(_copy(edit["after"], tmp_path / "other.tif"), 4, "houses")
    _fails(capsys, out_dir, _argv(edit["before"], other, out_dir), "has the bands", "'houses'", "the same --spec")


def test_a_model_of_other_channels(edit, tmp_path, out_dir, capsys):
    a = _rename_band(_copy(edit["before"], tmp_path / "a.tif"), 4, "houses")
    b = _rename_band(_copy(edit["after"], tmp_path / "b.tif"), 4, "houses")
    _fails(capsys, out_dir, _argv(a, b, out_dir), "a.tif has channels", "was trained on", "loc2vec rasterize --spec")


@pytest.mark.parametrize("option", ["--out", "--map"])
def test_an_unwritable_output(edit, out_dir, capsys, monkeypatch, option):
    monkeypatch.setattr("loc2vec_engine.change.compare.embed_both", _never)
    argv = _argv(edit["before"], edit["after"], out_dir)
    if option == "--out":
        argv[argv.index("--out") + 1] = "/proc/change.gpkg"
    else:
        argv += ["--map", "/proc/loc2vec-nope/map.png"]
    _fails(capsys, out_dir, argv, "/proc")


def test_a_missing_file(edit, tmp_path, out_dir, capsys):
    _fails(capsys, out_dir, _argv(tmp_path / "gone.tif", edit["after"], out_dir), "gone.tif not found",
           "loc2vec rasterize")
    argv = _argv(edit["before"], edit["after"], out_dir)
    argv[argv.index("--model") + 1] = tmp_path / "gone.onnx"
    _fails(capsys, out_dir, argv, "gone.onnx")


def test_an_output_over_an_input(edit, out_dir, capsys):
    argv = _argv(edit["before"], edit["after"], out_dir, "--map", edit["after"])
    _fails(capsys, out_dir, argv, "is one of the rasters compared")
    assert edit["after"].stat().st_size > 0


def test_clusters_from_a_file_without_clusters_or_of_another_model(edit, tmp_path, out_dir, capsys):
    from pyproj import CRS

    from loc2vec_engine.embeddings.store import write_embeddings

    xy = np.array([[532_300.0, 4_555_300.0], [532_400.0, 4_555_300.0]])
    vectors = np.eye(2, 164, dtype=np.float32)
    plain = write_embeddings(tmp_path / "plain.gpkg", xy, vectors, CRS(32629).to_wkt(), {"model_sha256": "a" * 64})
    _fails(capsys, out_dir, _argv(edit["before"], edit["after"], out_dir, "--clusters", plain),
           "plain.gpkg has no clusters", "loc2vec cluster")
    other = write_embeddings(tmp_path / "other.gpkg", xy, vectors, CRS(32629).to_wkt(), {"model_sha256": "a" * 64},
                             cluster=[0, 1])
    _fails(capsys, out_dir, _argv(edit["before"], edit["after"], out_dir, "--clusters", other),
           "other.gpkg was embedded by another model")
    _fails(capsys, out_dir, _argv(edit["before"], edit["after"], out_dir, "--clusters", other, "--k", "4"),
           "both --k and --clusters")


def test_a_failure_while_writing_leaves_no_output(edit, out_dir, monkeypatch):
    from loc2vec_engine.change import compare_areas

    def fake(enc, before, after, grid, *args):
        rng = np.random.default_rng(0)
        return rng.standard_normal((2, len(grid), enc.embedding_size)).astype(np.float32)

    def broken(tmp, result):
        tmp.write_bytes(b"half a PNG")
        raise OSError(28, "No space left on device")

    monkeypatch.setattr("loc2vec_engine.change.compare.embed_both", fake)
    monkeypatch.setattr("loc2vec_engine.change.output.write_map", broken)
    with pytest.raises(Loc2VecError, match="could not write .*map.png"):
        compare_areas(edit["before"], edit["after"], MODEL, out=out_dir / "change.gpkg",
                      map_png=out_dir / "map.png", device="cpu", **QUIET)
    assert sorted(p.name for p in out_dir.iterdir()) == []


def _never(*args, **kwargs):
    raise AssertionError("compare started embedding before finding that its output cannot be written")


def test_a_cancel_while_embedding_writes_nothing(edit, out_dir):
    from loc2vec_engine.change import compare_areas
    from loc2vec_engine.progress import Cancelled

    with pytest.raises(Cancelled):
        compare_areas(edit["before"], edit["after"], MODEL, out=out_dir / "change.gpkg", map_png=out_dir / "map.png",
                      device="cpu", progress=lambda fraction, message: True)
    assert sorted(p.name for p in out_dir.iterdir()) == []


def test_the_same_raster_twice_changes_nothing(edit, out_dir, capsys, monkeypatch):
    def same(enc, before, after, grid, *args):
        v = np.random.default_rng(1).standard_normal((len(grid), enc.embedding_size)).astype(np.float32)
        return v, v.copy()

    monkeypatch.setattr("loc2vec_engine.change.compare.embed_both", same)
    assert main([str(a) for a in _argv(edit["before"], edit["before"], out_dir, "--k", "3")]) == 0
    printed = capsys.readouterr().out
    assert "no cell changed: every tile is the same in both rasters" in printed
    assert "0 of " in printed and "cells switched cluster" in printed
    c = read_change(out_dir / "change.gpkg")
    assert np.all(c["change"] == 0) and np.all(c["changed_cluster"] == 0)
    assert (out_dir / "change_map.png").is_file()
