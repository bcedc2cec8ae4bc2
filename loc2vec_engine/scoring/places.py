"""``score_places``: read the embeddings and the examples, score every cell, threshold, write the outputs.

Every output is checked writable before the work and written to a temporary file; all are renamed
into place only once every one of them is complete, so a failure leaves none behind.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import Loc2VecError


@dataclass
class ScoringResult:
    es: object  # the EmbeddingSet
    layout: object  # CellLayout
    positives: object  # Examples
    negatives: object
    scores: object  # Scores
    mask: object  # Mask
    written: list  # paths written


def score_embeddings(es, positives, negatives=(), method: str = "auto", threshold: float | None = None,
                     seed: int = 0) -> ScoringResult:
    """Score every cell of the EmbeddingSet ``es`` from example places (see ``read_examples``); no file written."""
    from ..search.similar import one_tile_m
    from .examples import check_disjoint, read_examples
    from .layout import cell_layout
    from .mask import threshold_mask
    from .score import score_cells

    layout = cell_layout(es)
    pos = read_examples(es, layout, list(positives), "positive")
    neg = read_examples(es, layout, list(negatives or ()), "negative")
    check_disjoint(es, pos, neg)
    tile = one_tile_m(es)
    block = np.floor(es.xy / tile).astype(np.int64)
    groups = block[:, 0] * 1_000_003 + block[:, 1]
    scores = score_cells(es.vectors, pos.rows, neg.rows, method=method, threshold=threshold, seed=seed,
                         groups=groups)
    mask = threshold_mask(layout, scores.values, scores.threshold)
    return ScoringResult(es, layout, pos, neg, scores, mask, [])


def score_places(embeddings, positives, negatives=(), out=None, raster=None, histogram=None,
                 method: str = "auto", threshold: float | None = None, seed: int = 0) -> ScoringResult:
    """Score the cells of the embeddings GeoPackage ``embeddings`` and write ``out`` (GeoPackage: layers
    'score' and 'mask'), optionally ``raster`` (float32 GeoTIFF) and ``histogram`` (PNG)."""
    from ..atomic import atomic_output, check_writable
    from ..embeddings.store import read_embeddings
    from .output import write_gpkg, write_histogram, write_raster

    outputs = [(p, writer, suffix) for p, writer, suffix in ((out, write_gpkg, ".part.gpkg"),
                                                             (raster, write_raster, ".part.tif"),
                                                             (histogram, write_histogram, ".part.png")) if p]
    _check_outputs(embeddings, [p for p, _, _ in outputs])
    for path, _, _ in outputs:
        check_writable(path)  # before any work
    result = score_embeddings(read_embeddings(embeddings), positives, negatives, method=method,
                              threshold=threshold, seed=seed)
    with contextlib.ExitStack() as stack:  # renamed in turn only when every writer has finished
        temps = [(stack.enter_context(atomic_output(path, suffix=suffix)), writer) for path, writer, suffix in outputs]
        for tmp, writer in temps:
            writer(tmp, result.es, result)
    result.written = [Path(p) for p, _, _ in outputs]
    return result


def _check_outputs(embeddings, paths) -> None:
    resolved = [Path(p).resolve() for p in paths]
    for p, r in zip(paths, resolved):
        if r == Path(embeddings).resolve():
            raise Loc2VecError(f"output {p} is the embeddings file", "write the scores to a new file, e.g. score.gpkg")
    if len(set(resolved)) != len(resolved):
        raise Loc2VecError("two outputs have the same path",
                           "give the GeoPackage, raster and histogram their own names")
