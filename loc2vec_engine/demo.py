"""`loc2vec demo`: the main job on bundled data, no network, in a few minutes on 2 CPU cores.

rasterize central Porto -> (the shipped model, or train one for ``--train-minutes``) -> embed on a
50 m grid -> cluster -> the embeddings as colours -> places like a landmark -> evaluate against
baselines -> a QGIS project.
Every step is the same engine call the CLI and the QGIS plugin make.
"""

from __future__ import annotations

import shlex
import time
from pathlib import Path

import numpy as np

from . import ATTRIBUTION
from .atomic import atomic_output

REPO = Path(__file__).resolve().parents[1]
PORTO_PBF = REPO / "resources" / "data" / "porto_center_2020-07-20.osm.pbf"
ANDORRA_PBF = REPO / "resources" / "data" / "andorra_2020-05-01.osm.pbf"
ANDORRA_BBOX = (1.50, 42.49, 1.58, 42.55)  # Andorra la Vella to Encamp: large enough for held-out blocks
# Ribeira: the Douro, the riverside tunnel (a primary road), dense old town.
LANDMARK = ("Ribeira, Porto", -8.6125, 41.1418)
STRIDE_M = 50.0
K_CLUSTERS = 8
K_SIMILAR = 10


def run_demo(out_dir="out/demo", seed: int = 0, train_minutes: float | None = None,
             evaluate: bool = True, eval_max_cells: int | None = None) -> dict[str, Path]:
    """Run every step into ``out_dir``; return the outputs by label (also printed).

    ``evaluate=False`` leaves out the evaluation report (the slowest step), e.g. for a test that only
    needs the QGIS project; ``eval_max_cells`` evaluates on fewer cells than ``loc2vec evaluate``'s
    default (a quicker, noisier report: the test suite's).
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    steps = (10 if train_minutes else 9) - (0 if evaluate else 1)
    step = _Steps(steps)
    t_start = time.perf_counter()

    area = _rasterize(step, out)
    outputs = {"area raster": area.path}
    outputs.update(_tiles(step, out, area, seed))
    model = _train(step, out, area, train_minutes, seed) if train_minutes else _shipped_model(step)
    outputs["model"] = model
    emb = _embed(step, out, model, area.path)
    outputs["embeddings"] = emb
    clusters = _cluster(step, emb, seed)
    outputs["cluster map"], outputs["UMAP scatter"] = clusters.map_png, clusters.umap_png
    outputs["embeddings RGB"] = rgb = _render(step, out, emb)
    similar_gpkg, landmark_gpkg = _similar(step, out, emb)
    outputs["similar places"], outputs["landmark"] = similar_gpkg, landmark_gpkg
    if evaluate:
        report = _evaluate(step, out, model, area.path, seed, eval_max_cells)
        outputs["evaluation report"] = report / "report.md"
    outputs["QGIS project"] = _project(step, out, area, emb, clusters, similar_gpkg, landmark_gpkg, rgb)
    _summary(outputs, time.perf_counter() - t_start)
    return outputs


class _Steps:
    def __init__(self, total: int):
        self.total, self.n = total, 0

    def __call__(self, text: str) -> None:
        self.n += 1
        print(f"{self.n}/{self.total} {text}", flush=True)


def _rasterize(step, out: Path):
    from .raster.rasterize import rasterize

    step(f"rasterizing {PORTO_PBF.name} (bundled, no network) ...")
    t = time.perf_counter()
    area = rasterize(PORTO_PBF, out / "porto.tif")
    print(f"    {area.width} x {area.height} px x {area.count} bands at {area.pixel_size:g} m/px "
          f"in {time.perf_counter() - t:.1f} s")
    return area


def _tiles(step, out: Path, area, seed: int) -> dict[str, Path]:
    from .tiles import TileSampler
    from .tiles.preview import render_preview

    name, lon, lat = LANDMARK
    step(f"a preview tile at {name}, and training triplets cut by the tile sampler ...")
    tile_png, panels_png = render_preview(area, at_lonlat=(lon, lat), out=out / "porto_tile.png")
    triplets_png, rate = _triplets(TileSampler(area, backend="cpu"), out / "porto_triplets.png", seed)
    print(f"    {rate:,.0f} rotated 256-px tiles/s on one CPU thread")
    return {"preview": tile_png, "channels": panels_png, "triplets": triplets_png}


def _shipped_model(step) -> Path:
    from .embeddings.onnx_encoder import DEFAULT_MODEL, OnnxEncoder

    step(f"model: the shipped default ({DEFAULT_MODEL.name}; docs/default_model.md says how it was trained)")
    enc = OnnxEncoder(DEFAULT_MODEL, "cpu")
    print(f"    {enc.meta['encoder']}, {enc.tile_size_px}-px tiles of {enc.tile_size_m:g} m, "
          f"{enc.embedding_size}-D, trained on {', '.join(enc.meta.get('training_areas', []))}")
    return DEFAULT_MODEL


def _train(step, out: Path, porto, minutes: float, seed: int) -> Path:
    from .raster.rasterize import rasterize
    from .training.config import TrainConfig
    from .training.export import export_run
    from .training.loop import train

    step(f"training an encoder for {minutes:g} min on Andorra + Porto ...")
    andorra = out / "andorra.tif"
    if not andorra.is_file():
        rasterize(ANDORRA_PBF, andorra, bbox=ANDORRA_BBOX, progress=lambda f, m: None)
    run = out / "run"
    if run.exists():
        import shutil

        shutil.rmtree(run)  # the demo's own previous run
    cfg = TrainConfig(areas=[str(andorra), str(porto.path)], out=str(run), encoder="loc2vec", tile_size_px=64,
                      batch_size=32, steps=1_000_000, max_minutes=minutes, lr=5e-4, built_up_weight=0.5,
                      balance_areas=True, seed=seed, device="auto")
    result = train(cfg)
    print(f"    {result.stopped} at step {result.step}: validation triplet accuracy {result.best_val_acc:.3f} "
          f"(channel-fractions baseline {result.baseline_val_acc:.3f})")
    return export_run(run, out / "model.onnx")


def _embed(step, out: Path, model: Path, area_path: Path) -> Path:
    from .embeddings.embed import embed_area

    step(f"embedding {area_path.name} on a {STRIDE_M:g} m grid ...")
    res = embed_area(model, area_path, out / "porto_embeddings.gpkg", stride_m=STRIDE_M, device="auto")
    print(f"    {res.cells} cells in {res.seconds:.1f} s ({res.cells_per_s:.0f} cells/s, {res.provider})")
    return res.path


def _cluster(step, emb: Path, seed: int):
    from .clusters.cluster import cluster_file

    step(f"clustering into {K_CLUSTERS} kinds of place (KMeans) with a UMAP projection ...")
    result = cluster_file(emb, k=K_CLUSTERS, seed=seed)
    sizes = ", ".join(f"{c}: {n}" for c, n in sorted(result.sizes.items()))
    sil = f"{result.silhouette:.3f}" if result.silhouette is not None else "n/a"
    print(f"    cluster sizes {sizes}; silhouette {sil}")
    return result


def _render(step, out: Path, emb: Path) -> Path:
    from .render import render_files

    step("drawing the embeddings as colours (their first three principal components as red, green, blue) ...")
    (result,) = render_files([emb], [out / "porto_embeddings_rgb.tif"])
    shares = ", ".join(f"{v:.0%}" for v in result.pca.explained)
    print(f"    {result.width} x {result.height} px of {result.stride_m:g} m; the components hold {shares} of the "
          "variance")
    return result.path


def _similar(step, out: Path, emb: Path) -> tuple[Path, Path]:
    from .embeddings import read_embeddings
    from .search.similar import similar_at, write_similar

    name, lon, lat = LANDMARK
    step(f"the {K_SIMILAR} places most like {name}, elsewhere ...")
    es = read_embeddings(emb)
    # The default leaves out one tile around the landmark: its own neighbourhood, whose tiles overlap its
    # own, would otherwise be the whole top 10 ("Ribeira is like Ribeira").
    result = similar_at(es, [(lon, lat)], K_SIMILAR)
    similar_gpkg = write_similar(out / "similar_to_ribeira.gpkg", es, result)
    print(f"    left out the {result.n_excluded} cells within {result.exclude_radius_m:g} m of {name} (one tile "
          "of the model: its own surroundings); loc2vec similar --exclude-radius 0 keeps them")
    for rank, (score, (plon, plat), d) in enumerate(zip(result.scores, result.lonlat, result.distance_m), 1):
        print(f"    {rank:2d}. cosine {score:.4f}  at {plon:.5f},{plat:.5f}  {d:6.0f} m away")
    return Path(similar_gpkg), _landmark_gpkg(out / "landmark.gpkg", es.crs_wkt)


def _landmark_gpkg(path: Path, crs_wkt: str) -> Path:
    """One labelled point (the query) for the QGIS project."""
    from osgeo import ogr, osr

    from .geo.crs import transformer_from_wgs84

    name, lon, lat = LANDMARK
    x, y = transformer_from_wgs84(crs_wkt).transform(lon, lat)
    with atomic_output(path, suffix=".part.gpkg") as tmp:
        ogr.UseExceptions()
        ds = ogr.GetDriverByName("GPKG").CreateDataSource(str(tmp))
        srs = osr.SpatialReference()
        srs.ImportFromWkt(crs_wkt)
        lyr = ds.CreateLayer("landmark", srs, ogr.wkbPoint)
        lyr.CreateField(ogr.FieldDefn("name", ogr.OFTString))
        f = ogr.Feature(lyr.GetLayerDefn())
        f.SetField("name", name)
        pt = ogr.Geometry(ogr.wkbPoint)
        pt.AddPoint_2D(float(x), float(y))
        f.SetGeometry(pt)
        lyr.CreateFeature(f)
        ds = None
    return path


def _evaluate(step, out: Path, model: Path, area_path: Path, seed: int, max_cells: int | None = None) -> Path:
    from .evaluation.evaluate import evaluate_model

    step("evaluating the model against no-learning baselines (re-identification, venue probe, ablation) ...")
    report = out / "report"
    args = (model, area_path, "--osm", PORTO_PBF, "--out", report) + (("--max-cells", str(max_cells)) if max_cells else ())
    command = "loc2vec evaluate " + " ".join(shlex.quote(_relative(a)) for a in args)
    limits = {"max_cells": max_cells} if max_cells else {}
    metrics = evaluate_model(model, area_path, PORTO_PBF, report, seed=seed, device="auto", command=command, **limits)
    for line in _verdicts(metrics):
        print(f"    {line}")
    return report


def _relative(path) -> str:
    """``path`` relative to the working folder when it lies below it (a command line others can rerun)."""
    p = Path(path)
    try:
        return str(p.resolve().relative_to(Path.cwd().resolve())) if p.is_absolute() else str(p)
    except ValueError:
        return str(p)


def _verdicts(metrics: dict) -> list[str]:
    """The report's headline and, per baseline, on how many metrics the model beats / ties / loses."""
    lines = [metrics["headline"]] if metrics.get("headline") else []
    tally: dict[str, dict[str, list[str]]] = {}
    for v in metrics.get("verdicts", []):
        tally.setdefault(v["baseline"], {}).setdefault(v["verdict"], []).append(v["metric"])
    for baseline, outcomes in tally.items():
        counts = ", ".join(f"{verdict} it on {len(names)}" for verdict, names in outcomes.items())
        lines.append(f"vs the {baseline} baseline: the model {counts} (of {sum(map(len, outcomes.values()))} metrics)")
    return lines


