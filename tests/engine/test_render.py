"""``loc2vec render``: embeddings as a GeoTIFF on their grid, PCA colours or every band (tiny synthetic files)."""

import json
import os

import numpy as np
import pytest

from loc2vec_engine import ATTRIBUTION
from loc2vec_engine.cli import main
from loc2vec_engine.embeddings.store import read_embeddings, write_embeddings
from loc2vec_engine.errors import Loc2VecError
from loc2vec_engine.progress import Cancelled
from loc2vec_engine.render import fit_colour_pca, render_files

STRIDE = 100.0
DIM = 16
SHA = "a" * 64
COLS, ROWS = 24, 16  # 384 grid places, some left empty


def _unit(x):
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


def _prototypes(seed=0, n=6, dim=DIM):
    """A few kinds of place: every cell of a kind has exactly the same vector."""
    return _unit(np.random.default_rng(seed).standard_normal((n, dim)))


def _grid_cells(origin, keep_every=7):
    """Centres of a COLS x ROWS grid (row-major cell numbers), every ``keep_every``-th place left empty."""
    r, c = np.divmod(np.arange(ROWS * COLS), COLS)
    keep = np.arange(ROWS * COLS) % keep_every != 3
    xy = np.stack([origin[0] + c * STRIDE, origin[1] - r * STRIDE], axis=1)
    return xy[keep], np.flatnonzero(keep)


def _write(path, xy, vectors, cell=None, crs="EPSG:32629", **meta):
    from pyproj import CRS

    meta = {"model_sha256": SHA, "stride_m": STRIDE, **meta}
    return write_embeddings(path, xy, vectors, CRS.from_user_input(crs).to_wkt(), meta, cell=cell)


