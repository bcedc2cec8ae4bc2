"""The engine's QGIS project (written as XML, no QGIS) read back by real QGIS: layers, styles, CRS, paths, rendering."""

import ast
import shutil
import subprocess
import sys
import zipfile
import xml.etree.ElementTree as ET

import numpy as np
import pytest
from osgeo import gdal, ogr, osr
from qgis.core import (
    QgsCategorizedSymbolRenderer,
    QgsGraduatedSymbolRenderer,
    QgsMapRendererSequentialJob,
    QgsMultiBandColorRenderer,
    QgsMapSettings,
    QgsProject,
    QgsRectangle,
    QgsSingleBandGrayRenderer,
    QgsUnitTypes,
)
from qgis.PyQt.QtCore import QSize
from qgis.PyQt.QtGui import QColor

from loc2vec_engine import ATTRIBUTION
from loc2vec_engine.clusters.colors import NOISE_COLOR, cluster_color
from loc2vec_engine.embeddings.store import update_columns, write_embeddings
from loc2vec_engine.errors import Loc2VecError
from loc2vec_engine.project import (ClusterPointsLayer, LabelPointsLayer, RasterLayer, RgbRasterLayer, ScorePointsLayer,
                                    write_qgz)

from ..conftest import REPO

K, STRIDE, N = 5, 100.0, 10  # 10 x 10 cells of 100 m; cluster = column // 2, so each cluster is a 2 x 10 block
OPACITY = 0.85
SCORES = (0.42, 0.55, 0.71, 0.86, 1.0)
LABELS = {0: "old town", 3: "river"}


def _points_gpkg(path, wkt, layer, xy, fields):
    """A point GeoPackage layer with ``fields`` {name: values}, written with OGR."""
    ds = ogr.GetDriverByName("GPKG").CreateDataSource(str(path))
    srs = osr.SpatialReference()
    srs.ImportFromWkt(wkt)
    lyr = ds.CreateLayer(layer, srs, ogr.wkbPoint)
    for name, values in fields.items():
        lyr.CreateField(ogr.FieldDefn(name, ogr.OFTReal if isinstance(values[0], float) else ogr.OFTString))
    for i, (x, y) in enumerate(xy):
        f = ogr.Feature(lyr.GetLayerDefn())
        pt = ogr.Geometry(ogr.wkbPoint)
        pt.AddPoint_2D(float(x), float(y))
        f.SetGeometry(pt)
        for name, values in fields.items():
            f.SetField(name, values[i])
        lyr.CreateFeature(f)
    ds = None


