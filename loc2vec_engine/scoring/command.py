"""``loc2vec score``: how much every cell looks like example places, with a mask of the best ones."""

from __future__ import annotations

import argparse
from pathlib import Path

_DESCRIPTION = """\
Scores every cell of an embeddings file by how much it looks like the --positive example places (and
unlike the --negative ones). A place is LON,LAT (WGS84; its cell) or a vector file (OGR: GeoPackage,
GeoJSON, Shapefile; FILE|layername=NAME for one layer of several) of points (the cell of each) or
polygons (every cell whose centre lies inside), in any CRS. A file with a text field 'example' (the
QGIS map tool's 'Save examples…' GeoJSON) gives --positive its "positive" features and --negative its
"negative" ones: --positive ex.geojson --negative ex.geojson uses both.

Methods (--method auto picks): prototype = cosine to the mean positive, minus the cosine to the mean
negative when there are negatives (from a single example on; held out by leave-one-out when there
are 2+ positives and a negative); logistic = class-balanced logistic regression (scikit-learn) with
probabilities calibrated on cross-validated decisions and its cross-validated ROC AUC, chosen by auto
with at least 5 positive and 5 negative cells.

Default --threshold: 0.5 for the logistic probability (even odds); for the prototype, the score of
the weakest positive (every example lies in the mask), but never above the best 5 % of cells (a
single example's own cell scores 1).

Writes --out (GeoPackage: layer 'score', a point per cell with cell, score, rank and example = 1 /
-1 / 0; layer 'mask', the cells at or above the threshold dissolved, with cells and area_km2),
--raster (float32 GeoTIFF on the embedding grid, nodata outside the cells) and a histogram PNG.
"""


def add_parsers(sub) -> None:
    from .score import METHODS

    s = sub.add_parser("score", help="score every cell by its likeness to example places (prototype or logistic)",
                       description=_DESCRIPTION, formatter_class=argparse.RawDescriptionHelpFormatter)
    s.add_argument("embeddings", help="embeddings GeoPackage (from loc2vec embed)")
    s.add_argument("--positive", action="append", required=True, metavar="P",
                   help="a place like the ones to find: LON,LAT or a vector file of points/polygons; repeat")
    s.add_argument("--negative", action="append", default=[], metavar="N",
                   help="a place unlike them: LON,LAT or a vector file; repeat")
    s.add_argument("--out", required=True, help="output GeoPackage (layers 'score' and 'mask')")
    s.add_argument("--raster", metavar="SCORE.tif", help="also write the scores as a float32 GeoTIFF")
    s.add_argument("--histogram", metavar="PNG",
                   help="histogram of the scores with the threshold (default: OUT's name + _histogram.png)")
    s.add_argument("--no-histogram", action="store_true", help="write no histogram")
    s.add_argument("--threshold", type=float, help="mask the cells scoring at least this (default: see above)")
    s.add_argument("--method", default="auto", choices=METHODS, help="default auto")
    s.add_argument("--seed", type=int, default=0, help="for the cross-validation folds (default 0)")
    s.set_defaults(func=cmd_score)


def histogram_path(out) -> Path:
    out = Path(out)
    return out.with_name(f"{out.stem}_histogram.png")


def cmd_score(args) -> None:
    from .. import ATTRIBUTION
    from .places import score_places

    histogram = None if args.no_histogram else (args.histogram or histogram_path(args.out))
    result = score_places(args.embeddings, args.positive, args.negative, out=args.out, raster=args.raster,
                          histogram=histogram, method=args.method, threshold=args.threshold, seed=args.seed)
    for line in summary_lines(result):
        print(line)
    print(f"wrote {', '.join(str(p) for p in result.written)}")
    print(ATTRIBUTION)


def summary_lines(result) -> list[str]:
    """The printed summary: examples, method and why, held-out quality, threshold, cells and area above it."""
    s, m = result.scores, result.mask
    lines = [f"scored {len(result.es):,} cells of {result.es.path.name} from {len(result.positives)} positive and "
             f"{len(result.negatives)} negative cells",
             f"  positives: {result.positives.describe()}"]
    if len(result.negatives):
        lines.append(f"  negatives: {result.negatives.describe()}")
    lines.append(f"method: {s.method} ({s.describe()}; {s.why})")
    held = f"ROC AUC {s.heldout_auc:.3f} ({s.heldout_how})" if s.heldout_auc is not None else s.heldout_how
    lines.append(f"held out: {held}")
    lines.append(f"threshold {s.threshold:.4g} ({s.threshold_why}): {m.cells:,} cells, {m.area_km2:,.4g} km² "
                 f"at or above it (cells are {result.layout.stride:g} m squares)")
    lines.append(f"scores {float(s.values.min()):.4f} .. {float(s.values.max()):.4f}")
    return lines