@pytest.fixture(scope="module")
def cities(tmp_path_factory):
    """Two 'cities' of one model: A (kinds 0-5 in bands) and B (another CRS, kinds 2-5 and their own noise)."""
    d = tmp_path_factory.mktemp("render")
    protos = _prototypes()
    xy_a, cell_a = _grid_cells((500_050.0, 4_560_050.0))
    kind_a = (cell_a // COLS + cell_a % COLS // 4) % 6  # diagonal bands of kinds
    xy_b, cell_b = _grid_cells((300_050.0, 5_600_050.0), keep_every=5)
    kind_b = 2 + cell_b % 4
    a = _write(d / "a.gpkg", xy_a, protos[kind_a], cell_a)
    b = _write(d / "b.gpkg", xy_b, protos[kind_b], cell_b, crs="EPSG:32636")
    return {"a": a, "b": b, "kind_a": kind_a, "kind_b": kind_b, "protos": protos}


def _read_tif(path):
    from osgeo import gdal

    ds = gdal.Open(str(path))
    data = ds.ReadAsArray()
    bands = [ds.GetRasterBand(i + 1) for i in range(ds.RasterCount)]
    info = {"gt": ds.GetGeoTransform(), "nodata": [b.GetNoDataValue() for b in bands],
            "type": gdal.GetDataTypeName(bands[0].DataType), "meta": ds.GetMetadata(), "wkt": ds.GetProjection(),
            "names": [b.GetDescription() for b in bands]}
    ds = None
    return (data if data.ndim == 3 else data[None]), info


def _at_cells(data, gt, xy):
    """(bands, N) pixel values under the cell centres ``xy``, through the raster's geotransform."""
    col = np.floor((xy[:, 0] - gt[0]) / gt[1]).astype(int)
    row = np.floor((xy[:, 1] - gt[3]) / gt[5]).astype(int)
    return data[:, row, col], row, col


def _empty_mask(data, row, col):
    mask = np.ones(data.shape[1:], bool)
    mask[row, col] = False
    return mask


def _run(capsys, *argv):
    rc = main([str(a) for a in argv])
    cap = capsys.readouterr()
    return rc, cap.out, cap.err


# ---- one file: colours on the grid ----------------------------------------------------------------
def test_rgb_puts_each_cell_at_its_pixel_alike_cells_alike(cities, tmp_path, capsys):
    out = tmp_path / "a_rgb.tif"
    rc, text, err = _run(capsys, "render", cities["a"], "--out", out)
    assert rc == 0, err
    assert f"wrote {out}: {COLS} x {ROWS} px of 100 m" in text and ATTRIBUTION in text
    data, info = _read_tif(out)
    es = read_embeddings(cities["a"])
    assert data.shape == (3, ROWS, COLS) and info["type"] == "Byte" and info["nodata"] == [0, 0, 0]
    assert info["gt"] == (500_000.0, STRIDE, 0.0, 4_560_100.0, 0.0, -STRIDE)  # pixel centres = cell centres
    assert "32629" in info["wkt"] and info["names"] == ["PC1 (red)", "PC2 (green)", "PC3 (blue)"]
    rgb, row, col = _at_cells(data, info["gt"], es.xy)
    assert np.array_equal(row * COLS + col, es.cell)  # the grid's own row-major numbering
    kinds = cities["kind_a"]
    colours = {k: {tuple(c) for c in rgb.T[kinds == k]} for k in range(6)}
    assert all(len(c) == 1 for c in colours.values())  # one kind, one colour
    assert len({c.pop() for c in colours.values()}) == 6  # and the kinds apart
    assert (rgb >= 1).all()  # a cell is never nodata
    assert (data[:, _empty_mask(data, row, col)] == 0).all()  # empty grid places are
    assert [(int(b.min()), int(b.max())) for b in rgb] == [(1, 255)] * 3  # each component spans the range
    assert info["meta"]["TIFFTAG_COPYRIGHT"] == ATTRIBUTION and info["meta"]["LOC2VEC_ATTRIBUTION"] == ATTRIBUTION
    render = json.loads(info["meta"]["LOC2VEC_RENDER"])
    assert render["bands"] == "rgb" and render["pca"]["fitted_on"] == ["a.gpkg"]
    assert len(render["pca"]["components"]) == 3 and len(render["pca"]["mean"]) == DIM


def test_colours_are_the_principal_components():
    """PC1 drives red: vectors that differ mostly along one direction are ordered by it in red."""
    rng = np.random.default_rng(1)
    t = np.linspace(-1, 1, 300)
    x = np.zeros((300, DIM))
    x[:, 0], x[:, 1], x[:, 2] = 3 * t, np.sin(7 * t), 0.3 * rng.standard_normal(300)
    x[:, 3:] = 0.01 * rng.standard_normal((300, DIM - 3))
    pca = fit_colour_pca([x])
    _, s, vt = np.linalg.svd(x - x.mean(0), full_matrices=False)
    assert np.allclose(np.abs(pca.components @ vt[:3].T), np.eye(3), atol=1e-6)
    assert np.allclose(pca.explained, (s[:3] ** 2) / (s ** 2).sum())
    red = pca.colours(x)[:, 0].astype(int)
    assert abs(np.corrcoef(red, t)[0, 1]) > 0.99
    assert (np.diff(red) * np.sign(red[-1] - red[0]) >= 0).all()  # monotonic in t (ties at the clipped ends)
    assert np.array_equal(fit_colour_pca([x]).colours(x), pca.colours(x))  # refitting: the same colours


def test_the_rare_kind_of_place_is_the_bright_end_whatever_the_order():
    """A component's sign is fixed by the cells (long tail bright), not by the fit: a refit on the same cells
    in another order, or a flipped basis, gives the same colours."""
    rng = np.random.default_rng(4)
    common, rare = _prototypes(seed=5, n=2)
    x = np.concatenate([np.repeat(common[None], 270, 0), np.repeat(rare[None], 30, 0)])
    x = x + 0.02 * rng.standard_normal(x.shape).astype(np.float32)
    pca = fit_colour_pca([x])
    red = pca.colours(x)[:, 0].astype(int)
    assert red[270:].mean() > 200 > 60 > red[:270].mean()
    perm = rng.permutation(len(x))
    assert np.array_equal(fit_colour_pca([x[perm]]).colours(x), pca.colours(x))
    assert np.array_equal(fit_colour_pca([-x]).colours(-x), pca.colours(x))


def test_default_output_is_next_to_the_input(cities, tmp_path, capsys):
    src = tmp_path / "city.gpkg"
    src.write_bytes(cities["a"].read_bytes())
    rc, text, err = _run(capsys, "render", src)
    assert rc == 0, err
    assert (tmp_path / "city_rgb.tif").is_file() and "principal components 1-3" in text


def test_all_bands_are_the_vectors(cities, tmp_path, capsys):
    rc, _, err = _run(capsys, "render", cities["b"], "--bands", "all", "--out-dir", tmp_path)
    assert rc == 0, err
    data, info = _read_tif(tmp_path / "b_bands.tif")
    es = read_embeddings(cities["b"])
    assert data.shape[0] == DIM and info["type"] == "Float32" and all(np.isnan(v) for v in info["nodata"])
    values, row, col = _at_cells(data, info["gt"], es.xy)
    assert np.array_equal(values.T, es.vectors)
    assert np.isnan(data[:, _empty_mask(data, row, col)]).all()
    assert info["names"][0] == "embedding 1" and ATTRIBUTION in info["meta"]["TIFFTAG_COPYRIGHT"]


# ---- several cities: one transform ----------------------------------------------------------------
def test_cities_rendered_together_share_the_colours(cities, tmp_path, capsys):
    rc, text, err = _run(capsys, "render", cities["a"], cities["b"], "--out-dir", tmp_path)
    assert rc == 0, err
    assert "of a.gpkg, b.gpkg" in text
    per_kind = {}
    for name, kinds in (("a", cities["kind_a"]), ("b", cities["kind_b"])):
        data, info = _read_tif(tmp_path / f"{name}_rgb.tif")
        rgb, _, _ = _at_cells(data, info["gt"], read_embeddings(cities[name]).xy)
        for k, c in zip(kinds, map(tuple, rgb.T)):
            per_kind.setdefault(int(k), set()).add(c)
        assert json.loads(info["meta"]["LOC2VEC_RENDER"])["pca"]["fitted_on"] == ["a.gpkg", "b.gpkg"]
    assert all(len(c) == 1 for c in per_kind.values()), per_kind  # kinds 2-5 lie in both cities: one colour
    # --fit-on reproduces the joint colours for one file alone; fitted on A alone they differ.
    joint = _read_tif(tmp_path / "b_rgb.tif")[0]
    render_files([cities["b"]], [tmp_path / "b_again.tif"], fit_on=[cities["a"], cities["b"]])
    assert np.array_equal(_read_tif(tmp_path / "b_again.tif")[0], joint)
    render_files([cities["b"]], [tmp_path / "b_alone.tif"])
    assert not np.array_equal(_read_tif(tmp_path / "b_alone.tif")[0], joint)


def test_fitting_samples_large_inputs_from_every_file():
    protos = _prototypes(n=4)
    sets = [protos[np.arange(1000) % 2], protos[2 + np.arange(3000) % 2]]
    pca = fit_colour_pca(sets, max_cells=400)
    assert pca.fitted_cells == 400
    colours = {tuple(c) for v in sets for c in pca.colours(v)}
    assert len(colours) == 4  # the sample saw all four kinds, from both files


def test_cancel_writes_nothing(cities, tmp_path):
    with pytest.raises(Cancelled):
        render_files([cities["a"], cities["b"]], out_dir=tmp_path, progress=lambda f, m: f > 0.7)
    assert list(tmp_path.iterdir()) == []


# ---- bad input: one message, nothing written ------------------------------------------------------
def _other(cities, tmp_path, dim=DIM, n=None, **meta):
    es = read_embeddings(cities["b"])
    vectors = _unit(np.random.default_rng(2).standard_normal((len(es), dim))) if dim != DIM else es.vectors
    k = len(es) if n is None else n
    return _write(tmp_path / "other.gpkg", es.xy[:k], vectors[:k], es.cell[:k], crs="EPSG:32636", **meta)


@pytest.mark.parametrize("case, expected", [
    ("text_file", "is not a GeoPackage"),
    ("foreign_gpkg", "not a loc2vec embeddings GeoPackage"),
    ("missing", "not found"),
    ("tif_input", "is a GeoTIFF, not an embeddings GeoPackage"),
    ("other_model", "different models"),
    ("other_dimension", "16-dimensional embeddings and other.gpkg 24-dimensional"),
    ("no_model", "does not say which model"),
    ("two_dimensions", "2 dimension(s): three principal components need at least 3"),
    ("two_cells", "only 2 cell(s) to fit the colours on"),
    ("points", "not on a grid"),
    ("off_grid", "not on the 100 m grid"),
    ("bad_bands", "--bands must be rgb or all"),
    ("out_with_two_inputs", "--out names one file"),
    ("out_dir_missing", "does not exist"),
    ("out_is_folder", "is a folder"),
    ("read_only_dir", "not writable"),
    ("same_names", "would both be written to"),
    ("fit_on_with_all", "--fit-on is for the colours"),
])
def test_bad_input_is_one_clear_error(case, expected, cities, tmp_path, capsys):
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    inputs, extra = [cities["a"]], ["--out-dir", out_dir]
    if case == "text_file":
        inputs = [tmp_path / "notes.gpkg"]
        inputs[0].write_text("not a database " * 100)
    elif case == "foreign_gpkg":
        from osgeo import ogr

        ds = ogr.GetDriverByName("GPKG").CreateDataSource(str(tmp_path / "roads.gpkg"))
        ds.CreateLayer("roads", None, ogr.wkbLineString)
        ds = None
        inputs = [tmp_path / "roads.gpkg"]
    elif case == "missing":
        inputs.append(tmp_path / "nowhere.gpkg")
    elif case == "tif_input":
        inputs.append(tmp_path / "a_rgb.tif")  # forgot --out
    elif case == "other_model":
        inputs.append(_other(cities, tmp_path, model_sha256="0" * 64))
    elif case == "other_dimension":
        inputs.append(_other(cities, tmp_path, dim=24, model_sha256="0" * 64))
    elif case == "no_model":
        extra += ["--fit-on", cities["a"], _other(cities, tmp_path, model_sha256="")]
    elif case == "two_dimensions":
        inputs = [_other(cities, tmp_path, dim=2)]
    elif case == "two_cells":
        inputs = [_other(cities, tmp_path, n=2)]
    elif case == "points":
        inputs.append(_other(cities, tmp_path, stride_m=None, points=True))
    elif case == "off_grid":
        es = read_embeddings(cities["b"])
        xy = es.xy.copy()
        xy[5, 0] += 37.0
        inputs.append(_write(tmp_path / "skewed.gpkg", xy, es.vectors, es.cell, crs="EPSG:32636"))
    elif case == "bad_bands":
        extra += ["--bands", "rgba"]
    elif case == "out_with_two_inputs":
        inputs.append(cities["b"])
        extra = ["--out", out_dir / "x.tif"]
    elif case == "out_dir_missing":
        extra = ["--out-dir", tmp_path / "nowhere"]
    elif case == "out_is_folder":
        extra = ["--out", out_dir]
    elif case == "read_only_dir":
        if os.geteuid() == 0:
            extra = ["--out-dir", "/proc"]  # root writes everywhere else
        else:
            out_dir.chmod(0o555)
    elif case == "same_names":
        (tmp_path / "twin").mkdir()
        inputs.append((tmp_path / "twin" / "a.gpkg"))
        inputs[-1].write_bytes(cities["a"].read_bytes())
    elif case == "fit_on_with_all":
        extra += ["--bands", "all", "--fit-on", cities["b"]]
    try:
        rc, text, err = _run(capsys, "render", *inputs, *extra)
    finally:
        out_dir.chmod(0o755)
    assert rc == 2, (text, err)
    assert err.startswith("error: ") and "\n  fix: " in err and err.count("error: ") == 1, err
    assert expected in err and "Traceback" not in err, err
    assert text == ""
    assert list(out_dir.iterdir()) == []  # nothing, not even the first of several outputs
    assert not (tmp_path / "a_rgb.tif").exists()


def test_a_failed_write_leaves_no_output(cities, tmp_path, monkeypatch):
    """A GDAL error while writing the second raster: the first, already complete, is not kept either."""
    from loc2vec_engine.render import grid_raster

    real = grid_raster.write_rgb
    calls = []

    def failing(path, *args):
        calls.append(path)
        if len(calls) == 2:
            raise RuntimeError("No space left on device")
        return real(path, *args)

    monkeypatch.setattr(grid_raster, "write_rgb", failing)
    with pytest.raises(Loc2VecError, match="could not write .*b_rgb.tif .*No space left"):
        render_files([cities["a"], cities["b"]], out_dir=tmp_path)
    assert list(tmp_path.iterdir()) == []
