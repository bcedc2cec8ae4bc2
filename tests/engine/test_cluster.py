"""`loc2vec cluster` on real embeddings: central Porto tiles through the shipped model, clustered, projected, drawn."""

import shutil
from pathlib import Path

import numpy as np
import pytest

from loc2vec_engine.cli import main
from loc2vec_engine.clusters import cluster_file, cluster_labels, relabel_by_size, umap_2d
from loc2vec_engine.clusters.colors import cluster_color
from loc2vec_engine.clusters.plots import ROAD_GREY, cell_image
from loc2vec_engine.clusters.projection import projection_method
from loc2vec_engine.embeddings.store import read_embeddings, write_embeddings
from loc2vec_engine.progress import Cancelled

REPO = Path(__file__).resolve().parents[2]
MODEL = REPO / "resources" / "models" / "loc2vec-default.onnx"
STRIDE = 60.0
K = 5


# ---- fixtures: a real embeddings GeoPackage ----------------------------------------------------
def _grid_cells(area):
    """Centres of a STRIDE grid over the area that fall on valid pixels, with their row-major cell ids."""
    w, s, e, n = area.bounds
    xs, ys = np.arange(w + STRIDE / 2, e, STRIDE), np.arange(n - STRIDE / 2, s, -STRIDE)
    gx, gy = np.meshgrid(xs, ys)
    xy = np.stack([gx.ravel(), gy.ravel()], axis=1)
    _, valid = area.read()
    col, row = area.xy_to_pixel(xy[:, 0], xy[:, 1])
    keep = valid[row.astype(int), col.astype(int)]
    return xy[keep], np.flatnonzero(keep)


@pytest.fixture(scope="module")
def porto_cells(porto_area, tmp_path_factory):
    """Embeddings of Porto tiles (64 px, 500 m, every 60 m) by the shipped model, written as `loc2vec embed`
    writes them; with each tile's mean per channel, to say what the clusters mean."""
    from loc2vec_engine.embeddings.onnx_encoder import OnnxEncoder
    from loc2vec_engine.raster.area import AreaRaster
    from loc2vec_engine.tiles import TileSampler

    area = AreaRaster.open(porto_area)
    xy, cell = _grid_cells(area)
    encoder = OnnxEncoder(MODEL, "cpu")
    tiles, _ = TileSampler(area).sample(xy, size=encoder.tile_size_px)
    vectors = encoder.embed(tiles)
    meta = {"area": porto_area.name, "area_path": str(Path(porto_area).resolve()), "stride_m": STRIDE,
            "model_sha256": encoder.sha256, "model_file": MODEL.name, "tile_size_m": encoder.tile_size_m,
            "tile_size_px": encoder.tile_size_px}
    path = write_embeddings(tmp_path_factory.mktemp("emb") / "porto_emb.gpkg", xy, vectors, area.crs_wkt, meta,
                            cell=cell)
    means = np.asarray(tiles, np.float32).mean(axis=(2, 3)) / 255
    return path, dict(zip(area.channel_names, means.T))


@pytest.fixture(scope="module")
def base_gpkg(porto_cells):
    return porto_cells[0]


@pytest.fixture(scope="module")
def clustered(base_gpkg, tmp_path_factory):
    """The Porto embeddings clustered once with k-means (PNGs in their own folder)."""
    path = tmp_path_factory.mktemp("clustered") / "porto_emb.gpkg"
    shutil.copyfile(base_gpkg, path)
    return cluster_file(path, K, seed=0)


def _copy(src, folder, name="emb.gpkg") -> Path:
    dst = Path(folder) / name
    shutil.copyfile(src, dst)
    return dst


# ---- the file, the labels, the projection ------------------------------------------------------
def test_cluster_file_fills_every_cell(clustered, base_gpkg):
    es = read_embeddings(clustered.path)
    assert len(es) == len(read_embeddings(base_gpkg)) > 200
    assert es.cluster is not None and np.array_equal(es.cluster, clustered.labels)
    assert sorted(set(es.cluster.tolist())) == list(range(K))
    sizes = [clustered.sizes[c] for c in range(K)]
    assert sizes == sorted(sizes, reverse=True) and sum(sizes) == len(es)  # 0 = largest
    assert es.umap is not None and np.isfinite(es.umap).all() and np.allclose(es.umap, clustered.umap)
    assert es.umap.std(axis=0).min() > 0.1  # a spread-out projection, not a point
    assert es.meta["cluster_method"] == "kmeans" and es.meta["cluster_k"] == K and es.meta["cluster_seed"] == 0
    assert es.meta["umap_method"] == "umap" and es.meta["model_sha256"]  # the embed meta is kept
    assert 0 < clustered.silhouette <= 1
    assert clustered.notes == []  # the area raster was found


