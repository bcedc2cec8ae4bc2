"""A small dock for the "Find similar places" map tool: k, the exclude radius, the heat map's opacity, the mask
threshold, "Save mask…", why a place is alike (``explain_view``), the score from examples (``score_view``:
histogram, threshold, Save / Load examples…), and the legend. Esc clears also while the keyboard focus is in the dock."""

from __future__ import annotations

from qgis.core import Qgis
from qgis.gui import QgsDockWidget
from qgis.PyQt import sip
from qgis.PyQt.QtCore import QPoint, Qt, QTimer
from qgis.PyQt.QtGui import QKeySequence
from qgis.PyQt.QtWidgets import (
    QDoubleSpinBox,
    QFileDialog,
    QFormLayout,
    QFrame,
    QGridLayout,
    QLabel,
    QPushButton,
    QScrollArea,
    QShortcut,
    QSlider,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from loc2vec_engine.errors import Loc2VecError

from .explain_view import ExplainView
from .score_view import ScoreView
from .similar_tool import LEGEND, SimilarPlacesTool

QUANTILE_MIN, QUANTILE_MAX = 500, 999  # slider in per mille: the mask keeps the top 50 % .. 0.1 % of cells
RADIUS_MAX_M = 100_000.0
IDLE = "Click a place on the map. Shift-click adds places, Ctrl-click places unlike them; Esc clears."
RADIUS_TIP = ("Cells this close to the clicked places are left out of the k places, so that they are similar places "
              "elsewhere rather than the click's own neighbourhood (which shares most of its map tile). Default: one "
              "tile of the layer's model, 500 m for the shipped model. 0 = off: the clicked cell comes first.")


class SimilarPanel(QgsDockWidget):
    """Controls of one ``SimilarPlacesTool``; the mask follows the threshold slider."""

    def __init__(self, tool: SimilarPlacesTool, parent=None):
        super().__init__("loc2vec: similar places", parent)
        self.setObjectName("loc2vec_similar_dock")
        self.tool = tool
        body = QWidget()
        box = QVBoxLayout(body)
        self.status = QLabel(IDLE)
        self.status.setWordWrap(True)
        box.addWidget(self.status)
        self.details = QLabel("")  # the query and what it left out: the message bar has one short line
        self.details.setWordWrap(True)
        box.addWidget(self.details)
        form = QFormLayout()
        form.setRowWrapPolicy(QFormLayout.WrapLongRows)  # a narrow dock: fields under their labels
        self.k_spin = QSpinBox()
        self.k_spin.setRange(1, 1000)
        self.k_spin.setValue(tool.k)
        self.k_spin.valueChanged.connect(tool.set_k)
        form.addRow("Places to show (k)", self.k_spin)
        self.radius_spin = QDoubleSpinBox()
        self.radius_spin.setRange(0.0, RADIUS_MAX_M)
        self.radius_spin.setDecimals(0)
        self.radius_spin.setSingleStep(100.0)
        self.radius_spin.setSuffix(" m")
        self.radius_spin.setSpecialValueText("0 m (off)")
        self.radius_spin.setKeyboardTracking(False)  # one query when the number is typed, not one per digit
        self.radius_spin.setToolTip(RADIUS_TIP)
        self._show_radius()
        self.radius_spin.valueChanged.connect(tool.set_exclude_radius)
        form.addRow("Leave out within", self.radius_spin)
        self.opacity_spin = QSpinBox()
        self.opacity_spin.setRange(0, 100)
        self.opacity_spin.setSingleStep(10)
        self.opacity_spin.setSuffix(" %")
        self.opacity_spin.setValue(round(tool.heat_opacity * 100))
        self.opacity_spin.setToolTip("How opaque the heat map is drawn: lower lets the map under it show through.")
        self.opacity_spin.valueChanged.connect(lambda v: tool.set_heat_opacity(v / 100.0))
        form.addRow("Heat map opacity", self.opacity_spin)
        self.slider = QSlider(Qt.Horizontal)
        self.slider.setRange(QUANTILE_MIN, QUANTILE_MAX)
        self.slider.setValue(900)
        self.slider.setTracking(False)  # one mask when the slider is let go, not one per pixel dragged
        self.slider.valueChanged.connect(self.make_mask)
        self.slider.sliderMoved.connect(self._show_quantile)
        self.threshold_label = QLabel()
        self.threshold_label.setWordWrap(True)
        form.addRow("Mask threshold", self.slider)
        form.addRow("", self.threshold_label)
        box.addLayout(form)
        buttons = QGridLayout()  # two by two: the dock stays narrow enough for the right dock area
        self.mask_button = QPushButton("Make mask")
        self.mask_button.clicked.connect(lambda: self.make_mask(self.slider.value()))
        self.save_button = QPushButton("Save mask…")
        self.save_button.clicked.connect(self.ask_and_save)
        self.select_button = QPushButton("Select on layer")
        self.select_button.clicked.connect(tool.select_on_layer)
        self.clear_button = QPushButton("Clear (Esc)")
        self.clear_button.clicked.connect(lambda: tool.clear())
        for i, b in enumerate((self.mask_button, self.save_button, self.select_button, self.clear_button)):
            buttons.addWidget(b, i // 2, i % 2)
        box.addLayout(buttons)
        self.explain = ExplainView(tool)  # why the chosen place is alike (the engine's explanation)
        box.addWidget(self.explain)
        self.score = ScoreView(tool)  # the score of every cell from the examples (Ctrl-click: negatives)
        box.addWidget(self.score)
        legend = QLabel(LEGEND)
        legend.setWordWrap(True)
        box.addWidget(legend)
        box.addStretch(1)
        for spin in (self.k_spin, self.radius_spin, self.opacity_spin):  # never squashed below what shows "1000" or "100000 m"
            spin.setMinimumSize(spin.sizeHint())
        scroll = QScrollArea()  # a dock stacked with others gets short: scroll rather than squeeze the controls
        scroll.setWidgetResizable(True)
        scroll.setFrameShape(QFrame.NoFrame)
        scroll.setWidget(body)
        self.setWidget(scroll)
        self.scroll = scroll
        self._shown_score = None  # the scoring result the dock last scrolled to
        # Esc clears while the focus is anywhere in this dock too (after pressing one of its buttons), not
        # only on the canvas, where the map tool gets the key.
        self.escape = QShortcut(QKeySequence(Qt.Key_Escape), self)
        self.escape.setContext(Qt.WidgetWithChildrenShortcut)
        self.escape.activated.connect(lambda: tool.clear())
        tool.changed.connect(self.refresh)
        self._show_quantile(self.slider.value())
        self.refresh()

    @property
    def quantile(self) -> float:
        return self.slider.value() / 1000.0

    def make_mask(self, value=None) -> None:
        """The mask at the slider's quantile (or ``value`` per mille) of the current heat map."""
        if value is not None and value != self.slider.value():
            self.slider.setValue(int(value))  # valueChanged comes back here
            return
        self._show_quantile(self.slider.value())
        if self.tool.heat is not None:
            self.tool.make_mask(quantile=self.quantile)

    def save_mask(self, path) -> bool:
        """Write the mask to ``path`` (GeoPackage); the outcome goes to the message bar."""
        try:
            written = self.tool.save_mask(path)
        except Loc2VecError as e:
            self.tool.message(f"{e.problem}. {e.fix}.", Qgis.Warning)
            return False
        self.tool.message(f"Mask saved to {written}.", Qgis.Success)
        return True

    def ask_and_save(self) -> None:
        path, _ = QFileDialog.getSaveFileName(self, "Save similar-places mask", "similar_mask.gpkg",
                                              "GeoPackage (*.gpkg)")
        if path:
            self.save_mask(path if path.lower().endswith(".gpkg") else path + ".gpkg")

    def refresh(self) -> None:
        """Best scores and the mask's threshold, as the tool has them now."""
        tool = self.tool
        if tool.scoring.result is not None and tool.scoring.result is not self._shown_score:
            QTimer.singleShot(0, self.show_score)  # once the layouts took the score section's new contents
        self._shown_score = tool.scoring.result
        scored = tool.scoring.result is not None  # the heat map shows the score: its own mask (score section)
        has_heat = tool.heat is not None and not scored
        self.mask_button.setEnabled(has_heat)
        self.slider.setEnabled(not scored)
        self.select_button.setEnabled(tool.result is not None)
        self.save_button.setEnabled(tool.layer_of("mask") is not None)
        self.details.setText(tool.details())
        if tool.result is None:
            self.status.setText(IDLE)
            return
        best = ", ".join(f"{s:.4f}" for s in tool.result.scores[:3])
        places = len(tool.references)
        left_out = (f"; {tool.result.n_excluded} cells within {tool.result.exclude_radius_m:g} m left out"
                    if tool.result.exclude_radius_m > 0 else "")
        self.status.setText(f"{len(tool.result)} places, best cosine {best} "
                            f"({places} reference place{'s' if places > 1 else ''}{left_out}).")
        self._show_radius()
        self._show_quantile(self.slider.value())

    def show_score(self) -> None:
        """Scroll the dock to the score section: after a new score (a Ctrl-click, loaded examples) its
        histogram and threshold slider are what the user needs, and they sit below the similar-places part."""
        if sip.isdeleted(self.scroll):  # the dock went before the timer fired
            return
        top = self.score.mapTo(self.scroll.widget(), QPoint(0, 0)).y()
        self.scroll.verticalScrollBar().setValue(top)

    def _show_radius(self) -> None:
        """The radius the tool leaves out: its own value, else one tile of the layer's model once a query ran."""
        from loc2vec_engine.search.similar import DEFAULT_TILE_M

        radius = self.tool.exclude_radius_m
        if radius is None:
            radius = self.tool.result.exclude_radius_m if self.tool.result is not None else DEFAULT_TILE_M
        blocked = self.radius_spin.blockSignals(True)  # showing the value is not choosing it
        self.radius_spin.setValue(float(radius))
        self.radius_spin.blockSignals(blocked)

    def _show_quantile(self, value: int) -> None:
        text = f"top {100 - value / 10:g} % of cells"
        if self.tool.heat is not None:
            import numpy as np

            text += f" (cosine ≥ {float(np.quantile(self.tool.heat, value / 1000.0)):.4f})"
        self.threshold_label.setText(text)
