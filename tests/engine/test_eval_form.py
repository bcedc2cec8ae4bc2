"""Urban-form probes: street intersections and building footprints from a hand-written OSM file, the ridge R²."""

import numpy as np
import pytest

from loc2vec_engine.evaluation.form import (disc_area_inside, form_targets, plan_form, r_squared,
                                            run_form_probe)
from loc2vec_engine.evaluation.form_osm import read_urban_form

# Streets near (0, 0): a crossing at node 2 (two residential ways through it: degree 4), a plain split at
# node 3 (one street continued by another way: degree 2), a T at node 6 (degree 3), a loop with a spur at
# node 14 (degree 3), dead ends, a footway through the crossing and a service road (neither is a street).
# Buildings about 1.1 km north: two squares, one multipolygon with a hole, one building=no.
_NODES = {1: (0.0, 0.0), 2: (0.001, 0.0), 3: (0.002, 0.0), 4: (0.001, -0.001), 5: (0.001, 0.001), 6: (0.003, 0.0),
          7: (0.003, 0.001), 8: (0.003, -0.001), 9: (0.0005, 0.0005), 10: (0.0015, -0.0005), 11: (0.0035, 0.001),
          12: (0.0005, 0.001), 13: (0.0015, 0.001), 14: (0.010, 0.0), 15: (0.011, 0.0), 16: (0.0105, 0.001),
          17: (0.012, -0.001),
          # buildings: a 0.0005° square, a 0.0002° square, building=no, and a 0.001° square with a 0.0005° hole
          30: (0.0, 0.01), 31: (0.0005, 0.01), 32: (0.0005, 0.0105), 33: (0.0, 0.0105),
          40: (0.001, 0.01), 41: (0.0012, 0.01), 42: (0.0012, 0.0102), 43: (0.001, 0.0102),
          50: (0.002, 0.01), 51: (0.0025, 0.01), 52: (0.0025, 0.0105), 53: (0.002, 0.0105),
          60: (-0.002, 0.01), 61: (-0.001, 0.01), 62: (-0.001, 0.011), 63: (-0.002, 0.011),
          64: (-0.00175, 0.01025), 65: (-0.00125, 0.01025), 66: (-0.00125, 0.01075), 67: (-0.00175, 0.01075)}
_WAYS = [(100, [1, 2, 3], {"highway": "residential"}), (101, [4, 2, 5], {"highway": "residential"}),
         (102, [3, 6], {"highway": "tertiary"}), (103, [6, 7], {"highway": "residential"}),
         (104, [6, 8], {"highway": "unclassified"}), (105, [9, 2, 10], {"highway": "footway"}),
         (106, [7, 11], {"highway": "footway"}), (107, [5, 12], {"highway": "service"}),
         (108, [5, 13], {"highway": "service"}), (109, [14, 15, 16, 14], {"highway": "residential"}),
         (110, [14, 17], {"highway": "residential"}),
         (200, [30, 31, 32, 33, 30], {"building": "yes"}), (201, [40, 41, 42, 43, 40], {"building": "house"}),
         (202, [50, 51, 52, 53, 50], {"building": "no"}),
         (203, [60, 61, 62, 63, 60], {}), (204, [64, 65, 66, 67, 64], {})]
_RELATION = """  <relation id="300" version="1">
    <member type="way" ref="203" role="outer"/><member type="way" ref="204" role="inner"/>
    <tag k="type" v="multipolygon"/><tag k="building" v="retail"/>
  </relation>"""


def _osm_xml() -> str:
    lines = ["<?xml version='1.0' encoding='UTF-8'?>", '<osm version="0.6" generator="test">']
    lines += [f'  <node id="{i}" lat="{lat}" lon="{lon}" version="1"/>' for i, (lon, lat) in _NODES.items()]
    for wid, refs, tags in _WAYS:
        body = "".join(f'<nd ref="{r}"/>' for r in refs) + "".join(f'<tag k="{k}" v="{v}"/>' for k, v in tags.items())
        lines.append(f'  <way id="{wid}" version="1">{body}</way>')
    lines += [_RELATION, "</osm>", ""]
    return "\n".join(lines)


@pytest.fixture()
def osm(tmp_path):
    path = tmp_path / "form.osm"
    path.write_text(_osm_xml(), encoding="utf-8")
    return path


def _wkt():
    from pyproj import CRS

    return CRS.from_epsg(32631).to_wkt()


def _xy(lon, lat):
    from loc2vec_engine.geo.crs import transformer_from_wgs84

    x, y = transformer_from_wgs84(_wkt()).transform(np.atleast_1d(lon), np.atleast_1d(lat))
    return np.column_stack([x, y])


def _geodesic_area(ring):
    from pyproj import Geod

    lon, lat = zip(*ring)
    return abs(Geod(ellps="WGS84").polygon_area_perimeter(lon, lat)[0])


def test_intersections_are_nodes_where_three_street_segments_meet(osm):
    form = read_urban_form(osm, _wkt())
    expected = _xy([0.001, 0.003, 0.010], [0.0, 0.0, 0.0])  # nodes 2, 6 and 14
    got = form.intersection_xy[np.lexsort(form.intersection_xy.T[::-1])]
    expected = expected[np.lexsort(expected.T[::-1])]
    assert got.shape == (3, 2)
    assert np.allclose(got, expected, atol=1e-3)  # the same projection: millimetres


