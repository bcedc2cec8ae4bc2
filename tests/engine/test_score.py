"""``loc2vec score``: places scored from examples on a small synthetic grid with two planted kinds of place."""

import json

import numpy as np
import pytest

from loc2vec_engine import ATTRIBUTION
from loc2vec_engine.cli import main
from loc2vec_engine.embeddings.store import read_embeddings, write_embeddings
from loc2vec_engine.errors import Loc2VecError
from loc2vec_engine.scoring import Geometries, score_embeddings, score_places

STRIDE = 50.0
COLS, ROWS = 24, 18  # 432 grid places, a few left empty
DIM = 32
ORIGIN = (500_025.0, 4_560_975.0)  # centre of cell 0 (UTM 29N, by Porto)
CRS = "EPSG:32629"


def _unit(x):
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


@pytest.fixture(scope="module")
def grid(tmp_path_factory):
    """Kind A (a block of 8 x 6 cells in the west, and a 3 x 3 patch in the east) among kind B everywhere else.

    Returns (path, EmbeddingSet, kind (N,) bool True = A).
    """
    from pyproj import CRS as ProjCRS

    rng = np.random.default_rng(0)
    r, c = np.divmod(np.arange(ROWS * COLS), COLS)
    keep = np.arange(ROWS * COLS) % 11 != 5  # holes in the grid: cells that were not embedded
    kind_a = ((c >= 2) & (c < 10) & (r >= 4) & (r < 10)) | ((c >= 18) & (c < 21) & (r >= 12) & (r < 15))
    a, b = _unit(rng.standard_normal((2, DIM)))
    vectors = _unit(np.where(kind_a[:, None], a, b) + 0.35 * rng.standard_normal((ROWS * COLS, DIM)) / np.sqrt(DIM))
    xy = np.stack([ORIGIN[0] + c * STRIDE, ORIGIN[1] - r * STRIDE], axis=1)
    path = tmp_path_factory.mktemp("score") / "emb.gpkg"
    meta = {"model_sha256": "b" * 64, "stride_m": STRIDE, "tile_size_m": 150.0,
            "grid": {"x0": ORIGIN[0], "y0": ORIGIN[1], "cols": COLS, "rows": ROWS, "stride_m": STRIDE}}
    write_embeddings(path, xy[keep], vectors[keep], ProjCRS(CRS).to_wkt(), meta, cell=np.flatnonzero(keep))
    es = read_embeddings(path)
    return path, es, kind_a[keep]


def lonlat(es, row):
    lon, lat = es.lonlat()[row]
    return f"{lon:.7f},{lat:.7f}"


def rows_of(es, kind, n, seed, west=None):
    rng = np.random.default_rng(seed)
    pick = np.flatnonzero(kind if west is None else kind & ((es.xy[:, 0] < ORIGIN[0] + 12 * STRIDE) == west))
    return rng.choice(pick, n, replace=False)


def points_file(path, es, rows, crs="EPSG:4326"):
    """A GeoJSON/GeoPackage of points at the centres of ``rows``, written in ``crs``."""
    from osgeo import ogr, osr

    srs = osr.SpatialReference()
    srs.SetFromUserInput(crs)
    srs.SetAxisMappingStrategy(osr.OAMS_TRADITIONAL_GIS_ORDER)
    src = osr.SpatialReference()
    src.SetFromUserInput(CRS)
    src.SetAxisMappingStrategy(osr.OAMS_TRADITIONAL_GIS_ORDER)
    ct = osr.CoordinateTransformation(src, srs)
    driver = "GeoJSON" if str(path).endswith("json") else "GPKG"
    ds = ogr.GetDriverByName(driver).CreateDataSource(str(path))
    lyr = ds.CreateLayer("points", srs, ogr.wkbPoint)
    for row in rows:
        g = ogr.Geometry(ogr.wkbPoint)
        g.AddPoint_2D(*(float(v) for v in es.xy[row]))
        g.Transform(ct)
        f = ogr.Feature(lyr.GetLayerDefn())
        f.SetGeometry(g)
        lyr.CreateFeature(f)
    ds = None
    return str(path)


