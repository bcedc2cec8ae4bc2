"""processing.run("loc2vec:rasterize") on real Porto OSM data: the raster, the area options, errors, cancel."""

import gc
import re
from pathlib import Path

import pytest
from osgeo import gdal
from qgis.core import (
    QgsCoordinateReferenceSystem,
    QgsCoordinateTransform,
    QgsFeature,
    QgsGeometry,
    QgsPointXY,
    QgsProcessingContext,
    QgsProcessingException,
    QgsProcessingFeatureSourceDefinition,
    QgsProcessingFeedback,
    QgsProject,
    QgsRasterLayer,
    QgsRectangle,
    QgsReferencedRectangle,
    QgsVectorLayer,
)

from loc2vec_engine.channels import get_spec

from ..conftest import PORTO_BBOX
from .conftest import extent_string

import processing  # noqa: E402  (QGIS's Processing plugin, on sys.path once pytest-qgis started QGIS)

ALG = "loc2vec:rasterize"
NAMES = get_spec().names
# A 300 m square around Avenida dos Aliados (lon/lat), inside PORTO_BBOX.
ALIADOS = (-8.6125, 41.1450, -8.6089, 41.1477)


class RecordingFeedback(QgsProcessingFeedback):
    """Keeps the messages an algorithm pushes."""

    def __init__(self):
        super().__init__()
        self.infos, self.warnings, self.percents = [], [], []
        self.progressChanged.connect(self.percents.append)

    def pushInfo(self, info):  # noqa: N802
        self.infos.append(info)
        super().pushInfo(info)

    def pushWarning(self, warning):  # noqa: N802
        self.warnings.append(warning)
        super().pushWarning(warning)


def _run(params, feedback=None, context=None):
    return processing.run(ALG, params, feedback=feedback or QgsProcessingFeedback(), context=context)


def _bands(path):
    ds = gdal.Open(str(path))
    names = [ds.GetRasterBand(i + 1).GetDescription() for i in range(ds.RasterCount)]
    return ds, names


@pytest.fixture(scope="module")
def porto_run(loc2vec_plugin, porto_pbf, tmp_path_factory):
    out = tmp_path_factory.mktemp("alg") / "porto.tif"
    feedback = RecordingFeedback()
    results = _run({"INPUT": str(porto_pbf), "EXTENT": extent_string(), "OUTPUT": str(out)}, feedback)
    return results, out, feedback


def test_rasterize_porto(porto_run):
    results, out, feedback = porto_run
    assert results["OUTPUT"] == str(out) and out.is_file()
    assert (results["BANDS"], results["CRS"]) == (12, "EPSG:32629")  # UTM 29N, chosen for Porto
    ds, names = _bands(out)
    assert names == NAMES and ds.RasterCount == 12
    assert (ds.RasterXSize, ds.RasterYSize) == (results["WIDTH"], results["HEIGHT"])
    assert ds.GetGeoTransform()[1] == pytest.approx(1.953125)
    assert ds.GetMetadataItem("LOC2VEC_ATTRIBUTION").startswith("Map data © OpenStreetMap contributors")
    data = ds.ReadAsArray()
    road_px = (data[NAMES.index("roads_major")] > 0).sum() + (data[NAMES.index("roads_minor")] > 0).sum()
    assert road_px > 10_000
    assert (data[NAMES.index("buildings_residential")] > 0).mean() > 0.05
    assert any("OpenStreetMap contributors" in m for m in feedback.infos)
    assert feedback.percents == sorted(feedback.percents) and feedback.percents[-1] == 100


def test_preset_is_passed_to_the_engine(loc2vec_plugin, porto_pbf, tmp_path):
    """The Kyiv preset clips to the Kyiv boundary, which a Porto extent cannot overlap."""
    with pytest.raises(QgsProcessingException, match="do not overlap"):
        _run({"INPUT": str(porto_pbf), "EXTENT": extent_string(ALIADOS), "PRESET": "kyiv",
              "OUTPUT": str(tmp_path / "out.tif")})
    assert list(tmp_path.iterdir()) == []


