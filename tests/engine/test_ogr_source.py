"""OGR sources: OSM-tagged layers match the spec like a PBF; a layer map feeds untagged data."""

import json

import numpy as np
import pytest

from loc2vec_engine.channels import get_spec
from loc2vec_engine.errors import Loc2VecError
from loc2vec_engine.raster.area import AreaRaster
from loc2vec_engine.raster.rasterize import rasterize

from ..conftest import PORTO_BBOX

SPEC = get_spec()
QUIET = {"progress": lambda f, m: None}


@pytest.fixture(scope="module")
def porto_gpkg(porto_pbf, tmp_path_factory):
    """The Porto PBF converted by GDAL's OSM driver: layers points/lines/multipolygons, tag columns."""
    from osgeo import gdal

    gdal.UseExceptions()
    out = tmp_path_factory.mktemp("ogr") / "porto.gpkg"
    gdal.PushErrorHandler("CPLQuietErrorHandler")
    try:
        gdal.VectorTranslate(str(out), str(porto_pbf), format="GPKG")
    finally:
        gdal.PopErrorHandler()
    return out


def test_tagged_geopackage_matches_the_pbf(porto_gpkg, porto_area, tmp_path):
    ogr_area = rasterize(porto_gpkg, tmp_path / "from_gpkg.tif", bbox=PORTO_BBOX, **QUIET)
    d_ogr, _ = ogr_area.read()
    d_pbf, _ = AreaRaster.open(porto_area).read()
    assert d_ogr.shape == d_pbf.shape
    # GDAL's OSM driver assembles areas with its own rules, so compare the channels it shares cleanly.
    for name in ("roads_minor", "buildings_residential", "buildings_commercial", "green", "poi", "transit"):
        i = SPEC.index(name)
        a, b = d_ogr[i] > 0, d_pbf[i] > 0
        assert (a & b).sum() / (a | b).sum() > 0.9, name


def _line_layer(path, crs_epsg=None):
    """A GeoJSON with two lines that have no OSM tags, only a 'kind' column."""
    coords = [[-8.6130, 41.1440], [-8.6050, 41.1440]]
    doc = {"type": "FeatureCollection", "features": [
        {"type": "Feature", "properties": {"kind": "big"}, "geometry": {"type": "LineString", "coordinates": coords}},
        {"type": "Feature", "properties": {"kind": "small"},
         "geometry": {"type": "LineString", "coordinates": [[-8.6130, 41.1460], [-8.6050, 41.1460]]}},
    ]}
    path.write_text(json.dumps(doc))
    return path


def test_layer_map_feeds_untagged_data(tmp_path):
    src = _line_layer(tmp_path / "my_roads.geojson")
    layer_map = tmp_path / "map.toml"
    layer_map.write_text('[[layer]]\nlayer = "my_roads"\nwhere = "kind = \'big\'"\nchannel = "roads_major"\n'
                         'draw = "line"\nwidth_m = 20\n')
    area = rasterize(src, tmp_path / "mapped.tif", layer_map=layer_map, bbox=(-8.614, 41.143, -8.604, 41.147), **QUIET)
    data, _ = area.read()
    col, row = area.xy_to_pixel(*area.lonlat_to_xy(-8.6090, 41.1440))
    assert data[SPEC.index("roads_major"), int(row), int(col)] == 255
    col, row = area.xy_to_pixel(*area.lonlat_to_xy(-8.6090, 41.1460))  # filtered out by `where`
    assert data[:, int(row), int(col)].max() == 0
    assert (data[SPEC.index("roads_major")] > 0).sum() * area.pixel_size ** 2 == pytest.approx(20 * 670, rel=0.1)


@pytest.mark.parametrize("layer, channel, message", [
    ("my_roads", "motorways", "unknown channel 'motorways'"),
    ("streets", "roads_major", "layers there: my_roads"),  # an unknown layer: the error lists the real ones
])
def test_bad_layer_map_is_refused(tmp_path, layer, channel, message):
    src = _line_layer(tmp_path / "my_roads.geojson")
    layer_map = tmp_path / "map.toml"
    layer_map.write_text(f'[[layer]]\nlayer = "{layer}"\nchannel = "{channel}"\ndraw = "line"\nwidth_m = 20\n')
    with pytest.raises(Loc2VecError, match=message):
        rasterize(src, tmp_path / "never.tif", layer_map=layer_map, **QUIET)
    assert not (tmp_path / "never.tif").exists()


def test_projected_source_is_reprojected(tmp_path):
    """A layer stored in UTM lands on the same pixels as its lon/lat twin."""
    from osgeo import gdal

    src = _line_layer(tmp_path / "my_roads.geojson")
    utm = tmp_path / "my_roads_utm.gpkg"
    gdal.VectorTranslate(str(utm), str(src), format="GPKG", dstSRS="EPSG:32629", layerName="my_roads")
    layer_map = tmp_path / "map.toml"
    layer_map.write_text('[[layer]]\nlayer = "my_roads"\nchannel = "roads_major"\ndraw = "line"\nwidth_m = 10\n')
    box = (-8.614, 41.143, -8.604, 41.147)
    a, _ = rasterize(src, tmp_path / "a.tif", layer_map=layer_map, bbox=box, **QUIET).read()
    b, _ = rasterize(utm, tmp_path / "b.tif", layer_map=layer_map, bbox=box, **QUIET).read()
    assert a.shape == b.shape and (a[0] > 0).sum() > 100
    assert np.mean(a[0] == b[0]) > 0.999
