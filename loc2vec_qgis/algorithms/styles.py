"""Renderers for loc2vec's result layers, and the post-processor that applies them when Processing loads a layer."""

from __future__ import annotations

from qgis.core import (
    QgsCategorizedSymbolRenderer,
    QgsGraduatedSymbolRenderer,
    QgsMarkerSymbol,
    QgsProcessingLayerPostProcessorInterface,
    QgsRendererCategory,
    QgsRendererRange,
)
from qgis.PyQt.QtGui import QColor

from loc2vec_engine import ATTRIBUTION
from loc2vec_engine.project.qgz import SELECTION_RGBA  # the colour the .qgz projects select in

OSM_COPYRIGHT = "https://www.openstreetmap.org/copyright"
# Similarity scores: red = least similar, yellow, green = most similar (as the .qgz projects colour them).
SCORE_RAMP = ("#d7191c", "#ffffbf", "#1a9641")
SCORE_CLASSES = 5
CLUSTER_OPACITY = 0.85


def cell_symbol(color: str, stride_m: float | None = None) -> QgsMarkerSymbol:
    """A square the size of a grid cell (map units), so the cells tile the map; a 2 mm dot off a grid."""
    if stride_m:
        props = {"name": "square", "size": f"{stride_m:g}", "size_unit": "MapUnit", "color": color,
                 "outline_style": "no"}
    else:
        props = {"name": "circle", "size": "2", "color": color, "outline_color": "35,35,35,255",
                 "outline_width": "0.2"}
    return QgsMarkerSymbol.createSimple(props)


def cluster_renderer(sizes: dict[int, int], stride_m: float | None = None,
                     field: str = "cluster") -> QgsCategorizedSymbolRenderer:
    """One category per cluster label in ``sizes`` ({label: cells}), coloured as every loc2vec picture is."""
    from loc2vec_engine.clusters.colors import cluster_color
    from loc2vec_engine.project.legend import cluster_label

    categories = []
    for label, count in sorted(sizes.items()):
        categories.append(QgsRendererCategory(int(label), cell_symbol(cluster_color(label), stride_m),
                                              cluster_label(label, count)))
    return QgsCategorizedSymbolRenderer(field, categories)


def score_renderer(scores, stride_m: float | None = None, classes: int = SCORE_CLASSES,
                   field: str = "score") -> QgsGraduatedSymbolRenderer:
    """Equal-count (quantile) classes of the scores, red (low) to green (high).

    A model's cosines can crowd in a narrow band (0.91-0.94 for the shipped model's top 10 at Ribeira),
    so fixed 0..1 classes would paint every hit alike.
    """
    from loc2vec_engine.project.legend import range_labels

    breaks = quantile_breaks(scores, classes)
    labels = range_labels(breaks, "score ", lowest=4)
    if labels is None:  # the scores crowd closer than decimals tell apart: the legend shows ranks
        return rank_renderer(len(list(scores)), classes, stride_m)
    n = len(breaks) - 1
    ranges = []
    for i, (lo, hi) in enumerate(zip(breaks, breaks[1:])):
        color = ramp_color(SCORE_RAMP, (i + 0.5) / n)
        ranges.append(QgsRendererRange(lo, hi, cell_symbol(color, stride_m), labels[i]))
    return QgsGraduatedSymbolRenderer(field, ranges)


def rank_renderer(n: int, classes: int = SCORE_CLASSES, stride_m: float | None = None,
                  field: str = "rank") -> QgsGraduatedSymbolRenderer:
    """Classes of ranks ('ranks 1–2', best = green), for hits whose scores print alike."""
    from loc2vec_engine.project.legend import rank_classes

    groups = rank_classes(max(int(n), 1), classes)
    ranges = []
    for i, (first, last, label) in enumerate(groups):
        color = ramp_color(SCORE_RAMP, 1.0 - (i + 0.5) / len(groups))
        ranges.append(QgsRendererRange(first - 0.5, last + 0.5, cell_symbol(color, stride_m), label))
    return QgsGraduatedSymbolRenderer(field, ranges)


def quantile_breaks(values, classes: int) -> list[float]:
    """Class edges holding about equally many values; repeated edges merged; the ends widened a hair
    so that the smallest and largest value fall inside."""
    import numpy as np

    v = np.asarray(list(values), float)
    v = v[np.isfinite(v)]
    if len(v) == 0:
        return [0.0, 1.0]
    edges = np.unique(np.quantile(v, np.linspace(0, 1, max(1, min(classes, len(v))) + 1)))
    if len(edges) == 1:
        edges = np.array([edges[0], edges[0]])
    pad = max(1e-9, 1e-6 * float(edges[-1] - edges[0]))
    edges[0] -= pad
    edges[-1] += pad
    return [float(e) for e in edges]


def ramp_color(colors, t: float) -> str:
    """The colour at ``t`` in [0, 1] along ``colors``, interpolated in RGB."""
    t = min(max(float(t), 0.0), 1.0) * (len(colors) - 1)
    i = min(int(t), len(colors) - 2)
    a, b, f = QColor(colors[i]), QColor(colors[i + 1]), t - i
    mix = [round(x + (y - x) * f) for x, y in zip(a.getRgb()[:3], b.getRgb()[:3])]
    return QColor(*mix).name()


def visible_selection(project) -> bool:
    """Give ``project`` a visible selection colour when it has white (what QGIS 3.22 reads from a project file
    without one): selected cells would look like holes in the cluster layer. True when it was changed."""
    if project is None:
        return False
    color = project.selectionColor()
    if min(color.red(), color.green(), color.blue()) < 235:
        return False
    project.setSelectionColor(QColor(*SELECTION_RGBA))
    return True


def apply_style(layer, renderer, opacity: float = 1.0) -> None:
    """Set the renderer, the opacity and the OpenStreetMap attribution, and redraw."""
    layer.setRenderer(renderer)
    layer.setOpacity(opacity)
    layer.setAttribution(ATTRIBUTION)
    layer.setAttributionUrl(OSM_COPYRIGHT)
    layer.triggerRepaint()


class LayerStyler(QgsProcessingLayerPostProcessorInterface):
    """Styles a layer Processing loads on completion: ``make_renderer(layer)`` gives its renderer.

    Post-processors made in the algorithm work in the toolbox, the modeler and runAndLoadResults alike.
    """

    _alive: list = []  # Processing (QGIS 3.22) does not own post-processors: keep the recent ones alive

    def __init__(self, make_renderer, opacity: float = 1.0, reload: bool = False):
        super().__init__()
        self.make_renderer = make_renderer
        self.opacity = opacity
        self.reload = reload  # the file was rewritten under a layer that may have it open
        LayerStyler._alive = LayerStyler._alive[-63:] + [self]

    def postProcessLayer(self, layer, context, feedback):  # noqa: N802
        if layer is None or not layer.isValid():
            return
        if self.reload:
            layer.reload()  # reopens the data source: the provider still read the replaced file
        apply_style(layer, self.make_renderer(layer), self.opacity)
        visible_selection(context.project() if context is not None else None)