def test_output_opens_in_qgis_with_band_names(porto_run):
    _, out, _ = porto_run
    layer = QgsRasterLayer(str(out), "area")
    assert layer.isValid() and layer.crs().authid() == "EPSG:32629"
    # QGIS shows GDAL's per-dataset mask as a 13th (alpha) band after the 12 channels.
    assert layer.bandCount() == 13
    assert [layer.bandName(i + 1) for i in range(12)] == [f"Band {i + 1:02d}: {n}" for i, n in enumerate(NAMES)]
    assert layer.dataProvider().colorInterpretationName(13) == "Alpha"


def test_run_and_load_results_adds_the_layer(loc2vec_plugin, porto_pbf, tmp_path):
    out = tmp_path / "loaded.tif"
    project = QgsProject.instance()
    context = QgsProcessingContext()
    context.setProject(project)
    results = processing.runAndLoadResults(
        ALG, {"INPUT": str(porto_pbf), "EXTENT": extent_string(ALIADOS), "OUTPUT": str(out)}, context=context)
    layers = [lyr for lyr in project.mapLayers().values() if lyr.source() == results["OUTPUT"]]
    try:
        assert len(layers) == 1
        layer = layers[0]
        assert layer.bandName(1) == "Band 01: roads_major"
        assert "OpenStreetMap contributors" in layer.attribution()
    finally:
        project.removeAllMapLayers()


def test_extent_in_another_crs_is_reprojected(loc2vec_plugin, porto_pbf, tmp_path, porto_run):
    """A Web Mercator extent covering the lon/lat box gives a raster covering at least the same area."""
    w, s, e, n = ALIADOS
    to_merc = QgsCoordinateTransform(QgsCoordinateReferenceSystem("EPSG:4326"),
                                     QgsCoordinateReferenceSystem("EPSG:3857"), QgsProject.instance())
    rect = to_merc.transformBoundingBox(QgsRectangle(w, s, e, n))
    out = tmp_path / "merc.tif"
    results = _run({"INPUT": str(porto_pbf), "OUTPUT": str(out),
                    "EXTENT": QgsReferencedRectangle(rect, QgsCoordinateReferenceSystem("EPSG:3857"))})
    lonlat = _run({"INPUT": str(porto_pbf), "EXTENT": extent_string(ALIADOS), "OUTPUT": str(tmp_path / "ll.tif")})
    assert results["CRS"] == "EPSG:32629"
    # Same box up to the reprojection of its edges: within 2 pixels.
    assert results["WIDTH"] == pytest.approx(lonlat["WIDTH"], abs=2)
    assert results["HEIGHT"] == pytest.approx(lonlat["HEIGHT"], abs=2)


def test_extent_without_crs_is_read_as_lonlat(loc2vec_plugin, porto_pbf, tmp_path):
    w, s, e, n = ALIADOS
    feedback = RecordingFeedback()
    results = _run({"INPUT": str(porto_pbf), "EXTENT": f"{w},{e},{s},{n}", "OUTPUT": str(tmp_path / "a.tif")},
                   feedback, context=QgsProcessingContext())  # no project: no CRS to fall back on
    assert results["BANDS"] == 12
    assert any("longitude/latitude" in m for m in feedback.infos)
    with pytest.raises(QgsProcessingException, match="no CRS and is not in degrees"):
        _run({"INPUT": str(porto_pbf), "EXTENT": "-959000,-957000,5034000,5035000",
              "OUTPUT": str(tmp_path / "b.tif")}, context=QgsProcessingContext())


def test_projected_crs_is_used(loc2vec_plugin, porto_pbf, tmp_path):
    results = _run({"INPUT": str(porto_pbf), "EXTENT": extent_string(ALIADOS), "CRS": "EPSG:3763",
                    "PIXEL_SIZE": 4.0, "OUTPUT": str(tmp_path / "pt.tif")})
    ds = gdal.Open(results["OUTPUT"])
    assert results["CRS"] == "EPSG:3763"  # Portugal TM06
    assert ds.GetGeoTransform()[1] == 4.0
    assert 60 < results["WIDTH"] < 90  # ~300 m at 4 m/px


