"""The plugin as users get it: built by scripts/build_plugin.py, loaded by a real qgis_process.

qgis_process runs the system Python, so the engine's packages come from this venv's site-packages
through PYTHONPATH (see conftest.sandbox_env); each call gets its own HOME and QGIS profile.
"""

import configparser
import json
import os
import sqlite3
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest
from osgeo import gdal

from loc2vec_engine.channels import get_spec
from loc2vec_engine.embeddings import read_embeddings

from ..conftest import REPO
from .conftest import BUILD_SCRIPT, extent_string, needs_qgis_process, run_build_script, run_qgis_process, sandbox_env

pytestmark = needs_qgis_process


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    """The plugin installed by the build script into a plugins folder named by QGIS_PLUGINPATH, and enabled."""
    root = tmp_path_factory.mktemp("qgis_process")
    plugins = root / "plugins"
    run_build_script("--install", plugins)
    env = sandbox_env(root / "sandbox", plugin_path=plugins)
    enable = run_qgis_process(["plugins", "enable", "loc2vec"], env)
    assert enable.returncode == 0, enable.stdout + enable.stderr
    return root, env


def test_plugin_is_enabled(installed):
    _, env = installed
    listing = run_qgis_process(["plugins"], env)
    assert listing.returncode == 0
    assert "* loc2vec" in listing.stdout.splitlines()  # '*' = enabled, with a Processing provider


