""""Why alike" in the similar-places dock: for one of the map tool's places (the first, the one chosen by its
rank, or the one selected on the "similar places" layer), the engine's explanation: its words, and per
channel group the share of pixels in the query's and the place's tiles and the change in cosine when the
group is blanked in both (per channel in the row's tooltip).

The engine computes it (``loc2vec_engine.explain.explain_similar``, one place at a time: two tiles, five
passes of the model); the layer's search keeps the model and the area raster loaded.
"""

from __future__ import annotations

from qgis.PyQt.QtCore import Qt
from qgis.PyQt.QtWidgets import (
    QAbstractItemView,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QSpinBox,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from loc2vec_engine.errors import Loc2VecError

HEADERS = ("Group", "Query", "Place", "Blanked")
TIP = ("Each channel group is blanked in both tiles (the query's and the place's) and both are embedded again: "
       "'Blanked' is the change in cosine. Strongly negative: the group makes them alike; positive: without it "
       "they would be closer still. Query / Place: the share of each tile's pixels the group covers.")
IDLE = "Why alike: click a place on the map."


class ExplainView(QWidget):
    """Words and a group table for the tool's place of rank ``rank``; follows the tool and its result layer."""

    def __init__(self, tool, parent=None):
        super().__init__(parent)
        self.tool = tool
        self.explanation = None  # the engine's Explanation shown now
        self._key = None  # (result, rank) explained last: making a mask does not explain it again
        self._watched = None  # the "similar places" layer whose selection picks the place
        box = QVBoxLayout(self)
        box.setContentsMargins(0, 0, 0, 0)
        row = QHBoxLayout()
        row.addWidget(QLabel("Why alike: place"))
        self.rank_spin = QSpinBox()
        self.rank_spin.setRange(1, 1)
        self.rank_spin.setToolTip("The rank of the place to explain (selecting one on the 'similar places' "
                                  "layer chooses it too).")
        self.rank_spin.valueChanged.connect(self.show_rank)
        row.addWidget(self.rank_spin)
        row.addStretch(1)
        box.addLayout(row)
        self.words = QLabel(IDLE)
        self.words.setWordWrap(True)
        self.words.setTextInteractionFlags(Qt.TextSelectableByMouse)
        box.addWidget(self.words)
        self.table = QTableWidget(0, len(HEADERS))
        self.table.setHorizontalHeaderLabels(HEADERS)
        self.table.verticalHeader().setVisible(False)
        self.table.setEditTriggers(QAbstractItemView.NoEditTriggers)
        self.table.setSelectionMode(QAbstractItemView.NoSelection)
        header = self.table.horizontalHeader()  # a narrow dock: the group's name gives way (elided), never a number
        header.setSectionResizeMode(QHeaderView.ResizeToContents)
        header.setSectionResizeMode(0, QHeaderView.Stretch)
        self.table.setHorizontalScrollBarPolicy(Qt.ScrollBarAlwaysOff)
        self.table.setVerticalScrollBarPolicy(Qt.ScrollBarAlwaysOff)
        self.table.setToolTip(TIP)
        box.addWidget(self.table)
        tool.changed.connect(self.refresh)
        self.refresh()

    # ---- following the tool ------------------------------------------------------------------
    def refresh(self) -> None:
        """After a query (or a clear): the first place, unless the chosen rank is still among the results."""
        result = self.tool.result
        self._watch(self.tool.layer_of("result"))
        if result is None:
            self._key, self.explanation = None, None
            self._show_text(IDLE)
            return
        blocked = self.rank_spin.blockSignals(True)
        self.rank_spin.setRange(1, max(1, len(result)))
        self.rank_spin.blockSignals(blocked)
        self.show_rank(self.rank_spin.value())

    def show_rank(self, rank: int) -> None:
        """Explain the place of ``rank`` (1 = the most similar)."""
        tool, result = self.tool, self.tool.result
        if result is None or not tool.references:
            return
        rank = max(1, min(int(rank), len(result)))
        if self._key is not None and self._key[0] is result and self._key[1] == rank:
            return
        self._key = (result, rank)
        if self.rank_spin.value() != rank:
            blocked = self.rank_spin.blockSignals(True)
            self.rank_spin.setValue(rank)
            self.rank_spin.blockSignals(blocked)
        search = tool.current_search()
        if search is None:
            return
        explainer, why = search.explainer()
        if explainer is None:
            self.explanation = None
            self._show_text(f"Why alike is not available: {why}")
            return
        from loc2vec_engine.explain import explain_similar

        try:
            (self.explanation,) = explain_similar(search.es, result, query_xy=search.query_xy(tool.references),
                                                  ranks=[rank], explainer=explainer)
        except Loc2VecError as e:
            self.explanation = None
            self._show_text(f"Why alike is not available: {e.problem}. {e.fix}.")
            return
        self._show(self.explanation)

    def _watch(self, layer) -> None:
        """Follow the selection on the tool's current "similar places" layer (a new one after each click)."""
        if layer is self._watched:
            return
        self._watched = layer
        if layer is not None:
            layer.selectionChanged.connect(lambda *args, lyr=layer: self._selected(lyr))

    def _selected(self, layer) -> None:
        if layer is not self._watched:
            return
        ranks = sorted(int(f["rank"]) for f in layer.selectedFeatures())
        if ranks:
            self.show_rank(ranks[0])

    # ---- showing -----------------------------------------------------------------------------
    def _show_text(self, text: str) -> None:
        self.words.setText(text)
        self.table.setRowCount(0)

    def _show(self, e) -> None:
        from loc2vec_engine.explain.words import channel_word, group_word, pct

        self.words.setText(f"Place {e.rank} (cosine {e.cosine:.4f}): {e.text}.")
        self.table.setRowCount(len(e.groups))
        for i, g in enumerate(e.groups):
            change = -g.drop
            cells = (group_word(g.group), pct(g.query_share), pct(g.result_share),
                     f"{'+' if change >= 0 else '−'}{abs(change):.3f}")
            per_channel = "\n".join(
                f"{channel_word(n)}: {pct(e.query_shares[e.channel_names.index(n)])} / "
                f"{pct(e.result_shares[e.channel_names.index(n)])}" for n in g.channels)
            for j, text in enumerate(cells):
                item = QTableWidgetItem(text)
                item.setToolTip(f"{group_word(g.group)}, query / place:\n{per_channel}")
                if j:
                    item.setTextAlignment(Qt.AlignRight | Qt.AlignVCenter)
                self.table.setItem(i, j, item)
        self.table.resizeRowsToContents()
        height = self.table.horizontalHeader().sizeHint().height() + self.table.verticalHeader().length()
        self.table.setFixedHeight(height + 2 * self.table.frameWidth())  # every group shown, no scrolling

    def rows(self) -> list[tuple[str, ...]]:
        """The table as text, row by row (what the user reads)."""
        return [tuple(self.table.item(i, j).text() for j in range(self.table.columnCount()))
                for i in range(self.table.rowCount())]
