"""The area raster of real Porto data matches the map: roads, buildings, water, green, clip."""

import numpy as np
import pytest

from loc2vec_engine.channels import get_spec
from loc2vec_engine.raster.area import AreaRaster
from loc2vec_engine.raster.rasterize import rasterize

from ..conftest import PORTO_BBOX

SPEC = get_spec()


def _pixel(area, data, lon, lat):
    col, row = area.xy_to_pixel(*area.lonlat_to_xy(lon, lat))
    return data[:, int(row), int(col)]


@pytest.fixture(scope="module")
def porto(porto_area):
    area = AreaRaster.open(porto_area, spec=SPEC)
    data, valid = area.read()
    return area, data, valid


def test_raster_format(porto):
    from osgeo import gdal

    area, data, valid = porto
    assert area.channel_names == SPEC.names
    assert area.epsg == 32629  # UTM 29N for Porto, chosen automatically
    assert area.pixel_size == pytest.approx(500 / 256)
    assert area.metadata["attribution"].startswith("Map data © OpenStreetMap contributors")
    ds = gdal.Open(str(area.path))
    assert ds.GetMetadata("IMAGE_STRUCTURE")["COMPRESSION"] == "DEFLATE"
    assert ds.GetRasterBand(1).GetBlockSize() == [256, 256]
    assert 550 < area.width < 680 and 550 < area.height < 680  # 1.2 km x 1.2 km at 1.95 m
    assert valid.mean() > 0.95  # the bbox projected to UTM is a slightly tilted square


def test_primary_road_lands_with_its_width(porto):
    """Túnel da Ribeira (highway=primary, width_m=16): 255 within 7 m of the centre line, 0 beyond 10 m."""
    area, data, _ = porto
    a = np.array(area.lonlat_to_xy(-8.6128692, 41.1415688))
    b = np.array(area.lonlat_to_xy(-8.6116811, 41.1413810))
    along = (b - a) / np.linalg.norm(b - a)
    normal = np.array([-along[1], along[0]])
    band = SPEC.index("roads_major")
    for t in (0.3, 0.5, 0.7):
        centre = a + (b - a) * t
        inside = [data[band, int(r), int(c)] for off in np.arange(-7, 7.1, 1.0)
                  for c, r in [area.xy_to_pixel(*(centre + normal * off))]]
        outside = [data[band, int(r), int(c)] for off in (-11, -10, 10, 11)
                   for c, r in [area.xy_to_pixel(*(centre + normal * off))]]
        assert inside == [255] * len(inside)
        assert outside == [0] * len(outside)


@pytest.mark.parametrize("name, lon, lat, channel, value", [
    ("Douro river", -8.6110, 41.1392, "water", 255),
    ("Douro river, west", -8.6140, 41.1388, "water", 255),
    ("Banco de Portugal (building=office)", -8.61198, 41.146668, "buildings_commercial", 255),
    ("Hotel Intercontinental (building=hotel)", -8.611556, 41.145873, "buildings_commercial", 255),
    ("Coliseu do Porto (building=public, use unknown)", -8.605192, 41.14714, "buildings_residential", 128),
    ("Jardim de São Lázaro (leisure=garden)", -8.602598, 41.145983, "green", 255),
    ("Jardim do Infante (leisure=park)", -8.614903, 41.141231, "green", 255),
    ("São Bento station", -8.609561, 41.14548, "transit", 255),
])
def test_known_places(porto, name, lon, lat, channel, value):
    area, data, _ = porto
    assert _pixel(area, data, lon, lat)[SPEC.index(channel)] == value, name


def test_river_is_not_a_building(porto):
    area, data, _ = porto
    px = _pixel(area, data, -8.6110, 41.1392)
    assert px[[SPEC.index(c) for c in ("buildings_residential", "buildings_commercial", "buildings_industrial")]].sum() == 0