def test_geographic_crs_warns_and_uses_utm(loc2vec_plugin, porto_pbf, tmp_path):
    feedback = RecordingFeedback()
    results = _run({"INPUT": str(porto_pbf), "EXTENT": extent_string(ALIADOS), "CRS": "EPSG:4326",
                    "OUTPUT": str(tmp_path / "geo.tif")}, feedback)
    assert results["CRS"] == "EPSG:32629"
    assert any("geographic" in w and "UTM" in w for w in feedback.warnings)


def test_custom_channel_spec(loc2vec_plugin, porto_pbf, tmp_path):
    """A spec file with the first two channels of the default spec gives a 2-band raster."""
    import loc2vec_engine.channels

    default = Path(loc2vec_engine.channels.__file__).parent / "default.toml"
    head, *channels = default.read_text().split("[[channel]]")
    spec = tmp_path / "roads.toml"
    spec.write_text(head.replace('name = "loc2vec-12"', 'name = "roads-2"')
                    + "".join("[[channel]]" + c for c in channels[:2]))
    results = _run({"INPUT": str(porto_pbf), "EXTENT": extent_string(ALIADOS), "SPEC": str(spec),
                    "OUTPUT": str(tmp_path / "roads.tif")})
    ds, names = _bands(results["OUTPUT"])
    assert results["BANDS"] == 2 and names == NAMES[:2]
    assert ds.GetMetadataItem("LOC2VEC_SPEC") == "roads-2"


def test_crs_in_feet_is_refused(loc2vec_plugin, porto_pbf, tmp_path):
    with pytest.raises(QgsProcessingException, match="not metres"):
        _run({"INPUT": str(porto_pbf), "EXTENT": extent_string(ALIADOS), "CRS": "EPSG:2249",
              "OUTPUT": str(tmp_path / "ft.tif")})
    assert list(tmp_path.iterdir()) == []


def _clip_layer(*boxes, crs="EPSG:3857"):
    """A memory polygon layer with lon/lat boxes (default ALIADOS), in Web Mercator (so the plugin must reproject)."""
    to_crs = QgsCoordinateTransform(QgsCoordinateReferenceSystem("EPSG:4326"), QgsCoordinateReferenceSystem(crs),
                                    QgsProject.instance())
    layer = QgsVectorLayer(f"Polygon?crs={crs}", "clip", "memory")
    features = []
    for w, s, e, n in boxes or [ALIADOS]:
        geom = QgsGeometry.fromRect(QgsRectangle(w, s, e, n))
        geom.transform(to_crs)
        feature = QgsFeature()
        feature.setGeometry(geom)
        features.append(feature)
    layer.dataProvider().addFeatures(features)
    return layer


def test_clip_with_a_memory_layer(loc2vec_plugin, porto_pbf, tmp_path):
    pytest.importorskip("loc2vec_engine.geo.presets")
    layer = _clip_layer()
    feedback = RecordingFeedback()
    results = _run({"INPUT": str(porto_pbf), "CLIP": layer, "OUTPUT": str(tmp_path / "clip.tif")}, feedback)
    lonlat = _run({"INPUT": str(porto_pbf), "EXTENT": extent_string(ALIADOS), "OUTPUT": str(tmp_path / "ll.tif")})
    assert any("copied to" in m for m in feedback.infos)  # in-memory layer -> temporary GeoJSON
    assert results["WIDTH"] == pytest.approx(lonlat["WIDTH"], abs=2)
    assert results["HEIGHT"] == pytest.approx(lonlat["HEIGHT"], abs=2)


def test_clip_to_the_selected_polygon_only(loc2vec_plugin, porto_pbf, tmp_path):
    pytest.importorskip("loc2vec_engine.geo.presets")
    w, s, e, n = PORTO_BBOX
    layer = _clip_layer(ALIADOS, (w, s, e, n))  # the second box covers the whole test area
    project = QgsProject.instance()
    project.addMapLayer(layer)
    try:
        layer.selectByIds([next(layer.getFeatures()).id()])  # only ALIADOS
        context = QgsProcessingContext()
        context.setProject(project)
        results = _run({"INPUT": str(porto_pbf), "CLIP": QgsProcessingFeatureSourceDefinition(layer.id(), True),
                        "OUTPUT": str(tmp_path / "sel.tif")}, context=context)
    finally:
        project.removeMapLayer(layer.id())
    assert 150 < results["WIDTH"] < 170 and 150 < results["HEIGHT"] < 170  # ALIADOS: ~300 m at 1.95 m/px