def test_run_rasterize(installed, porto_pbf):
    """Also checks that the venv's shapely wheel runs on its own GEOS inside qgis_process, which is linked
    against the system GEOS (see loc2vec_qgis.algorithms.engine.import_shapely)."""
    root, env = installed
    out = root / "porto.tif"
    proc = run_qgis_process(["--json", "run", "loc2vec:rasterize", "--",
                             f"INPUT={porto_pbf}", f"EXTENT={extent_string()}", f"OUTPUT={out}"], env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    report = json.loads(proc.stdout)
    assert report["results"]["OUTPUT"] == str(out)
    assert (report["results"]["BANDS"], report["results"]["CRS"]) == (12, "EPSG:32629")
    assert report["provider_details"]["long_name"] == "loc2vec 0.1.0"
    ds = gdal.Open(str(out))
    names = [ds.GetRasterBand(i + 1).GetDescription() for i in range(ds.RasterCount)]
    assert names == get_spec().names
    assert (ds.GetRasterBand(1).ReadAsArray() > 0).sum() > 1000  # major roads


@pytest.fixture(scope="module")
def embedded(installed, porto_area):
    """Embeddings made by ``qgis_process run loc2vec:embed`` with the bundled model: the chain's first link."""
    root, env = installed
    out = root / "porto_emb.gpkg"
    proc = run_qgis_process(["--json", "run", "loc2vec:embed", "--", f"AREA={porto_area}", "STRIDE=200",
                             f"OUTPUT={out}"], env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return out, json.loads(proc.stdout)


@pytest.fixture(scope="module")
def clustered(installed, embedded):
    """The same GeoPackage after ``qgis_process run loc2vec:cluster`` (it is updated in place)."""
    root, env = installed
    path, _ = embedded
    # UMAP's numba functions take ~20 s to compile: reuse the cache of this test session when there is one.
    env = {**env, "NUMBA_CACHE_DIR": os.environ.get("NUMBA_CACHE_DIR", env["NUMBA_CACHE_DIR"])}
    proc = run_qgis_process(["--json", "run", "loc2vec:cluster", "--", f"INPUT={path}", "K=4", "SEED=1"], env,
                            timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return path, json.loads(proc.stdout)


def test_run_embed_with_the_bundled_model(embedded):
    """The plugin folder carries the default model: embed runs with no MODEL given."""
    out, report = embedded
    es = read_embeddings(out)
    assert report["results"]["CELLS"] == len(es) > 10
    assert es.meta["model_file"] == "loc2vec-default.onnx"


def test_run_cluster(clustered):
    from loc2vec_engine.clusters import cluster_labels

    path, report = clustered
    results = report["results"]
    es = read_embeddings(path)
    assert results["OUTPUT"] == str(path) and results["CLUSTERS"] == 4
    assert sorted(set(es.cluster.tolist())) == [0, 1, 2, 3] and np.isfinite(es.umap).all()
    assert (cluster_labels(es.vectors, 4, "kmeans", seed=1) == es.cluster).all()  # K and SEED reached the engine
    assert -1 <= results["SILHOUETTE"] <= 1
    for key in ("MAP_PNG", "UMAP_PNG"):
        assert Path(results[key]).parent == path.parent and Path(results[key]).stat().st_size > 10_000


def test_run_similar_on_the_clustered_embeddings(installed, clustered):
    from loc2vec_engine.search.similar import similar_at

    root, env = installed
    path, _ = clustered
    es = read_embeddings(path)
    lon, lat = es.lonlat()[len(es) // 2]
    out = root / "similar.gpkg"
    proc = run_qgis_process(["--json", "run", "loc2vec:similar", "--", f"INPUT={path}",
                             f"POINT={lon},{lat} [EPSG:4326]", "K=5", f"OUTPUT={out}"], env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    results = json.loads(proc.stdout)["results"]
    expected = similar_at(es, [(lon, lat)], 5)
    with sqlite3.connect(out) as con:
        rows = con.execute("SELECT rank, cell, score FROM similar ORDER BY rank").fetchall()
    assert results["OUTPUT"] == str(out) and [r[0] for r in rows] == [1, 2, 3, 4, 5]
    assert [r[1] for r in rows] == expected.cells.tolist()
    assert np.allclose([r[2] for r in rows], expected.scores, atol=1e-6)
    assert results["BEST_SCORE"] == pytest.approx(float(expected.scores[0]), abs=1e-6)


# About 1 x 1 km of Baixa and Ribeira: at a 300 m stride, 9 cells (too few for UMAP: no numba compile, a quick test).
MODEL_BBOX = (-8.6150, 41.1400, -8.6030, 41.1490)


def _points_geojson(path, lonlats):
    features = [{"type": "Feature", "properties": {}, "geometry": {"type": "Point", "coordinates": list(p)}}
                for p in lonlats]
    path.write_text(json.dumps({"type": "FeatureCollection", "features": features}))
    return path


def test_run_the_shipped_model_from_osm_to_a_suitability_map(installed, porto_pbf):
    """The Processing model shipped in the zip, rasterize -> embed -> cluster -> score, as one qgis_process run."""
    root, env = installed
    out = root / "model"
    out.mkdir()
    positives = _points_geojson(out / "positives.geojson", [(-8.6120, 41.1420), (-8.6060, 41.1460)])
    negatives = _points_geojson(out / "negatives.geojson", [(-8.6140, 41.1480)])
    paths = {"rasterize:AREA": out / "area.tif", "embed:EMBEDDINGS": out / "emb.gpkg",
             "score:SCORES": out / "scores.gpkg", "score:SCORE_RASTER": out / "score.tif"}
    proc = run_qgis_process(["--json", "run", "loc2vec:osm_to_suitability", "--", f"OSM={porto_pbf}",
                             f"EXTENT={extent_string(MODEL_BBOX)}", f"POSITIVES={positives}", f"NEGATIVES={negatives}",
                             "STRIDE=300", "K=3", *(f"{k}={v}" for k, v in paths.items())], env, timeout=180)
    assert proc.returncode == 0, proc.stderr[-3000:]
    report = json.loads(proc.stdout)
    assert report["results"] == {k: str(v) for k, v in paths.items()}
    assert report["algorithm_details"]["name"] == "From OSM to a suitability map"

    area = gdal.Open(str(paths["rasterize:AREA"]))
    assert area.RasterCount == 12 and area.GetRasterBand(1).GetDescription() == "roads_major"
    es = read_embeddings(paths["embed:EMBEDDINGS"])  # embedded with the shipped model, then clustered in place
    assert len(es) == 9 and es.meta["stride_m"] == 300 and es.meta["model_file"] == "loc2vec-default.onnx"
    assert sorted(set(es.cluster.tolist())) == [0, 1, 2] and (out / "emb_clusters.png").is_file()
    with sqlite3.connect(paths["score:SCORES"]) as con:
        rows = con.execute("SELECT cell, score, example FROM score").fetchall()
        cells, km2 = con.execute("SELECT cells, area_km2 FROM mask").fetchone()
    assert sorted(r[0] for r in rows) == sorted(es.cell.tolist())  # a score per cell
    assert all(np.isfinite(r[1]) for r in rows)
    assert sorted(r[2] for r in rows if r[2]) == [-1, 1, 1]  # both example layers reached the score step
    assert 1 <= cells < len(es) and km2 == pytest.approx(cells * 0.09)
    ds = gdal.Open(str(paths["score:SCORE_RASTER"]))  # kept: its bands die with it
    values, nodata = ds.GetRasterBand(1).ReadAsArray(), ds.GetRasterBand(1).GetNoDataValue()
    assert int((np.isfinite(values) & (values != nodata)).sum()) == len(es)  # the raster too: a score per cell


def test_run_evaluate(installed, porto_area, porto_pbf):
    root, env = installed
    out = root / "report"
    proc = run_qgis_process(["--json", "run", "loc2vec:evaluate", "--", f"AREA={porto_area}", f"OSM={porto_pbf}",
                             "MAX_CELLS=200", "MAX_QUERIES=100", "DEVICE=cpu", f"OUTPUT={out}"], env, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    results = json.loads(proc.stdout)["results"]
    metrics = json.loads((out / "metrics.json").read_text())
    assert (results["REPORT"], results["REPORT_HTML"]) == (str(out / "report.md"), str(out / "report.html"))
    assert results["METRICS"] == str(out / "metrics.json") and results["HEADLINE"] == metrics["headline"]
    assert (out / "report.html").read_text().count("<table>") >= 2 and len(list((out / "plots").iterdir())) == 3
    # No MODEL given: the model bundled in the installed plugin folder.
    assert metrics["model"]["path"] == str(root / "plugins" / "loc2vec" / "resources" / "models" /
                                           "loc2vec-default.onnx")
    assert metrics["settings"]["max_cells"] == 200


def test_run_train(installed, andorra_area):
    """A tiny training through qgis_process: the run folder, its checkpoint and an ONNX model that loads."""
    from loc2vec_engine.embeddings.onnx_encoder import OnnxEncoder

    root, env = installed
    run, model = root / "train_run", root / "trained.onnx"
    proc = run_qgis_process(["--json", "run", "loc2vec:train", "--", f"AREAS={andorra_area}", "STEPS=20",
                             "TILE_SIZE=32", "BATCH_SIZE=8", "EMBEDDING_SIZE=16", "VAL_EVERY=10", "DEVICE=cpu",
                             f"RUN_DIR={run}", f"MODEL={model}"], env, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    results = json.loads(proc.stdout)["results"]
    assert results["STOPPED"] == "steps" and results["STEPS_DONE"] == 20
    assert results["CHECKPOINT"] == str(run / "best.pt") and (run / "metrics.csv").is_file()
    enc = OnnxEncoder(results["MODEL"], "cpu")
    # the default export is the shipped form: the 16-D learned part joined with the 36 composition numbers
    assert (enc.tile_size_px, enc.embedding_size) == (32, 16 + 36) and enc.meta["hybrid"]["share"] == 0.5


def test_error_is_a_message_not_a_traceback(installed, tmp_path):
    _, env = installed
    proc = run_qgis_process(["run", "loc2vec:rasterize", "--", f"INPUT={tmp_path / 'gone.osm.pbf'}",
                             f"OUTPUT={tmp_path / 'out.tif'}"], env)
    assert proc.returncode != 0
    assert "gone.osm.pbf not found" in proc.stderr and "Fix:" in proc.stderr
    assert "Traceback" not in proc.stderr + proc.stdout
    assert not (tmp_path / "out.tif").exists()


def test_missing_engine_packages_are_named(installed, porto_pbf, tmp_path):
    """Without the venv on PYTHONPATH, QGIS's Python has Debian's shapely 1.8: a clear message, no traceback."""
    _, env = installed
    env = {k: v for k, v in env.items() if k != "PYTHONPATH"}
    system_ok = subprocess.run(["/usr/bin/python3", "-c", "import osmium, shapely; assert shapely.__version__ >= '2'"],
                               env=env, capture_output=True)
    if system_ok.returncode == 0:
        pytest.skip("the system Python has the engine's packages")
    proc = run_qgis_process(["run", "loc2vec:rasterize", "--", f"INPUT={porto_pbf}", f"EXTENT={extent_string()}",
                             f"OUTPUT={tmp_path / 'out.tif'}"], env)
    assert proc.returncode != 0
    assert ("needs the Python package" in proc.stderr or "needs shapely 2" in proc.stderr) and "PYTHONPATH" in proc.stderr
    assert "Traceback" not in proc.stderr
    assert list(tmp_path.iterdir()) == []


def test_zip_layout(tmp_path):
    zip_path = tmp_path / "loc2vec.zip"
    run_build_script("--out", zip_path)
    with zipfile.ZipFile(zip_path) as zf:
        names = zf.namelist()
        meta = configparser.ConfigParser(interpolation=None)
        meta.read_string(zf.read("loc2vec/metadata.txt").decode("utf-8"))
    assert all(n.startswith("loc2vec/") for n in names)
    for needed in ("metadata.txt", "__init__.py", "resources/icon.svg", "loc2vec_qgis/plugin.py",
                   "loc2vec_qgis/provider.py", "loc2vec_qgis/algorithms/rasterize.py",
                   "loc2vec_engine/__init__.py", "loc2vec_engine/raster/rasterize.py",
                   "loc2vec_engine/channels/default.toml", "resources/models/loc2vec-default.onnx",
                   "loc2vec_qgis/algorithms/embed.py", "loc2vec_qgis/algorithms/cluster.py",
                   "loc2vec_qgis/algorithms/similar.py", "loc2vec_qgis/algorithms/evaluate.py",
                   "loc2vec_qgis/algorithms/styles.py", "loc2vec_qgis/models.py",
                   "resources/processing/osm_to_suitability.model3"):
        assert f"loc2vec/{needed}" in names, needed
    assert not [n for n in names if "__pycache__" in n or n.endswith(".pyc")]
    general = meta["general"]
    assert general["name"] == "loc2vec" and general["hasProcessingProvider"] == "yes"
    assert general["qgisMinimumVersion"] == "3.22" and "ODbL" in general["about"]
    assert general["icon"] == "resources/icon.svg"
    # The zip is reproducible: building again gives the same bytes.
    again = tmp_path / "again.zip"
    run_build_script("--out", again)
    assert again.read_bytes() == zip_path.read_bytes()


def test_zip_unpacked_into_a_profile_loads(tmp_path):
    """The zip, unpacked where QGIS's plugin manager puts it, is found without QGIS_PLUGINPATH."""
    zip_path = tmp_path / "loc2vec.zip"
    run_build_script("--out", zip_path)
    env = sandbox_env(tmp_path / "sandbox")
    plugins = tmp_path / "sandbox" / "qgis" / "profiles" / "default" / "python" / "plugins"
    plugins.mkdir(parents=True)
    with zipfile.ZipFile(zip_path) as zf:
        zf.extractall(plugins)
    assert (plugins / "loc2vec" / "metadata.txt").is_file()
    enable = run_qgis_process(["plugins", "enable", "loc2vec"], env)
    assert enable.returncode == 0, enable.stdout + enable.stderr
    listing = run_qgis_process(["list"], env)
    assert listing.returncode == 0
    assert "loc2vec:rasterize" in listing.stdout
    # The bundled engine is the one in this checkout.
    assert (plugins / "loc2vec" / "loc2vec_engine" / "__init__.py").read_text() == \
        (REPO / "loc2vec_engine" / "__init__.py").read_text()


def test_symlink_install_and_reinstall(tmp_path):
    plugins = tmp_path / "plugins"
    run_build_script("--install", plugins, "--symlink")
    target = plugins / "loc2vec"
    assert (target / "loc2vec_engine").resolve() == (REPO / "loc2vec_engine").resolve()
    assert (target / "__init__.py").resolve() == (REPO / "loc2vec_qgis" / "__init__.py").resolve()
    assert (target / "metadata.txt").resolve() == (REPO / "metadata.txt").resolve()
    run_build_script("--install", plugins)  # a copy replaces the links
    assert not (target / "loc2vec_engine").is_symlink() and (target / "loc2vec_engine" / "errors.py").is_file()
    # Someone else's folder of the same name is left alone.
    other = tmp_path / "other" / "loc2vec"
    other.mkdir(parents=True)
    (other / "mine.txt").write_text("keep me")
    proc = subprocess.run([sys.executable, str(BUILD_SCRIPT), "--install", str(other.parent)], capture_output=True,
                          text=True)
    assert proc.returncode == 1 and "not a loc2vec plugin" in proc.stderr
    assert (other / "mine.txt").read_text() == "keep me"
