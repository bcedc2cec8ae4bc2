"""processing.run("loc2vec:rasterize") on real Porto OSM data: the raster, the area options, errors, cancel."""

import gc
from pathlib import Path

import pytest
from osgeo import gdal
from qgis.core import (
    QgsCoordinateReferenceSystem,
    QgsCoordinateTransform,
    QgsFeature,
    QgsGeometry,
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