def test_clip_with_a_file_passes_its_path(loc2vec_plugin, porto_pbf, tmp_path):
    pytest.importorskip("loc2vec_engine.geo.presets")
    from qgis.core import QgsVectorFileWriter

    path = tmp_path / "clip.gpkg"
    options = QgsVectorFileWriter.SaveVectorOptions()
    options.driverName = "GPKG"
    err, *_ = QgsVectorFileWriter.writeAsVectorFormatV3(_clip_layer(), str(path),
                                                        QgsProject.instance().transformContext(), options)
    assert err == QgsVectorFileWriter.NoError
    feedback = RecordingFeedback()
    results = _run({"INPUT": str(porto_pbf), "CLIP": str(path), "OUTPUT": str(tmp_path / "clip.tif")}, feedback)
    assert results["BANDS"] == 12 and 150 < results["WIDTH"] < 170  # ~300 m at 1.95 m/px
    assert not any("copied to" in m for m in feedback.infos)


def test_missing_input(loc2vec_plugin, tmp_path):
    out = tmp_path / "out.tif"
    with pytest.raises(QgsProcessingException) as err:
        _run({"INPUT": str(tmp_path / "nowhere.osm.pbf"), "EXTENT": extent_string(), "OUTPUT": str(out)})
    assert "nowhere.osm.pbf not found" in str(err.value) and "Fix:" in str(err.value)
    assert "Traceback" not in str(err.value)
    assert list(tmp_path.iterdir()) == []


def test_corrupt_input(loc2vec_plugin, tmp_path):
    bad = tmp_path / "in" / "corrupt.osm.pbf"
    bad.parent.mkdir()
    bad.write_bytes(b"\x00\x00\x00\x0dnot a pbf at all" * 64)
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    with pytest.raises(QgsProcessingException) as err:
        _run({"INPUT": str(bad), "EXTENT": extent_string(), "OUTPUT": str(out_dir / "out.tif")})
    assert "cannot read" in str(err.value) and "Fix:" in str(err.value)
    assert list(out_dir.iterdir()) == []


def test_output_must_be_geotiff(loc2vec_plugin, porto_pbf, tmp_path):
    with pytest.raises(QgsProcessingException, match="not a GeoTIFF"):
        _run({"INPUT": str(porto_pbf), "EXTENT": extent_string(ALIADOS), "OUTPUT": str(tmp_path / "out.png")})


@pytest.mark.parametrize("when", ["first report", "while writing"])
def test_cancel_leaves_no_output(loc2vec_plugin, porto_pbf, tmp_path, when):
    out = tmp_path / "out.tif"
    feedback = QgsProcessingFeedback()
    seen_partial = []

    def on_progress(_percent):
        partial = [p.name for p in tmp_path.iterdir() if p.name.endswith(".part")]
        seen_partial.extend(partial)
        if when == "first report" or partial:
            feedback.cancel()

    feedback.progressChanged.connect(on_progress)
    with pytest.raises(QgsProcessingException, match="Cancelled"):
        _run({"INPUT": str(porto_pbf), "EXTENT": extent_string(), "OUTPUT": str(out)}, feedback)
    assert feedback.isCanceled()
    if when == "while writing":
        assert seen_partial, "the cancel came before the raster was being written"
    gc.collect()
    assert list(tmp_path.iterdir()) == []


# ---- map layers (LAYERS) and the layer mapping (MAPPING) ----------------------------------------------
# Made-up layers inside PORTO_BBOX (lon/lat): two roads told apart by a 'kind' column, a building, and a
# road with an OSM-like 'highway' column that no MAPPING row names.
BOX = (-8.6140, 41.1395, -8.6040, 41.1485)
BIG, SMALL, PRIMARY = 41.1440, 41.1460, 41.1475  # latitudes of the three roads, from lon -8.6130 to -8.6050
ROAD_LON = (-8.6130, -8.6050)
BUILDING = (-8.6105, 41.1405, -8.6095, 41.1412)  # about 84 x 78 m
MAPPING = ["roads", "kind = 'big'", "roads_major", "line", "20",
           "roads", "\"kind\" <> 'big'", "roads_minor", "line", "8",
           "buildings", "", "buildings_commercial", "fill", ""]
