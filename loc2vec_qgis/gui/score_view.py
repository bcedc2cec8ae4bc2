"""The score section of the similar-places dock: how the tool's examples scored every cell.

A histogram of the scores (pyqtgraph when it imports, else a plain QPainter one) with the threshold
drawn and the examples' scores as ticks; a threshold slider that moves the "score mask" layer live (the
cells at or above it); the cells and km² above it; the method and its held-out figure; "Score" (score the
clicked places without negatives), "Save mask…" (the mask at the threshold as polygons, GeoPackage),
"Save examples…" and "Load examples…" (a GeoJSON FeatureCollection of WGS84 points with the property
``example``: positive / negative).
"""

from __future__ import annotations

import numpy as np
from qgis.core import Qgis
from qgis.PyQt.QtCore import QRectF, Qt
from qgis.PyQt.QtGui import QColor, QPainter, QPen
from qgis.PyQt.QtWidgets import QFileDialog, QGridLayout, QLabel, QPushButton, QSlider, QVBoxLayout, QWidget

from loc2vec_engine.errors import Loc2VecError

STEPS = 1000  # slider positions between the lowest and the highest score
BINS = 60
BELOW, ABOVE, LINE = "#aab2b7", "#1a9641", "#d7191c"  # bars below / at or above the threshold, the threshold
TICKS = {"positive": "#00441b", "negative": "#d7191c"}
HINT = ("Ctrl-click places unlike the ones to find (negative examples, red crosses): every cell is then scored "
        "from them and the clicked places. 'Score' scores the clicked places alone.")
FILTER = "GeoJSON (*.geojson *.json)"


