"""Embed an area: tiles cut on a grid of centres, run through an ONNX encoder in batches, stored in a GeoPackage.

Sampling (numba, CPU) and inference (onnxruntime) both release the GIL, so a background thread cuts
the next batch of tiles while the encoder runs on the current one.
"""

from __future__ import annotations

import queue
import threading
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import Loc2VecError
from ..progress import Progress
from .grid import CellGrid, cell_grid, parse_shard
from .onnx_encoder import OnnxEncoder
from .store import write_embeddings

DEFAULT_STRIDE_M = 100.0
DEFAULT_BATCH = 64


@dataclass
class EmbedResult:
    path: Path
    cells: int
    seconds: float
    provider: str

    @property
    def cells_per_s(self) -> float:
        return self.cells / max(self.seconds, 1e-9)


def load_encoder_and_area(model, area, device: str = "auto"):
    """(OnnxEncoder, PalettedArea) with the area's channels checked against the model's.

    model: a path, "default" or an OnnxEncoder; area: a path or an already loaded PalettedArea
    (callers embedding point after point, like the QGIS map tool, load both once).
    """
    from ..tiles import PalettedArea

    enc = model if isinstance(model, OnnxEncoder) else OnnxEncoder(model, device)
    name = "the area" if isinstance(area, PalettedArea) else f"area raster {Path(area).name}"
    area = area if isinstance(area, PalettedArea) else PalettedArea.from_raster(area)
    enc.check_channels(area.channel_names, name)
    return enc, area


def embed_area(model, area_path, out, stride_m: float = DEFAULT_STRIDE_M, clip=None, shard: str | None = None,
               batch_size: int = DEFAULT_BATCH, device: str = "auto", threads: int | None = None,
               progress=None) -> EmbedResult:
    """Embed every kept cell of ``area_path`` (see ``grid.cell_grid``) into the GeoPackage ``out``.

    clip: a polygon file or preset name; shard: "I/N" embeds the I-th of N interleaved parts (join the
    parts with ``merge_parts``); progress: a ``ProgressCallback`` (QGIS) or None for a terminal bar.
    """
    import time

    from ..atomic import check_writable
    from ..geo.presets import load_clip_polygon

    check_writable(out)
    part = parse_shard(shard)
    _check_batch(batch_size)
    enc, area = load_encoder_and_area(model, area_path, device)
    grid = cell_grid(area, stride_m, load_clip_polygon(clip) if clip else None)
    if part is not None:
        grid = grid.shard(*part)
    if len(grid) == 0:
        raise Loc2VecError(f"no cell of the {stride_m:g} m grid lies on valid pixels of {Path(area_path).name}"
                           + (" inside the clip" if clip else ""),
                           "check --clip (it must overlap the area) or use a smaller --stride")
    t0 = time.perf_counter()
    vectors = embed_grid(enc, area, grid, batch_size, threads, progress)
    seconds = time.perf_counter() - t0
    meta = _meta(enc, area_path, grid, clip, part)
    write_embeddings(out, grid.xy, vectors, area.crs_wkt, meta, cell=grid.cell)
    return EmbedResult(Path(out), len(grid), seconds, enc.provider)


def embed_grid(enc: OnnxEncoder, area, grid: CellGrid, batch_size: int = DEFAULT_BATCH, threads: int | None = None,
               progress=None) -> np.ndarray:
    """(N, D) embeddings of the grid's cells, tiles upright and at scale 1."""
    from ..tiles import TileSampler

    sampler = TileSampler(area, backend="cpu", threads=threads, tile_size_m=enc.tile_size_m)
    out = np.empty((len(grid), enc.embedding_size), np.float32)
    bar = Progress(len(grid), "embedding cells", progress)
    try:
        for start, tiles in _prefetched_batches(sampler, grid.xy, batch_size, enc.tile_size_px):
            out[start:start + len(tiles)] = enc.embed(tiles)
            bar.update(len(tiles))
    finally:
        bar.close()
    return out


def _prefetched_batches(sampler, xy, batch_size: int, size: int):
    """Yield ``(start, tiles)`` while a worker thread already cuts the next batch."""
    q: queue.Queue = queue.Queue(maxsize=2)
    stop = threading.Event()

    def work():
        try:
            for start in range(0, len(xy), batch_size):
                if stop.is_set():
                    return
                tiles, _ = sampler.sample(xy[start:start + batch_size], size=size)
                q.put((start, tiles))
            q.put(None)
        except BaseException as e:  # handed to the consumer, raised there with its message
            q.put(e)

    worker = threading.Thread(target=work, name="loc2vec-tiles", daemon=True)
    worker.start()
    try:
        while (item := q.get()) is not None:
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        stop.set()
        while worker.is_alive():  # unblock a worker waiting on a full queue, then let it finish
            try:
                q.get_nowait()
            except queue.Empty:
                worker.join(0.05)


def embed_points(model, area_path, lonlats, device: str = "auto") -> tuple[np.ndarray, np.ndarray, OnnxEncoder, object]:
    """Embeddings of single WGS84 points: ``(xy (N, 2) in the area CRS, vectors (N, D), encoder, area)``.

    ``area_path`` may also be a loaded PalettedArea (see ``load_encoder_and_area``).
    """
    enc, area = load_encoder_and_area(model, area_path, device)
    ll = np.asarray(lonlats, np.float64).reshape(-1, 2)
    x, y = area.lonlat_to_xy(ll[:, 0], ll[:, 1])
    xy = np.stack([np.asarray(x, float), np.asarray(y, float)], axis=1)
    col, row = area.xy_to_pixel(xy[:, 0], xy[:, 1])
    col, row = np.floor(col).astype(np.int64), np.floor(row).astype(np.int64)
    for i, (c, r) in enumerate(zip(col, row)):
        if not (0 <= c < area.width and 0 <= r < area.height and area.ids[r, c] != 0):
            where = Path(area_path).name if isinstance(area_path, (str, Path)) else "the area"
            raise Loc2VecError(f"point {ll[i, 0]:.6f},{ll[i, 1]:.6f} lies outside the valid pixels of {where}",
                               "give a point inside the area (see: loc2vec info AREA.tif)")
    from ..tiles import TileSampler

    tiles, _ = TileSampler(area, tile_size_m=enc.tile_size_m).sample(xy, size=enc.tile_size_px)
    return xy, enc.embed(tiles), enc, area


def points_meta(enc: OnnxEncoder, area_path) -> dict:
    return {**_model_meta(enc), "area": Path(area_path).name, "area_path": str(Path(area_path).resolve()),
            "points": True, "stride_m": None, "grid": None, "shard": None, "clip": None}


def _meta(enc: OnnxEncoder, area_path, grid: CellGrid, clip, part) -> dict:
    return {**_model_meta(enc), "area": Path(area_path).name, "area_path": str(Path(area_path).resolve()),
            "stride_m": grid.stride_m, "grid": grid.describe(), "shard": list(part) if part else None,
            "clip": str(clip) if clip else None, "points": False}


def _model_meta(enc: OnnxEncoder) -> dict:
    return {"model": enc.meta, "model_file": enc.path.name, "model_path": str(enc.path.resolve()),
            "model_sha256": enc.sha256,
            "tile_size_m": enc.tile_size_m, "tile_size_px": enc.tile_size_px}


def _check_batch(batch_size) -> None:
    if not isinstance(batch_size, int) or isinstance(batch_size, bool) or batch_size < 1:
        raise Loc2VecError(f"batch size must be a positive integer, not {batch_size!r}", "use e.g. --batch-size 64")