def test_buildings_agree_with_the_vector_data(porto, porto_pbf):
    """At 3,000 random pixel centres away from outlines, 'is there a building' matches the OSM polygons."""
    import shapely

    from loc2vec_engine.geo.crs import project_geometries, transformer_from_wgs84
    from loc2vec_engine.sources.osm import read_osm

    area, data, _ = porto
    feats = read_osm(porto_pbf, SPEC)
    bands = [SPEC.index(c) for c in ("buildings_residential", "buildings_commercial", "buildings_industrial")]
    polys = project_geometries(feats.geoms[np.isin(feats.band, bands)], transformer_from_wgs84(area.crs_wkt))
    union = shapely.union_all(polys)
    rng = np.random.default_rng(0)
    cols = rng.integers(0, area.width, 3000)
    rows = rng.integers(0, area.height, 3000)
    xs, ys = area.pixel_to_xy(cols + 0.5, rows + 0.5)
    pts = shapely.points(xs, ys)
    far_from_edge = shapely.distance(pts, union.boundary) > area.pixel_size
    truth = shapely.contains_xy(union, xs, ys)
    raster = data[bands][:, rows, cols].max(axis=0) > 0
    agree = (truth == raster)[far_from_edge].mean()
    assert far_from_edge.sum() > 2000
    assert truth[far_from_edge].mean() > 0.3  # central Porto: a third of the ground is built
    assert agree > 0.995


def test_chunks_join_seamlessly(porto_pbf, porto, tmp_path):
    """Burning in 128-px chunks gives exactly the pixels of one big chunk."""
    _, data, valid = porto
    small = rasterize(porto_pbf, tmp_path / "chunked.tif", bbox=PORTO_BBOX, chunk_px=128, progress=lambda f, m: None)
    d2, v2 = small.read()
    assert np.array_equal(d2, data) and np.array_equal(v2, valid)


def test_clip_leaves_everything_outside_empty(porto_pbf, tmp_path):
    """A 300 m circle as clip: outside it every band is 0 and the mask says invalid."""
    import json

    import shapely

    from loc2vec_engine.geo.crs import transformer_from_wgs84, transformer_to_wgs84

    to_m = transformer_from_wgs84("EPSG:32629")
    cx, cy = to_m.transform(-8.6100, 41.1440)
    circle_m = shapely.Point(cx, cy).buffer(300, quad_segs=32)
    circle = shapely.transform(circle_m, lambda c: np.column_stack(transformer_to_wgs84("EPSG:32629").transform(c[:, 0], c[:, 1])))
    clip = tmp_path / "circle.geojson"
    clip.write_text(json.dumps({"type": "FeatureCollection", "features": [
        {"type": "Feature", "properties": {}, "geometry": shapely.geometry.mapping(circle)}]}))
    area = rasterize(porto_pbf, tmp_path / "clipped.tif", clip=clip, progress=lambda f, m: None)
    data, valid = area.read()
    cols, rows = np.meshgrid(np.arange(area.width) + 0.5, np.arange(area.height) + 0.5)
    xs, ys = area.pixel_to_xy(cols, rows)
    dist = np.hypot(xs - cx, ys - cy)
    outside, inside = dist > 302, dist < 298
    assert not data[:, outside].any()
    assert not valid[outside].any()
    assert valid[inside].all()
    assert (data[:, inside] > 0).any(axis=0).mean() > 0.5  # the inside is not empty
    assert 590 < area.width * area.pixel_size < 630  # the raster hugs the clip


def test_cancel_leaves_no_output(porto_pbf, tmp_path):
    from loc2vec_engine.progress import Cancelled

    with pytest.raises(Cancelled):
        rasterize(porto_pbf, tmp_path / "never.tif", bbox=PORTO_BBOX, chunk_px=128,
                  progress=lambda fraction, message: fraction > 0.5)
    assert list(tmp_path.iterdir()) == []