@pytest.fixture(scope="module")
def demo(porto_area, tmp_path_factory):
    """A demo folder (area raster, clustered embeddings, similar places, a landmark) and its project."""
    folder = tmp_path_factory.mktemp("qgz") / "demo"
    (folder / "data").mkdir(parents=True)
    tif = shutil.copy(porto_area, folder / "porto.tif")
    ds = gdal.Open(str(tif))
    wkt, (x0, _, _, y0, _, _) = ds.GetProjection(), ds.GetGeoTransform()
    ds = None
    cols, rows = np.meshgrid(np.arange(N), np.arange(N))
    xy = np.stack([x0 + 100 + cols.ravel() * STRIDE, y0 - 100 - rows.ravel() * STRIDE], 1)
    vectors = np.random.default_rng(0).normal(size=(N * N, 16)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    emb = folder / "data" / "porto_emb.gpkg"  # one folder down: still a relative path
    write_embeddings(emb, xy, vectors, wkt, {"stride_m": STRIDE})
    cluster = cols.ravel() // 2
    update_columns(emb, cluster=cluster)
    hits = [0, 11, 22, 33, 44]
    _points_gpkg(folder / "similar.gpkg", wkt, "similar", xy[hits], {"score": list(SCORES)})
    _points_gpkg(folder / "landmark.gpkg", wkt, "landmark", xy[[55]], {"name": ["Ribeira"]})
    layers = [LabelPointsLayer(folder / "landmark.gpkg", "landmark", "landmark"),
              ScorePointsLayer(folder / "similar.gpkg", "similar", "similar places"),
              ClusterPointsLayer(emb, k=K, stride_m=STRIDE, labels=LABELS, opacity=OPACITY),
              RasterLayer(tif, "roads", band=1, opacity=0.5)]
    qgz = write_qgz(folder / "porto.qgz", layers, wkt, "loc2vec Porto")
    grid = (xy[:, 0].min() - STRIDE / 2, xy[:, 1].min() - STRIDE / 2, xy[:, 0].max() + STRIDE / 2,
            xy[:, 1].max() + STRIDE / 2)
    return {"folder": folder, "qgz": qgz, "wkt": wkt, "xy": xy, "cluster": cluster, "tif": tif, "emb": emb,
            "grid": grid}


@pytest.fixture(scope="module", autouse=True)
def _empty_project_after():
    """Leave no project loaded for the tests that follow."""
    yield
    QgsProject.instance().clear()


def _read(path) -> QgsProject:
    project = QgsProject.instance()
    project.clear()
    assert project.read(str(path)), f"QGIS could not read {path}: {project.error()}"
    return project


def _layer(project, name):
    (layer,) = project.mapLayersByName(name)
    return layer


# ---- the file and its layers -----------------------------------------------------------------
def test_qgz_holds_one_qgs_with_relative_sources(demo):
    with zipfile.ZipFile(demo["qgz"]) as z:
        assert z.namelist() == ["porto.qgs"]
        root = ET.fromstring(z.read("porto.qgs"))
    sources = [el.text for el in root.iter("datasource")]
    assert sources == ["./landmark.gpkg|layername=landmark", "./similar.gpkg|layername=similar",
                       "./data/porto_emb.gpkg|layername=embeddings", "./porto.tif"]
    assert [p.name for p in demo["folder"].iterdir() if p.name.startswith(".")] == []  # no temp file left


def test_qgis_3_22_reads_it_without_the_older_file_warning(demo):
    """QGIS 3.22 says "Project file is older" (readVersionMismatchOccurred) for a file version below its own;
    the writer's version is the last 3.22 release, so no 3.22.x shows that bar on the demo project."""
    from qgis.core import Qgis

    project = QgsProject.instance()
    project.clear()
    seen = []
    project.readVersionMismatchOccurred.connect(seen.append)
    try:
        assert project.read(str(demo["qgz"]))
    finally:
        project.readVersionMismatchOccurred.disconnect(seen.append)
    if Qgis.QGIS_VERSION_INT < 32300:
        assert seen == [], f"QGIS {Qgis.QGIS_VERSION} warned that the project file ({seen}) is older"


def test_qgis_reads_all_layers_valid_in_the_given_order(demo):
    project = _read(demo["qgz"])
    order = project.layerTreeRoot().layerOrder()
    assert [layer.name() for layer in order] == ["landmark", "similar places", "clusters", "roads"]
    assert all(layer.isValid() for layer in order)
    assert project.title() == "loc2vec Porto"
    assert _layer(project, "clusters").featureCount() == N * N


def test_cluster_layer_is_categorized_with_the_cluster_colours(demo):
    layer = _layer(_read(demo["qgz"]), "clusters")
    renderer = layer.renderer()
    assert isinstance(renderer, QgsCategorizedSymbolRenderer)
    assert renderer.classAttribute() == "cluster"
    cats = renderer.categories()
    assert [int(c.value()) for c in cats] == list(range(K))
    assert [c.symbol().color().name() for c in cats] == [cluster_color(i) for i in range(K)]
    # every class says what it is and how many cells it holds (here 2 x 10 cells each)
    assert [c.label() for c in cats] == ["cluster 0 (20 cells): old town", "cluster 1 (20 cells)",
                                         "cluster 2 (20 cells)", "cluster 3 (20 cells): river", "cluster 4 (20 cells)"]
    symbol = cats[0].symbol()
    assert symbol.size() == pytest.approx(STRIDE) and symbol.sizeUnit() == QgsUnitTypes.RenderMapUnits
    assert layer.opacity() == pytest.approx(OPACITY)
    assert layer.metadata().rights() == [ATTRIBUTION]


def test_noise_category_is_grey_and_first(demo, tmp_path):
    qgz = write_qgz(tmp_path / "noise.qgz", [ClusterPointsLayer(demo["emb"], k=3, stride_m=STRIDE, noise=True)],
                    demo["wkt"], "noise")
    cats = _layer(_read(qgz), "clusters").renderer().categories()
    assert [(int(c.value()), c.label(), c.symbol().color().name()) for c in cats] == [
        (-1, "noise (0 cells)", NOISE_COLOR), (0, "cluster 0 (20 cells)", cluster_color(0)),
        (1, "cluster 1 (20 cells)", cluster_color(1)), (2, "cluster 2 (20 cells)", cluster_color(2))]


def test_score_layer_is_graduated_red_to_green_over_the_scores(demo):
    layer = _layer(_read(demo["qgz"]), "similar places")
    renderer = layer.renderer()
    assert isinstance(renderer, QgsGraduatedSymbolRenderer)
    assert renderer.classAttribute() == "score"
    ranges = renderer.ranges()
    assert len(ranges) == 5
    assert ranges[0].lowerValue() == pytest.approx(min(SCORES)) and ranges[-1].upperValue() == pytest.approx(1.0)
    low, high = ranges[0].symbol().color(), ranges[-1].symbol().color()
    assert low.red() > 200 > low.green() and high.green() > 140 > high.red()
    # every score falls in a class: none of the hits goes undrawn
    assert all(any(r.lowerValue() <= s <= r.upperValue() for r in ranges) for s in SCORES)


def _score_project(demo, tmp_path, scores, name="crowded"):
    """A project whose similar-places layer holds ``scores`` (ranks 1..n, best first)."""
    path = tmp_path / f"{name}.gpkg"
    _points_gpkg(path, demo["wkt"], "similar", demo["xy"][:len(scores)],
                 {"rank": [float(r) for r in range(1, len(scores) + 1)], "score": [float(s) for s in scores]})
    qgz = write_qgz(tmp_path / f"{name}.qgz", [ScorePointsLayer(path, "similar", "similar places")], demo["wkt"], name)
    return _layer(_read(qgz), "similar places")


def test_crowded_scores_get_as_many_decimals_as_tell_the_classes_apart(demo, tmp_path):
    """The shipped model's top 10 can lie within 0.001: three decimals would read '0.999 – 0.999'."""
    scores = [0.99991, 0.99974, 0.99962, 0.99948, 0.99931, 0.99927, 0.99915, 0.99910, 0.99904, 0.99902]
    layer = _score_project(demo, tmp_path, scores)
    ranges = layer.renderer().ranges()
    labels = [r.label() for r in ranges]
    assert len(ranges) == 5 and len(set(labels)) == 5, labels
    for label in labels:
        lo, hi = label.split(" – ")
        assert lo != hi and len(lo.split(".")[1]) >= 4, labels
    assert all(any(r.lowerValue() <= s <= r.upperValue() for r in ranges) for s in scores)


def test_scores_that_no_decimals_tell_apart_are_shown_as_ranks(demo, tmp_path):
    """Cosines equal to float precision ('cosine 1.0000 – 1.0000' three times): the classes are ranks."""
    scores = [1.0, 1.0, 0.9999999, 0.9999999, 0.9999998, 0.9999998]
    layer = _score_project(demo, tmp_path, scores, "ranks")
    renderer = layer.renderer()
    assert renderer.classAttribute() == "rank"
    assert [r.label() for r in renderer.ranges()] == ["ranks 1–2", "rank 3", "rank 4", "rank 5", "rank 6"]
    ranges = renderer.ranges()
    assert all(sum(r.lowerValue() <= rank <= r.upperValue() for r in ranges) == 1 for rank in range(1, 7))
    best, worst = ranges[0].symbol().color(), ranges[-1].symbol().color()
    assert best.green() > 140 > best.red() and worst.red() > 200  # rank 1 green, as the best score is


def test_selected_cells_are_drawn_in_a_visible_colour_not_white(demo):
    """Without a selection colour in the file, QGIS 3.22 reads white: selected cells looked like holes."""
    project = _read(demo["qgz"])
    color = project.selectionColor()
    assert (color.red(), color.green(), color.blue()) == (255, 255, 0)  # QGIS's usual yellow
    layer = _layer(project, "clusters")
    chosen = [f.id() for f in layer.getFeatures() if f["cluster"] == 2]
    layer.selectByIds(chosen)
    x0, y0, x1, y1 = demo["grid"]
    settings = QgsMapSettings()
    settings.setLayers([layer])
    settings.setDestinationCrs(layer.crs())
    settings.setOutputSize(QSize(200, 200))
    settings.setExtent(QgsRectangle(x0, y0, x1, y1))
    settings.setBackgroundColor(QColor("white"))
    settings.setSelectionColor(project.selectionColor())  # as the QGIS desktop's canvas takes it
    job = QgsMapRendererSequentialJob(settings)
    job.start()
    job.waitForFinished()
    image, m2p = job.renderedImage(), settings.mapToPixel()
    cells = demo["xy"][demo["cluster"] == 2]
    centre = m2p.transform(*cells[len(cells) // 2])  # the middle of one selected cell
    drawn = np.array(QColor(image.pixel(int(centre.x()), int(centre.y()))).getRgb()[:3], float)
    assert np.abs(drawn - _over_white("#ffff00")).max() <= 4, drawn  # yellow at the layer's opacity
    other = m2p.transform(*demo["xy"][demo["cluster"] == 0][5])  # unselected cells keep their colour
    assert np.abs(np.array(QColor(image.pixel(int(other.x()), int(other.y()))).getRgb()[:3], float)
                  - _over_white(cluster_color(0))).max() <= 4
    layer.removeSelection()


def test_the_demo_project_names_its_classes_and_its_area(demo, tmp_path):
    """The project `loc2vec demo` writes: clusters with their sizes, the area raster named as the area."""
    from types import SimpleNamespace

    from loc2vec_engine import demo as demo_module
    from loc2vec_engine.raster.area import AreaRaster
    from loc2vec_engine.render import render_files

    out = tmp_path / "demo"
    shutil.copytree(demo["folder"], out)
    labels = np.asarray(demo["cluster"])
    clusters = SimpleNamespace(n_clusters=K, labels=labels)  # what the demo's clustering step returns, in short
    (rgb,) = render_files([out / "data" / "porto_emb.gpkg"], [out / "porto_embeddings_rgb.tif"])  # the demo's call
    qgz = demo_module._project(lambda text: None, out, AreaRaster.open(out / "porto.tif"),
                               out / "data" / "porto_emb.gpkg", clusters, out / "similar.gpkg", out / "landmark.gpkg",
                               rgb.path)
    project = _read(qgz)
    (clustered,) = [lyr for lyr in project.mapLayers().values() if "clusters" in lyr.name()]
    assert [c.label() for c in clustered.renderer().categories()] == [f"cluster {c} (20 cells)" for c in range(K)]
    rasters = [lyr for lyr in project.layerTreeRoot().layerOrder() if lyr.type() == lyr.RasterLayer]
    assert [lyr.source() for lyr in rasters] == [str(out / "porto_embeddings_rgb.tif"), str(out / "porto.tif")]
    colours, area = rasters
    assert area.name().startswith("area raster") and "(area raster band" not in area.name()
    assert project.selectionColor().name() == "#ffff00"
    # The embeddings as colours: below the clusters, above the roads, unticked; bands 1-3 as stored, no stretch.
    order = project.layerTreeRoot().layerOrder()
    assert order.index(clustered) < order.index(colours) < order.index(area)
    assert not project.layerTreeRoot().findLayer(colours.id()).isVisible()
    assert project.layerTreeRoot().findLayer(clustered.id()).isVisible()
    _assert_true_colours(colours, rgb.path)


def _assert_true_colours(layer, tif):
    """A valid layer drawn by a multiband renderer on bands 1-3 with no contrast enhancement: every cell's pixel is
    the stored bytes, and the nodata (0) is transparent."""
    assert layer.isValid() and layer.bandCount() == 3
    renderer = layer.renderer()
    assert isinstance(renderer, QgsMultiBandColorRenderer)
    assert (renderer.redBand(), renderer.greenBand(), renderer.blueBand()) == (1, 2, 3)
    assert renderer.redContrastEnhancement() is None and renderer.greenContrastEnhancement() is None
    assert renderer.blueContrastEnhancement() is None and renderer.opacity() == pytest.approx(1.0)
    ds = gdal.Open(str(tif))
    stored = np.stack([ds.GetRasterBand(b).ReadAsArray() for b in (1, 2, 3)], -1)
    x0, dx, _, y0, _, dy = ds.GetGeoTransform()
    extent = QgsRectangle(x0, y0 + dy * ds.RasterYSize, x0 + dx * ds.RasterXSize, y0)
    image, _ = _render([layer], extent, 10 * ds.RasterXSize)  # square: the test grid is 10 x 10 cells
    assert ds.RasterXSize == ds.RasterYSize
    drawn = np.array([[QColor(image.pixel(10 * c + 5, 10 * r + 5)).getRgb()[:3] for c in range(ds.RasterXSize)]
                      for r in range(ds.RasterYSize)])
    cells = stored.any(-1)
    assert cells.sum() == N * N and (stored[cells] > 0).all()
    assert (np.abs(drawn[cells].astype(int) - stored[cells]) <= 1).all()  # no stretch: the colours as written


def test_rgb_layer_can_be_written_ticked_and_translucent(demo, tmp_path):
    from loc2vec_engine.render import render_files

    (rgb,) = render_files([demo["emb"]], [tmp_path / "rgb.tif"])
    qgz = write_qgz(tmp_path / "rgb.qgz", [RgbRasterLayer(rgb.path, name="colours", opacity=0.5, bands=(3, 2, 1))],
                    demo["wkt"], "rgb")
    project = _read(qgz)
    layer = _layer(project, "colours")
    assert project.layerTreeRoot().findLayer(layer.id()).isVisible()
    renderer = layer.renderer()
    assert isinstance(renderer, QgsMultiBandColorRenderer) and renderer.opacity() == pytest.approx(0.5)
    assert (renderer.redBand(), renderer.greenBand(), renderer.blueBand()) == (3, 2, 1)


def test_raster_layer_shows_the_band_in_grey(demo):
    layer = _layer(_read(demo["qgz"]), "roads")
    assert layer.bandCount() >= 12 and "roads_major" in layer.bandName(1)  # (QGIS adds GDAL's mask as a band)
    renderer = layer.renderer()
    assert isinstance(renderer, QgsSingleBandGrayRenderer)
    assert renderer.grayBand() == 1
    assert renderer.gradient() == QgsSingleBandGrayRenderer.WhiteToBlack
    assert renderer.opacity() == pytest.approx(0.5)
    assert renderer.contrastEnhancement().maximumValue() == pytest.approx(255)


def test_landmark_is_labelled(demo):
    layer = _layer(_read(demo["qgz"]), "landmark")
    assert layer.labelsEnabled()
    assert layer.labeling().settings().fieldName == "name"


# ---- project settings ------------------------------------------------------------------------
def test_project_crs_extent_and_attribution(demo, qgis_canvas):
    project = _read(demo["qgz"])
    assert project.crs().authid() == "EPSG:32629"
    assert all(layer.crs() == project.crs() for layer in project.mapLayers().values())
    ds = gdal.Open(str(demo["tif"]))
    x0, dx, _, y0, _, dy = ds.GetGeoTransform()
    area = QgsRectangle(x0, y0 + dy * ds.RasterYSize, x0 + dx * ds.RasterXSize, y0)
    view = project.viewSettings().defaultViewExtent()
    assert view.crs() == project.crs()
    assert [view.xMinimum(), view.yMinimum(), view.xMaximum(), view.yMaximum()] == pytest.approx(
        [area.xMinimum(), area.yMinimum(), area.xMaximum(), area.yMaximum()])  # the raster holds the grid
    canvas = qgis_canvas.extent()  # the canvas read <mapcanvas>: centred on the data, all of it in view
    assert canvas.center().x() == pytest.approx(area.center().x(), abs=1) and canvas.contains(area.buffered(-0.01))
    assert ATTRIBUTION in project.metadata().abstract()
    assert project.readEntry("CopyrightLabel", "/Label")[0] == ATTRIBUTION
    assert project.readBoolEntry("CopyrightLabel", "/Enabled")[0] is True


def test_a_custom_crs_without_epsg_code_comes_from_the_wkt(demo, tmp_path):
    wkt = ('PROJCS["local TM Porto",GEOGCS["WGS 84",DATUM["WGS_1984",SPHEROID["WGS 84",6378137,298.257223563]],'
           'PRIMEM["Greenwich",0],UNIT["degree",0.0174532925199433]],PROJECTION["Transverse_Mercator"],'
           'PARAMETER["latitude_of_origin",41.14],PARAMETER["central_meridian",-8.61],PARAMETER["scale_factor",1],'
           'PARAMETER["false_easting",0],PARAMETER["false_northing",0],UNIT["metre",1]]')
    qgs = write_qgz(tmp_path / "custom.qgs", [RasterLayer(demo["tif"], "roads")], wkt, "custom", extent=(0, 0, 1, 1))
    crs = _read(qgs).crs()
    assert crs.isValid() and crs.authid() == ""
    assert "+proj=tmerc" in crs.toProj() and "+lon_0=-8.61" in crs.toProj()


def test_moved_folder_keeps_valid_layers(demo, tmp_path):
    moved = shutil.copytree(demo["folder"], tmp_path / "elsewhere" / "moved")
    project = _read(moved / "porto.qgz")
    layers = project.layerTreeRoot().layerOrder()
    assert len(layers) == 4 and all(layer.isValid() for layer in layers)
    assert all(layer.source().startswith(str(moved)) for layer in layers), [la.source() for la in layers]


# ---- rendering -------------------------------------------------------------------------------
def _render(layers, extent, size) -> tuple:
    settings = QgsMapSettings()
    settings.setLayers(layers)
    settings.setDestinationCrs(layers[0].crs())
    settings.setOutputSize(QSize(size, size))
    settings.setExtent(extent)
    settings.setBackgroundColor(QColor("white"))
    job = QgsMapRendererSequentialJob(settings)
    job.start()
    job.waitForFinished()
    return job.renderedImage(), settings.mapToPixel()


def _over_white(hex_color, opacity=OPACITY):
    c = QColor(hex_color)
    return np.array([opacity * v + (1 - opacity) * 255 for v in (c.red(), c.green(), c.blue())])


def test_rendered_cells_tile_the_map_in_their_cluster_colours(demo):
    project = _read(demo["qgz"])
    x0, y0, x1, y1 = demo["grid"]
    pad = STRIDE / 2
    # 397 px for 1.1 km: cell edges fall between pixels, where gaps or antialiasing seams would show
    image, m2p = _render([_layer(project, "clusters")], QgsRectangle(x0 - pad, y0 - pad, x1 + pad, y1 + pad), 397)
    pixels = np.array([[QColor(image.pixel(x, y)).getRgb()[:3] for x in range(image.width())]
                       for y in range(image.height())], float)
    for c in range(K):  # each cluster's 2 x 10 block of cells is one solid colour, with no seams inside
        cells = demo["xy"][demo["cluster"] == c]
        (xmin, ymin), (xmax, ymax) = cells.min(0) - STRIDE / 2, cells.max(0) + STRIDE / 2
        top_left, bottom_right = m2p.transform(xmin, ymax), m2p.transform(xmax, ymin)
        block = pixels[int(np.ceil(top_left.y())) + 1:int(bottom_right.y()) - 1,
                       int(np.ceil(top_left.x())) + 1:int(bottom_right.x()) - 1]
        assert block.shape[0] > 300 and block.shape[1] > 60
        worst = np.abs(block - _over_white(cluster_color(c))).max()
        assert worst <= 4, f"cluster {c}: a pixel inside its cells is {worst:.0f} levels off its colour"
    outside = m2p.transform(x1 + pad / 2, (y0 + y1) / 2)  # half a cell beyond the grid: the squares end there
    assert QColor(image.pixel(int(outside.x()), int(outside.y()))).getRgb()[:3] == (255, 255, 255)


def test_whole_project_renders_with_the_landmark_on_top(demo):
    project = _read(demo["qgz"])
    landmark = demo["xy"][55]
    box = QgsRectangle(landmark[0] - 150, landmark[1] - 150, landmark[0] + 150, landmark[1] + 150)
    image, m2p = _render(project.layerTreeRoot().layerOrder(), box, 200)
    centre = m2p.transform(*landmark)
    # the black star covers the cell colour at the landmark; next to it the cell shows through
    assert QColor(image.pixel(int(centre.x()), int(centre.y()))).getRgb()[:3] == pytest.approx((0, 0, 0), abs=30)
    cell = QColor(image.pixel(int(centre.x()) + 40, int(centre.y()) + 40))
    assert QColor(cell).getRgb()[:3] != (255, 255, 255)


# ---- the engine side: no QGIS, clear errors --------------------------------------------------
def test_engine_writes_projects_without_importing_qgis_or_qt(demo, tmp_path):
    for file in ("qgz.py", "__init__.py", "legend.py", "sources.py", "rasters.py", "xml_parts.py"):
        tree = ast.parse((REPO / "loc2vec_engine" / "project" / file).read_text())
        names = [a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names]
        names += [n.module or "" for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)]
        assert not [n for n in names if n.split(".")[0] in ("qgis", "PyQt5", "PyQt6", "sip")], file
    code = (f"import sys\nfrom loc2vec_engine.project import write_qgz, ClusterPointsLayer, RasterLayer\n"
            f"write_qgz({str(tmp_path / 'x.qgz')!r}, [ClusterPointsLayer({str(demo['emb'])!r}, k=5, stride_m=100), "
            f"RasterLayer({str(demo['tif'])!r}, 'roads')], {demo['wkt']!r}, 'x')\n"
            "print(sorted(m for m in sys.modules if m.split('.')[0] in ('qgis', 'PyQt5', 'PyQt6', 'sip')))\n")
    proc = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, timeout=60,
                          env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(REPO), "HOME": str(tmp_path)})
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.strip() == "[]"
    assert (tmp_path / "x.qgz").is_file()


