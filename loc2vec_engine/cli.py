"""The ``loc2vec`` command line: one sub-command per engine step, thin wrappers over the engine API."""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from pathlib import Path

from . import ATTRIBUTION, __version__
from .errors import Loc2VecError, MissingPackage, third_party_missing


def _lonlat(text: str) -> tuple[float, float]:
    try:
        lon, lat = (float(v) for v in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not LON,LAT (e.g. -8.6110,41.1460)") from None
    return lon, lat


def cmd_rasterize(args) -> None:
    from .geo.aoi import parse_bbox
    from .raster.rasterize import rasterize

    area = rasterize(args.source, args.out, spec=args.spec, bbox=parse_bbox(args.bbox) if args.bbox else None,
                     clip=args.clip, crs=args.crs, pixel_size=args.pixel_size, preset=args.preset,
                     layer_map=args.layer_map, chunk_px=args.chunk_px)
    print(f"wrote {args.out}: {area.width} x {area.height} px, {area.count} bands, "
          f"{area.pixel_size:g} m/px, EPSG:{area.epsg}")
    print(ATTRIBUTION)


def cmd_preview(args) -> None:
    from .tiles.preview import render_preview

    out, panels = render_preview(args.area, at_lonlat=args.at, out=args.out, panels_out=args.panels,
                                 spec=args.spec, size_px=args.size)
    print(f"wrote {out} and {panels}")


def cmd_info(args) -> None:
    from .raster.area import AreaRaster

    area = AreaRaster.open(args.area)
    w, s, e, n = area.bounds
    print(f"{area.path}: {area.width} x {area.height} px, {area.pixel_size:g} m/px, EPSG:{area.epsg}")
    print(f"bounds (area CRS): {w:.1f}, {s:.1f}, {e:.1f}, {n:.1f}")
    for i, name in enumerate(area.channel_names, 1):
        print(f"  band {i:2d}: {name}")
    for k, v in sorted(area.metadata.items()):
        print(f"  {k}: {v}")


def cmd_fetch(args) -> None:
    from .geo.aoi import parse_bbox
    from .sources.fetch import fetch_osm

    out = fetch_osm(args.place, out=args.out, bbox=parse_bbox(args.bbox) if args.bbox else None, url=args.url,
                    timeout=args.timeout)
    print(f"wrote {out}")
    print(ATTRIBUTION)


def cmd_spec(args) -> None:
    from .channels.registry import _SPECS, get_spec

    try:
        spec = get_spec(args.name)  # first: a missing or broken spec file is an error, not a traceback
    except UnicodeDecodeError:
        raise Loc2VecError(f"channel spec {args.name} is not a text (TOML) file",
                           "give a TOML file (loc2vec spec default --dump > my.toml makes one to edit) "
                           "or a spec name") from None
    if args.dump:
        sys.stdout.write(Path(_SPECS.get(args.name, args.name)).read_text(encoding="utf-8"))
        return
    print(f"spec {spec.name}: {len(spec)} channels, {spec.pixel_size_m:g} m/px, tiles {spec.tile_size_px} px")
    for i, ch in enumerate(spec.channels, 1):
        print(f"  {i:2d} {ch.name:24s} {len(ch.rules)} rule(s)  {ch.description}")


def cmd_presets(args) -> None:
    from .geo.presets import get_preset, list_presets

    for name in list_presets():
        p = get_preset(name)
        print(f"{name:12s} {p.title}  crs={p.crs or 'auto (UTM)'}  bbox={','.join(f'{v:g}' for v in p.bbox)}")


def cmd_train(args) -> None:
    from .atomic import check_output_folder
    from .channels import get_spec
    from .raster.area import AreaRaster
    from .training.config import TrainConfig
    from .training.loop import train

    # Before train() creates the run folder: a bad --out or area fails at once and leaves no empty run behind.
    # (--resume takes the areas from the saved config, and its run folder exists already.)
    check_output_folder(args.out, parents=True)
    if not args.resume:
        spec = get_spec(args.spec)
        for path in args.areas:
            AreaRaster.open(path, spec=spec)  # header only: cheap
    cfg = TrainConfig(
        areas=args.areas, out=args.out, encoder=args.encoder, embedding_dim=args.embedding_dim,
        pretrained=args.pretrained, unfreeze=args.unfreeze, tile_size_px=args.tile_size, batch_size=args.batch_size,
        steps=args.steps, max_minutes=args.max_minutes, lr=args.lr, mining=args.mining, val_every=args.val_every,
        val_triplets=args.val_triplets, patience=args.patience, pos_range_m=tuple(args.positive_m),
        neg_min_m=args.negative_min_m, neg_mode=args.negative_mode, semantic_share=args.semantic_positives,
        built_up_weight=args.built_up_weight,
        balance_areas=args.balance_areas, seed=args.seed, device=args.device, extra={"spec": args.spec},
        loss=args.loss, temperature=args.temperature, false_negative_m=args.false_negative_m,
        uniformity_weight=args.uniformity_weight, composition_weight=args.composition_weight,
        hybrid_share=args.hybrid_share, composition_transform=args.composition_transform)
    result = train(cfg, resume=args.resume)
    print(f"{result.stopped}: step {result.step}, best validation triplet accuracy {result.best_val_acc:.4f} "
          f"(channel-fractions baseline on the same triplets: {result.baseline_val_acc:.4f})")
    print(f"run folder: {result.run_dir} (best.pt, last.pt, metrics.csv, curves.png)")


def cmd_export(args) -> None:
    from .atomic import check_writable
    from .raster.area import AreaRaster
    from .training.export import export_run

    check_writable(args.out)  # before loading torch and the checkpoint
    for given, name in ((args.composition_areas, "--composition-areas"),
                        (args.composition_transform is not None, "--composition-transform")):
        if given and not args.hybrid_share:
            raise Loc2VecError(f"{name} is given without --hybrid-share",
                               f"add --hybrid-share 0.5 to export a hybrid model, or leave {name} out")
    for path in args.composition_areas or []:
        AreaRaster.open(path)  # header only: a missing or wrong file fails before torch loads
    out = export_run(args.run, args.out, which=args.checkpoint, hybrid_share=args.hybrid_share,
                     composition_areas=args.composition_areas, composition_transform=args.composition_transform)
    from .export.runtime import read_onnx_meta

    hybrid = read_onnx_meta(out).get("hybrid")
    print(f"wrote {out}" + (f" (hybrid: learned part ⊕ composition, share {hybrid['share']:g})" if hybrid else ""))


def cmd_demo(args) -> None:
    from .atomic import check_output_folder
    from .demo import run_demo

    check_output_folder(args.out, parents=True)  # the demo makes it (mkdir -p) and fills it
    run_demo(args.out, train_minutes=args.train_minutes)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="loc2vec", description="Location embeddings from OpenStreetMap map tiles.")
    p.add_argument("--version", action="version", version=f"loc2vec {__version__}")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")

    r = sub.add_parser("rasterize", help="burn an OSM/OGR source into a 12-band area GeoTIFF")
    r.add_argument("source", help=".osm.pbf / .osm file, or any OGR source (GeoPackage, GeoJSON, Shapefile, PG:...)")
    r.add_argument("--out", required=True, help="output GeoTIFF (written atomically)")
    r.add_argument("--bbox", help="lon_min,lat_min,lon_max,lat_max")
    r.add_argument("--clip", help="polygon file (e.g. a city boundary); pixels outside are empty and invalid")
    r.add_argument("--preset", help="named place: clip polygon and CRS (see `loc2vec presets`), e.g. kyiv")
    r.add_argument("--crs", help="output CRS in metres (default: auto UTM zone; Kyiv = EPSG:32636)")
    r.add_argument("--pixel-size", type=float, help="metres per pixel (default 1.953125 = 500 m / 256 px)")
    r.add_argument("--spec", default="default", help="channel spec name or TOML file (default: default)")
    r.add_argument("--layer-map", help="TOML file mapping OGR layers to channels (OGR sources only)")
    r.add_argument("--chunk-px", type=int, default=4096, help="pixels per chunk side; bounds memory (default 4096)")
    r.set_defaults(func=cmd_rasterize)

    v = sub.add_parser("preview", help="draw one tile of an area raster as PNG (false colour + 12 panels)")
    v.add_argument("area", help="area GeoTIFF")
    v.add_argument("--at", type=_lonlat, required=True, help="tile centre LON,LAT")
    v.add_argument("--out", default="tile.png", help="false-colour PNG (default tile.png)")
    v.add_argument("--panels", help="12-panel PNG (default: <out>_channels.png)")
    v.add_argument("--size", type=int, default=256, help="tile size in pixels (default 256)")
    v.add_argument("--spec", default=None, help="channel spec for colours (default: from the raster)")
    v.set_defaults(func=cmd_preview)

    i = sub.add_parser("info", help="describe an area raster")
    i.add_argument("area")
    i.set_defaults(func=cmd_info)

    f = sub.add_parser("fetch-osm", help="download an OSM extract for a preset or bbox (needs internet)")
    f.add_argument("place", nargs="?", help="preset name, e.g. kyiv")
    f.add_argument("--out", required=True, help="output .osm.pbf")
    f.add_argument("--bbox", help="lon_min,lat_min,lon_max,lat_max to cut out")
    f.add_argument("--url", help="extract to download (default: the preset's)")
    f.add_argument("--timeout", type=float, default=60, help="network timeout in seconds")
    f.set_defaults(func=cmd_fetch)

    s = sub.add_parser("spec", help="show a channel spec, or --dump it as TOML to copy and edit")
    s.add_argument("name", nargs="?", default="default")
    s.add_argument("--dump", action="store_true")
    s.set_defaults(func=cmd_spec)

    ps = sub.add_parser("presets", help="list named places")
    ps.set_defaults(func=cmd_presets)

    t = sub.add_parser("train", help="train an encoder with triplet loss on one or more area rasters")
    t.add_argument("areas", nargs="+", help="area GeoTIFFs (several cities train together)")
    t.add_argument("--out", required=True, help="run folder (config, checkpoints, metrics, curves)")
    t.add_argument("--encoder", default="loc2vec", help="loc2vec, resnet18, resnet34, efficientnet_b0, "
                   "mobilenetv3_small_100, or any timm model name (default loc2vec)")
    t.add_argument("--embedding-dim", type=int, default=128, help="16..512 (default 128)")
    t.add_argument("--pretrained", help="imagenet, imagenet:FILE, or an earlier RUN_DIR / checkpoint")
    t.add_argument("--unfreeze", help="progressive unfreezing, e.g. head:200,last:600 (then all)")
    t.add_argument("--tile-size", type=int, default=128, help="tile size in px (tiles cover 500 m; default 128)")
    t.add_argument("--batch-size", type=int, default=32, help="triplets per step (default 32)")
    t.add_argument("--steps", type=int, default=2000, help="training steps (default 2000)")
    t.add_argument("--max-minutes", type=float, help="stop after this many minutes of training")
    t.add_argument("--lr", type=float, default=1e-4)
    t.add_argument("--mining", default="semi_hard", choices=["none", "batch_hard", "semi_hard"])
    t.add_argument("--loss", default="triplet", choices=["triplet", "infonce"],
                   help="triplet (margin, mining) or infonce (own positive among every view of the batch)")
    t.add_argument("--temperature", type=float, default=0.1, help="InfoNCE temperature (default 0.1)")
    t.add_argument("--false-negative-m", type=float, default=300.0,
                   help="InfoNCE: candidates nearer than this to the anchor are not negatives (default 300)")
    t.add_argument("--uniformity-weight", type=float, default=0.0, help="weight of the uniformity term (default 0)")
    t.add_argument("--composition-weight", type=float, default=0.0,
                   help="weight of the 150/300/500 m composition head (default 0: no head)")
    t.add_argument("--hybrid-share", type=float, default=0.0, metavar="A",
                   help="train through the hybrid (learned ⊕ standardised composition, share A): the network "
                        "learns what the composition lacks; export then writes that hybrid (default 0: alone)")
    t.add_argument("--composition-transform", default="linear", choices=["linear", "sqrt"],
                   help="of the hybrid's composition part (with --hybrid-share; default linear)")
    t.add_argument("--val-every", type=int, default=100, help="validate every K steps (default 100)")
    t.add_argument("--val-triplets", type=int, default=256)
    t.add_argument("--patience", type=int, default=10, help="validations without improvement before stopping")
    t.add_argument("--positive-m", type=float, nargs=2, default=(100.0, 200.0), metavar=("MIN", "MAX"))
    t.add_argument("--negative-min-m", type=float, default=2000.0)
    t.add_argument("--negative-mode", default="far", choices=["far", "landuse", "similar"],
                   help="far: any place >= --negative-min-m away; landuse: of 16 such, the most different "
                        "composition; similar: the closest composition (hard negatives)")
    t.add_argument("--semantic-positives", type=float, default=0.0, metavar="SHARE",
                   help="0..1: share of triplets whose positive is, of 16 places >= --negative-min-m away "
                        "(often in another area), the one of closest composition (report §3.6; default 0)")
    t.add_argument("--built-up-weight", type=float, default=0.0, help="0..1: draw anchors towards built-up land")
    t.add_argument("--balance-areas", action="store_true", help="draw equally from each area raster")
    t.add_argument("--spec", default="default", help="channel spec the areas were made with")
    t.add_argument("--seed", type=int, default=0)
    t.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:1")
    t.add_argument("--resume", action="store_true", help="continue the run in --out exactly where it stopped")
    t.set_defaults(func=cmd_train)

    e = sub.add_parser("export", help="export a trained run to ONNX (with its metadata)")
    e.add_argument("run", help="run folder or checkpoint file")
    e.add_argument("--out", required=True, help="output .onnx")
    e.add_argument("--checkpoint", default="best", choices=["best", "last"])
    e.add_argument("--hybrid-share", type=float, default=None, metavar="A",
                   help="export the hybrid model: the learned embedding joined with the tile's standardised "
                        "multi-scale composition, A = the composition's share of the similarity (0 < A < 1); "
                        "default: the share the run trained through (training --hybrid-share), 0 = learned alone")
    e.add_argument("--composition-areas", nargs="+", metavar="AREA.tif",
                   help="areas whose tiles give the composition statistics (default: the run's training areas)")
    e.add_argument("--composition-transform", default=None, choices=["linear", "sqrt"],
                   help="sqrt: square roots of the shares before standardising (small shares count more); "
                        "default: the run's own (training --composition-transform), else linear")
    e.set_defaults(func=cmd_export)

    d = sub.add_parser("demo", help="the main job on bundled data, no network")
    d.add_argument("--out", default="out/demo", help="output folder (default out/demo)")
    d.add_argument("--train-minutes", type=float, default=None,
                   help="train an encoder for N minutes (on Andorra + Porto) instead of using the shipped model")
    d.set_defaults(func=cmd_demo)
    for module in _COMMAND_MODULES:
        importlib.import_module(module).add_parsers(sub)
    return p