def _project(step, out: Path, area, emb: Path, clusters, similar_gpkg: Path, landmark_gpkg: Path,
             rgb_tif: Path) -> Path:
    from .channels import get_spec
    from .project import (ClusterPointsLayer, LabelPointsLayer, RasterLayer, RgbRasterLayer, ScorePointsLayer,
                          write_qgz)

    step("writing the QGIS project ...")
    roads = get_spec().names.index("roads_major") + 1
    layers = [
        LabelPointsLayer(landmark_gpkg, "landmark", name="query: " + LANDMARK[0]),
        ScorePointsLayer(similar_gpkg, name=f"{K_SIMILAR} places most like {LANDMARK[0]}, beyond one tile of it"),
        ClusterPointsLayer(emb, k=clusters.n_clusters, stride_m=STRIDE_M, name="kinds of place (clusters)",
                           noise=bool((clusters.labels < 0).any())),
        # The colours cover the same cells as the clusters: drawn under them they would only tint through the
        # clusters' 15 % transparency and muddy their colours, so the layer comes unticked, fully opaque; ticked
        # (with the clusters unticked) it shows the embedding itself, alike places in alike colours, the roads
        # below still drawn where there is no cell.
        RgbRasterLayer(rgb_tif, name="embeddings as colours (PCA, no fixed meaning)", visible=False),
        RasterLayer(area.path, name="area raster (drawn: major roads)", band=roads, opacity=0.6),
    ]
    return write_qgz(out / "porto.qgz", layers, area.crs_wkt, "loc2vec demo: central Porto")


