"""The plugin as users get it: built by scripts/build_plugin.py, loaded by a real qgis_process.

qgis_process runs the system Python, so the engine's packages come from this venv's site-packages
through PYTHONPATH (see conftest.sandbox_env); each call gets its own HOME and QGIS profile.
"""

import configparser
import json
import subprocess
import sys
import zipfile

import pytest
from osgeo import gdal

from loc2vec_engine.channels import get_spec

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


def test_run_embed_with_the_bundled_model(installed, porto_area):
    """The plugin folder carries the default model: embed runs with no MODEL given."""
    from loc2vec_engine.embeddings import read_embeddings

    root, env = installed
    out = root / "porto_emb.gpkg"
    proc = run_qgis_process(["--json", "run", "loc2vec:embed", "--", f"AREA={porto_area}", "STRIDE=200",
                             f"OUTPUT={out}"], env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    report = json.loads(proc.stdout)
    es = read_embeddings(out)
    assert report["results"]["CELLS"] == len(es) > 10
    assert es.meta["model_file"] == "loc2vec-default.onnx"


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
    assert "loc2vec engine needs" in proc.stderr and "PYTHONPATH" in proc.stderr
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
                   "loc2vec_qgis/algorithms/embed.py"):
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