def test_clusters_mean_something(clustered, porto_cells):
    """Clusters separate what is on the map: they explain much of how tiles differ in water, buildings,
    small roads (shuffled labels explain nothing), and they are places: grid neighbours mostly agree."""
    es = read_embeddings(clustered.path)
    channels = porto_cells[1]
    explained = {name: _explained(v, es.cluster) for name, v in channels.items()}
    shuffled = _explained(channels["water"], np.random.default_rng(0).permutation(es.cluster))
    assert explained["water"] > 0.5 and explained["buildings_residential"] > 0.4, explained
    assert np.mean(list(explained.values())) > 0.25 and shuffled < 0.1, (explained, shuffled)
    same = _neighbour_agreement(es.xy, es.cluster)
    assert same > 0.6, same


def _explained(values, labels) -> float:
    """Share of the variance of ``values`` between clusters (one-way R^2)."""
    within = sum(((values[labels == c] - values[labels == c].mean()) ** 2).sum() for c in np.unique(labels))
    return float(1 - within / ((values - values.mean()) ** 2).sum())


def _neighbour_agreement(xy, labels) -> float:
    d = np.abs(xy[:, None, :] - xy[None]).max(-1)
    pairs = np.argwhere(np.isclose(d, STRIDE))
    return float((labels[pairs[:, 0]] == labels[pairs[:, 1]]).mean())


def test_kmeans_recovers_well_separated_groups():
    from sklearn.metrics import adjusted_rand_score

    rng = np.random.default_rng(1)
    sizes = [60, 45, 30, 20]
    centres = rng.normal(size=(4, 32))
    truth = np.repeat(np.arange(4), sizes)
    x = centres[truth] + rng.normal(scale=0.05, size=(len(truth), 32))
    labels = cluster_labels(x, 4, seed=3)
    assert adjusted_rand_score(truth, labels) == 1.0
    assert np.array_equal(labels, truth)  # numbered by size: the 60-group is 0, the 20-group is 3
    hdb = cluster_labels(x, method="hdbscan", min_cluster_size=10)
    assert adjusted_rand_score(truth[hdb >= 0], hdb[hdb >= 0]) == 1.0 and (hdb >= 0).mean() > 0.9


def test_same_seed_same_labels_other_seed_still_valid(base_gpkg):
    vectors = read_embeddings(base_gpkg).vectors
    a, b = cluster_labels(vectors, K, seed=7), cluster_labels(vectors, K, seed=7)
    assert np.array_equal(a, b) and a.dtype == np.int64
    assert sorted(set(cluster_labels(vectors, K, seed=8).tolist())) == list(range(K))


def test_relabel_by_size():
    assert relabel_by_size([5, 5, 2, 2, 2, -1, 7, 9]).tolist() == [1, 1, 0, 0, 0, -1, 2, 3]


def test_reclustering_is_deterministic_and_replaces(clustered, tmp_path):
    path = _copy(clustered.path, tmp_path)  # already clustered with K
    again = cluster_file(path, K, seed=0)
    assert np.array_equal(again.labels, clustered.labels)
    assert np.array_equal(again.umap, clustered.umap)  # seeded UMAP: the same coordinates
    three = cluster_file(path, 3, seed=0)
    es = read_embeddings(path)
    assert sorted(set(es.cluster.tolist())) == [0, 1, 2] and es.meta["cluster_k"] == 3
    assert np.array_equal(es.cluster, three.labels)
    assert three.map_png == tmp_path / "emb_clusters.png" and three.map_png.is_file()


def test_hdbscan_option(base_gpkg, tmp_path):
    result = cluster_file(_copy(base_gpkg, tmp_path), method="hdbscan", min_cluster_size=8)
    es = read_embeddings(result.path)
    assert es.cluster.min() >= -1 and np.array_equal(es.cluster, result.labels)
    assert result.n_clusters >= 2 and set(es.cluster.tolist()) - {-1} == set(range(result.n_clusters))
    assert es.meta["cluster_method"] == "hdbscan" and es.meta["cluster_k"] == result.n_clusters
    assert es.meta["cluster_min_cluster_size"] == 8
    assert result.map_png.is_file() and result.umap_png.is_file()


