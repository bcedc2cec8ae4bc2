"""A dock with the UMAP scatter of an embeddings layer, coloured by cluster and linked to the map selection.

Selecting points in the scatter (click a point, or drag a rectangle; Shift adds to the selection)
selects the same features on the layer; selecting features on the map outlines their points. pyqtgraph is imported when the dock is built, never at plugin load.
"""

from __future__ import annotations

import numpy as np
from qgis.core import QgsFeatureRequest, QgsProject, QgsVectorLayer
from qgis.gui import QgsDockWidget
from qgis.PyQt.QtCore import QRectF, Qt, QTimer
from qgis.PyQt.QtWidgets import QLabel, QVBoxLayout, QWidget

from loc2vec_engine.clusters.colors import cluster_color

NEEDED_FIELDS = ("umap_x", "umap_y", "cluster")


class UmapDock(QgsDockWidget):
    """UMAP scatter of the active embeddings layer; selection shared with the map."""

    def __init__(self, parent=None):
        super().__init__("loc2vec: UMAP of embeddings", parent)
        import pyqtgraph as pg

        self.setObjectName("loc2vec_umap_dock")
        self.layer: QgsVectorLayer | None = None  # the layer shown
        self._watched: QgsVectorLayer | None = None  # the layer followed (also before it has a UMAP projection)
        self._reload_timer = QTimer(self)
        self._reload_timer.setSingleShot(True)
        self._reload_timer.setInterval(0)
        self._reload_timer.timeout.connect(self.reload)
        self.fids = np.empty(0, np.int64)
        self.xy = np.empty((0, 2))
        self.labels = np.empty(0, np.int64)
        body = QWidget()
        box = QVBoxLayout(body)
        self.status = QLabel("Choose an embeddings layer that has been clustered (Cluster embeddings).")
        self.status.setWordWrap(True)
        self.plot = pg.PlotWidget(background="w")
        self.plot.setAspectLocked(True)
        self.plot.hideAxis("left"), self.plot.hideAxis("bottom")
        self.scatter = pg.ScatterPlotItem(size=6, pen=None, pxMode=True)
        self.scatter.sigClicked.connect(self._clicked)
        self.plot.addItem(self.scatter)
        self.highlight = pg.ScatterPlotItem(size=10, pen=pg.mkPen("k", width=1.5), brush=None, pxMode=True)
        self.plot.addItem(self.highlight)
        self.plot.getViewBox().setMouseMode(pg.ViewBox.RectMode)  # drag = rectangle select (see _rect_selected)
        self.plot.getViewBox().mouseDragEvent = self._drag
        box.addWidget(self.status)
        box.addWidget(self.plot)
        self.setWidget(body)

    # ---- layer -> scatter ------------------------------------------------------------------
    def show_project_layer(self, active=None) -> bool:
        """Show ``active`` when it is an embeddings layer, else the project's (top first, clustered ones first).

        A project's active layer is often something else (the demo's query star, a basemap): the dock
        then opens on the project's embeddings layer rather than on a note that this one is not one.
        """
        candidates = [active] if is_umap_layer(active) else []
        candidates += [lyr for lyr in QgsProject.instance().layerTreeRoot().layerOrder()
                       if is_umap_layer(lyr) and lyr is not active]
        for layer in candidates:
            if _has_projection(layer) and self.set_layer(layer):
                return True
        return self.set_layer(candidates[0] if candidates else active)

    def set_layer(self, layer) -> bool:
        """Show ``layer`` (an embeddings layer); False (with a note) when it has no UMAP columns yet.

        The dock follows the layer from then on: when *Cluster embeddings* rewrites it (new data, a new
        renderer), the scatter is read again.
        """
        self._unwatch()
        self.layer = None
        if not is_umap_layer(layer):
            self._clear("This layer is not a loc2vec embeddings layer.")
            return False
        self._watch(layer)
        from ..algorithms.styles import visible_selection

        visible_selection(layer.project() or QgsProject.instance())  # the dock selects: let the map show it
        return self._load(layer)

    def _load(self, layer) -> bool:
        self.layer = None
        fids, xy, labels = [], [], []
        request = QgsFeatureRequest().setFlags(QgsFeatureRequest.NoGeometry).setSubsetOfAttributes(
            list(NEEDED_FIELDS), layer.fields())
        for f in layer.getFeatures(request):
            x, y, c = f["umap_x"], f["umap_y"], f["cluster"]
            if _null(x) or _null(y):
                continue
            fids.append(f.id()), xy.append((float(x), float(y))), labels.append(-1 if _null(c) else int(c))
        if not fids:
            self._clear(f"'{layer.name()}' has no UMAP projection yet: run Cluster embeddings on it.")
            return False
        self.layer = layer
        self.fids, self.xy, self.labels = np.asarray(fids, np.int64), np.asarray(xy), np.asarray(labels, np.int64)
        self._draw()
        self._map_selection_changed()
        k = len(set(self.labels.tolist()) - {-1})
        self.status.setText(f"{layer.name()}: {len(self.fids)} cells, {k} clusters. Click or drag to select; "
                            "Shift adds to the selection.")
        return True

    def _watch(self, layer) -> None:
        self._watched = layer
        layer.selectionChanged.connect(self._map_selection_changed)
        layer.dataChanged.connect(self._reload_soon)
        layer.rendererChanged.connect(self._reload_soon)
        layer.willBeDeleted.connect(self._layer_deleted)

    def _unwatch(self) -> None:
        layer, self._watched = self._watched, None
        if layer is None:
            return
        try:
            signals = ((layer.selectionChanged, self._map_selection_changed), (layer.dataChanged, self._reload_soon),
                       (layer.rendererChanged, self._reload_soon), (layer.willBeDeleted, self._layer_deleted))
        except RuntimeError:  # the layer is gone, and its connections with it
            return
        for signal, slot in signals:
            try:
                signal.disconnect(slot)
            except (TypeError, RuntimeError):
                pass

    def _reload_soon(self, *_) -> None:
        """A reload and a restyle come together: read the layer once, when both are done."""
        self._reload_timer.start()

    def reload(self) -> bool:
        """Read the watched layer again (its clusters or projection changed)."""
        if self._watched is None:
            return False
        return self._load(self._watched)

    def _layer_deleted(self) -> None:
        self._watched = self.layer = None  # its connections go with it
        self._clear("The embeddings layer was removed from the project.")

    def _clear(self, message: str) -> None:
        self.fids, self.xy, self.labels = np.empty(0, np.int64), np.empty((0, 2)), np.empty(0, np.int64)
        self.scatter.clear(), self.highlight.clear()
        self.status.setText(message)

    def _draw(self) -> None:
        import pyqtgraph as pg

        brushes = {c: pg.mkBrush(cluster_color(c)) for c in set(self.labels.tolist())}
        self.scatter.setData(x=self.xy[:, 0], y=self.xy[:, 1], data=np.arange(len(self.fids)),
                             brush=[brushes[c] for c in self.labels.tolist()])
        self.plot.getViewBox().autoRange()

    # ---- scatter -> map --------------------------------------------------------------------
    def select_indices(self, indices, add: bool = False) -> None:
        """Select the features of scatter points ``indices`` on the layer (the map follows)."""
        if self.layer is None:
            return
        ids = [int(self.fids[i]) for i in indices]
        behavior = QgsVectorLayer.AddToSelection if add else QgsVectorLayer.SetSelection
        self.layer.selectByIds(ids, behavior)

    def select_in_rect(self, rect: QRectF, add: bool = False) -> None:
        """Select the points inside ``rect`` (scatter coordinates)."""
        x, y = self.xy[:, 0], self.xy[:, 1]
        inside = (x >= rect.left()) & (x <= rect.right()) & (y >= rect.top()) & (y <= rect.bottom())
        self.select_indices(np.flatnonzero(inside), add)

    def _clicked(self, _item, points, ev=None):
        add = ev is not None and bool(ev.modifiers() & Qt.ShiftModifier)
        self.select_indices([p.data() for p in points], add)

    def _drag(self, ev, axis=None):
        """Left-drag draws a rectangle; on release its points are selected (the view does not zoom)."""
        vb = self.plot.getViewBox()
        if ev.button() != Qt.LeftButton:
            return type(vb).mouseDragEvent(vb, ev, axis)
        ev.accept()
        start, end = vb.mapToView(ev.buttonDownPos()), vb.mapToView(ev.pos())
        rect = QRectF(start, end).normalized()
        if ev.isFinish():
            vb.rbScaleBox.hide()
            self.select_in_rect(rect, add=bool(ev.modifiers() & Qt.ShiftModifier))
        else:
            vb.updateScaleBox(ev.buttonDownPos(), ev.pos())

    # ---- map -> scatter --------------------------------------------------------------------
    def _map_selection_changed(self, *args) -> None:
        if self.layer is None:
            return
        chosen = np.isin(self.fids, np.asarray(list(self.layer.selectedFeatureIds()), np.int64))
        self.highlight.setData(x=self.xy[chosen, 0], y=self.xy[chosen, 1])

    def highlighted_fids(self) -> list[int]:
        """Feature ids whose points are outlined now (the map's selection, as the dock shows it)."""
        if self.layer is None:
            return []
        chosen = np.isin(self.fids, np.asarray(list(self.layer.selectedFeatureIds()), np.int64))
        return sorted(int(f) for f in self.fids[chosen])


def is_umap_layer(layer) -> bool:
    """A vector layer with the columns the dock reads (an embeddings layer, clustered or not yet)."""
    return (isinstance(layer, QgsVectorLayer) and layer.isValid()
            and all(f in layer.fields().names() for f in NEEDED_FIELDS))


def _has_projection(layer) -> bool:
    request = QgsFeatureRequest().setFlags(QgsFeatureRequest.NoGeometry).setSubsetOfAttributes(
        ["umap_x"], layer.fields()).setFilterExpression('"umap_x" IS NOT NULL').setLimit(1)
    return any(True for _ in layer.getFeatures(request))


def _null(value) -> bool:
    return value is None or (hasattr(value, "isNull") and value.isNull())