def polygon_file(path, wkt, crs=CRS):
    from osgeo import ogr, osr

    srs = osr.SpatialReference()
    srs.SetFromUserInput(crs)
    srs.SetAxisMappingStrategy(osr.OAMS_TRADITIONAL_GIS_ORDER)
    ds = ogr.GetDriverByName("GPKG").CreateDataSource(str(path))
    lyr = ds.CreateLayer("area", srs, ogr.wkbPolygon)
    f = ogr.Feature(lyr.GetLayerDefn())
    f.SetGeometry(ogr.CreateGeometryFromWkt(wkt))
    lyr.CreateFeature(f)
    ds = None
    return str(path)


def run(capsys, *argv):
    rc = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return rc, out, err


# ---- outcomes ------------------------------------------------------------------------------------
def test_one_point_scores_its_kind_above_the_other_by_prototype(grid):
    _, es, kind = grid
    (row,) = rows_of(es, kind, 1, seed=1, west=True)
    res = score_embeddings(es, [lonlat(es, row)])
    s = res.scores
    assert s.method == "prototype" and "fewer than 5" in s.why and s.heldout_auc is None
    assert res.positives.rows.tolist() == [row]
    assert s.values[row] == pytest.approx(1.0, abs=1e-5)
    # Every cell of the planted kind, the far patch in the east too, beats every cell of the other kind.
    assert s.values[kind].min() > s.values[~kind].max()
    # One example: the threshold is the best 5 % (its own score, 1, would mask its cell alone).
    assert "best 5%" in s.threshold_why and res.mask.cells == pytest.approx(0.05 * len(es), abs=2)


def test_prototype_with_negatives_is_held_out_leave_one_out(grid):
    _, es, kind = grid
    pos, neg = rows_of(es, kind, 3, seed=2), rows_of(es, ~kind, 2, seed=3)
    res = score_embeddings(es, [lonlat(es, r) for r in pos], [lonlat(es, r) for r in neg])
    s = res.scores
    assert s.method == "prototype" and "leave-one-out" in s.heldout_how and s.heldout_auc == 1.0
    assert s.values[kind].min() > s.values[~kind].max()
    # The default threshold: the weakest positive's score (every example in the mask), at most the best 5 %.
    assert s.threshold == pytest.approx(min(s.values[pos].min(), np.quantile(s.values, 0.95)))
    assert np.all(s.values[pos] >= s.threshold)