def test_umap_fits_a_sample_and_places_the_rest():
    """Large sets: fitted on a seeded sample, the other points transformed next to their own group."""
    import numba
    from sklearn.metrics import adjusted_rand_score

    rng = np.random.default_rng(2)
    truth = np.repeat(np.arange(3), 130)
    x = rng.normal(size=(3, 64))[truth] + rng.normal(scale=0.1, size=(len(truth), 64))
    threads = numba.get_num_threads()
    seen = []
    p = umap_2d(x, seed=4, max_fit=120, progress=lambda f, m: seen.append(f))
    assert numba.get_num_threads() == threads  # UMAP's global setting put back
    assert p.shape == (390, 2) and np.isfinite(p).all()
    assert np.array_equal(p, umap_2d(x, seed=4, max_fit=120))
    assert seen[-1] == 1.0 and len(seen) == 2  # fit, then one transform chunk
    assert adjusted_rand_score(truth, cluster_labels(p, 3)) == 1.0  # groups stay apart in 2-D


def test_tiny_file_uses_pca_and_draws_without_raster(tmp_path):
    """Fewer cells than UMAP's neighbourhood: PCA with a note; a vanished area raster: cells alone, noted."""
    rng = np.random.default_rng(0)
    xy = np.array([[500_000.0 + 100 * (i % 4), 4_500_000.0 + 100 * (i // 4)] for i in range(10)])
    vectors = rng.normal(size=(10, 16)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    path = write_embeddings(tmp_path / "tiny.gpkg", xy, vectors, "EPSG:32629",
                            {"area_path": str(tmp_path / "gone.tif"), "stride_m": 100.0})
    result = cluster_file(path, 3)
    assert projection_method(10) == "pca" and read_embeddings(path).meta["umap_method"] == "pca"
    assert any("PCA" in n for n in result.notes) and any("gone.tif not found" in n for n in result.notes)
    img = _rgb(result.map_png)
    for c in range(3):
        assert _count(img, _blend(cluster_color(c), 0.6)) > 100  # 100 m squares: many pixels each
    assert _road_pixels(img) < 20  # no road background



def test_moved_area_raster_is_found_next_to_the_file(base_gpkg, porto_area, tmp_path):
    """The recorded area_path is gone, but the raster (same name) sits next to the GeoPackage: roads drawn."""
    from loc2vec_engine.embeddings.store import update_columns

    path = _copy(base_gpkg, tmp_path)
    update_columns(path, meta_updates={"area_path": str(tmp_path / "old" / porto_area.name)})
    shutil.copyfile(porto_area, tmp_path / porto_area.name)
    result = cluster_file(path, 3)
    assert result.notes == [] and _road_pixels(_rgb(result.map_png)) > 500


def test_single_points_are_drawn_as_dots(base_gpkg, porto_area, tmp_path):
    """`loc2vec embed --at` files (points, no grid): dots at the exact places, over the roads."""
    es = read_embeddings(base_gpkg)
    pick = np.linspace(0, len(es) - 1, 6).astype(int)
    path = write_embeddings(tmp_path / "points.gpkg", es.xy[pick], es.vectors[pick], es.crs_wkt,
                            {"points": True, "stride_m": None, "area_path": str(porto_area)})
    result = cluster_file(path, 2)
    img = _rgb(result.map_png)
    assert result.notes == ["only 6 cells (UMAP needs 15 or more): 2-D projection by PCA instead"]
    for c in (0, 1):
        assert _count(img, _blend(cluster_color(c), 0.9)) > 20 * result.sizes[c]  # a dot per point
    assert _road_pixels(img) > 500

# ---- the pictures ------------------------------------------------------------------------------
def _rgb(path) -> np.ndarray:
    from matplotlib.image import imread

    return imread(path)[..., :3]


def _blend(color: str, alpha: float, under=1.0) -> np.ndarray:
    from matplotlib.colors import to_rgb

    return alpha * np.asarray(to_rgb(color)) + (1 - alpha) * under


def _count(img, rgb, tol=0.02) -> int:
    return int((np.abs(img - rgb).max(axis=-1) < tol).sum())


def _road_pixels(img) -> int:
    """Pixels in the map (title, legend and attribution cut off) of the grey a full-strength road gets
    outside the cells."""
    return _count(img[70:-45, 25:-300], np.full(3, ROAD_GREY), tol=0.01)


def test_cluster_map_png(clustered):
    img = _rgb(clustered.map_png)
    assert img.shape[0] > 700 and img.shape[1] > 1000
    counts = np.array([_count(img, _blend(cluster_color(c), 0.6)) for c in range(K)])
    assert (counts > 200).all(), counts  # every cluster's colour is on the map
    sizes = np.array([clustered.sizes[c] for c in range(K)])
    assert np.corrcoef(counts, sizes)[0, 1] > 0.9, (counts, sizes)  # area on the map ~ cells in the cluster
    assert _road_pixels(img) > 500  # the roads of porto.tif under and around the cells


def test_umap_png(clustered):
    img = _rgb(clustered.umap_png)
    assert img.shape[0] > 700
    counts = np.array([_count(img, _blend(cluster_color(c), 0.85), tol=0.03) for c in range(K)])
    assert (counts > 20).all(), counts


def test_cell_image_puts_each_cell_in_its_square():
    xy = np.array([[1000.0, 2000.0], [1060.0, 2000.0], [1000.0, 1880.0], [1120.0, 1940.0]])
    rgba, (left, right, bottom, top) = cell_image(xy, [0, 1, 2, 3], 60.0)
    assert rgba.shape == (3, 3, 4) and (left, right, bottom, top) == (970.0, 1150.0, 1850.0, 2030.0)
    for (x, y), label in zip(xy, range(4)):
        row, col = int((top - y) // 60), int((x - left) // 60)
        assert np.allclose(rgba[row, col, :3], _blend(cluster_color(label), 1.0)) and np.isclose(rgba[row, col, 3], 0.6)
    assert (rgba[..., 3] > 0).sum() == 4  # nothing else painted



def test_road_background_is_decimated_without_losing_roads(porto_area, monkeypatch):
    """Big rasters are drawn at <= MAX_BACKGROUND_PX by block maximum: thin roads survive the shrinking."""
    from loc2vec_engine.clusters import plots
    from loc2vec_engine.raster.area import AreaRaster

    area = AreaRaster.open(porto_area)
    full = plots.road_background(porto_area, area.crs_wkt, area.bounds)
    monkeypatch.setattr(plots, "MAX_BACKGROUND_PX", 100)
    small = plots.road_background(porto_area, area.crs_wkt, area.bounds)
    assert max(full.image.shape) > 600 and max(small.image.shape) <= 100
    assert np.allclose(small.extent[::3], full.extent[::3])  # same top-left corner
    assert small.extent[1] >= full.extent[1] and small.extent[2] <= full.extent[2]  # covers it all
    assert _road_share(small) > _road_share(full) > 0.05


def _road_share(background) -> float:
    return float((background.image < 1).mean())

# ---- progress and cancel -----------------------------------------------------------------------
def test_progress_reaches_one_and_cancel_writes_nothing(base_gpkg, tmp_path):
    path = _copy(base_gpkg, tmp_path)
    before = path.read_bytes()
    with pytest.raises(Cancelled):
        cluster_file(path, K, progress=lambda f, m: True)  # cancel at the first report
    assert path.read_bytes() == before and sorted(p.name for p in tmp_path.iterdir()) == ["emb.gpkg"]
    seen = []
    cluster_file(path, K, progress=lambda f, m: seen.append(f))
    assert seen == sorted(seen) and seen[-1] == 1.0 and len(seen) >= 4


# ---- the command line --------------------------------------------------------------------------
def test_cli_cluster(base_gpkg, tmp_path, capsys):
    path = _copy(base_gpkg, tmp_path)
    out = tmp_path / "pics"
    out.mkdir()
    assert main(["cluster", str(path), "--k", "4", "--out-dir", str(out), "--seed", "1"]) == 0
    text = capsys.readouterr().out
    assert "in 4 clusters (kmeans)" in text and "cluster 3:" in text and "OpenStreetMap" in text
    assert f"wrote {out / 'emb_clusters.png'}" in text and f"wrote {out / 'emb_umap.png'}" in text
    assert sorted(p.name for p in out.iterdir()) == ["emb_clusters.png", "emb_umap.png"]
    assert read_embeddings(path).meta["cluster_seed"] == 1


def test_cli_hdbscan(base_gpkg, tmp_path, capsys):
    path = _copy(base_gpkg, tmp_path)
    assert main(["cluster", str(path), "--method", "hdbscan", "--min-cluster-size", "6", "--k", "9"]) == 0
    text = capsys.readouterr().out
    assert "--k is ignored by hdbscan" in text and "(hdbscan)" in text
    assert read_embeddings(path).cluster.min() >= -1


def _bad(capsys, path: Path, *argv, expected: str):
    """Run a failing command; it must explain itself, exit 2 and leave the folder as it was."""
    folder = path.parent
    before = {p.name: p.read_bytes() for p in folder.iterdir() if p.is_file()}
    rc = main(["cluster", str(path), *map(str, argv)])
    err = capsys.readouterr().err
    assert rc == 2, err
    assert err.startswith("error: ") and "\n  fix: " in err and "Traceback" not in err, err
    assert expected in err, err
    assert {p.name: p.read_bytes() for p in folder.iterdir() if p.is_file()} == before  # no PNG, file unchanged


def test_bad_k(base_gpkg, tmp_path, capsys):
    path = _copy(base_gpkg, tmp_path)
    n = len(read_embeddings(path))
    _bad(capsys, path, "--k", "1", expected="k = 1 clusters is too few")
    _bad(capsys, path, "--k", "0", expected="k = 0 clusters is too few")
    _bad(capsys, path, "--k", n + 1, expected=f"is more than the {n} cells")
    _bad(capsys, path, expected="k-means needs the number of clusters")
    _bad(capsys, path, "--method", "hdbscan", "--min-cluster-size", "1", expected="min cluster size 1")
    _bad(capsys, path, "--k", "3", "--seed=-1", expected="seed -1 is not an integer from 0")



def test_hdbscan_refuses_sets_it_would_take_hours_on(tmp_path, capsys):
    from loc2vec_engine.clusters.cluster import HDBSCAN_MAX_CELLS

    n = HDBSCAN_MAX_CELLS + 1
    xy = np.stack([np.arange(n) % 300 * 10.0, np.arange(n) // 300 * 10.0], axis=1)
    path = write_embeddings(tmp_path / "big.gpkg", xy, np.ones((n, 2), np.float32), "EPSG:32629", {"stride_m": 10.0})
    _bad(capsys, path, "--method", "hdbscan", expected=f"HDBSCAN on {n} cells would take hours")

def test_empty_and_foreign_geopackages(tmp_path, capsys):
    from osgeo import ogr

    empty = write_embeddings(tmp_path / "empty.gpkg", np.zeros((0, 2)), np.zeros((0, 8), np.float32), "EPSG:32629",
                             {"stride_m": 60.0})
    _bad(capsys, empty, "--k", "3", expected="has no embedded cells")
    foreign_dir = tmp_path / "foreign"
    foreign_dir.mkdir()
    ds = ogr.GetDriverByName("GPKG").CreateDataSource(str(foreign_dir / "roads.gpkg"))
    ds.CreateLayer("roads", None, ogr.wkbLineString)
    ds = None
    _bad(capsys, foreign_dir / "roads.gpkg", "--k", "3", expected="is not a loc2vec embeddings GeoPackage")
    text_dir = tmp_path / "text"
    text_dir.mkdir()
    (text_dir / "notes.gpkg").write_text("not a database at all " * 100)
    _bad(capsys, text_dir / "notes.gpkg", "--k", "3", expected="is not a GeoPackage")


def test_bad_area_and_out_dir(base_gpkg, tmp_path, capsys):
    from osgeo import gdal, osr

    path = _copy(base_gpkg, tmp_path)
    _bad(capsys, path, "--k", "3", "--area", tmp_path / "nope.tif", expected="nope.tif not found")
    other = tmp_path / "sub" / "kyiv.tif"  # a real area raster in another CRS, outside the checked folder
    other.parent.mkdir()
    ds = gdal.GetDriverByName("GTiff").Create(str(other), 8, 8, 1, gdal.GDT_Byte)
    ds.SetGeoTransform((321_000.0, 2.0, 0.0, 5_590_016.0, 0.0, -2.0))
    srs = osr.SpatialReference()
    srs.ImportFromEPSG(32636)
    ds.SetProjection(srs.ExportToWkt())
    ds.GetRasterBand(1).SetDescription("roads_major")
    ds = None
    _bad(capsys, path, "--k", "3", "--area", other, expected="is in another CRS than the embeddings")
    _bad(capsys, path, "--k", "3", "--out-dir", tmp_path / "missing", expected="does not exist")

