"""Shared test set-up: QGIS writes into temp folders; real OSM data from the repo and ../shared/data."""

import os
import tempfile
from pathlib import Path

import pytest

_SANDBOX = Path(tempfile.mkdtemp(prefix="loc2vec-test-home-"))
for var, sub in (("HOME", "home"), ("XDG_CONFIG_HOME", "config"), ("XDG_CACHE_HOME", "cache"),
                 ("XDG_DATA_HOME", "data"), ("QGIS_CUSTOM_CONFIG_PATH", "qgis"), ("NUMBA_CACHE_DIR", "numba")):
    (_SANDBOX / sub).mkdir(parents=True, exist_ok=True)
    os.environ[var] = str(_SANDBOX / sub)
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

REPO = Path(__file__).resolve().parents[1]
DATA = REPO / "resources" / "data"
SHARED_DATA = REPO.parent / "shared" / "data"

# A 1.2 x 1.2 km piece of central Porto (Baixa, Ribeira and the Douro): roads of every class, dense buildings, water.
PORTO_BBOX = (-8.6160, 41.1385, -8.6017, 41.1490)


@pytest.fixture(scope="session")
def porto_pbf() -> Path:
    return DATA / "porto_center_2020-07-20.osm.pbf"


@pytest.fixture(scope="session")
def porto_area(porto_pbf, tmp_path_factory) -> Path:
    """The Porto test bbox rasterized once per session with the default spec."""
    from loc2vec_engine.raster.rasterize import rasterize

    out = tmp_path_factory.mktemp("porto") / "porto.tif"
    rasterize(porto_pbf, out, bbox=PORTO_BBOX)
    return out


# About 6.6 x 6.7 km of Andorra: Andorra la Vella, Escaldes, valleys and forest; room for 2 km negatives.
ANDORRA_BBOX = (1.50, 42.49, 1.58, 42.55)


@pytest.fixture(scope="session")
def andorra_area(tmp_path_factory) -> Path:
    from loc2vec_engine.raster.rasterize import rasterize

    out = tmp_path_factory.mktemp("andorra") / "andorra.tif"
    rasterize(DATA / "andorra_2020-05-01.osm.pbf", out, bbox=ANDORRA_BBOX, progress=lambda f, m: None)
    return out


@pytest.fixture(scope="session")
def demo_run(tmp_path_factory) -> tuple[dict, str]:
    """``loc2vec demo`` run once per session, every step (the engine's demo test and the desktop test share it):
    its outputs by label and what it printed."""
    import contextlib
    import io

    from loc2vec_engine.demo import run_demo

    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        outputs = run_demo(tmp_path_factory.mktemp("demo") / "demo", eval_max_cells=300)  # every step, a smaller report
    return outputs, printed.getvalue()
