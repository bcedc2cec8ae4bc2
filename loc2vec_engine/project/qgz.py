"""A QGIS project (.qgz) for loc2vec outputs, written as plain XML: no QGIS or Qt needed.

The XML is the smallest subset of what QGIS 3.22 writes that it reads back with the same styles:
layers (``<maplayer>`` with ``renderer-v2`` or a raster ``pipe``), the layer tree (first = top), the
project CRS (``<spatialrefsys>``: authid, WKT, proj4), the canvas extent, relative data paths
(``./data.gpkg``, so the folder can be moved) and the OpenStreetMap attribution in the metadata.
A .qgz is a zip holding ``<name>.qgs``; QGIS creates the auxiliary ``.qgd`` itself when it needs one.
"""

from __future__ import annotations

import datetime
import os
import uuid
import warnings
import xml.etree.ElementTree as ET
import zipfile
from dataclasses import KW_ONLY, dataclass
from pathlib import Path

from .. import ATTRIBUTION, __version__
from ..atomic import atomic_output, check_writable
from ..clusters.colors import cluster_color
from ..errors import Loc2VecError
from .legend import cluster_label, range_labels, rank_classes
from .rasters import RasterLayer, RgbRasterLayer, grey_layer, rgb_layer
from .sources import check_gpkg, columns, field_range, gpkg_extent, relative, row_count, union, value_counts
from .xml_parts import copy as _copy, maplayer as _maplayer, num as _num, text as _text

# The QGIS this XML is tested with: 3.22.16, the last 3.22 LTR release (Debian 12's). QGIS 3.22 warns "Project file
# is older" for any file version below its own, so writing 3.22.0 made every 3.22.x after it show that bar;
# later 3.x read the file too (and rightly say it is older).
QGIS_VERSION = "3.22.16-Białowieża"
OSM_COPYRIGHT_URL = "https://www.openstreetmap.org/copyright"
# RdYlGn: red = least similar, green = most similar (the best hits stand out as "go").
SCORE_RAMP = ("#d7191c", "#fdae61", "#ffffbf", "#a6d96a", "#1a9641")
SELECTION_RGBA = (255, 255, 0, 255)  # selected features: yellow, as QGIS draws them by default


# ---- layer specs -----------------------------------------------------------------------------
@dataclass
class ClusterPointsLayer:
    """Embedding cells coloured by cluster: squares of the grid stride, so the cells tile the map."""

    gpkg_path: str | os.PathLike
    _: KW_ONLY
    k: int
    stride_m: float
    layer: str = "embeddings"
    name: str = "clusters"
    field: str = "cluster"
    labels: dict[int, str] | None = None  # cluster -> short description, shown in the legend after its size
    noise: bool = False  # add HDBSCAN's grey "noise" category
    opacity: float = 0.85


@dataclass
class ScorePointsLayer:
    """Similar-places hits on a red (low score) -> green (high score) ramp of ``classes`` equal intervals."""

    gpkg_path: str | os.PathLike
    layer: str = "similar"
    name: str = "similar places"
    field: str = "score"
    vmin: float | None = None  # None: the field's minimum in the file
    vmax: float | None = None
    classes: int = 5
    stride_m: float | None = None  # squares of the cell size; None: 3 mm circles
    opacity: float = 1.0


@dataclass
class LabelPointsLayer:
    """A few labelled points (e.g. the landmark of a query): a star and the text of ``label_field``."""

    gpkg_path: str | os.PathLike
    layer: str
    name: str = "landmark"
    label_field: str = "name"
    color: str = "#000000"
    size_mm: float = 5.0
    opacity: float = 1.0


LayerSpec = ClusterPointsLayer | ScorePointsLayer | RasterLayer | RgbRasterLayer | LabelPointsLayer


