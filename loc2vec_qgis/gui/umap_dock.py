"""A dock with the UMAP scatter of an embeddings layer, coloured by cluster and linked to the map selection.

Selecting points in the scatter (click a point, or drag a rectangle; Shift adds to the selection)
selects the same features on the layer; selecting features on the map outlines their points. pyqtgraph is imported when the dock is built, never at plugin load.
"""

from __future__ import annotations

import numpy as np
from qgis.core import QgsFeatureRequest, QgsVectorLayer
from qgis.gui import QgsDockWidget
from qgis.PyQt.QtCore import QRectF, Qt
from qgis.PyQt.QtWidgets import QLabel, QVBoxLayout, QWidget

from loc2vec_engine.clusters.colors import cluster_color

NEEDED_FIELDS = ("umap_x", "umap_y", "cluster")


class UmapDock(QgsDockWidget):
    """UMAP scatter of the active embeddings layer; selection shared with the map."""

    def __init__(self, parent=None):
        super().__init__("loc2vec: UMAP of embeddings", parent)
        import pyqtgraph as pg

        self.setObjectName("loc2vec_umap_dock")
        self.layer: QgsVectorLayer | None = None
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
    def set_layer(self, layer) -> bool:
        """Show ``layer`` (an embeddings layer); False (with a note) when it has no UMAP columns yet."""
        if self.layer is not None:
            try:
                self.layer.selectionChanged.disconnect(self._map_selection_changed)
            except (TypeError, RuntimeError):
                pass
        self.layer = None
        if not isinstance(layer, QgsVectorLayer) or not all(f in layer.fields().names() for f in NEEDED_FIELDS):
            self._clear("This layer is not a loc2vec embeddings layer.")
            return False
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
        layer.selectionChanged.connect(self._map_selection_changed)
        self._map_selection_changed()
        k = len(set(self.labels.tolist()) - {-1})
        self.status.setText(f"{layer.name()}: {len(self.fids)} cells, {k} clusters. Click or drag to select; "
                            "Shift adds to the selection.")
        return True

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


def _null(value) -> bool:
    return value is None or (hasattr(value, "isNull") and value.isNull())