METRIC = "EPSG:3763"  # Portugal TM06: metric, and not the raster's CRS (UTM 29N), so both get reprojected


def _memory_layer(geometry, name, crs, fields, rows):
    """A memory layer in ``crs`` from (lon/lat QgsGeometry, attribute values) rows."""
    uri = f"{geometry}?crs={crs}" + "".join(f"&field={f}:string" for f in fields)
    layer = QgsVectorLayer(uri, name, "memory")
    to_crs = QgsCoordinateTransform(QgsCoordinateReferenceSystem("EPSG:4326"), QgsCoordinateReferenceSystem(crs),
                                    QgsProject.instance())
    features = []
    for geom, values in rows:
        geom = QgsGeometry(geom)
        geom.transform(to_crs)
        feature = QgsFeature(layer.fields())
        feature.setGeometry(geom)
        feature.setAttributes(values)
        features.append(feature)
    assert layer.isValid() and layer.dataProvider().addFeatures(features)[0]
    return layer


def _road(lat):
    return QgsGeometry.fromPolylineXY([QgsPointXY(ROAD_LON[0], lat), QgsPointXY(ROAD_LON[1], lat)])


def _map_layers(crs):
    """(roads with 'kind', buildings without OSM columns, a road with 'highway' = 'primary')."""
    roads = _memory_layer("LineString", "roads", crs, ["kind"], [(_road(BIG), ["big"]), (_road(SMALL), ["small"])])
    buildings = _memory_layer("Polygon", "buildings", crs, ["name"],
                              [(QgsGeometry.fromRect(QgsRectangle(*BUILDING)), ["shop"])])
    osm = _memory_layer("LineString", "osm_roads", crs, ["highway", "name"], [(_road(PRIMARY), ["primary", "Rua"])])
    return roads, buildings, osm


def _layers_params(layers, out, mapping=MAPPING, bbox=BOX, **extra):
    params = {"LAYERS": list(layers), "MAPPING": mapping, "OUTPUT": str(out), **extra}
    return {**params, "EXTENT": extent_string(bbox)} if bbox else params


def _leftover_temp_folders():
    from qgis.core import QgsProcessingUtils

    return [p for p in Path(QgsProcessingUtils.tempFolder()).glob("loc2vec_layers_*")]


def _pixel(area, data, name, lon, lat):
    col, row = area.xy_to_pixel(*area.lonlat_to_xy(lon, lat))
    return int(data[NAMES.index(name), int(row), int(col)])


@pytest.fixture(scope="module")
def layer_runs(loc2vec_plugin, tmp_path_factory):
    """The same layers and mapping in a metric CRS and in EPSG:4326, rasterized once each."""
    from loc2vec_engine.raster.area import AreaRaster

    folder = tmp_path_factory.mktemp("layers")
    runs = {}
    for crs in (METRIC, "EPSG:4326"):
        layers = _map_layers(crs)
        feedback = RecordingFeedback()
        out = folder / f"{crs.replace(':', '_')}.tif"
        results = _run(_layers_params(layers, out), feedback)
        area = AreaRaster.open(out)
        runs[crs] = results, area, area.read()[0], feedback
    return runs