# ---- the project -----------------------------------------------------------------------------
def write_qgz(path, layers: list, crs_wkt: str, title: str, extent=None) -> Path:
    """Write a QGIS project at ``path`` (.qgz, or .qgs for plain XML); ``layers`` top first.

    ``extent`` (xmin, ymin, xmax, ymax) in the data CRS; None: the union of the layers' extents.
    """
    path = check_writable(path)
    if path.suffix.lower() not in (".qgz", ".qgs"):
        raise Loc2VecError(f"project file {path.name} does not end in .qgz", "name it e.g. demo.qgz")
    if not layers:
        raise Loc2VecError("no layers for the QGIS project", "give at least one layer spec")
    srs, units = _spatialrefsys(crs_wkt)
    home = path.resolve().parent
    built = [_layer(spec, home, srs, i) for i, spec in enumerate(layers)]
    if extent is None:
        extent = union([b["extent"] for b in built])
    root = _project_xml(title, srs, built, extent, units)
    ET.indent(root)
    data = ET.tostring(root, encoding="utf-8", xml_declaration=True)
    with atomic_output(path, suffix=".part" + path.suffix) as tmp:
        if path.suffix.lower() == ".qgs":
            tmp.write_bytes(data)
        else:
            with zipfile.ZipFile(tmp, "w", zipfile.ZIP_DEFLATED) as z:
                z.writestr(f"{path.stem}.qgs", data)
    return path


def _project_xml(title: str, srs: ET.Element, built: list[dict], extent, units: str) -> ET.Element:
    root = ET.Element("qgis", version=QGIS_VERSION, projectname=title)
    ET.SubElement(root, "homePath", path="")
    _text(root, "title", title)
    ET.SubElement(root, "projectCrs").append(srs)
    root.append(_layer_tree(built))
    if extent is not None:
        root.append(_map_canvas(extent, srs, units))
    layers = ET.SubElement(root, "projectlayers")
    for b in built:
        layers.append(b["xml"])
    order = ET.SubElement(root, "layerorder")
    for b in built:
        ET.SubElement(order, "layer", id=b["id"])
    root.append(_properties())
    root.append(_metadata(title))
    if extent is not None:
        root.append(_view_settings(extent, srs))
    return root


def _layer_tree(built: list[dict]) -> ET.Element:
    """The layers panel; its first child is drawn on top."""
    group = ET.Element("layer-tree-group")
    ET.SubElement(group, "customproperties")
    for b in built:
        checked = "Qt::Checked" if b.get("visible", True) else "Qt::Unchecked"  # unticked: loaded, not drawn
        node = ET.SubElement(group, "layer-tree-layer", id=b["id"], name=b["name"], source=b["source"],
                             providerKey=b["provider"], checked=checked, expanded="1")
        ET.SubElement(node, "customproperties")
    custom = ET.SubElement(group, "custom-order", enabled="0")
    for b in built:
        _text(custom, "item", b["id"])
    return group


def _map_canvas(extent, srs: ET.Element, units: str) -> ET.Element:
    """What the QGIS desktop canvas reads to open the project on the data."""
    canvas = ET.Element("mapcanvas", name="theMapCanvas", annotationsVisible="1")
    _text(canvas, "units", units)
    box = ET.SubElement(canvas, "extent")
    for key, value in zip(("xmin", "ymin", "xmax", "ymax"), extent):
        _text(box, key, _num(value))
    _text(canvas, "rotation", "0")
    ET.SubElement(canvas, "destinationsrs").append(_copy(srs))
    _text(canvas, "rendermaptile", "0")
    return canvas


def _view_settings(extent, srs: ET.Element) -> ET.Element:
    """The default view (used by QGIS Server, QField and canvases that have no <mapcanvas> of their own)."""
    view = ET.Element("ProjectViewSettings", UseProjectScales="0", rotation="0")
    ET.SubElement(view, "Scales")
    box = ET.SubElement(view, "DefaultViewExtent", **dict(zip(("xmin", "ymin", "xmax", "ymax"), map(_num, extent))))
    box.append(_copy(srs))
    return view