def test_five_and_five_choose_the_logistic_regression_with_its_auc(grid, tmp_path, capsys):
    path, es, kind = grid
    pos = rows_of(es, kind, 5, seed=4, west=True)  # the east patch is never an example
    neg = rows_of(es, ~kind, 6, seed=5)
    pos_file = points_file(tmp_path / "pos.geojson", es, pos)  # WGS84 points
    out, tif = tmp_path / "score.gpkg", tmp_path / "score.tif"
    rc, printed, err = run(capsys, "score", path, "--positive", pos_file,
                           *sum((["--negative", lonlat(es, r)] for r in neg), []), "--out", out, "--raster", tif)
    assert rc == 0, err
    assert "method: logistic" in printed and "ROC AUC 1.000" in printed and "cross-validation" in printed
    assert "threshold 0.5" in printed and ATTRIBUTION in printed
    assert (tmp_path / "score_histogram.png").stat().st_size > 5000

    from osgeo import gdal, ogr

    ds = ogr.Open(str(out))
    lyr = ds.GetLayerByName("score")
    feats = {f["cell"]: (f["score"], f["rank"], f["example"], f.GetGeometryRef().GetX()) for f in lyr}
    assert len(feats) == len(es) and lyr.GetMetadataItem("method") == "logistic"
    assert lyr.GetMetadataItem("attribution") == ATTRIBUTION
    scores = np.array([feats[int(c)][0] for c in es.cell])
    ranks = np.array([feats[int(c)][1] for c in es.cell])
    assert np.all(scores[kind] > 0.5) and np.all(scores[~kind] < 0.5)  # the east patch too
    assert sorted(ranks) == list(range(1, len(es) + 1)) and ranks[np.argmax(scores)] == 1
    assert sum(feats[int(es.cell[r])][2] == 1 for r in pos) == 5 and feats[int(es.cell[neg[0]])][2] == -1
    # The mask: the cells at/above 0.5 dissolved, area = cells x stride² exactly.
    (mask,) = list(ds.GetLayerByName("mask"))
    n_above = int((scores >= 0.5).sum())
    assert mask["cells"] == n_above == kind.sum()
    assert mask["area_km2"] == pytest.approx(n_above * STRIDE ** 2 / 1e6)
    assert mask.GetGeometryRef().GetArea() == pytest.approx(n_above * STRIDE ** 2)
    assert mask.GetGeometryRef().GetGeometryCount() == 2  # the west block and the east patch
    assert mask.GetGeometryRef().IsValid()
    # The raster: one pixel per cell holding its score, nodata at the grid's holes.
    r = gdal.Open(str(tif))
    x0, px, _, y0, _, py = r.GetGeoTransform()
    band = r.GetRasterBand(1)
    values = band.ReadAsArray()
    assert px == STRIDE and py == -STRIDE and band.DataType == gdal.GDT_Float32
    cols = np.floor((es.xy[:, 0] - x0) / px).astype(int)
    rows = np.floor((es.xy[:, 1] - y0) / py).astype(int)
    np.testing.assert_allclose(values[rows, cols], scores, rtol=1e-6)
    assert (values == band.GetNoDataValue()).sum() == values.size - len(es) > 0
    assert ATTRIBUTION in r.GetMetadataItem("TIFFTAG_COPYRIGHT")
    del mask, lyr, ds, band, r  # GDAL: layers and bands go before their datasets (else a crash at exit)


def test_a_polygon_means_every_cell_whose_centre_is_inside(grid, tmp_path):
    import shapely

    _, es, kind = grid
    # A triangle over the west block, drawn in Web Mercator: reprojected to the embeddings' CRS on reading.
    tri = shapely.Polygon([(ORIGIN[0] + 80, ORIGIN[1] - 180), (ORIGIN[0] + 470, ORIGIN[1] - 210),
                           (ORIGIN[0] + 200, ORIGIN[1] - 480)])
    from loc2vec_engine.geo.crs import project_geometries
    from pyproj import Transformer

    merc = project_geometries(tri, Transformer.from_crs(CRS, "EPSG:3857", always_xy=True))
    res = score_embeddings(es, [polygon_file(tmp_path / "tri.gpkg", merc.wkt, "EPSG:3857")])
    inside_merc = shapely.contains_xy(merc, *Transformer.from_crs(CRS, "EPSG:3857", always_xy=True)
                                      .transform(es.xy[:, 0], es.xy[:, 1]))
    assert res.positives.rows.tolist() == np.flatnonzero(inside_merc).tolist()
    assert len(res.positives) >= 5 and np.all(kind[res.positives.rows])
    # In-memory features (as the QGIS plugin passes them) give the same cells.
    same = score_embeddings(es, [Geometries([shapely.to_wkb(merc)], "EPSG:3857", "drawn")])
    assert same.positives.rows.tolist() == res.positives.rows.tolist()


def test_a_given_threshold_masks_the_cells_at_or_above_it(grid):
    _, es, kind = grid
    res = score_embeddings(es, [lonlat(es, r) for r in rows_of(es, kind, 3, seed=10)], threshold=0.8)
    s = res.scores
    assert s.threshold == 0.8 and "given" in s.threshold_why
    assert res.mask.cells == int((s.values >= 0.8).sum()) == kind.sum()
    assert res.mask.geometry.GetArea() == pytest.approx(res.mask.cells * STRIDE ** 2)