def test_layers_are_drawn_by_the_mapping(layer_runs):
    results, area, data, feedback = layer_runs[METRIC]
    assert results["BANDS"] == 12 and results["CRS"] == "EPSG:32629"
    mid = sum(ROAD_LON) / 2
    # The big road is in roads_major, not roads_minor; the other road the other way round.
    assert _pixel(area, data, "roads_major", mid, BIG) == 255 and _pixel(area, data, "roads_minor", mid, BIG) == 0
    assert _pixel(area, data, "roads_minor", mid, SMALL) == 255 and _pixel(area, data, "roads_major", mid, SMALL) == 0
    # The 'highway' = 'primary' layer has no row: the spec's OSM rules send it to roads_major.
    assert _pixel(area, data, "roads_major", mid, PRIMARY) == 255
    w, s, e, n = BUILDING
    assert _pixel(area, data, "buildings_commercial", (w + e) / 2, (s + n) / 2) == 255
    assert _pixel(area, data, "buildings_residential", (w + e) / 2, (s + n) / 2) == 0
    # Nothing elsewhere: the drawn areas match the widths (20 m, 8 m, the spec's 16 m for primary) ...
    length = area.lonlat_to_xy(ROAD_LON[1], BIG)[0] - area.lonlat_to_xy(ROAD_LON[0], BIG)[0]
    m2 = {name: (data[NAMES.index(name)] > 0).sum() * area.pixel_size ** 2 for name in NAMES}
    assert m2["roads_major"] == pytest.approx((20 + 16) * length, rel=0.05)
    assert m2["roads_minor"] == pytest.approx(8 * length, rel=0.08)
    (x0, y0), (x1, y1) = area.lonlat_to_xy(w, s), area.lonlat_to_xy(e, n)
    assert m2["buildings_commercial"] == pytest.approx((x1 - x0) * (y1 - y0), rel=0.05)
    # ... and every other channel is empty.
    assert {k for k, v in m2.items() if v} == {"roads_major", "roads_minor", "buildings_commercial"}
    assert any("MAPPING row 1 (layer 'roads'): 1 features matching" in m for m in feedback.infos)
    assert any("'osm_roads' (matched by its OSM-like columns)" in m and "roads_major" in m for m in feedback.infos)
    assert not any("geographic" in m for m in feedback.infos)
    assert _leftover_temp_folders() == []


def test_geographic_layers_give_the_same_pixels(layer_runs):
    results, _, metric, _ = layer_runs[METRIC]
    geo_results, _, geo, feedback = layer_runs["EPSG:4326"]
    assert (geo_results["WIDTH"], geo_results["HEIGHT"]) == (results["WIDTH"], results["HEIGHT"])
    for name in ("roads_major", "roads_minor", "buildings_commercial"):
        a, b = metric[NAMES.index(name)] > 0, geo[NAMES.index(name)] > 0
        assert (a & b).sum() / (a | b).sum() > 0.95, name
    notes = [m for m in feedback.infos if "geographic CRS" in m]
    assert len(notes) == 3 and "'roads'" in notes[0] and "EPSG:4326" in notes[0]


def test_layers_from_a_geopackage(layer_runs, tmp_path):
    """Layers of a GeoPackage file, given as paths (named after the file: rows find them by table) and as a
    layer object (a row names it by id), draw the same as the memory layers."""
    from qgis.core import QgsVectorFileWriter

    from loc2vec_engine.raster.area import AreaRaster

    path = tmp_path / "layers.gpkg"
    for layer in _map_layers(METRIC):
        options = QgsVectorFileWriter.SaveVectorOptions()
        options.driverName, options.layerName = "GPKG", layer.name()
        if path.exists():
            options.actionOnExistingFile = QgsVectorFileWriter.CreateOrOverwriteLayer
        err, *_ = QgsVectorFileWriter.writeAsVectorFormatV3(layer, str(path), QgsProject.instance().transformContext(),
                                                            options)
        assert err == QgsVectorFileWriter.NoError
    buildings = QgsVectorLayer(f"{path}|layername=buildings", "my buildings", "ogr")
    assert buildings.isValid() and buildings.crs().authid() == METRIC
    mapping = MAPPING[:10] + [buildings.id(), "", "buildings_commercial", "fill", ""]
    out = tmp_path / "out" / "gpkg.tif"
    out.parent.mkdir()
    feedback = RecordingFeedback()
    _run(_layers_params([f"{path}|layername=roads", buildings, f"{path}|layername=osm_roads"], out, mapping), feedback)
    data, _ = AreaRaster.open(out).read()
    _, _, memory, _ = layer_runs[METRIC]
    assert data.shape == memory.shape and (data == memory).all()
    assert [p.name for p in out.parent.iterdir()] == ["gpkg.tif"]
    assert any("MAPPING row 1 (layer 'layers' (table 'roads')): 1 features" in m for m in feedback.infos)