def _properties() -> ET.Element:
    """Relative paths, on-the-fly reprojection, and the attribution as the canvas copyright label."""
    props = ET.Element("properties")
    _entry(ET.SubElement(props, "Paths"), "Absolute", "bool", "false")
    _entry(ET.SubElement(props, "SpatialRefSys"), "ProjectionsEnabled", "int", "1")
    gui = ET.SubElement(props, "Gui")  # selected cells in a colour none of the clusters has (QGIS's default yellow);
    for part, value in zip(("Red", "Green", "Blue", "Alpha"), SELECTION_RGBA):  # unset, 3.22 reads white
        _entry(gui, f"SelectionColor{part}Part", "int", str(value))
    label = ET.SubElement(props, "CopyrightLabel")
    _entry(label, "Enabled", "bool", "true")
    _entry(label, "Label", "QString", ATTRIBUTION)
    return props


def _metadata(title: str) -> ET.Element:
    md = ET.Element("projectMetadata")
    for tag in ("identifier", "parentidentifier", "language", "type"):
        ET.SubElement(md, tag)
    _text(md, "title", title)
    _text(md, "abstract", f"Made with loc2vec {__version__}. {ATTRIBUTION}")
    links = ET.SubElement(md, "links")
    ET.SubElement(links, "link", name="OpenStreetMap copyright", type="WWW:LINK", url=OSM_COPYRIGHT_URL,
                  description=ATTRIBUTION, format="", mimeType="", size="")
    _text(md, "author", "loc2vec")
    _text(md, "creation", datetime.datetime.now().replace(microsecond=0).isoformat())
    return md


# ---- layers ----------------------------------------------------------------------------------
def _layer(spec, home: Path, srs: ET.Element, index: int) -> dict:
    """The <maplayer> of one spec, plus what the layer tree and the extent need."""
    builders = {ClusterPointsLayer: _cluster_layer, ScorePointsLayer: _score_layer, RasterLayer: grey_layer,
                RgbRasterLayer: rgb_layer, LabelPointsLayer: _label_layer}
    builder = builders.get(type(spec))
    if builder is None:
        raise Loc2VecError(f"unknown layer spec {type(spec).__name__}",
                           "use ClusterPointsLayer, ScorePointsLayer, RasterLayer, RgbRasterLayer or LabelPointsLayer")
    _check_opacity(spec)
    layer_id = f"{_slug(spec.name)}_{uuid.uuid4().hex[:12]}_{index}"
    return builder(spec, home, srs, layer_id)


def _cluster_layer(spec: ClusterPointsLayer, home, srs, layer_id) -> dict:
    if int(spec.k) < 1:
        raise Loc2VecError(f"k = {spec.k} clusters for layer {spec.name!r}", "give k >= 1 (the number of clusters)")
    if not spec.stride_m or spec.stride_m <= 0:
        raise Loc2VecError(f"stride_m = {spec.stride_m} for layer {spec.name!r}",
                           "give the cell stride in map units (the 'stride_m' of the embeddings meta)")
    path = check_gpkg(spec.gpkg_path, spec.layer, [spec.field])
    extent = gpkg_extent(path, spec.layer)
    labels, cells = spec.labels or {}, value_counts(path, spec.layer, spec.field)
    values = [*([-1] if spec.noise else []), *range(int(spec.k))]
    cats = [(v, cluster_label(v, cells.get(v, 0), labels.get(v)), cluster_color(v)) for v in values]
    renderer = _categorized(spec.field, cats, lambda name, color: _cell_symbol(name, spec.stride_m, color))
    half = spec.stride_m / 2  # the squares reach half a cell beyond the outer centres
    extent = None if extent is None else (extent[0] - half, extent[1] - half, extent[2] + half, extent[3] + half)
    return _vector(spec, home, srs, layer_id, renderer, extent)


