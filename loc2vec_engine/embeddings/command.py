"""CLI: ``loc2vec embed`` (a grid over an area, or single points) and ``loc2vec merge`` (join shards)."""

from __future__ import annotations

from .embed import DEFAULT_BATCH, DEFAULT_STRIDE_M


def cmd_embed(args) -> None:
    from ..cli import _lonlat
    from .embed import embed_area, embed_points, points_meta
    from .store import write_embeddings

    if args.at:
        from ..atomic import check_writable

        check_writable(args.out)
        xy, vectors, enc, area = embed_points(args.model, args.area, [_lonlat(a) for a in args.at], args.device)
        write_embeddings(args.out, xy, vectors, area.crs_wkt, points_meta(enc, args.area))
        for a, v in zip(args.at, vectors):
            print(f"{a}: {' '.join(f'{x:+.4f}' for x in v[:8])} ... ({len(v)} values)")
        print(f"wrote {args.out} ({len(vectors)} points, {enc.provider})")
        return
    res = embed_area(args.model, args.area, args.out, stride_m=args.stride, clip=args.clip, shard=args.shard,
                     batch_size=args.batch_size, device=args.device, threads=args.threads)
    print(f"wrote {res.path}: {res.cells} cells in {res.seconds:.1f} s ({res.cells_per_s:.0f} cells/s, {res.provider})")


def cmd_merge(args) -> None:
    from .merge import merge_parts
    from .store import read_embeddings

    out = merge_parts(args.parts, args.out)
    print(f"wrote {out}: {len(read_embeddings(out))} cells from {len(args.parts)} parts")


def add_parsers(sub) -> None:
    e = sub.add_parser("embed", help="embed an area raster on a grid of tile centres (or single points) into a GeoPackage")
    e.add_argument("model", help="a .onnx model from loc2vec export, or 'default' for the shipped one")
    e.add_argument("area", help="area raster (from loc2vec rasterize) with the model's channels")
    e.add_argument("--out", required=True, help="output GeoPackage (layer 'embeddings'; schema in the README)")
    e.add_argument("--stride", type=float, default=DEFAULT_STRIDE_M,
                   help=f"metres between tile centres (default {DEFAULT_STRIDE_M:g})")
    e.add_argument("--clip", help="keep cells inside this polygon file or preset name (e.g. kyiv)")
    e.add_argument("--at", action="append", metavar="LON,LAT",
                   help="embed single points instead of a grid (repeat for several)")
    e.add_argument("--shard", metavar="I/N", help="embed only the I-th of N interleaved parts (join with loc2vec merge)")
    e.add_argument("--batch-size", type=int, default=DEFAULT_BATCH, help=f"tiles per batch (default {DEFAULT_BATCH})")
    e.add_argument("--threads", type=int, help="CPU threads for cutting tiles (default 1)")
    e.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda"),
                   help="onnxruntime device (auto: CUDA when available)")
    e.set_defaults(func=cmd_embed)

    m = sub.add_parser("merge", help="join the parts of a loc2vec embed --shard I/N job into one GeoPackage")
    m.add_argument("parts", nargs="+", help="the N part GeoPackages")
    m.add_argument("--out", required=True, help="merged GeoPackage")
    m.set_defaults(func=cmd_merge)