def test_building_footprints_in_square_metres(osm):
    form = read_urban_form(osm, _wkt())
    square = _geodesic_area([_NODES[i] for i in (30, 31, 32, 33)])
    small = _geodesic_area([_NODES[i] for i in (40, 41, 42, 43)])
    holed = (_geodesic_area([_NODES[i] for i in (60, 61, 62, 63)])
             - _geodesic_area([_NODES[i] for i in (64, 65, 66, 67)]))
    assert square == pytest.approx(3080, rel=0.01) and small == pytest.approx(493, rel=0.01)  # about 55 m, 22 m
    # UTM areas differ from geodesic ones by the projection's scale (< 0.2 % near lon 0 in zone 31): 1 %.
    assert sorted(form.building_area_m2) == pytest.approx(sorted([square, small, holed]), rel=0.01)
    assert len(form.building_xy) == 3  # building=no is no building


def test_ogr_source_gives_the_same_form(osm, tmp_path):
    from osgeo import gdal

    gdal.UseExceptions()
    gpkg = tmp_path / "form.gpkg"
    gdal.VectorTranslate(str(gpkg), str(osm), format="GPKG")
    a, b = read_urban_form(osm, _wkt()), read_urban_form(gpkg, _wkt())
    assert sorted(b.building_area_m2) == pytest.approx(sorted(a.building_area_m2), rel=1e-6)
    sa, sb = (x[np.lexsort(x.T[::-1])] for x in (a.intersection_xy, b.intersection_xy))
    assert sa.shape == sb.shape and np.allclose(sa, sb, atol=0.05)


def test_targets_within_250_m(osm):
    form = read_urban_form(osm, _wkt())
    cells = np.vstack([_xy(0.001, 0.0), _xy(0.010, 0.0), _xy(0.0006, 0.0102), _xy(0.5, 0.5)])
    t = form_targets(cells, form)
    disc_km2 = np.pi * 0.25 ** 2
    # nodes 2 and 6 (222 m apart) are within 250 m of the crossing; node 14 alone near the loop
    assert t["form_intersections_r2"] == pytest.approx([2 / disc_km2, 1 / disc_km2, 0.0, 0.0], rel=1e-9)
    size = t["form_building_size_r2"]
    assert size[2] == pytest.approx(np.log10(np.mean(form.building_area_m2)), abs=1e-9)  # all three, ~220 m
    assert np.isnan(size[:2]).all() and np.isnan(size[3])  # no building within 250 m


def test_disc_area_is_clipped_to_the_area():
    bounds = (0.0, 0.0, 1000.0, 1000.0)
    full = np.pi * 250.0 ** 2
    got = disc_area_inside([[500, 500], [0, 0], [500, 0], [1000, 500]], 250.0, bounds)
    assert got == pytest.approx([full, full / 4, full / 2, full / 2], rel=1e-9)


# ---- the ridge probe -----------------------------------------------------------------------------------

def _grid(n_side=30, spacing=100.0):
    g = np.arange(n_side) * spacing
    return np.array([(x, y) for x in g for y in g], float)


def test_ridge_r2_finds_a_linear_target_and_not_noise():
    rng = np.random.default_rng(0)
    xy = _grid()
    f = rng.standard_normal((len(xy), 8))
    y = 3 * f[:, 0] - 2 * f[:, 1] + 0.1 * rng.standard_normal(len(xy))
    plan = plan_form("form_intersections_r2", y, xy)
    assert plan.measurable and len(plan.folds) == 5 and plan.blocks == 36
    r2 = run_form_probe(plan, f)
    assert r2.shape == (5,) and r2.min() > 0.99  # noise variance 0.01 of 13
    noise = run_form_probe(plan, rng.standard_normal((len(xy), 8)))
    assert noise.max() < 0.05
    # a constant feature: the prediction is the training mean, which is R² = 0 by definition
    assert np.allclose(run_form_probe(plan, np.ones((len(xy), 3))), 0.0, atol=1e-12)


def test_cells_without_a_target_are_left_out():
    xy = _grid(10)
    y = np.arange(len(xy), dtype=float)
    y[::2] = np.nan
    plan = plan_form("form_building_size_r2", y, xy)
    assert plan.keep.sum() == 50 and all(len(tr) + len(te) == 50 for tr, te in plan.folds)
    assert not plan_form("form_building_size_r2", np.full(len(xy), 2.0), xy).measurable
    few = plan_form("form_building_size_r2", np.where(np.arange(len(xy)) < 10, 1.0, np.nan), xy)
    assert not few.measurable and "only 10 cells" in few.reason


def test_r_squared():
    y = np.array([1.0, 2.0, 3.0])
    assert r_squared(y, y) == 1.0
    assert r_squared(y, np.full(3, 2.0)) == pytest.approx(0.0, abs=1e-15)
    # SSE 2, SST about 0: 14
    assert r_squared(y, np.full(3, 2.0), reference=0.0) == pytest.approx(1 - 2 / 14, abs=1e-12)
    assert np.isnan(r_squared(np.ones(3), np.zeros(3)))