def test_a_point_within_one_stride_of_the_edge_takes_the_edge_cell(grid):
    _, es, _ = grid
    from loc2vec_engine.geo.crs import transformer_to_wgs84

    row = int(np.argmin(es.xy[:, 0] + 1e-3 * es.xy[:, 1]))  # a cell on the west edge
    lon, lat = transformer_to_wgs84(es.crs_wkt).transform(es.xy[row, 0] - 0.9 * STRIDE, es.xy[row, 1])
    res = score_embeddings(es, [(lon, lat)])
    assert res.positives.rows.tolist() == [row]


# ---- bad input: one error and fix each, exit 2, nothing written ---------------------------------
def _fails(capsys, tmp_path, *argv, expect):
    out = tmp_path / "bad.gpkg"
    rc, _, err = run(capsys, "score", *argv, "--out", out, "--raster", tmp_path / "bad.tif")
    assert rc == 2 and "error:" in err and "fix:" in err, err
    assert expect in err, err
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(("bad", ".bad"))) == []
    return err


def test_a_positive_outside_the_embedded_area(grid, tmp_path, capsys):
    path, es, _ = grid
    from loc2vec_engine.geo.crs import transformer_to_wgs84

    row = int(np.argmin(es.xy[:, 0]))
    lon, lat = transformer_to_wgs84(es.crs_wkt).transform(es.xy[row, 0] - 1.2 * STRIDE, es.xy[row, 1])
    err = _fails(capsys, tmp_path, path, "--positive", f"{lon:.7f},{lat:.7f}", expect="outside the embedded area")
    assert "60 m away" in err and "spans lon" in err


def test_a_polygon_around_no_cell(grid, tmp_path, capsys):
    path, es, _ = grid
    x, y = ORIGIN[0] + 10, ORIGIN[1] - 10  # a 20 m square between the centres of four cells
    ring = f"{x} {y},{x + 20} {y},{x + 20} {y - 20},{x} {y - 20},{x} {y}"
    poly = polygon_file(tmp_path / "small.gpkg", f"POLYGON(({ring}))")
    _fails(capsys, tmp_path, path, "--positive", poly, expect="holds no cell")


def test_a_negative_in_the_same_cell_as_a_positive(grid, tmp_path, capsys):
    path, es, kind = grid
    pos = rows_of(es, kind, 2, seed=6)
    from loc2vec_engine.geo.crs import transformer_to_wgs84

    lon, lat = transformer_to_wgs84(es.crs_wkt).transform(es.xy[pos[1], 0] + 10, es.xy[pos[1], 1] - 10)
    err = _fails(capsys, tmp_path, path, "--positive", lonlat(es, pos[0]), "--positive", lonlat(es, pos[1]),
                 "--negative", f"{lon:.7f},{lat:.7f}", expect="both a positive and a negative")
    assert f"cell {int(es.cell[pos[1]])}" in err


def test_too_few_examples_for_the_logistic_regression(grid, tmp_path, capsys):
    path, es, kind = grid
    pos, neg = rows_of(es, kind, 2, seed=7), rows_of(es, ~kind, 6, seed=8)
    args = [path, *sum((["--positive", lonlat(es, r)] for r in pos), []),
            *sum((["--negative", lonlat(es, r)] for r in neg), []), "--method", "logistic"]
    err = _fails(capsys, tmp_path, *args, expect="needs at least 5 positive and 5 negative cells")
    assert "got 2 positive and 6 negative" in err and "--method prototype" in err


@pytest.mark.parametrize("what", ["text", "other_gpkg"])
def test_an_embeddings_file_that_is_not_one(grid, tmp_path, capsys, what):
    _, es, _ = grid
    bad = tmp_path / "not_embeddings.gpkg"
    if what == "text":
        bad.write_text("hello")
    else:
        polygon_file(bad, "POLYGON((0 0,1 0,1 1,0 0))")
    _fails(capsys, tmp_path, bad, "--positive", lonlat(es, 0), expect="GeoPackage")