def _summary(outputs: dict[str, Path], seconds: float) -> None:
    print(f"\nDone in {seconds / 60:.1f} min. Outputs:")
    for label, path in outputs.items():
        print(f"  {label:18s} {path}")
    print(f"\nOpen it in QGIS: qgis {outputs['QGIS project']}   (or Project > Open). The layers: kinds of place "
          "coloured by cluster,\nthe places most like the landmark, the embeddings as colours (unticked) and the "
          "major roads. The embeddings\nlayer's schema is in the README; the loc2vec plugin adds the similar-places "
          "map tool and the UMAP dock.")
    print(ATTRIBUTION)


def _triplets(sampler, path: Path, seed: int, n: int = 4):
    """A 3 x n picture: anchors, positives (150 m away, rotated) and far negatives; plus tiles/s."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    from .channels import get_spec
    from .tiles.preview import OSM_ATTRIBUTION, composite

    rng = np.random.default_rng(seed)
    area = sampler.area
    metres = area.pixel_size
    valid_rows, valid_cols = np.nonzero(area.ids[::8, ::8])  # index 0 = outside the area
    margin = 300 / metres

    def random_centres(k):
        pick = rng.integers(0, len(valid_rows), 4 * k)
        c = np.stack([valid_cols[pick] * 8.0, valid_rows[pick] * 8.0], axis=1)
        inside = (c[:, 0] > margin) & (c[:, 0] < area.width - margin) & (c[:, 1] > margin) & (c[:, 1] < area.height - margin)
        return c[inside][:k]

    anchors = random_centres(n)
    bearing = rng.uniform(0, 2 * np.pi, n)
    positives = anchors + 150 / metres * np.stack([np.cos(bearing), np.sin(bearing)], axis=1)
    pool = random_centres(64)
    negatives = np.array([pool[np.argmax(np.linalg.norm(pool - a, axis=1))] for a in anchors])
    centres = np.concatenate([anchors, positives, negatives])
    angles = np.concatenate([np.zeros(n), rng.uniform(0, 360, 2 * n)])
    tiles, valid = sampler.sample_pixels(centres, angles, 1.0, 256)

    bench = random_centres(256)
    buf = sampler.empty(len(bench), 256)
    sampler.sample_pixels(bench, rng.uniform(0, 360, len(bench)), 1.0, 256, out=buf)  # warm-up
    t = time.perf_counter()
    sampler.sample_pixels(bench, rng.uniform(0, 360, len(bench)), 1.0, 256, out=buf)
    rate = len(bench) / (time.perf_counter() - t)

    spec = get_spec()
    colors = [_rgb(c.color) for c in spec.channels]
    fig = Figure(figsize=(2.6 * n, 8.4), dpi=100)
    FigureCanvasAgg(fig)
    for k in range(3 * n):
        ax = fig.add_subplot(3, n, k + 1)
        ax.imshow(composite(np.ascontiguousarray(tiles[k]), valid[k], sampler.channel_names, colors),
                  interpolation="nearest")
        ax.set_xticks([]), ax.set_yticks([])
        if k % n == 0:
            ax.set_ylabel(["anchor", "positive\n150 m, rotated", "negative\nfar away"][k // n])
    fig.suptitle("Training triplets cut by the tile sampler (500 m tiles, central Porto)")
    fig.text(0.99, 0.005, OSM_ATTRIBUTION, ha="right", va="bottom", fontsize=8, color="#444444")
    with atomic_output(path) as tmp:
        fig.savefig(tmp, format="png")
    return path, rate


def _rgb(hex_color: str):
    h = hex_color.lstrip("#")
    return tuple(int(h[i:i + 2], 16) / 255 for i in (0, 2, 4))
