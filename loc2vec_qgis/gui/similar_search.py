"""What the "Find similar places" map tool searches: one embeddings layer loaded for queries.

``LayerSearch`` holds a layer's vectors (``PlaceSearch``), its grid and, when the layer's model and
area raster are still on disk, the ONNX encoder that embeds a click between cells. ``warm_up`` loads
all of it ahead of the first click (the tool calls it when it is activated). No Qt widgets here.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from qgis.core import QgsProviderRegistry, QgsVectorLayer

from loc2vec_engine.errors import Loc2VecError

ON_THE_FLY_FRACTION = 0.25  # of the stride: a click this far from the nearest cell is embedded itself
# The end of the fix when "why alike" cannot find the layer's area raster (the engine's says --area).
AREA_HINT = "embed the area again with 'Embed area' (it records where its area raster is)"


def is_embeddings_layer(layer) -> bool:
    """A loc2vec embeddings GeoPackage layer (fields ``cell`` and ``embedding``, OGR provider)."""
    return (isinstance(layer, QgsVectorLayer) and layer.isValid() and layer.providerType() == "ogr"
            and {"cell", "embedding"} <= set(layer.fields().names()))


def layer_path(layer) -> Path:
    """The GeoPackage file behind an OGR layer."""
    return Path(QgsProviderRegistry.instance().decodeUri("ogr", layer.source())["path"])


# ---- one embeddings layer, loaded for queries ------------------------------------------------
@dataclass
class Reference:
    """One clicked place: its query vector, the nearest cell, and whether it was embedded on the fly."""

    lonlat: tuple[float, float]
    vector: np.ndarray
    row: int  # nearest cell (row of the EmbeddingSet)
    distance_m: float  # from the click to that cell's centre, in the layer CRS
    on_the_fly: bool
    note: str = ""  # why a between-cells click used the nearest cell instead


class LayerSearch:
    """An embeddings layer's vectors (``PlaceSearch``), grid and, when available, its ONNX model."""

    def __init__(self, layer: QgsVectorLayer):
        from loc2vec_engine.embeddings import read_embeddings
        from loc2vec_engine.search.similar import PlaceSearch, grid_stride

        self.path = layer_path(layer)
        self.es = read_embeddings(self.path)
        self.search = PlaceSearch(self.es)
        self.stride = grid_stride(self.es)
        self.grid = HeatGrid.of(self.es.xy, self.stride)
        self._encoder = None  # (OnnxEncoder or None, why not)
        self._area = None  # the area raster, paletted once by the first between-cells click
        self._explainer = None  # (Explainer or None, why not): "why alike", loaded on first use
        self._to_xy = None

    def reference(self, lonlat) -> Reference:
        """The query for a click at ``lonlat``; a point outside the embedded area is a ``Loc2VecError``."""
        from loc2vec_engine.search.similar import query_cells

        row = int(query_cells(self.es, [lonlat])[0])
        distance = float(np.hypot(*(self.es.xy[row] - self._xy(lonlat))))
        ref = Reference(tuple(lonlat), self.es.vectors[row], row, distance, False)
        if distance <= self.stride * ON_THE_FLY_FRACTION:
            return ref
        encoder, why = self.encoder()
        if encoder is None:
            ref.note = why
            return ref
        from loc2vec_engine.embeddings.embed import embed_points

        try:
            _, vectors, _, self._area = embed_points(encoder, self._area or self.es.meta["area_path"], [lonlat],
                                                     device="cpu")
            vector = vectors[0]
        except Loc2VecError as e:
            ref.note = e.problem
            return ref
        return Reference(tuple(lonlat), vector, row, distance, True)

    def warm_up(self) -> None:
        """Load now what the first click would: the CRS transforms, the heat-map writer, the ONNX session
        and the paletted area raster (one tile embedded), and run one query through the search."""
        from osgeo import gdal  # noqa: F401  the heat raster's writer

        row = len(self.es) // 2
        lonlat = tuple(float(v) for v in self.es.lonlat()[row])
        self._xy(lonlat)
        self.search.highlight([lonlat], 1, 0.0)
        encoder, _ = self.encoder()
        if encoder is None or self._area is not None:
            return
        from loc2vec_engine.embeddings.embed import embed_points

        try:
            self._area = embed_points(encoder, self.es.meta["area_path"], [lonlat], device="cpu")[3]
        except Loc2VecError:
            pass  # a between-cells click will say why

    def encoder(self):
        """(OnnxEncoder, "") when the layer's model and area raster exist and the model is the same, else (None, why)."""
        if self._encoder is None:
            self._encoder = self._load_encoder()
        return self._encoder

    def explainer(self):
        """(Explainer, "") for "why alike" (the engine's, with the loaded model and area raster), else (None, why)."""
        if self._explainer is None:
            from loc2vec_engine.explain import Explainer

            encoder, _ = self.encoder()
            try:
                if encoder is not None and self._area is not None:
                    explainer = Explainer(encoder, self._area)
                else:  # the engine finds them (a moved area raster next to the file, the shipped model)
                    explainer = Explainer.for_embeddings(self.es, encoder=encoder, hint=AREA_HINT)
                    self._area = self._area or explainer.area
                self._explainer = explainer, ""
            except Loc2VecError as e:
                self._explainer = None, f"{e.problem}. {e.fix[:1].upper()}{e.fix[1:]}."
        return self._explainer

    def query_xy(self, refs) -> np.ndarray:
        """(Q, 2) where the query's tiles are, in the layer's CRS: the clicked point when it was embedded on the
        fly, else the centre of its nearest cell (whose embedding the query is)."""
        return np.asarray([self._xy(r.lonlat) if r.on_the_fly else self.es.xy[r.row] for r in refs], float)

    def _load_encoder(self):
        meta = self.es.meta
        model, area = meta.get("model_path"), meta.get("area_path")
        if not model or not Path(model).is_file():
            return None, f"model file {model or '(not recorded)'} not found"
        if not area or not Path(area).is_file():
            return None, f"area raster {area or '(not recorded)'} not found"
        from loc2vec_engine.embeddings.onnx_encoder import OnnxEncoder

        try:
            encoder = OnnxEncoder(model, device="cpu")
        except Loc2VecError as e:
            return None, e.problem
        if encoder.sha256 != meta.get("model_sha256"):
            return None, f"{Path(model).name} is not the model these embeddings were made with (its SHA-256 differs)"
        return encoder, ""

    def _xy(self, lonlat) -> np.ndarray:
        if self._to_xy is None:
            from loc2vec_engine.geo.crs import transformer_from_wgs84

            self._to_xy = transformer_from_wgs84(self.es.crs_wkt)
        return np.asarray(self._to_xy.transform(float(lonlat[0]), float(lonlat[1])), float)