class ScoreView(QWidget):
    """Histogram, threshold slider, the mask's size, the method; follows ``tool.scoring``."""

    def __init__(self, tool, parent=None, use_pyqtgraph: bool | None = None):
        super().__init__(parent)
        self.tool = tool
        self.scoring = tool.scoring
        self._range = (0.0, 1.0)  # the scores' min and max: the slider's ends
        box = QVBoxLayout(self)
        box.setContentsMargins(0, 0, 0, 0)
        box.addWidget(QLabel("<b>Score from examples</b>"))
        self.hint = QLabel(HINT)
        self.hint.setWordWrap(True)
        box.addWidget(self.hint)
        self.histogram = make_histogram(use_pyqtgraph)
        box.addWidget(self.histogram)
        self.slider = QSlider(Qt.Horizontal)
        self.slider.setRange(0, STEPS)
        self.slider.setToolTip("The score threshold: the 'score mask' layer holds the cells at or above it.")
        self.slider.valueChanged.connect(self._slid)  # live: every position moves the mask
        box.addWidget(self.slider)
        self.threshold_label = QLabel()
        self.threshold_label.setWordWrap(True)
        box.addWidget(self.threshold_label)
        self.method_label = QLabel()
        self.method_label.setWordWrap(True)
        self.method_label.setTextInteractionFlags(Qt.TextSelectableByMouse)
        box.addWidget(self.method_label)
        buttons = QGridLayout()
        self.score_button = QPushButton("Score")
        self.score_button.setToolTip("Score every cell from the clicked places (and the negative examples).")
        self.score_button.clicked.connect(self.scoring.score_now)
        self.mask_button = QPushButton("Save mask…")
        self.mask_button.setToolTip("Write the cells at or above the threshold as polygons (GeoPackage) and add them "
                                    "to the project.")
        self.mask_button.clicked.connect(self.ask_and_save_mask)
        self.save_button = QPushButton("Save examples…")
        self.save_button.clicked.connect(self.ask_and_save)
        self.load_button = QPushButton("Load examples…")
        self.load_button.clicked.connect(self.ask_and_load)
        for i, b in enumerate((self.score_button, self.mask_button, self.save_button, self.load_button)):
            buttons.addWidget(b, i // 2, i % 2)
        box.addLayout(buttons)
        tool.changed.connect(self.refresh)
        self.scoring.threshold_moved.connect(self._show_threshold)
        self.refresh()

    # ---- following the tool ------------------------------------------------------------------
    def refresh(self) -> None:
        scoring, result = self.scoring, self.scoring.result
        self.score_button.setEnabled(bool(self.tool.references))
        self.save_button.setEnabled(bool(self.tool.references or scoring.negatives))
        self.slider.setEnabled(result is not None)
        self.mask_button.setEnabled(result is not None)
        if result is None:
            self.histogram.clear()
            n = len(scoring.negatives)
            self.threshold_label.setText(f"{n} negative example{'s' if n != 1 else ''}, not scored yet." if n else "")
            self.method_label.setText("")
            return
        values = result.scores.values
        lo, hi = float(values.min()), float(values.max())
        self._range = (lo, hi if hi > lo else lo + 1e-6)
        counts, edges = np.histogram(values, bins=BINS, range=self._range)
        ticks = {"positive": values[result.positives.rows], "negative": values[result.negatives.rows]}
        self.histogram.set_data(edges, counts, scoring.threshold, ticks)
        self._place_slider(scoring.threshold)
        self._show_threshold()
        self.method_label.setText(scoring.method_text())

    def threshold_at(self, position: int) -> float:
        """The score threshold at a slider position."""
        lo, hi = self._range
        return lo + (hi - lo) * position / STEPS

    def _place_slider(self, threshold: float) -> None:
        lo, hi = self._range
        blocked = self.slider.blockSignals(True)  # showing the default threshold is not choosing one
        self.slider.setValue(int(round(min(max((threshold - lo) / (hi - lo), 0.0), 1.0) * STEPS)))
        self.slider.blockSignals(blocked)

    def _slid(self, position: int) -> None:
        if self.scoring.result is not None:
            self.scoring.set_threshold(self.threshold_at(position))

    def _show_threshold(self) -> None:
        if self.scoring.mask is None:
            return
        self.histogram.set_threshold(self.scoring.threshold)
        self.threshold_label.setText(f"Score mask: {self.scoring.mask_text()}.")

    # ---- files -------------------------------------------------------------------------------
    def save(self, path) -> bool:
        try:
            written = self.scoring.save(path)
        except Loc2VecError as e:
            self.tool.message(f"{e.problem}. {e.fix}.", Qgis.Warning)
            return False
        self.tool.message(f"Examples saved to {written}.", Qgis.Success)
        return True

    def save_mask(self, path) -> bool:
        try:
            written = self.scoring.save_mask(path)
        except Loc2VecError as e:
            self.tool.message(f"{e.problem}. {e.fix}.", Qgis.Warning)
            return False
        self.tool.message(f"Score mask ({self.scoring.mask_text()}) saved to {written}.", Qgis.Success)
        return True

    def ask_and_save_mask(self) -> None:
        path, _ = QFileDialog.getSaveFileName(self, "Save the score mask", "score_mask.gpkg", "GeoPackage (*.gpkg)")
        if path:
            self.save_mask(path if path.lower().endswith(".gpkg") else path + ".gpkg")

    def ask_and_save(self) -> None:
        path, _ = QFileDialog.getSaveFileName(self, "Save example places", "examples.geojson", FILTER)
        if path:
            self.save(path if path.lower().endswith((".geojson", ".json")) else path + ".geojson")

    def ask_and_load(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Load example places", "", FILTER)
        if path:
            self.scoring.load(path)


# ---- the histogram -------------------------------------------------------------------------------
def make_histogram(use_pyqtgraph: bool | None = None) -> QWidget:
    """pyqtgraph's plot when it imports (or ``use_pyqtgraph``), else the QPainter histogram."""
    if use_pyqtgraph is not False:
        try:
            return PgHistogram()
        except ImportError:
            if use_pyqtgraph:
                raise
    return PainterHistogram()


def _heights(counts) -> np.ndarray:
    return np.log10(1.0 + np.asarray(counts, float))  # log counts: a few cells at the top still show


class PainterHistogram(QWidget):
    """Bars of log counts (at or above the threshold green, below grey), the threshold in red, example ticks."""

    def __init__(self, parent=None):
        super().__init__(parent)
        self.setMinimumHeight(110)
        self.setMaximumHeight(160)
        self.edges = self.counts = None
        self.threshold: float | None = None
        self.ticks: dict = {}

    def set_data(self, edges, counts, threshold, ticks) -> None:
        self.edges, self.counts, self.ticks = np.asarray(edges, float), np.asarray(counts), ticks
        self.set_threshold(threshold)

    def set_threshold(self, threshold) -> None:
        self.threshold = float(threshold)
        self.update()

    def clear(self) -> None:
        self.edges = self.counts = self.threshold = None
        self.ticks = {}
        self.update()

    def x_of(self, value: float) -> float:
        """The widget x of a score (the plot spans the histogram's edges)."""
        lo, hi = self.edges[0], self.edges[-1]
        return 4 + (self.width() - 8) * (value - lo) / (hi - lo)

    def paintEvent(self, _event):  # noqa: N802
        p = QPainter(self)
        p.fillRect(self.rect(), QColor("white"))
        if self.edges is None:
            p.setPen(QColor("#777777"))
            p.drawText(self.rect(), Qt.AlignCenter, "no scores yet")
            p.end()
            return
        h = _heights(self.counts)
        top, bottom = 4.0, self.height() - 12.0
        scale = (bottom - top) / max(float(h.max()), 1e-9)
        for i, height in enumerate(h):
            x0, x1 = self.x_of(self.edges[i]), self.x_of(self.edges[i + 1])
            above = self.edges[i + 1] > self.threshold  # the bin holds cells at or above it
            p.fillRect(QRectF(x0, bottom - height * scale, max(x1 - x0 - 1, 1), height * scale),
                       QColor(ABOVE if above else BELOW))
        for role, values in self.ticks.items():
            p.setPen(QPen(QColor(TICKS[role]), 1.5))
            for v in np.asarray(values, float):
                x = self.x_of(v)
                p.drawLine(int(x), int(bottom + 2), int(x), int(bottom + 10))
        p.setPen(QPen(QColor(LINE), 2))
        x = self.x_of(self.threshold)
        p.drawLine(int(x), int(top), int(x), int(bottom))
        p.end()


class PgHistogram(QWidget):
    """The same in pyqtgraph (axes with numbers). Its items are made once and only given new data: removing
    items from a pyqtgraph plot raises in itemChange under QGIS's PyQt."""

    def __init__(self, parent=None):
        import pyqtgraph as pg

        super().__init__(parent)
        box = QVBoxLayout(self)
        box.setContentsMargins(0, 0, 0, 0)
        self.plot = pg.PlotWidget(background="w")
        self.plot.setMinimumHeight(140)
        self.plot.setMaximumHeight(200)
        self.plot.setMouseEnabled(x=False, y=False)
        self.plot.hideButtons()
        self.plot.setLabel("left", "cells (log10 1+n)")
        self.plot.setLabel("bottom", "score")
        box.addWidget(self.plot)
        none = np.zeros(0)
        self._bars = [pg.BarGraphItem(x0=none, x1=none, height=none, pen=None, brush=brush) for brush in (BELOW, ABOVE)]
        self._ticks = {role: pg.PlotDataItem(pen=pg.mkPen(colour, width=1.5), connect="pairs")
                       for role, colour in TICKS.items()}
        self.line = pg.InfiniteLine(angle=90, pen=pg.mkPen(LINE, width=2))
        for item in (*self._bars, *self._ticks.values(), self.line):
            self.plot.addItem(item)
        self.edges = self.counts = None
        self.threshold: float | None = None
        self.clear()

    def set_data(self, edges, counts, threshold, ticks) -> None:
        self.edges, self.counts = np.asarray(edges, float), np.asarray(counts)
        for bar in self._bars:
            bar.setOpts(x0=self.edges[:-1], x1=self.edges[1:])
        depth = -0.08 * max(float(_heights(self.counts).max()), 1.0)
        for role, item in self._ticks.items():
            values = np.asarray(ticks.get(role, ()), float)
            item.setData(np.repeat(values, 2), np.tile([depth, 0.0], len(values)))
        self.line.setVisible(True)
        self.set_threshold(threshold)
        self.plot.enableAutoRange()

    def set_threshold(self, threshold) -> None:
        self.threshold = float(threshold)
        self.line.setValue(self.threshold)
        if self.counts is not None:
            h = _heights(self.counts)
            above = self.edges[1:] > self.threshold
            self._bars[0].setOpts(height=np.where(above, 0.0, h))
            self._bars[1].setOpts(height=np.where(above, h, 0.0))

    def clear(self) -> None:
        none = np.zeros(0)
        for bar in self._bars:
            bar.setOpts(x0=none, x1=none, height=none)
        for item in self._ticks.values():
            item.setData(none, none)
        self.line.setVisible(False)
        self.edges = self.counts = self.threshold = None