def _score_layer(spec: ScorePointsLayer, home, srs, layer_id) -> dict:
    path = check_gpkg(spec.gpkg_path, spec.layer, [spec.field])
    if int(spec.classes) < 1:
        raise Loc2VecError(f"{spec.classes} classes for layer {spec.name!r}", "give classes >= 1")
    lo, hi = field_range(path, spec.layer, spec.field, spec.vmin, spec.vmax)
    if spec.stride_m:
        def symbol(name, color):
            return _cell_symbol(name, spec.stride_m, color)
    else:
        def symbol(name, color):
            return _dot_symbol(name, "circle", 3.0, color, "#232323")
    renderer = _graduated(spec.field, lo, hi, int(spec.classes), symbol)
    if renderer is None:  # the scores crowd beyond what decimals can tell apart: classes of ranks
        if "rank" not in columns(path, spec.layer):
            renderer = _graduated(spec.field, lo, hi, 1, symbol)  # one class: no labels that read alike
        else:
            renderer = _rank_graduated(row_count(path, spec.layer), int(spec.classes), symbol)
    return _vector(spec, home, srs, layer_id, renderer, gpkg_extent(path, spec.layer))


def _label_layer(spec: LabelPointsLayer, home, srs, layer_id) -> dict:
    path = check_gpkg(spec.gpkg_path, spec.layer, [spec.label_field])
    renderer = ET.Element("renderer-v2", type="singleSymbol", forceraster="0", symbollevels="0", enableorderby="0")
    star = _dot_symbol("0", "star", spec.size_mm, spec.color, "#ffffff")
    ET.SubElement(renderer, "symbols").append(star)
    built = _vector(spec, home, srs, layer_id, renderer, gpkg_extent(path, spec.layer))
    built["xml"].set("labelsEnabled", "1")
    built["xml"].append(_labeling(spec.label_field, spec.color))
    return built


def _vector(spec, home: Path, srs, layer_id: str, renderer: ET.Element, extent) -> dict:
    source = f"{relative(spec.gpkg_path, home)}|layername={spec.layer}"
    ml = _maplayer("vector", layer_id, source, spec.name, srs, "ogr", geometry="Point", wkbType="Point",
                   labelsEnabled="0")
    ml.find("provider").set("encoding", "UTF-8")
    ml.append(renderer)
    _text(ml, "layerOpacity", _num(spec.opacity))
    _text(ml, "blendMode", "0")
    return {"xml": ml, "id": layer_id, "name": spec.name, "source": source, "provider": "ogr", "extent": extent}


# ---- renderers -------------------------------------------------------------------------------
def _categorized(field: str, cats: list[tuple[int, str, str]], symbol) -> ET.Element:
    """One category per (value, label, colour), drawn with ``symbol(name, colour)``."""
    r = ET.Element("renderer-v2", type="categorizedSymbol", attr=field, forceraster="0", symbollevels="0",
                   enableorderby="0")
    categories, symbols = ET.SubElement(r, "categories"), ET.SubElement(r, "symbols")
    for i, (value, label, color) in enumerate(cats):
        ET.SubElement(categories, "category", value=str(value), label=label, symbol=str(i), render="true")
        symbols.append(symbol(str(i), color))
    return r


def _graduated(field: str, lo: float, hi: float, classes: int, symbol) -> ET.Element | None:
    """Equal intervals from ``lo`` to ``hi`` coloured along SCORE_RAMP, drawn with ``symbol(name, colour)``;
    labelled with as many decimals as it takes to tell them apart (None when none do: use ranks)."""
    step = (hi - lo) / classes
    edges = [lo + i * step for i in range(classes)] + [hi]
    labels = range_labels(edges)
    if labels is None:
        return None
    r = ET.Element("renderer-v2", type="graduatedSymbol", attr=field, graduatedMethod="GraduatedColor",
                   forceraster="0", symbollevels="0", enableorderby="0")
    ranges, symbols = ET.SubElement(r, "ranges"), ET.SubElement(r, "symbols")
    for i in range(classes):
        ET.SubElement(ranges, "range", lower=repr(edges[i]), upper=repr(edges[i + 1]), symbol=str(i),
                      label=labels[i], render="true")
        symbols.append(symbol(str(i), _ramp(SCORE_RAMP, i / (classes - 1) if classes > 1 else 1.0)))
    ET.SubElement(r, "mode", name="equal")
    return r


