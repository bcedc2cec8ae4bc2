"""``loc2vec compare``: two rasterizations of the same ground, embedded on one grid, compared cell by cell."""

from __future__ import annotations

import argparse
from pathlib import Path

_DESCRIPTION = """\
Compares two area rasters of the same ground made from two sources: two OSM dates, or a planner's
edited layers (a new park, a removed industrial block) through the OGR / QGIS-layer path of loc2vec
rasterize. Both must be on the same grid (same --bbox/--clip, --crs and --pixel-size) with the same
channel spec; both are embedded with --model on the --stride grid of loc2vec embed.

Per cell: change = 1 - cosine of the two embeddings (0: the cell's tile is the same in both; the
tile is the model's, 500 m for the shipped one, so an edit moves every cell whose tile touches it),
and the nearest cluster before and after: the centroids of k-means (--k, default 8) fitted on the
BEFORE embeddings, or of the clusters of --clusters EMB.gpkg (from loc2vec cluster, same model).

Writes --out (GeoPackage, layer 'change': a point per cell with cell, change, cluster_before,
cluster_after, changed_cluster = 1 / 0) and a change map PNG (default: OUT's name + _map.png), and
prints the cells, the mean change, how many cells switched cluster and where the largest change is.
"""


def add_parsers(sub) -> None:
    from ..embeddings.embed import DEFAULT_BATCH, DEFAULT_STRIDE_M
    from .compare import DEFAULT_K

    c = sub.add_parser("compare", help="what a change would do: two rasterizations of one area, embedded and "
                                       "compared cell by cell", description=_DESCRIPTION,
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    c.add_argument("before", metavar="BEFORE.tif", help="area raster of the ground as it is (or was)")
    c.add_argument("after", metavar="AFTER.tif", help="area raster of the same ground changed, on the same grid")
    c.add_argument("--model", default="default", help="a .onnx model, or 'default' for the shipped one (default)")
    c.add_argument("--out", required=True, metavar="CHANGE.gpkg", help="output GeoPackage (layer 'change')")
    c.add_argument("--map", metavar="PNG", help="the change map (default: OUT's name + _map.png)")
    c.add_argument("--no-map", action="store_true", help="write no map")
    c.add_argument("--stride", type=float, default=DEFAULT_STRIDE_M,
                   help=f"metres between tile centres (default {DEFAULT_STRIDE_M:g}, as loc2vec embed)")
    c.add_argument("--k", type=int, help=f"k-means clusters fitted on BEFORE (default {DEFAULT_K})")
    c.add_argument("--clusters", metavar="EMB.gpkg",
                   help="use the cluster centroids of this clustered embeddings file (same model) instead")
    c.add_argument("--seed", type=int, default=0, help="k-means seed (default 0)")
    c.add_argument("--batch-size", type=int, default=DEFAULT_BATCH, help=f"tiles per batch (default {DEFAULT_BATCH})")
    c.add_argument("--threads", type=int, help="CPU threads for cutting tiles (default 1)")
    c.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda"),
                   help="onnxruntime device (auto: CUDA when available)")
    c.set_defaults(func=cmd_compare)


def map_path(out) -> Path:
    out = Path(out)
    return out.with_name(f"{out.stem}_map.png")


def cmd_compare(args) -> None:
    from .. import ATTRIBUTION
    from .compare import compare_areas

    png = None if args.no_map else (args.map or map_path(args.out))
    result = compare_areas(args.before, args.after, model=args.model, out=args.out, map_png=png,
                           stride_m=args.stride, k=args.k, clusters=args.clusters, seed=args.seed,
                           device=args.device, batch_size=args.batch_size, threads=args.threads)
    for line in summary_lines(result):
        print(line)
    print(f"wrote {', '.join(str(p) for p in result.written)}")
    print(ATTRIBUTION)


def summary_lines(result) -> list[str]:
    """The printed summary: cells, mean change, cluster switches, where the largest change is."""
    change, switched = result.change, result.switched
    row = result.largest
    lon, lat = result.lonlat(row)
    lines = [f"compared {len(result):,} cells of {result.before.name} and {result.after.name} "
             f"({result.grid.stride_m:g} m grid, model {result.model.name})"]
    if result.left_out:
        lines.append(f"  {result.left_out:,} cells valid in only one of the rasters were left out")
    lines.append(f"change (1 - cosine): mean {float(change.mean()):.4g}, max {float(change[row]):.4g}; "
                 f"{int((change > 0).sum()):,} cells changed at all, {int((change == 0).sum()):,} not at all")
    lines.append(f"clusters: {result.clusters_from}; {int(switched.sum()):,} of {len(result):,} cells switched "
                 f"cluster")
    if change[row] == 0:
        lines.append("no cell changed: every tile is the same in both rasters")
    else:
        lines.append(f"largest change at {lon:.6f},{lat:.6f} (cell {int(result.grid.cell[row])}: cluster "
                     f"{int(result.cluster_before[row])} -> {int(result.cluster_after[row])})")
    return lines