def test_layers_with_the_osm_file(loc2vec_plugin, porto_pbf, tmp_path):
    """INPUT and LAYERS together: the OSM channels as from the file alone, plus the layer's own pixels."""
    from loc2vec_engine.raster.area import AreaRaster

    w, s, e, n = ALIADOS
    lat = (s + n) / 2
    tram = _memory_layer("LineString", "tram", METRIC, ["line"],
                         [(QgsGeometry.fromPolylineXY([QgsPointXY(w, lat), QgsPointXY(e, lat)]), ["A"])])
    both = _run({"INPUT": str(porto_pbf), "LAYERS": [tram], "MAPPING": ["tram", "", "transit", "line", "6"],
                 "EXTENT": extent_string(ALIADOS), "OUTPUT": str(tmp_path / "both.tif")})
    alone = _run({"INPUT": str(porto_pbf), "EXTENT": extent_string(ALIADOS), "OUTPUT": str(tmp_path / "pbf.tif")})
    a_both, a_pbf = AreaRaster.open(both["OUTPUT"]), AreaRaster.open(alone["OUTPUT"])
    d_both, d_pbf = a_both.read()[0], a_pbf.read()[0]
    assert d_both.shape == d_pbf.shape
    transit = NAMES.index("transit")
    others = [i for i in range(len(NAMES)) if i != transit]
    assert (d_both[others] == d_pbf[others]).all() and (d_pbf[NAMES.index("roads_minor")] > 0).sum() > 1000
    assert (d_both[transit] >= d_pbf[transit]).all()
    assert _pixel(a_both, d_both, "transit", (w + e) / 2, lat) == 255
    added = (d_both[transit] > 0).sum() - (d_pbf[transit] > 0).sum()
    assert added * a_both.pixel_size ** 2 == pytest.approx(6 * (a_both.lonlat_to_xy(e, lat)[0] -
                                                                a_both.lonlat_to_xy(w, lat)[0]), rel=0.25)


def _bad_row(*cells):
    """A good first row (the buildings), then ``cells`` as row 2."""
    return ["buildings", "", "buildings_commercial", "fill", "", *cells]


@pytest.mark.parametrize("mapping, problem, fix", [
    (_bad_row("streets", "", "roads_major", "line", "20"), "row 2 ('streets' -> 'roads_major'): layer 'streets' is "
     "not one of the map layers", "use one of: 'roads', 'buildings', 'osm_roads'"),
    (_bad_row("roads", "", "motorways", "line", "20"), "row 2 ('roads' -> 'motorways'): unknown channel 'motorways'",
     "use one of: roads_major, roads_minor, paths"),
    (_bad_row("roads", "", "roads_major", "polygon", "20"), "row 2 ('roads' -> 'roads_major'): unknown draw 'polygon'",
     "use one of: line, fill, outline, point"),
    (_bad_row("roads", "", "buildings_commercial", "fill", ""), "draw 'fill' needs polygons, but the layer has line",
     "use draw 'line'"),
    (_bad_row("roads", "", "roads_major", "line", "wide"), "width 'wide' is not a number of metres", "in metres"),
    (_bad_row("roads", "", "roads_major", "line", "-5"), "width '-5' is not a number of metres", "in metres"),
    (_bad_row("roads", "", "roads_major", "line", ""), "width '(empty)' is not a number", "in metres, e.g. 8"),
    (_bad_row("roads", "kind = = 'big'", "roads_major", "line", "20"), "the filter expression \"kind = = 'big'\" "
     "is not valid", "write a QGIS expression"),
    (_bad_row("roads", "kindx = 'big'", "roads_major", "line", "20"), "uses unknown field(s) kindx",
     "fields of layer 'roads': kind"),
    (_bad_row("roads", "\"kind\" * 2 > 1", "roads_major", "line", "20"), "fails: Cannot convert 'big'",
     "fix the expression"),
    (_bad_row("roads", "", "roads_major", "line"), "MAPPING has 9 values, not whole rows of 5 columns",
     "layer, filter expression, channel, draw, width (m)"),
])
def test_bad_mapping_rows_are_refused(loc2vec_plugin, tmp_path, mapping, problem, fix):
    with pytest.raises(QgsProcessingException) as err:
        _run(_layers_params(_map_layers(METRIC), tmp_path / "out.tif", mapping))
    message = str(err.value)
    assert problem in message and "Fix: " in message and fix in message.split("Fix:")[1], message
    assert list(tmp_path.iterdir()) == [] and _leftover_temp_folders() == []


