"""CLI: ``loc2vec evaluate MODEL.onnx AREA.tif --osm SOURCE --out REPORT_DIR``."""

from __future__ import annotations

import shlex


def cmd_evaluate(args) -> None:
    from .. import ATTRIBUTION
    from ..atomic import check_output_folder
    from .evaluate import evaluate_model

    # Before the minutes of measuring (evaluate_model checks the parent for the report's swap-in too).
    check_output_folder(args.out)
    command = shlex.join(["loc2vec", "evaluate", args.model, args.area, "--osm", args.osm, "--out", args.out,
                          "--stride", f"{args.stride:g}", "--max-cells", str(args.max_cells),
                          "--max-queries", str(args.max_queries), "--seed", str(args.seed)]
                         + (["--device", args.device] if args.device != "auto" else []))
    r = evaluate_model(args.model, args.area, args.osm, args.out, stride_m=args.stride, seed=args.seed,
                       max_cells=args.max_cells, max_queries=args.max_queries, device=args.device,
                       command=command)
    print(f"wrote {args.out}: metrics.json, report.md, plots/ "
          f"({r['cells']['evaluated']} cells, {r['elapsed_s']:.0f} s)")
    print(r["headline"])
    for v in r["verdicts"]:
        if v["verdict"] != "beats":
            print(f"  {v['text']}")
    print(ATTRIBUTION)


def add_parsers(sub) -> None:
    from .evaluate import MAX_CELLS, MAX_QUERIES, STRIDE_M

    e = sub.add_parser("evaluate", help="measure a model on an area beside baselines: metrics.json, report.md, plots")
    e.add_argument("model", help="loc2vec .onnx model (from loc2vec export)")
    e.add_argument("area", help="area GeoTIFF (loc2vec rasterize) with the model's channels")
    e.add_argument("--osm", required=True, help="OSM source for venue types: .osm.pbf/.osm file, or an OGR source "
                   "(GeoPackage, ...) with OSM tag columns; usually the one the area was rasterized from")
    e.add_argument("--out", required=True, help="report folder (written whole at the end; an earlier report there "
                   "is replaced)")
    e.add_argument("--stride", type=float, default=STRIDE_M, help=f"grid spacing in metres (default {STRIDE_M:g})")
    e.add_argument("--max-cells", type=int, default=MAX_CELLS,
                   help=f"evaluate at most this many cells, a seeded subsample (default {MAX_CELLS})")
    e.add_argument("--max-queries", type=int, default=MAX_QUERIES,
                   help=f"re-identification queries / triplet anchors (default {MAX_QUERIES})")
    e.add_argument("--seed", type=int, default=0)
    e.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    e.set_defaults(func=cmd_evaluate)
