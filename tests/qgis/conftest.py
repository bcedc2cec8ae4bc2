"""The loc2vec plugin in a real (offscreen) QGIS: its provider registered once per session, and the
environment for qgis_process subprocesses (own HOME and QGIS profile, the venv's packages on PYTHONPATH)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

from ..conftest import PORTO_BBOX, REPO

BUILD_SCRIPT = REPO / "scripts" / "build_plugin.py"


def extent_string(bbox=PORTO_BBOX, crs="EPSG:4326") -> str:
    """(lon_min, lat_min, lon_max, lat_max) as Processing's 'xmin,xmax,ymin,ymax [CRS]'."""
    w, s, e, n = bbox
    return f"{w},{e},{s},{n} [{crs}]"


@pytest.fixture(scope="session", autouse=True)
def _collect_before_qgis_exits(qgis_app):
    """Python's garbage (dialogs, tasks, shortcuts the tests left for the collector) collected while QGIS
    still runs: torn down before pytest-qgis calls exitQgis(), because collecting those wrappers after it
    (pytest's own gc pass in pytest_unconfigure) crashes in Qt."""
    import gc

    yield
    from qgis.PyQt.QtWidgets import QApplication

    for _ in range(3):
        gc.collect()
        QApplication.processEvents()


@pytest.fixture(scope="session")
def loc2vec_plugin(qgis_processing):
    """The plugin as QGIS starts it (classFactory + initProcessing); unloaded at the end."""
    import loc2vec_qgis

    plugin = loc2vec_qgis.classFactory(None)
    plugin.initProcessing()
    assert plugin.provider is not None, "the loc2vec provider did not register"
    yield plugin
    plugin.unload()


def qgis_process_exe() -> str | None:
    """Debian's /usr/bin/qgis_process wrapper is broken on 3.22 (it adds --noversioncheck): use the binary."""
    for exe in (os.environ.get("LOC2VEC_QGIS_PROCESS"), "/usr/bin/qgis_process.bin", shutil.which("qgis_process")):
        if exe and os.access(exe, os.X_OK):
            return exe
    return None


def sandbox_env(root: Path, plugin_path: Path | None = None) -> dict[str, str]:
    """Environment for a QGIS subprocess that writes only under ``root``, and finds the engine's packages."""
    env = dict(os.environ)
    for var, sub in (("HOME", "home"), ("XDG_CONFIG_HOME", "config"), ("XDG_CACHE_HOME", "cache"),
                     ("XDG_DATA_HOME", "data"), ("XDG_RUNTIME_DIR", "runtime"), ("QGIS_CUSTOM_CONFIG_PATH", "qgis"),
                     ("NUMBA_CACHE_DIR", "numba")):
        (root / sub).mkdir(parents=True, exist_ok=True)
        env[var] = str(root / sub)
    os.chmod(root / "runtime", 0o700)
    env.pop("QGIS_OPTIONS_PATH", None)  # set by pytest-qgis for this process's profile
    env["QT_QPA_PLATFORM"] = "offscreen"
    # qgis_process runs the system Python: give it this venv's packages (osmium, shapely 2, numba, ...).
    site = sysconfig.get_paths()["purelib"]
    env["PYTHONPATH"] = os.pathsep.join([site, *filter(None, [os.environ.get("PYTHONPATH")])])
    if plugin_path is None:
        env.pop("QGIS_PLUGINPATH", None)
    else:
        env["QGIS_PLUGINPATH"] = str(plugin_path)
    return env


def run_qgis_process(args, env, timeout=120) -> subprocess.CompletedProcess:
    exe = qgis_process_exe()
    return subprocess.run([exe, *args], env=env, cwd=env["HOME"], capture_output=True, text=True, timeout=timeout)


def run_build_script(*args) -> subprocess.CompletedProcess:
    proc = subprocess.run([sys.executable, str(BUILD_SCRIPT), *map(str, args)], capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 0, proc.stderr
    return proc


needs_qgis_process = pytest.mark.skipif(qgis_process_exe() is None, reason="qgis_process not installed")


@pytest.fixture(scope="session")
def demo_project(demo_run) -> Path:
    """``loc2vec demo``'s QGIS project (porto.qgz and its data), from the session's one demo run."""
    return demo_run[0]["QGIS project"]
