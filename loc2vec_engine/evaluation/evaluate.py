"""``evaluate_model``: every metric of an ONNX model on an area, beside its baselines, into a report folder.

Order: check every input (model, area, channels, OSM source, output folder) before the long work; then
``measure``'s stages (cells, views and triplets; embeddings of the model and the baselines; metrics;
the ablation); the report. ``measure.measure_model`` is the same without the report, for any encoder.
"""

from __future__ import annotations

import shlex
import time
from pathlib import Path

from .. import ATTRIBUTION, __version__
from ..progress import Progress
from .measure import ABLATION_STAGES, MAX_CELLS, MAX_QUERIES, MIN_VALID, STRIDE_M
from .measure import STAGES as MEASURE_STAGES

STAGES = MEASURE_STAGES + ABLATION_STAGES + 1  # inputs, evaluation set, model, 5 baselines, 4 ablation groups, report

__all__ = ["MAX_CELLS", "MAX_QUERIES", "MIN_VALID", "STRIDE_M", "evaluate_model"]


def evaluate_model(model_path, area_path, osm_source, out_dir, stride_m: float = STRIDE_M, seed: int = 0,
                   max_cells: int = MAX_CELLS, max_queries: int = MAX_QUERIES, min_valid: float = MIN_VALID,
                   device: str = "auto", progress=None, command: str | None = None) -> dict:
    """Evaluate ``model_path`` on ``area_path`` with venues from ``osm_source``; write ``out_dir``.

    Returns the dict written as ``metrics.json`` (``measure.measure_model``'s, plus the model, area and
    source described). ``progress``: a ``ProgressCallback`` (cancel raises ``Cancelled`` and leaves nothing
    behind).
    """
    from ..embeddings.onnx_encoder import OnnxEncoder
    from .measure import Timed, check_numbers, load_inputs, run_measurement
    from .report import check_report_dir, report_folder, write_report

    t0 = time.perf_counter()
    check_numbers(stride_m, max_cells, max_queries, min_valid)
    check_report_dir(out_dir)
    with Progress(STAGES, "evaluate", progress) as progress_bar:
        bar = Timed(progress_bar)
        inputs = load_inputs(OnnxEncoder(model_path, device), area_path, osm_source)
        bar.update(1, "inputs read")
        result = run_measurement(inputs, stride_m, max_cells, max_queries, min_valid, seed, device, bar)
        result.update(_describe(inputs, stride_m, max_cells, max_queries, seed, device, out_dir, command))
        result["elapsed_s"] = round(time.perf_counter() - t0, 1)
        result["stage_seconds"] = bar.seconds
        with report_folder(out_dir) as tmp:
            write_report(tmp, result)
        progress_bar.finish("report written")  # after the rename: too late to cancel
    return result


# ---- description -------------------------------------------------------------------------------------

def _describe(inputs, stride_m, max_cells, max_queries, seed, device, out_dir, command) -> dict:
    enc, area, venues = inputs["encoder"], inputs["area"], inputs["venues"]
    if command is None:
        parts = ["loc2vec", "evaluate", str(enc.path), str(inputs["area_path"]), "--osm", str(inputs["osm_source"]),
                 "--out", str(out_dir), "--stride", f"{stride_m:g}", "--max-cells", str(max_cells),
                 "--max-queries", str(max_queries), "--seed", str(seed)]
        command = shlex.join(parts + (["--device", device] if device != "auto" else []))
    return {
        "loc2vec_version": __version__, "command": command, "attribution": ATTRIBUTION,
        "model": {"file": enc.path.name, "path": str(enc.path.resolve()), "sha256": enc.sha256,
                  "encoder": enc.meta.get("encoder"), "tile_size_px": enc.tile_size_px,
                  "tile_size_m": enc.tile_size_m, "embedding_size": enc.embedding_size,
                  "training_areas": enc.meta.get("training_areas"), "provider": enc.provider},
        "area": {"file": inputs["area_path"].name, "path": str(inputs["area_path"].resolve()),
                 "named_like_a_training_area": inputs["area_path"].name in (enc.meta.get("training_areas") or []),
                 "pixel_size_m": area.pixel_size, "bounds": list(area.bounds), "width": area.width,
                 "height": area.height},
        "osm_source": {"file": Path(str(inputs["osm_source"])).name, "path": str(inputs["osm_source"]),
                       "venues_read": venues.read, "venues_in_area": len(venues), "by_category": venues.counts()},
    }
