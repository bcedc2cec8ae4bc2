"""The same pipeline on the other real extracts in ../shared/data: right UTM zone, a plausible map."""

import pytest

from loc2vec_engine.channels import get_spec
from loc2vec_engine.raster.rasterize import rasterize

from ..conftest import SHARED_DATA

SPEC = get_spec()

CITIES = [
    # file, 1 km-ish bbox in its centre, expected UTM EPSG
    ("moscow_center_2020-07-20.osm.pbf", (37.6320, 55.7585, 37.6450, 55.7640), 32637),
    ("helsinki_center_2019.osm.pbf", (24.9360, 60.1650, 24.9530, 60.1780), 32635),
    ("liechtenstein_2015-07-27.osm.pbf", (9.5130, 47.1300, 9.5300, 47.1430), 32632),  # Vaduz
]


@pytest.mark.parametrize("name, bbox, epsg", CITIES, ids=[c[0].split("_")[0] for c in CITIES])
def test_city_rasterizes_to_a_plausible_map(name, bbox, epsg, tmp_path):
    pbf = SHARED_DATA / name
    if not pbf.is_file():
        pytest.skip(f"{pbf} not present (the shared data folder travels beside the repo)")
    area = rasterize(pbf, tmp_path / "city.tif", bbox=bbox, progress=lambda f, m: None)
    data, valid = area.read()
    assert area.epsg == epsg
    share = {n: float((data[i][valid] > 0).mean()) for i, n in enumerate(SPEC.names)}
    roads = max(share["roads_major"], share["roads_minor"], share["paths"])
    buildings = share["buildings_residential"] + share["buildings_commercial"] + share["buildings_industrial"]
    assert 0.03 < roads < 0.6, share
    assert 0.05 < buildings < 0.8, share