def test_an_edited_spec_needs_no_code(porto_pbf, tmp_path):
    """Three channels of one's own, renamed and regrouped: bands follow the table, values the rules."""
    from loc2vec_engine.channels import get_spec

    spec_file = tmp_path / "mine.toml"
    spec_file.write_text("""
[spec]
name = "three"
[[channel]]
name = "any_road"
rules = [ { match = { highway = "*" }, except = { highway = ["footway", "steps"] }, draw = "line", width_m = 10 } ]
[[channel]]
name = "offices"
rules = [ { match = { building = "office" }, draw = "fill", value = 200 } ]
[[channel]]
name = "river"
rules = [ { match = { natural = "water" }, draw = "fill", value = 77 } ]
""")
    area = rasterize(porto_pbf, tmp_path / "three.tif", spec=spec_file, bbox=PORTO_BBOX, progress=lambda f, m: None)
    assert area.channel_names == ["any_road", "offices", "river"]
    data, _ = area.read()
    assert list(_pixel(area, data, -8.61198, 41.146668)) == [0, 200, 0]  # Banco de Portugal
    assert list(_pixel(area, data, -8.6110, 41.1392)) == [0, 0, 77]  # the Douro
    assert _pixel(area, data, -8.6122750, 41.1414749)[0] == 255  # Túnel da Ribeira, now in any_road
    AreaRaster.open(area.path, spec=get_spec(spec_file))  # the raster matches its spec
    with pytest.raises(Exception, match="3 bands but channel spec 'loc2vec-12' has 12"):
        AreaRaster.open(area.path, spec=SPEC)


def test_kyiv_preset_clips_to_the_city(porto_pbf, tmp_path):
    """The preset resolves to the shipped boundary and UTM 36N; Porto data is (rightly) not in Kyiv."""
    from loc2vec_engine.errors import Loc2VecError

    with pytest.raises(Loc2VecError, match=r"no objects .* \(clip .*kyiv_boundary.geojson\)"):
        rasterize(porto_pbf, tmp_path / "kyiv.tif", preset="kyiv", progress=lambda f, m: None)
    assert not (tmp_path / "kyiv.tif").exists()


def _tiny_kyiv_osm(path):
    """A hand-made .osm file: Khreshchatyk as a primary road, and a café west of the city limit."""
    path.write_text("""<?xml version='1.0' encoding='UTF-8'?>
<osm version="0.6" generator="loc2vec tests">
  <node id="1" version="1" lat="50.4501" lon="30.5234"/>
  <node id="2" version="1" lat="50.4430" lon="30.5190"/>
  <node id="3" version="1" lat="50.4500" lon="30.1000"><tag k="amenity" v="cafe"/></node>
  <way id="10" version="1"><nd ref="1"/><nd ref="2"/><tag k="highway" v="primary"/><tag k="name" v="Khreshchatyk"/></way>
</osm>
""")
    return path


def test_kyiv_preset_on_kyiv_data(tmp_path):
    """--preset kyiv: UTM 36N, the road drawn, the valid mask = the city boundary (coarse pixels for speed)."""
    osm = _tiny_kyiv_osm(tmp_path / "kyiv_tiny.osm")
    area = rasterize(osm, tmp_path / "kyiv.tif", preset="kyiv", pixel_size=10, progress=lambda f, m: None)
    data, valid = area.read()
    assert area.epsg == 32636
    road = _pixel(area, data, 30.5212, 50.44655)
    assert road[SPEC.index("roads_major")] == 255
    col, row = area.xy_to_pixel(*area.lonlat_to_xy(30.25, 50.58))  # NW corner of the bbox: outside the city
    assert 0 <= col < area.width and 0 <= row < area.height and not valid[int(row), int(col)]
    assert data[SPEC.index("poi")].max() == 0  # the café outside the boundary is not drawn
    assert 700 < valid.sum() * 10 * 10 / 1e6 < 900  # Kyiv is ≈ 840 km² inside the boundary polygon