@dataclass
class HeatGrid:
    """Where each cell sits in a raster of one pixel per cell (cells on a regular grid only)."""

    cols: np.ndarray
    rows: np.ndarray
    width: int
    height: int
    geotransform: tuple

    MAX_PIXELS = 50_000_000

    @classmethod
    def of(cls, xy: np.ndarray, stride: float) -> HeatGrid | None:
        """The grid, or None when the cells are not on one ``stride`` grid (then the heat map is points)."""
        x0, y1 = xy[:, 0].min(), xy[:, 1].max()
        fc, fr = (xy[:, 0] - x0) / stride, (y1 - xy[:, 1]) / stride
        cols, rows = np.rint(fc).astype(np.int64), np.rint(fr).astype(np.int64)
        if max(np.abs(fc - cols).max(), np.abs(fr - rows).max()) > 0.01:
            return None
        width, height = int(cols.max()) + 1, int(rows.max()) + 1
        if width * height > cls.MAX_PIXELS:
            return None
        return cls(cols, rows, width, height, (x0 - stride / 2, stride, 0.0, y1 + stride / 2, 0.0, -stride))


def percentiles(heat: np.ndarray) -> np.ndarray:
    """(N,) share of cells (in %) at most as similar as each cell: 100 = the best; ties share a value."""
    order = np.argsort(heat, kind="stable")
    ordered = heat[order]
    out = np.empty(len(heat), np.float32)
    out[order] = np.searchsorted(ordered, ordered, side="right") * (100.0 / len(heat))  # sorted queries: fast
    return out