# Commands that live next to the code they drive; each module has ``add_parsers(subparsers)`` and
# imports its heavy packages (onnxruntime, scikit-learn, umap) only inside the command functions.
_COMMAND_MODULES = (
    "loc2vec_engine.embeddings.command",   # embed, merge
    "loc2vec_engine.clusters.command",     # cluster
    "loc2vec_engine.search.command",       # similar
    "loc2vec_engine.render.command",       # render
    "loc2vec_engine.scoring.command",      # score
    "loc2vec_engine.change.command",       # compare
    "loc2vec_engine.evaluation.command",   # evaluate
)


# Options whose values often start with '-' (western longitudes): argparse would read them as options.
_COORD_OPTIONS = ("--at", "--bbox", "--positive", "--negative")


def _glue_coordinates(argv: list[str]) -> list[str]:
    """``--bbox -8.6,41.1,...`` -> ``--bbox=-8.6,41.1,...`` so negative coordinates parse."""
    out, i = [], 0
    while i < len(argv):
        if argv[i] in _COORD_OPTIONS and i + 1 < len(argv):
            out.append(f"{argv[i]}={argv[i + 1]}")
            i += 2
        else:
            out.append(argv[i])
            i += 1
    return out


def main(argv=None) -> int:
    from .progress import Cancelled

    argv = sys.argv[1:] if argv is None else list(argv)
    args = build_parser().parse_args(_glue_coordinates(argv))
    try:
        args.func(args)
        sys.stdout.flush()  # here, so that a reader gone away (| head) is caught below, not at exit
    except BrokenPipeError:
        return _quiet_after_broken_pipe()
    except Loc2VecError as e:
        return _error(e.problem, e.fix)
    except ModuleNotFoundError as e:  # a package this command needs: named as such, with the pip command
        if third_party_missing(e) is None:
            raise
        missing = MissingPackage(third_party_missing(e), f"loc2vec {args.command}")
        return _error(missing.problem, missing.fix)
    except OSError as e:
        # A file-system failure no check foresaw (a disk that fills up, a file removed meanwhile): the
        # message without the traceback. Write errors inside atomic_output already arrive as Loc2VecError.
        where = f" ({os.fsdecode(e.filename)})" if e.filename else ""
        return _error(f"{e.strerror or e}{where}",
                      "check the path, that you can read/write there and the free disk space; then run it again")
    except (KeyboardInterrupt, Cancelled):
        print("cancelled: nothing was written", file=sys.stderr)
        return 130
    return 0


def _error(problem: str, fix: str) -> int:
    print(f"error: {problem}", file=sys.stderr)
    if fix:
        print(f"  fix: {fix}", file=sys.stderr)
    return 2


def _quiet_after_broken_pipe() -> int:
    """``loc2vec info A.tif | head -1``: the reader closed the pipe, so stop quietly, as the Python docs
    recommend: point stdout at devnull so the flush at exit cannot fail again, and exit 1."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError, AttributeError):  # a stdout without a file descriptor (tests): nothing to point
        pass
    return 1


if __name__ == "__main__":
    sys.exit(main())