BAD_INPUTS = {
    "suffix": (lambda d: [RasterLayer(d["tif"], "r")], "out.qgis", "does not end in .qgz"),
    "no layers": (lambda d: [], "out.qgz", "no layers"),
    "missing gpkg": (lambda d: [ClusterPointsLayer(d["folder"] / "nope.gpkg", k=5, stride_m=100)], "out.qgz",
                     "not found"),
    "not a gpkg": (lambda d: [ScorePointsLayer(d["tif"], "similar", "s")], "out.qgz", "not a GeoPackage"),
    "missing layer": (lambda d: [ScorePointsLayer(d["emb"], "similar", "s")], "out.qgz", "no layer 'similar'"),
    "missing field": (lambda d: [ScorePointsLayer(d["emb"], "embeddings", "s")], "out.qgz", "no field 'score'"),
    "k": (lambda d: [ClusterPointsLayer(d["emb"], k=0, stride_m=100)], "out.qgz", "k = 0"),
    "stride": (lambda d: [ClusterPointsLayer(d["emb"], k=5, stride_m=0)], "out.qgz", "stride_m = 0"),
    "band": (lambda d: [RasterLayer(d["tif"], "r", band=13)], "out.qgz", "band 13"),
    "missing raster": (lambda d: [RasterLayer(d["folder"] / "nope.tif", "r")], "out.qgz", "not found"),
    "rgb band": (lambda d: [RgbRasterLayer(d["tif"], bands=(1, 2, 13))], "out.qgz", "band 13"),
    "rgb two bands": (lambda d: [RgbRasterLayer(d["tif"], bands=(1, 2))], "out.qgz", "2 bands"),
    "rgb opacity": (lambda d: [RgbRasterLayer(d["tif"], opacity=-0.1)], "out.qgz", "opacity -0.1"),
    "opacity": (lambda d: [RasterLayer(d["tif"], "r", opacity=1.5)], "out.qgz", "opacity 1.5"),
    "vmin > vmax": (lambda d: [ScorePointsLayer(d["folder"] / "similar.gpkg", vmin=1, vmax=0)], "out.qgz",
                    "reversed"),
}


@pytest.mark.parametrize("case", BAD_INPUTS)
def test_bad_input_is_one_clear_error_and_no_file(demo, tmp_path, case):
    layers, name, message = BAD_INPUTS[case]
    with pytest.raises(Loc2VecError, match=message) as err:
        write_qgz(tmp_path / name, layers(demo), demo["wkt"], "bad")
    assert err.value.fix
    assert list(tmp_path.iterdir()) == []


def test_bad_crs_is_one_clear_error(demo, tmp_path):
    with pytest.raises(Loc2VecError, match="not valid WKT"):
        write_qgz(tmp_path / "out.qgz", [RasterLayer(demo["tif"], "r")], "not a crs", "bad")
    assert list(tmp_path.iterdir()) == []