def _refused(params, tmp_path, feedback=None) -> str:
    with pytest.raises(QgsProcessingException) as err:
        _run(params, feedback)
    assert "Traceback" not in str(err.value)
    assert not (tmp_path / "out.tif").exists() and _leftover_temp_folders() == []
    return str(err.value)


def test_no_input_at_all(loc2vec_plugin, tmp_path):
    message = _refused({"EXTENT": extent_string(BOX), "OUTPUT": str(tmp_path / "out.tif")}, tmp_path)
    assert "no input: neither a file (INPUT) nor map layers (LAYERS)" in message and "Fix:" in message


def test_mapping_without_layers(loc2vec_plugin, porto_pbf, tmp_path):
    message = _refused({"INPUT": str(porto_pbf), "MAPPING": MAPPING, "EXTENT": extent_string(ALIADOS),
                        "OUTPUT": str(tmp_path / "out.tif")}, tmp_path)
    assert "MAPPING row 1 ('roads' -> 'roads_major'): no map layers are given" in message


def test_extent_without_features(loc2vec_plugin, tmp_path):
    """Nothing of the layers inside the extent: the message says where they are; no output file."""
    empty = (-8.6160, 41.1385, -8.6150, 41.1392)  # inside PORTO_BBOX, away from every layer
    for layers, mapping in ((_map_layers(METRIC), MAPPING), (_map_layers(METRIC)[2:], None)):
        message = _refused(_layers_params(layers, tmp_path / "out.tif", mapping, bbox=empty), tmp_path)
        names = ", ".join(repr(lyr.name()) for lyr in layers)
        assert f"no objects of channel spec 'loc2vec-12' in the map layers {names} inside the extent -8.616," in message
        # The layers' own extent in lon/lat, to compare with the extent given.
        assert re.search(r"Fix: choose an extent that overlaps the layers \(they cover lon/lat "
                         r"-8\.61\d\d\d,41\.1[34]\d\d\d,-8\.60[45]\d\d,41\.147\d\d\)", message), message


def test_clip_without_features_passes_the_engine_message(loc2vec_plugin, tmp_path):
    pytest.importorskip("loc2vec_engine.geo.presets")
    clip = _clip_layer((-8.6160, 41.1385, -8.6150, 41.1392))  # the layers are exported, the engine finds none inside
    params = _layers_params(_map_layers(METRIC), tmp_path / "out.tif", bbox=None)
    message = _refused({**params, "CLIP": clip}, tmp_path)
    assert "no objects of channel spec 'loc2vec-12' inside the area of interest (clip " in message
    assert "\nFix: the area must overlap the data" in message


def test_layer_without_mapping_or_osm_columns(loc2vec_plugin, tmp_path):
    roads = _map_layers(METRIC)[0]
    feedback = RecordingFeedback()
    message = _refused(_layers_params([roads], tmp_path / "out.tif", mapping=None), tmp_path, feedback)
    assert "none of the features of the map layers 'roads' matches a channel" in message
    assert "add MAPPING rows" in message
    assert any("'roads' has no MAPPING row and no OSM-like columns" in w for w in feedback.warnings)


def test_layer_without_crs(loc2vec_plugin, tmp_path):
    layer = QgsVectorLayer("LineString?field=kind:string", "nocrs", "memory")
    layer.setCrs(QgsCoordinateReferenceSystem())  # memory layers default to EPSG:4326
    message = _refused(_layers_params([layer], tmp_path / "out.tif", mapping=["nocrs", "", "paths", "line", "3"]),
                       tmp_path)
    assert "map layer 'nocrs' has no CRS" in message and "Assigned CRS" in message


def test_cancel_while_exporting_layers(loc2vec_plugin, tmp_path):
    feedback = QgsProcessingFeedback()
    feedback.progressChanged.connect(lambda _p: feedback.cancel())
    message = _refused(_layers_params(_map_layers(METRIC), tmp_path / "out.tif"), tmp_path, feedback)
    assert "Cancelled" in message and list(tmp_path.iterdir()) == []