def _rank_graduated(n: int, classes: int, symbol) -> ET.Element:
    """Classes of the ``rank`` field (1 = best, green), labelled 'ranks 1–2': for scores that crowd."""
    r = ET.Element("renderer-v2", type="graduatedSymbol", attr="rank", graduatedMethod="GraduatedColor",
                   forceraster="0", symbollevels="0", enableorderby="0")
    ranges, symbols = ET.SubElement(r, "ranges"), ET.SubElement(r, "symbols")
    groups = rank_classes(max(n, 1), classes)
    for i, (first, last, label) in enumerate(groups):
        ET.SubElement(ranges, "range", lower=repr(first - 0.5), upper=repr(last + 0.5), symbol=str(i), label=label,
                      render="true")
        symbols.append(symbol(str(i), _ramp(SCORE_RAMP, 1.0 - i / (len(groups) - 1) if len(groups) > 1 else 1.0)))
    ET.SubElement(r, "mode", name="custom")
    return r


def _cell_symbol(name: str, stride: float, color: str) -> ET.Element:
    """A filled square one cell wide, so neighbouring cells tile the map.

    A FilledMarker, not a SimpleMarker: QGIS caches simple markers as images drawn at whole pixels,
    which leaves 1-2 px gaps between cells; the fill's thin outline (0.3 mm) of the same colour hides the
    antialiasing seams where cell edges fall between pixels.
    """
    fill = _symbol("fill", f"@{name}@0", "SimpleFill", {
        "color": _rgba(color), "style": "solid", "outline_color": _rgba(color), "outline_style": "solid",
        "outline_width": "0.3", "outline_width_unit": "MM", "joinstyle": "miter"})
    return _symbol("marker", name, "FilledMarker", {
        "name": "square", "size": _num(stride), "size_unit": "MapUnit", "color": _rgba(color)}, sub=fill)


def _dot_symbol(name: str, shape: str, size_mm: float, color: str, outline: str) -> ET.Element:
    """A simple marker of fixed size on screen (circle, star, ...) with a thin outline."""
    return _symbol("marker", name, "SimpleMarker", {
        "name": shape, "size": _num(size_mm), "size_unit": "MM", "color": _rgba(color), "outline_color": _rgba(outline),
        "outline_style": "solid", "outline_width": "0.3", "outline_width_unit": "MM"})


def _symbol(kind: str, name: str, cls: str, props: dict, sub: ET.Element | None = None) -> ET.Element:
    """A one-layer symbol; properties both as <Option> (what 3.22 writes) and legacy <prop> (older QGIS)."""
    sym = ET.Element("symbol", type=kind, name=name, alpha="1", clip_to_extent="1", force_rhr="0")
    layer = ET.SubElement(sym, "layer", {"class": cls, "enabled": "1", "locked": "0", "pass": "0"})
    options = ET.SubElement(layer, "Option", type="Map")
    for key, value in sorted(props.items()):
        ET.SubElement(options, "Option", type="QString", name=key, value=str(value))
    for key, value in sorted(props.items()):
        ET.SubElement(layer, "prop", k=key, v=str(value))
    if sub is not None:
        layer.append(sub)
    return sym


