"""Presets and clip polygons from OGR files."""

import json

import pytest
import shapely

from loc2vec_engine.errors import Loc2VecError
from loc2vec_engine.geo.presets import Preset, get_preset, list_presets, load_clip_polygon


def test_registry():
    assert {"kyiv", "porto", "andorra"} <= set(list_presets())
    kyiv = get_preset("Kyiv")
    assert isinstance(kyiv, Preset) and kyiv.crs == "EPSG:32636"
    assert kyiv.boundary_path.is_file()
    assert kyiv.download_url == "https://download.geofabrik.de/europe/ukraine-latest.osm.pbf"
    for name in ("porto", "andorra"):
        p = get_preset(name)
        assert p.crs is None and p.boundary_path is None and p.local_pbf.is_file()
    with pytest.raises(Loc2VecError) as e:
        get_preset("atlantis")
    assert "kyiv" in e.value.fix and "porto" in e.value.fix


def test_kyiv_boundary_matches_bbox():
    kyiv = get_preset("kyiv")
    poly = load_clip_polygon("kyiv")
    assert poly.geom_type in ("Polygon", "MultiPolygon")  # the place point is dropped
    x0, y0, x1, y1 = kyiv.bbox
    assert shapely.box(*kyiv.bbox).contains(poly)
    assert poly.bounds == pytest.approx((x0, y0, x1, y1), abs=2e-5)
    assert 800 < _area_km2(poly) < 900  # Kyiv is ~839 km²
    assert load_clip_polygon(kyiv.boundary_path).equals(poly)


def test_preset_without_boundary_gives_its_bbox():
    assert load_clip_polygon("porto").equals(shapely.box(*get_preset("porto").bbox))


def _area_km2(poly_lonlat):
    from pyproj import Geod

    return abs(Geod(ellps="WGS84").geometry_area_perimeter(poly_lonlat)[0]) / 1e6


def _write_layer(path, driver, epsg, geoms):
    from osgeo import ogr, osr

    ogr.UseExceptions()
    ds = ogr.GetDriverByName(driver).CreateDataSource(str(path))
    srs = None
    if epsg:
        srs = osr.SpatialReference()
        srs.ImportFromEPSG(epsg)
    layer = ds.CreateLayer("clip", srs, ogr.wkbUnknown if driver != "ESRI Shapefile" else ogr.wkbPolygon)
    for g in geoms:
        f = ogr.Feature(layer.GetLayerDefn())
        f.SetGeometry(ogr.CreateGeometryFromWkb(shapely.to_wkb(g)))
        layer.CreateFeature(f)
    ds = None


def test_gpkg_in_utm_is_reprojected_and_unioned(tmp_path):
    from pyproj import Transformer

    # Two overlapping 1 km squares near Kyiv centre, in UTM 36N.
    to_utm = Transformer.from_crs("EPSG:4326", "EPSG:32636", always_xy=True)
    x, y = to_utm.transform(30.5234, 50.4501)
    squares = [shapely.box(x, y, x + 1000, y + 1000), shapely.box(x + 500, y, x + 1500, y + 1000)]
    path = tmp_path / "clip.gpkg"
    _write_layer(path, "GPKG", 32636, squares + [shapely.Point(x, y)])
    poly = load_clip_polygon(path)
    assert poly.geom_type == "Polygon"
    assert shapely.Point(30.5234, 50.4501).distance(poly.exterior) < 1e-7  # the lower-left corner, in lon/lat
    assert _area_km2(poly) == pytest.approx(1.5, rel=0.01)


def test_shapefile_in_lonlat(tmp_path):
    path = tmp_path / "clip.shp"
    _write_layer(path, "ESRI Shapefile", 4326, [shapely.box(1.5, 42.5, 1.55, 42.53)])
    assert load_clip_polygon(path).equals(shapely.box(1.5, 42.5, 1.55, 42.53))


def test_file_without_polygons(tmp_path):
    path = tmp_path / "points.geojson"
    path.write_text(json.dumps({"type": "FeatureCollection", "features": [
        {"type": "Feature", "properties": {}, "geometry": {"type": "Point", "coordinates": [30.5, 50.4]}}]}))
    with pytest.raises(Loc2VecError) as e:
        load_clip_polygon(path)
    assert e.value.problem == f"clip file {path} has no polygons"
    assert "city boundary" in e.value.fix
    with pytest.raises(Loc2VecError, match="not found"):
        load_clip_polygon(tmp_path / "missing.geojson")
    (tmp_path / "junk.geojson").write_text("not json")
    with pytest.raises(Loc2VecError, match="cannot read"):
        load_clip_polygon(tmp_path / "junk.geojson")
