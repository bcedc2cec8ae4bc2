"""``loc2vec similar``: the cells most like a place, in the same embeddings file or another one.

By default the cells within one tile of the query (the tile size of the model that made the
embeddings, 500 m for the shipped model) are left out: they share the query's own map tile and would
fill the top k with its own neighbourhood. ``--exclude-radius 0`` keeps them, a number is that radius.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from .index import EXACT_BELOW

_DESCRIPTION = """\
The k cells whose embeddings are most similar (cosine) to the cell at --at, with their scores and
ground distances from the query. Several --at: the query is the mean embedding of those places.
Similar places elsewhere: the cells within one tile of the query (the tile size of the model that
made the embeddings, 500 m for the shipped model) are left out, as they share most of the query's own
map tile. --exclude-radius M leaves out M metres instead; --exclude-radius 0 keeps every cell (the
query cell then comes back first, score 1.0: a sanity check). --in searches another embeddings file
made with the same model; only its cells within the radius of the query are left out (none when it
covers another city).
Below --exact-below cells (default 50,000) the search is exact; above, a faiss IVF index tuned to
recall@10 >= 0.99 is built once and kept next to the file (EMB.gpkg.l2vindex) for later queries.
--explain says why each hit is alike: the query's and the hit's tiles are cut again from the area
raster the embeddings were made from (recorded in the file, or its name next to it; else --area), each
channel group (roads, buildings, nature + land use, transit + POIs) is blanked in both and both are
embedded again: the drop in cosine is what that group carries; with the share of pixels each channel
covers in the two tiles, in words. With --out the explanation, the top group and the drop per group
are columns (explain, top_group, drop_roads, ...).
"""


def add_parsers(sub) -> None:
    s = sub.add_parser("similar", help="the k cells most like a place (cosine similarity of embeddings)",
                       description=_DESCRIPTION, formatter_class=argparse.RawDescriptionHelpFormatter)
    s.add_argument("embeddings", help="embeddings GeoPackage holding the query place (from loc2vec embed)")
    s.add_argument("--at", action="append", required=True, metavar="LON,LAT",
                   help="query place (WGS84); repeat for several reference places, e.g. --at -8.611,41.146 "
                        "--at -8.606,41.141")
    s.add_argument("--k", type=int, default=10, help="number of similar cells (default 10)")
    s.add_argument("--in", dest="target", metavar="OTHER.gpkg",
                   help="search this embeddings file instead (another city); it must come from the same model")
    s.add_argument("--out", help="also write the hits as GeoPackage layer 'similar' (points; rank, cell, score, "
                                 "distance_m; with --explain also explain, top_group, drop_<group>)")
    s.add_argument("--exclude-radius", type=float, default=None, metavar="M",
                   help="leave out cells within M metres of the query places (default: one tile, the tile size "
                        "of the model that made the embeddings, 500 m for the shipped model; 0 = off, keep the "
                        "query cell)")
    s.add_argument("--exact-below", type=int, default=EXACT_BELOW, metavar="N",
                   help=f"search exactly below N cells, with an index above (default {EXACT_BELOW:,})")
    s.add_argument("--explain", action="store_true",
                   help="say why each hit is alike: the channel groups whose blanking lowers the cosine most, and "
                        "the two tiles' composition (needs the model and the area raster the embeddings came from)")
    s.add_argument("--area", metavar="AREA.tif", help="--explain: the area raster of the embeddings (default: the "
                                                       "recorded one, else its name next to the file)")
    s.add_argument("--in-area", metavar="AREA.tif", help="--explain: the area raster of the --in file (default: "
                                                          "the recorded one, else its name next to that file)")
    s.add_argument("--model", metavar="MODEL.onnx", help="--explain: the model the embeddings were made with "
                                                          "(default: the recorded one, else the shipped one when it "
                                                          "is that model)")
    s.set_defaults(func=cmd_similar)


def cmd_similar(args) -> None:
    from .. import ATTRIBUTION
    from ..atomic import check_writable
    from ..embeddings.store import read_embeddings
    from ..errors import Loc2VecError
    from .index_file import index_for
    from .similar import parse_lonlat, similar_at, write_similar

    lonlats = [parse_lonlat(t) for t in args.at]
    given = [f"--{name.replace('_', '-')}" for name in ("area", "in_area", "model") if getattr(args, name)]
    if given and not args.explain:
        raise Loc2VecError(f"{' and '.join(given)} only matter with --explain", "add --explain, or leave them out")
    inputs = [Path(p) for p in (args.embeddings, args.target) if p]
    if args.out:
        check_writable(args.out)  # before any work
        if any(Path(args.out).resolve() == p.resolve() for p in inputs):
            raise Loc2VecError(f"--out {args.out} is an input file", "write the hits to a new file, e.g. similar.gpkg")
    source = read_embeddings(args.embeddings)
    target = read_embeddings(args.target) if args.target else source
    if args.exact_below < 1:
        raise Loc2VecError(f"--exact-below must be a positive number of cells, not {args.exact_below}",
                           f"use e.g. --exact-below {EXACT_BELOW}")
    explainer = _explainer(source, args) if args.explain else None  # a missing area raster: before the search
    index, how = index_for(target, exact_below=args.exact_below)
    result = similar_at(source, lonlats, args.k, target=target, exclude_radius_m=args.exclude_radius, index=index)
    explanations = _explain(source, target, result, explainer, args) if explainer is not None else None
    where = f" in {target.path.name}" if args.target else ""
    print(f"most like {' + '.join(f'{x:.5f},{y:.5f}' for x, y in lonlats)} ({source.path.name}){where}: "
          f"top {len(result)} of {len(target)} cells ({how})")
    print(_exclusion_note(result, args.exclude_radius))
    if explanations is not None:
        _print_query(explanations, explainer)
    print(f"{'rank':>4}  {'score':>9}  {'lon':>11} {'lat':>10}  {'distance':>10}")
    for rank, (score, (lon, lat), dist) in enumerate(zip(result.scores, result.lonlat, result.distance_m), 1):
        print(f"{rank:4d}  {score:9.6f}  {lon:11.5f} {lat:10.5f}  {_metres(dist):>10}")
        if explanations is not None:
            _print_explanation(explanations[rank - 1])
    if args.out:
        columns = None
        if explanations is not None:
            from ..explain import explain_columns

            columns = explain_columns(explanations)
        write_similar(args.out, target, result, columns=columns)
        print(f"wrote {args.out} (layer 'similar')")
    print(ATTRIBUTION)


def _explainer(source, args):
    from ..explain import Explainer

    return Explainer.for_embeddings(source, area=args.area, model=args.model, device="cpu")


def _explain(source, target, result, explainer, args):
    from ..explain import explain_similar

    return explain_similar(source, result, target=target, explainer=explainer, target_area=args.in_area)


def _print_query(explanations, explainer) -> None:
    from ..explain import describe_tile

    if explanations:
        e = explanations[0]
        print(f"why alike: each channel group blanked in both tiles, re-embedded ({explainer.encoder.path.name}): "
              "the change in cosine; pixel shares query/result")
        print(f"query: {describe_tile(e.query_shares, e.channel_names, e.query_levels)}")


def _print_explanation(e, width: int = 108) -> None:
    """The words, then the groups side by side, wrapped (never inside '42 %' or '+0.008'), indented under the row."""
    import textwrap

    from ..explain.words import group_items

    for text in (e.text, ", ".join(item.replace(" ", "\u00a0") for item in group_items(e))):
        glued = text.replace(" %", "\u00a0%")
        print(textwrap.fill(glued, width=width, initial_indent=" " * 6, subsequent_indent=" " * 8,
                            break_on_hyphens=False).replace("\u00a0", " "))


def _exclusion_note(result, asked) -> str:
    """What was left out and why, so an empty neighbourhood in the table is not a surprise."""
    if result.exclude_radius_m <= 0:
        return "every cell searched, the query's surroundings too (--exclude-radius 0)"
    why = "one tile of the model, the default" if asked is None else "--exclude-radius"
    return (f"left out the {result.n_excluded:,} cells within {result.exclude_radius_m:g} m of the query ({why}; "
            "--exclude-radius 0 keeps them)")


def _metres(d: float) -> str:
    return f"{d / 1000:,.1f} km" if d >= 10_000 else f"{d:,.0f} m"
