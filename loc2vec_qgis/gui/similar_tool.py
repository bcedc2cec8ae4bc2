"""Map tool "Find similar places": click the map, see the cells of an embeddings layer most like that place.

A click picks the nearest cell of the embeddings layer; between cells (farther than a quarter of the
stride from the nearest one) the clicked point itself is embedded through the ONNX model, when the
model and the area raster the layer was made from are still on disk. The query's cosine similarity to
every cell becomes a heat map (a temporary raster, one pixel per cell), the top k cells the temporary
point layer "similar places" (labelled by rank, every label drawn), the clicked places a star
("clicked place"). Shift-click adds reference places (their mean embedding is the query), Ctrl-click a
negative example ("negative examples", a red cross): then every cell is scored from the clicked places
and the negatives by the engine (``score_examples``) and the heat map shows that score, with its mask.
Esc clears (the canvas is redrawn without them). A threshold turns the heat map into the "similar mask" layer,
which can be saved. The heat map is drawn at 60 % opacity by default (the roads show through).

What the first click needs (the layer's vectors, the CRS transforms, the ONNX session and the area
raster) is loaded when the tool is activated, just after the canvas took it (``warm_up``).

The top k leave out the cells within the exclude radius of the clicked places: by default one tile
of the layer's model (500 m for the shipped model), whose cells share most of the clicked tile and
would otherwise fill the top k with the click's own neighbourhood; 0 keeps them. The heat map still
scores every cell.

Colours go by rank, not absolute cosine: a model's cosines can crowd in a narrow band. The user's
embeddings layer is only read, never restyled.
"""

from __future__ import annotations

import re

import shutil
import tempfile
from pathlib import Path

import numpy as np
from qgis.core import (
    Qgis,
    QgsCoordinateReferenceSystem,
    QgsCoordinateTransform,
    QgsCsException,
    QgsFeatureRequest,
    QgsFillSymbol,
    QgsPointXY,
    QgsProject,
    QgsRasterLayer,
    QgsSingleSymbolRenderer,
    QgsVectorFileWriter,
    QgsVectorLayer,
)
from qgis.gui import QgsMapTool
from qgis.PyQt import sip
from qgis.PyQt.QtCore import Qt, QTimer, pyqtSignal
from qgis.PyQt.QtWidgets import QApplication

from loc2vec_engine.errors import Loc2VecError

from .score_examples import ExampleScoring
from .similar_layers import (  # noqa: F401  HEAT_RAMP, TOP_RAMP: for the docs' screenshots
    HEAT_OPACITY,
    HEAT_RAMP,
    TOP_RAMP,
    clicked_renderer,
    heat_points_renderer,
    heat_raster_layer,
    label_ranks,
    points_layer,
    squares_layer,
    top_renderer,
)
from .similar_search import (  # noqa: F401  the tool's public names, as before the split
    ON_THE_FLY_FRACTION,
    HeatGrid,
    LayerSearch,
    Reference,
    is_embeddings_layer,
    layer_path,
    percentiles,
)

RESULT_NAME = "similar places"
HEAT_NAME = "similarity heatmap"
MASK_NAME = "similar mask"
CLICK_NAME = "clicked place"
DEFAULT_K = 10
LEGEND = ("Star: the clicked place. Large dots: the k most similar cells, numbered by rank, darker purple = higher cosine among them. "
          "Heat map: every cell by its rank of similarity, green = most similar, red = least "
          "(ranks, not absolute cosines, which can crowd in a narrow band). Red crosses: negative examples "
          "(Ctrl-click); with them the heat map is the score from the examples, and the purple 'score mask' "
          "holds the cells at or above its threshold.")


def exclusion_text(result, one_tile: bool = False) -> str:
    """What the top k left out around the clicked places (the message bar says it)."""
    if result.exclude_radius_m <= 0:
        return "Nothing left out (exclude radius 0): the click's own neighbourhood counts."
    why = ", one tile of the model" if one_tile else ""
    return (f"Left out: the {result.n_excluded} cells within {result.exclude_radius_m:g} m of the click{why} "
            "(exclude radius; 0 keeps them).")