def _labeling(field: str, color: str) -> ET.Element:
    """Labels of ``field`` next to the point, with a white halo for legibility over the cluster colours."""
    lab = ET.Element("labeling", type="simple")
    settings = ET.SubElement(lab, "settings")
    style = ET.SubElement(settings, "text-style", fieldName=field, isExpression="0", fontSize="10",
                          fontSizeUnit="Point", fontWeight="75", textColor=_rgba(color), textOpacity="1")
    ET.SubElement(style, "text-buffer", bufferDraw="1", bufferSize="1", bufferSizeUnits="MM",
                  bufferColor="255,255,255,255", bufferOpacity="1")
    ET.SubElement(settings, "placement", placement="0", dist="2", distUnits="MM", quadOffset="2")
    ET.SubElement(settings, "rendering", drawLabels="1", obstacle="1", displayAll="1", scaleVisibility="0")
    return lab


# ---- CRS -------------------------------------------------------------------------------------
def _spatialrefsys(crs_wkt: str) -> tuple[ET.Element, str]:
    """<spatialrefsys> from WKT (QGIS takes the authid when there is one, else the WKT), and the map units."""
    from ..geo import crs as _  # noqa: F401  (sets PROJ_DATA where Debian's pyproj needs it)
    from pyproj import CRS

    try:
        crs = CRS.from_wkt(crs_wkt)
    except Exception as e:  # pyproj.exceptions.CRSError and friends
        raise Loc2VecError(f"the data CRS is not valid WKT ({e})", "pass the embeddings' crs_wkt") from None
    srs = ET.Element("spatialrefsys")
    _text(srs, "wkt", crs_wkt)
    with warnings.catch_warnings():  # "You will likely lose important projection information": known
        warnings.simplefilter("ignore")
        _text(srs, "proj4", (_try(crs.to_proj4) or "").replace(" +type=crs", ""))  # as QGIS writes it
    auth = _try(crs.to_authority)
    if auth:
        _text(srs, "authid", f"{auth[0]}:{auth[1]}")
        if auth[0] == "EPSG":
            _text(srs, "srid", auth[1])
    _text(srs, "description", crs.name)
    _text(srs, "geographicflag", "true" if crs.is_geographic else "false")
    unit = crs.axis_info[0].unit_name if crs.axis_info else ""
    return srs, {"metre": "meters", "meter": "meters", "degree": "degrees", "foot": "feet"}.get(unit, "unknown")


def _try(fn):
    try:
        return fn()
    except Exception:  # pyproj raises CRSError or returns None when there is no such form
        return None


def _check_opacity(spec) -> None:
    if not 0.0 <= float(spec.opacity) <= 1.0:
        raise Loc2VecError(f"opacity {spec.opacity} for layer {spec.name!r}", "give an opacity from 0 to 1")


# ---- small XML and colour helpers ------------------------------------------------------------
def _entry(parent: ET.Element, tag: str, kind: str, value: str) -> None:
    """A project property (QgsProject::readEntry) of the given Qt type."""
    _text(parent, tag, value).set("type", kind)


def _slug(name: str) -> str:
    return "".join(c if c.isalnum() else "_" for c in name) or "layer"


def _rgb(hex_color: str) -> tuple[int, int, int]:
    h = hex_color.lstrip("#")
    if len(h) != 6:
        raise Loc2VecError(f"colour {hex_color!r}", "give a colour as #rrggbb")
    return int(h[0:2], 16), int(h[2:4], 16), int(h[4:6], 16)


def _rgba(hex_color: str) -> str:
    """QGIS's colour string 'r,g,b,a'."""
    return ",".join(map(str, (*_rgb(hex_color), 255)))


def _ramp(colors, t: float) -> str:
    """The colour at ``t`` in [0, 1] along ``colors``, interpolated linearly in RGB."""
    pos = min(max(t, 0.0), 1.0) * (len(colors) - 1)
    i = min(int(pos), len(colors) - 2)
    a, b, f = _rgb(colors[i]), _rgb(colors[i + 1]), pos - i
    return "#" + "".join(f"{round(x + (y - x) * f):02x}" for x, y in zip(a, b))