def test_an_unwritable_output(grid, tmp_path, capsys):
    path, es, _ = grid
    rc, _, err = run(capsys, "score", path, "--positive", lonlat(es, 0), "--out", tmp_path / "no" / "s.gpkg")
    assert rc == 2 and "error: output folder" in err and "fix: create it first" in err
    assert not (tmp_path / "no").exists()


def test_a_failure_while_writing_leaves_no_output(grid, tmp_path, monkeypatch):
    path, es, _ = grid
    from loc2vec_engine.scoring import output

    def broken(tmp, es, result):
        raise OSError(28, "No space left on device", str(tmp))

    monkeypatch.setattr(output, "write_histogram", broken)
    with pytest.raises(Loc2VecError, match="nothing was written"):
        score_places(path, [lonlat(es, 0)], out=tmp_path / "s.gpkg", raster=tmp_path / "s.tif",
                     histogram=tmp_path / "s.png")
    assert list(tmp_path.iterdir()) == []


def test_summary_is_recorded_in_the_layers(grid, tmp_path):
    path, es, kind = grid
    res = score_places(path, [lonlat(es, r) for r in rows_of(es, kind, 2, seed=9)], out=tmp_path / "s.gpkg")
    from osgeo import ogr

    ds = ogr.Open(str(tmp_path / "s.gpkg"))  # kept: a layer outlives no dataset
    lyr = ds.GetLayerByName("mask")
    assert lyr.GetMetadataItem("method") == "prototype"
    assert float(lyr.GetMetadataItem("threshold")) == pytest.approx(res.scores.threshold, rel=1e-5)
    assert json.loads(json.dumps(lyr.GetMetadata()))["attribution"] == ATTRIBUTION


def test_a_cut_in_the_score_order_is_the_same_mask_as_the_threshold(grid):
    """The map tool's live slider: a cut in the ranks equals ``scores >= t``, ties and the ends included."""
    from loc2vec_engine.scoring.mask import ScoreOrder, rank_plane, threshold_mask

    _, es, kind = grid
    res = score_embeddings(es, [lonlat(es, r) for r in rows_of(es, kind, 3, seed=12)])
    values = np.round(res.scores.values, 2)  # rounded: many cells tie at each threshold
    order = ScoreOrder(values)
    plane = rank_plane(res.layout, order)
    assert (plane == -1).sum() == res.layout.rows * res.layout.cols - len(values)
    assert sorted(plane[plane >= 0].tolist()) == list(range(len(values)))
    for t in (values.min() - 1, values.min(), *np.unique(values)[::7], values.max(), values.max() + 1):
        above = order.rank >= order.cut(t)
        assert np.array_equal(above, values >= t)
        assert order.mask(res.layout, t).cells == threshold_mask(res.layout, values, t).cells == above.sum()
        assert np.array_equal(plane >= order.cut(t), res.layout.plane(values >= t, False, bool))


def test_a_saved_mask_is_traced_at_the_chosen_threshold(grid, tmp_path):
    from osgeo import ogr

    from loc2vec_engine.scoring import write_mask_gpkg

    _, es, kind = grid
    res = score_embeddings(es, [lonlat(es, r) for r in rows_of(es, kind, 3, seed=13)])
    t = float(np.quantile(res.scores.values, 0.6))
    out = write_mask_gpkg(tmp_path / "m.gpkg", es, res, t)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.gpkg"]
    ds = ogr.Open(str(out))
    lyr = ds.GetLayerByName("mask")
    f = lyr.GetNextFeature()
    n = int((res.scores.values >= t).sum())
    assert f["cells"] == n and f.GetGeometryRef().GetArea() == pytest.approx(n * STRIDE ** 2)
    assert lyr.GetMetadataItem("threshold_why") == "chosen by the user"
    assert lyr.GetMetadataItem("attribution") == ATTRIBUTION
