"""Scoring from examples in the "Find similar places" map tool: the negative examples (Ctrl-click), the
engine's score of every cell from them and the clicked places, its mask, and the example set as GeoJSON.

The clicked places (click, Shift-click) are the positive examples. With a negative, or after "Score" with
positives alone, every query of the tool also scores every cell through the engine
(``loc2vec_engine.scoring.score_embeddings``: the prototype or, with 5 positive and 5 negative cells, the
logistic regression, as ``auto`` chooses); the score replaces the similarity as the tool's heat map
("score heatmap") and the cells at or above the threshold are the "score mask" layer, which follows the
threshold live. That layer is a raster of each cell's score rank (the engine's ``ScoreOrder``) whose
renderer turns purple at the threshold's cut: moving the threshold changes a renderer and traces nothing,
so it keeps up with a slider over 100k cells (benchmarks/score_slider.py; tracing the polygons with GDAL
at every position took up to 0.8 s there). "Save mask…" traces the polygons at the threshold then (the
engine's ``write_mask_gpkg``) and adds the GeoPackage to the project. The negatives are red crosses
("negative examples"); a Ctrl-click on one takes it back. Esc clears all of it with the tool's other
layers. No Qt widgets here (``score_view``).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from qgis.core import Qgis, QgsCoordinateReferenceSystem, QgsVectorLayer
from qgis.PyQt.QtCore import QObject, pyqtSignal

from loc2vec_engine.errors import Loc2VecError

from .similar_layers import SCORE_RAMP, negatives_renderer, points_layer, rank_cut_renderer, rank_raster_layer
from .similar_search import layer_path

SCORE_HEAT_NAME = "score heatmap"
SCORE_MASK_NAME = "score mask"
NEGATIVES_NAME = "negative examples"


class ExampleScoring(QObject):
    """The tool's negative examples and its scoring of every cell (``result``: the engine's ScoringResult)."""

    threshold_moved = pyqtSignal()  # the mask follows a new threshold (the panel redraws its line)

    def __init__(self, tool):
        super().__init__(tool)
        self.tool = tool
        self.negatives: list[tuple[float, float]] = []  # WGS84 (lon, lat) of the Ctrl-clicks
        self.wanted = False  # "Score" chosen: score the positives also without negatives
        self.result = None  # the engine's ScoringResult of the last query
        self.mask = None  # the engine's Mask at ``threshold`` (counted, not traced: ``save_mask`` traces it)
        self.order = None  # the engine's ScoreOrder of ``result``'s scores: a threshold is a cut in it
        self.threshold: float | None = None
        self._ids = {"mask": None, "negatives": None}

    @property
    def active(self) -> bool:
        """Whether the tool's queries score the examples: a negative was given, or "Score" was chosen."""
        return bool(self.negatives) or self.wanted

    @property
    def positives(self) -> list[tuple[float, float]]:
        return [tuple(r.lonlat) for r in self.tool.references]

    # ---- actions (one engine call each) -----------------------------------------------------------
    def add_negative(self, lonlat) -> bool:
        """A negative example at WGS84 ``lonlat`` (Ctrl-click): scored with the clicked places, if any.

        A Ctrl-click in the cell of a negative already given takes that negative back instead (a mistaken
        Ctrl-click is undone by another, without Esc losing every example)."""
        from loc2vec_engine.search.similar import query_cells

        search = self.tool.current_search()
        if search is None:
            return False
        try:
            cell = int(query_cells(search.es, [lonlat])[0])  # inside the embedded area, or a message
        except Loc2VecError as e:
            self.tool.message(f"{e.problem}. {e.fix}.", Qgis.Warning)
            return False
        if self.negatives:
            given = query_cells(search.es, self.negatives)
            if cell in given:
                return self.remove_negative(int(np.flatnonzero(given == cell)[0]))
        self.negatives.append((float(lonlat[0]), float(lonlat[1])))
        if not self.tool.references:
            self.show_negatives()
            self.tool.message(f"{len(self.negatives)} negative example{'s' if len(self.negatives) > 1 else ''}: "
                              "now click a place like the ones to find, and every cell is scored.", Qgis.Info)
            self.tool.changed.emit()
            return True
        if self.tool.redo():
            return True
        self.negatives.pop()  # refused (e.g. in the cell of a positive): the message says why
        return False

    def remove_negative(self, index: int) -> bool:
        """Take back the negative ``index``; the examples left are scored again (or the similarity is shown again
        when none is left and "Score" was not chosen)."""
        lon, lat = self.negatives.pop(index)
        left = len(self.negatives)
        if self.tool.references and self.tool.redo():
            if not self.active:
                self.tool.message(f"Removed the negative example at {lon:.5f},{lat:.5f}: no negatives are left, so "
                                  "the heat map is the similarity to the clicked places again.", Qgis.Info)
            return True
        self.show_negatives()
        self.tool.message(f"Removed the negative example at {lon:.5f},{lat:.5f}; {left} left.", Qgis.Info)
        self.tool.changed.emit()
        return True

    def score_now(self) -> bool:
        """Score every cell from the clicked places (and the negatives, if any): the panel's "Score"."""
        if not self.tool.references:
            self.tool.message("Click a place like the ones to find first (Ctrl-click places unlike them).",
                              Qgis.Warning)
            return False
        self.wanted = True
        if self.tool.redo():
            return True
        self.wanted = False
        return False

    def compute(self, search, refs):
        """The engine's scoring of every cell from ``refs`` and the negatives; None when not scoring.

        A ``Loc2VecError`` (a negative in the cell of a positive, too few examples, ...) comes before
        anything is shown, so the tool keeps what it shows."""
        if not self.active or not refs:
            return None
        from loc2vec_engine.scoring import score_embeddings

        return score_embeddings(search.es, [tuple(r.lonlat) for r in refs], self.negatives)

    def set_threshold(self, threshold: float) -> None:
        """The mask at ``threshold``: the mask layer's renderer cut there (the same layer, redrawn)."""
        if self.result is None:
            return
        self.mask = self.order.mask(self.result.layout, float(threshold))
        self.threshold = float(threshold)
        layer = self.layer_of("mask")
        if layer is not None:
            self._cut(layer)
            layer.triggerRepaint()
        self.threshold_moved.emit()

    def save_mask(self, path) -> Path:
        """The mask at the current threshold traced into polygons, written to ``path`` (GeoPackage, layer
        ``mask``: one MultiPolygon with its cells and km²) and added to the project; a ``Loc2VecError`` when
        there is no scoring or the file cannot be written (nothing is left behind then)."""
        from loc2vec_engine.scoring import write_mask_gpkg

        if self.result is None:
            raise Loc2VecError("there is no score mask to save",
                               "click a place like the ones to find and Ctrl-click one unlike them (or press Score)")
        written = write_mask_gpkg(path, self.result.es, self.result, self.threshold)
        layer = QgsVectorLayer(f"{written}|layername=mask", written.stem, "ogr")
        if layer.isValid():
            self.tool.project.addMapLayer(layer)
        return written

    def save(self, path) -> Path:
        """The clicked places and the negatives as a GeoJSON FeatureCollection (WGS84, property ``example``)."""
        from loc2vec_engine.scoring import write_examples_geojson

        name = layer_path(self.tool.layer).name if self.tool.layer is not None else ""
        return write_examples_geojson(path, self.positives, self.negatives, embeddings=name)

    def load(self, path) -> bool:
        """The examples of a GeoJSON file become the clicked places and the negatives, and are scored."""
        from loc2vec_engine.scoring import read_examples_geojson
        from loc2vec_engine.search.similar import query_cells

        tool = self.tool
        search = tool.current_search()
        if search is None:
            return False
        try:
            examples = read_examples_geojson(path)
            if examples.negatives:
                query_cells(search.es, examples.negatives)  # inside this layer's area
            refs = [search.reference(p) for p in examples.positives]
        except Loc2VecError as e:
            tool.message(f"{e.problem}. {e.fix}.", Qgis.Warning)
            return False
        tool.clear(quiet=True)
        self.negatives, self.wanted = list(examples.negatives), True
        if not refs:  # negatives alone: they wait for a click on a place like the ones to find
            self.show_negatives()
            tool.message(f"Loaded {len(self.negatives)} negative examples and no positive: click a place like the "
                         "ones to find, and every cell is scored.", Qgis.Info)
            tool.changed.emit()
            return True
        try:
            tool.run_query(search, refs)
        except Loc2VecError as e:
            tool.message(f"{e.problem}. {e.fix}.", Qgis.Warning)
            self.show_negatives()
            return False
        return True

    # ---- layers ----------------------------------------------------------------------------------
    def show(self, search, result) -> None:
        """``result``'s scores as the tool's heat map and its mask at the method's default threshold."""
        from loc2vec_engine.scoring.mask import ScoreOrder, rank_plane

        self.result, self.threshold = result, float(result.scores.threshold)
        self.order = ScoreOrder(result.scores.values)
        self.mask = self.order.mask(result.layout, self.threshold)
        self.tool.show_heat(search, result.scores.values, SCORE_HEAT_NAME, SCORE_RAMP)
        layer = rank_raster_layer(self.tool.scratch_path("score_mask", ".tif"), result.layout,
                                  rank_plane(result.layout, self.order), search.es.crs_wkt, self.tool.layer.crs(),
                                  SCORE_MASK_NAME, self.tool.canvas().mapSettings().destinationCrs())
        self._cut(layer)
        self._replace("mask", layer)

    def forget_score(self) -> None:
        """No scoring any more (the examples left score nothing): the mask layer goes, the slider with it."""
        self._remove("mask")
        self.result, self.mask, self.order, self.threshold = None, None, None, None

    def show_negatives(self) -> None:
        """The negative examples as red crosses (WGS84 points), over the tool's other layers."""
        self._remove("negatives")
        if self.negatives:
            order = [("negative", np.arange(1, len(self.negatives) + 1))]
            layer = points_layer(NEGATIVES_NAME, QgsCoordinateReferenceSystem("EPSG:4326"),
                                 np.asarray(self.negatives, float), order)
            layer.setRenderer(negatives_renderer())
            self._replace("negatives", layer)

    def _cut(self, layer) -> None:
        """The mask layer's colours cut at the current threshold: purple at and above it, clear below."""
        layer.setRenderer(rank_cut_renderer(layer, self.order.cut(self.threshold), len(self.order), self.threshold))

    def layer_of(self, which: str):
        """The current "mask" or "negatives" layer (None when absent or removed by the user)."""
        layer_id = self._ids.get(which)
        return self.tool.project.mapLayer(layer_id) if layer_id else None

    def clear(self) -> None:
        """Forget the negatives and the scoring, and remove their layers (the tool redraws the canvas)."""
        for which in self._ids:
            self._remove(which)
        self.negatives, self.wanted, self.result, self.mask, self.threshold = [], False, None, None, None
        self.order = None

    def _replace(self, which: str, layer) -> None:
        self._remove(which)
        self.tool.project.addMapLayer(layer)
        self._ids[which] = layer.id()

    def _remove(self, which: str) -> None:
        self.tool.drop_layer(self.layer_of(which))  # and its scratch raster
        self._ids[which] = None

    # ---- words -----------------------------------------------------------------------------------
    def summary(self) -> str:
        """One line for the message bar: what was scored, how, and how much is above the threshold."""
        r = self.result
        s, m = r.scores, self.mask
        held = f", held-out ROC AUC {s.heldout_auc:.3f}" if s.heldout_auc is not None else ""
        return (f"Scored {len(r.es):,} cells from {len(r.positives)} positive and {len(r.negatives)} negative "
                f"cells: {s.method}{held}; {m.cells:,} cells ({m.area_km2:.3g} km²) at or above {m.threshold:.4g}.")

    def method_text(self) -> str:
        """The method, why, and how it held out (the panel shows it)."""
        s = self.result.scores
        held = (f"held-out ROC AUC {s.heldout_auc:.3f} ({s.heldout_how})" if s.heldout_auc is not None
                else f"held out: {s.heldout_how}")
        how = s.describe()
        how = how if how.startswith(s.method) else f"{s.method} — {how}"
        return f"Method: {how} ({s.why}). {held[:1].upper()}{held[1:]}."

    def mask_text(self) -> str:
        m = self.mask
        return f"{m.cells:,} cells, {m.area_km2:,.3g} km² with a score ≥ {m.threshold:.4g}"