# ---- the map tool ----------------------------------------------------------------------------
class SimilarPlacesTool(QgsMapTool):
    """Click: the k most similar cells and the heat map; Shift-click: add a place; Ctrl-click: a negative
    example (every cell scored from the examples); Esc: clear."""

    changed = pyqtSignal()  # after every query and clear (the panel updates its text)

    def __init__(self, canvas, message_bar=None, project: QgsProject | None = None, k: int = DEFAULT_K,
                 exclude_radius_m: float | None = None):
        super().__init__(canvas)
        self.bar = message_bar
        self.project = project or QgsProject.instance()
        self.k = k
        self.exclude_radius_m = exclude_radius_m  # metres left out around the clicks; None: one tile of the model
        self.layer: QgsVectorLayer | None = None
        self._searches: dict = {}
        self.references: list[Reference] = []
        self.query_vector: np.ndarray | None = None
        self.result = None  # the engine's SimilarResult
        self.heat: np.ndarray | None = None  # (N,) cosine of every cell, in the EmbeddingSet's cell order
        self.mask_threshold: float | None = None
        self.heat_opacity = HEAT_OPACITY  # 0..1; the panel's "Heat map opacity"
        self._layer_ids = {"result": None, "heat": None, "mask": None, "click": None}
        self._tmp: Path | None = None  # heat rasters of this tool
        self._heat_count = 0
        self._cell_fids: dict | None = None
        self.last_message = ("", Qgis.Info)
        self._bar_item = None  # the tool's last note: replaced, not stacked ("1 more" and arrows in the bar)
        self.warmed: LayerSearch | None = None  # the search that warm_up loaded
        self._warm_timer = QTimer(self)  # warm up just after activation: the toolbar button shows checked first
        self._warm_timer.setSingleShot(True)
        self._warm_timer.timeout.connect(self.warm_up)
        self.scoring = ExampleScoring(self)  # the negative examples (Ctrl-click) and the score from examples
        self.setCursor(Qt.CrossCursor)

    # ---- layer ---------------------------------------------------------------------------------
    def set_layer(self, layer) -> bool:
        """Search ``layer`` from now on; False (the layer is kept) when it is not an embeddings layer."""
        if not is_embeddings_layer(layer):
            return False
        if layer is not self.layer:
            if self.layer is not None:
                self.clear(quiet=True)  # the shown places belong to the previous layer
            self.layer, self._cell_fids = layer, None
            if self.isActive():
                self._warm_timer.start(0)
        return True

    # ---- warm-up -------------------------------------------------------------------------------
    def activate(self):
        super().activate()
        self._warm_timer.start(0)

    def warm_up(self) -> LayerSearch | None:
        """Load the current layer's search and everything its first click needs (quietly without a layer)."""
        if self.layer is None or sip.isdeleted(self.layer):
            return None  # no layer yet, or removed before the timer fired
        QApplication.setOverrideCursor(Qt.WaitCursor)
        try:
            search = self.current_search()
            if search is not None and search is not self.warmed:
                search.warm_up()
                self.warmed = search
        finally:
            QApplication.restoreOverrideCursor()
        return search

    def current_search(self) -> LayerSearch | None:
        """The loaded search of the current layer (loaded on first use, again when its file changed)."""
        if self.layer is None:
            self.message("Select a loc2vec embeddings layer in the Layers panel first.", Qgis.Warning)
            return None
        path = layer_path(self.layer)
        key = (self.layer.id(), str(path), path.stat().st_mtime_ns if path.is_file() else None)
        if key not in self._searches:
            try:
                self._searches = {key: LayerSearch(self.layer)}
            except Loc2VecError as e:
                self.message(f"{e.problem}. {e.fix}", Qgis.Critical)
                return None
        return self._searches[key]

    # ---- events --------------------------------------------------------------------------------
    def canvasReleaseEvent(self, e):  # noqa: N802
        if e.button() != Qt.LeftButton:
            return
        if e.modifiers() & Qt.ControlModifier:
            lonlat = self.lonlat_of(e.mapPoint())
            if lonlat is not None:
                self.scoring.add_negative(lonlat)
        else:
            self.click(e.mapPoint(), add=bool(e.modifiers() & Qt.ShiftModifier))

    def keyPressEvent(self, e):  # noqa: N802
        if e.key() == Qt.Key_Escape:
            self.clear()
            e.accept()
        else:
            e.ignore()

    def click(self, map_point, add: bool = False) -> bool:
        """A click at ``map_point`` (canvas CRS); ``add``: one more reference place (Shift)."""
        lonlat = self.lonlat_of(map_point)
        return lonlat is not None and self.query_at(lonlat, add)

    def lonlat_of(self, map_point) -> tuple[float, float] | None:
        """WGS84 (lon, lat) of a point of the canvas; None (and a message) off the globe."""
        wgs84 = QgsCoordinateReferenceSystem("EPSG:4326")
        transform = QgsCoordinateTransform(self.canvas().mapSettings().destinationCrs(), wgs84, self.project)
        try:
            p = transform.transform(QgsPointXY(map_point))
        except QgsCsException:
            self.message("That point cannot be placed on the globe: click on the embedded area.", Qgis.Warning)
            return None
        return p.x(), p.y()

    def query_at(self, lonlat, add: bool = False) -> bool:
        """Search for the place at WGS84 ``lonlat`` (added to the reference places when ``add``)."""
        search = self.current_search()
        if search is None:
            return False
        try:
            ref = search.reference(lonlat)
        except Loc2VecError as e:
            if not add:
                self.clear(quiet=True)
            self.message(f"{e.problem}. {e.fix}.", Qgis.Warning)
            return False
        refs = [*self.references, ref] if add and self.references else [ref]
        try:
            self.run_query(search, refs)
        except Loc2VecError as e:
            self.message(f"{e.problem}. {e.fix}.", Qgis.Warning)
            return False
        return True

    def set_k(self, k: int) -> None:
        """Show ``k`` places from now on; the current query is redone."""
        self.k = int(k)
        self.redo()

    def set_exclude_radius(self, radius_m: float | None) -> bool:
        """Leave out the cells within ``radius_m`` metres of the places (None: one tile, 0: none); redo the query."""
        if radius_m is not None:
            from loc2vec_engine.search.similar import check_radius

            try:
                radius_m = check_radius(radius_m)
            except Loc2VecError as e:
                self.message(f"{e.problem}. {e.fix}.", Qgis.Warning)
                return False
        self.exclude_radius_m = radius_m
        return self.redo()

    def redo(self) -> bool:
        """The current query again (and the scoring, when there is one); False with a message when it fails."""
        search = self.current_search() if self.references else None
        if search is None:
            return False
        try:
            self.run_query(search, self.references)
        except Loc2VecError as e:  # e.g. more places asked for than are left beyond the radius
            self.message(f"{e.problem}. {e.fix}.", Qgis.Warning)
            return False
        return True

    # ---- query -> layers -----------------------------------------------------------------------
    def run_query(self, search: LayerSearch, refs: list[Reference]) -> None:
        """Show the places most like ``refs`` (and, with negative examples, the score of every cell)."""
        from loc2vec_engine.search.index import unit_rows
        from loc2vec_engine.search.similar import query_vector

        scoring = self.scoring.compute(search, refs)  # None without examples to score; errors before any change
        es, lonlats = search.es, np.asarray([r.lonlat for r in refs], float)
        k = max(1, min(int(self.k), len(es)))
        if any(r.on_the_fly for r in refs):
            q = unit_rows(np.mean([np.asarray(r.vector, np.float64) for r in refs], axis=0), "the query vector")[0]
            result, heat = search.search.highlight_vector(q, lonlats, k, self.exclude_radius_m)
        else:  # the engine's own path for clicks on cells: the mean of the cells' embeddings
            q = query_vector(es, [r.row for r in refs])
            result, heat = search.search.highlight(lonlats, k, self.exclude_radius_m)
        self.references, self.query_vector, self.result, self.heat = refs, q, result, heat
        self.mask_threshold = None
        self._remove("mask")
        if scoring is None:
            self.scoring.forget_score()  # e.g. the last negative taken back: the similarity again
            self.show_heat(search, heat)
        else:
            self.scoring.show(search, scoring)  # the score as the heat map, and its mask
        self._show_result(search, result)
        self.scoring.show_negatives()
        self.message(self.scoring.summary() if scoring else self._summary(refs, result), Qgis.Info)
        self.changed.emit()

    def show_heat(self, search: LayerSearch, values: np.ndarray, name: str = HEAT_NAME, ramp=HEAT_RAMP) -> None:
        """The heat map layer: every cell coloured by the rank of its ``values`` (similarity, or a score)."""
        pct = percentiles(values)
        if search.grid is not None:
            layer = heat_raster_layer(self.scratch_path("heat", ".tif"), search.grid, pct,
                                      search.es.crs_wkt, self.layer.crs(), name, ramp)
        else:
            layer = points_layer(name, self.layer.crs(), search.es.xy, [("cell", search.es.cell),
                                                                        ("score", values), ("percentile", pct)])
            layer.setRenderer(heat_points_renderer(ramp))
        self._apply_opacity(layer)
        self._replace("heat", layer)

    def scratch_path(self, stem: str, suffix: str) -> Path:
        """A new file name in the tool's temporary folder (removed with its layer, and on Esc): a new one per
        query, as QGIS may still hold the last."""
        if self._tmp is None:
            self._tmp = Path(tempfile.mkdtemp(prefix="loc2vec-similar-"))
        self._heat_count += 1
        return self._tmp / f"{stem}_{self._heat_count}{suffix}"

    def set_heat_opacity(self, opacity: float) -> None:
        """Draw the heat map at ``opacity`` (0..1, or a percentage above 1) from now on, the current one too."""
        opacity = float(opacity)
        self.heat_opacity = min(1.0, max(0.0, opacity / 100.0 if opacity > 1.0 else opacity))
        layer = self.layer_of("heat")
        if layer is not None:
            self._apply_opacity(layer)
            layer.triggerRepaint()

    def _apply_opacity(self, layer) -> None:
        if isinstance(layer, QgsRasterLayer):
            layer.renderer().setOpacity(self.heat_opacity)
        else:
            layer.setOpacity(self.heat_opacity)

    def _show_result(self, search: LayerSearch, result) -> None:
        layer = points_layer(RESULT_NAME, self.layer.crs(), search.es.xy[result.indices], [
            ("rank", np.arange(1, len(result) + 1)), ("cell", result.cells), ("score", result.scores),
            ("distance_m", result.distance_m)])
        layer.setRenderer(top_renderer(result.scores))
        label_ranks(layer)
        self._replace("result", layer)
        lonlats = np.asarray([r.lonlat for r in self.references], float)
        clicked = points_layer(CLICK_NAME, QgsCoordinateReferenceSystem("EPSG:4326"), lonlats,
                               [("place", np.arange(1, len(lonlats) + 1))])
        clicked.setRenderer(clicked_renderer())
        self._replace("click", clicked)

    def _summary(self, refs: list[Reference], result) -> str:
        """The message-bar line: short enough to read whole in one line of the bar (no scroll arrows);
        the query's details, what was left out and the legend are in the panel (``details()``, ``LEGEND``)."""
        if len(refs) > 1:
            query = f"the mean of {len(refs)} places ("
        elif refs[0].on_the_fly:
            query = "the clicked point (embedded on the fly; "
        elif refs[0].note:
            package = re.search(r"Python package '([\w.]+)'", refs[0].note)
            query = f"the nearest cell ({package.group(1)} missing; " if package else "the nearest cell ("
        else:
            query = "the nearest cell ("
        return f"{len(result)} most similar places to {query}best cosine {result.scores[0]:.4f})."

    def details(self) -> str:
        """What the last query was and what it left out, in full (the panel shows it)."""
        refs, result = self.references, self.result
        if result is None or not refs:
            return ""
        if len(refs) > 1:
            query = f"the mean of {len(refs)} places (Shift-click adds more)"
        elif refs[0].on_the_fly:
            query = f"the clicked point, embedded on the fly ({refs[0].distance_m:.0f} m from the nearest cell)"
        elif refs[0].note:
            query = f"the nearest cell ({refs[0].distance_m:.0f} m away; not embedded on the fly: {refs[0].note})"
        else:
            query = "the nearest cell"
        best = ", ".join(f"{s:.4f}" for s in result.scores[:3])
        return (f"Query: {query}. Best cosines {best}. "
                f"{exclusion_text(result, self.exclude_radius_m is None)}")

    # ---- mask ----------------------------------------------------------------------------------
    def make_mask(self, quantile: float | None = None, threshold: float | None = None) -> QgsVectorLayer | None:
        """Layer "similar mask": the cells whose similarity is at least ``threshold`` (or the heat's ``quantile``)."""
        search = self.current_search() if self.heat is not None else None
        if search is None or len(search.es) != len(self.heat):
            self.message("Click a place first: the mask is cut from its similarity heat map.", Qgis.Warning)
            return None
        if threshold is None:
            threshold = float(np.quantile(self.heat, float(quantile if quantile is not None else 0.9)))
        chosen = np.flatnonzero(self.heat >= threshold)
        layer = squares_layer(MASK_NAME, self.layer.crs(), search.es.xy[chosen], search.stride, [
            ("cell", search.es.cell[chosen]), ("score", self.heat[chosen]),
            ("percentile", percentiles(self.heat)[chosen])])
        symbol = QgsFillSymbol.createSimple({"color": "106,61,154,150", "outline_style": "no"})
        layer.setRenderer(QgsSingleSymbolRenderer(symbol))
        self.mask_threshold = float(threshold)
        self._replace("mask", layer)
        self.message(f"Mask: {len(chosen)} of {len(self.heat)} cells with cosine ≥ {threshold:.4f}.", Qgis.Info)
        self.changed.emit()
        return layer

    def save_mask(self, path) -> Path:
        """Write the mask layer as a GeoPackage (layer ``similar_mask``); a ``Loc2VecError`` when there is none."""
        from loc2vec_engine import ATTRIBUTION
        from loc2vec_engine.atomic import atomic_output

        layer = self.layer_of("mask")
        if layer is None:
            raise Loc2VecError("there is no mask to save", "click a place, then choose a threshold")
        path = Path(path)
        options = QgsVectorFileWriter.SaveVectorOptions()
        options.driverName, options.layerName, options.fileEncoding = "GPKG", "similar_mask", "UTF-8"
        options.layerOptions = [f"DESCRIPTION=cells with cosine >= {self.mask_threshold:.6f}. {ATTRIBUTION}"]
        with atomic_output(path, suffix=".part.gpkg") as tmp:
            error, text, *_ = QgsVectorFileWriter.writeAsVectorFormatV3(layer, str(tmp),
                                                                        self.project.transformContext(), options)
            if error != QgsVectorFileWriter.NoError:
                raise Loc2VecError(f"could not write {path.name}: {text}", "choose another file or folder")
        return path

    # ---- reading back ----------------------------------------------------------------------------
    def layer_of(self, which: str):
        """The current "result", "heat" or "mask" layer (None when absent or removed by the user)."""
        layer_id = self._layer_ids.get(which)
        return self.project.mapLayer(layer_id) if layer_id else None

    def highlighted_cells(self) -> list[int]:
        """``cell`` of the highlighted places, by rank, as read back from the "similar places" layer."""
        layer = self.layer_of("result")
        if layer is None:
            return []
        feats = sorted(layer.getFeatures(), key=lambda f: f["rank"])
        return [int(f["cell"]) for f in feats]

    def highlighted_fids(self) -> list[int]:
        """Feature ids of the highlighted cells in the embeddings layer (matched by its ``cell`` field)."""
        if self.layer is None:
            return []
        if self._cell_fids is None:
            request = QgsFeatureRequest().setFlags(QgsFeatureRequest.NoGeometry).setSubsetOfAttributes(
                ["cell"], self.layer.fields())
            self._cell_fids = {int(f["cell"]): f.id() for f in self.layer.getFeatures(request)}
        return [self._cell_fids[c] for c in self.highlighted_cells() if c in self._cell_fids]

    def select_on_layer(self) -> int:
        """Select the highlighted cells on the embeddings layer (the UMAP dock outlines them too)."""
        fids = self.highlighted_fids()
        if self.layer is not None:
            self.layer.selectByIds(fids)
        return len(fids)

    # ---- clearing ------------------------------------------------------------------------------
    def clear(self, quiet: bool = False) -> None:
        """Remove the temporary layers and forget the reference places (Esc)."""
        for which in self._layer_ids:
            self._remove(which)
        self.scoring.clear()  # the negative examples, the score's mask
        self.references, self.query_vector, self.result, self.heat, self.mask_threshold = [], None, None, None, None
        if self._tmp is not None:
            shutil.rmtree(self._tmp, ignore_errors=True)
            self._tmp = None
        self.canvas().refresh()  # the canvas would keep its last picture of the removed layers
        if not quiet:
            self.message("Similar places cleared.", Qgis.Info)
        self.changed.emit()

    def _replace(self, which: str, layer) -> None:
        self._remove(which)
        self.project.addMapLayer(layer)
        self._layer_ids[which] = layer.id()

    def _remove(self, which: str) -> None:
        self.drop_layer(self.layer_of(which))
        self._layer_ids[which] = None

    def drop_layer(self, layer) -> None:
        """Remove ``layer`` (if any) from the project, and its file when it is one of the tool's scratch rasters."""
        if layer is None:
            return
        source = layer.source() if isinstance(layer, QgsRasterLayer) else None
        self.project.removeMapLayer(layer.id())
        if source and self._tmp is not None and Path(source).parent == self._tmp:
            Path(source).unlink(missing_ok=True)

    def message(self, text: str, level=Qgis.Info) -> None:
        self.last_message = (text, level)
        if self.bar is not None:
            if self._bar_item is not None:
                try:
                    self.bar.popWidget(self._bar_item)
                except RuntimeError:  # already gone (its time ran out, or the user closed it)
                    pass
            self.bar.pushMessage("loc2vec", text, level=level, duration=0 if level == Qgis.Critical else 8)
            item = self.bar.currentItem()  # ours, unless the bar did not show it (another note stays on top)
            self._bar_item = item if item is not None and text in item.text() else None
