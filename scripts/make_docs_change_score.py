"""Make the README's change map and score histogram from the bundled Porto OpenStreetMap extract, with the CLI.

    .venv/bin/python scripts/make_docs_change_score.py [--out docs] [--keep DIR]

What a planner would do, step by step, every step a ``loc2vec`` command (the edit is plain OGR SQL):

1. the bundled extract of central Porto (``resources/data``) copied to a GeoPackage around the area,
   and a copy of it edited: the buildings of one ~150 m block of the Baixa deleted and a park drawn in
   their place;
2. ``loc2vec rasterize`` of both on the same bbox (one grid), ``loc2vec compare`` with the shipped model:
   ``change_map.png``, the cells whose embedding the park moves;
3. ``loc2vec rasterize`` and ``loc2vec embed`` of the whole extract, and ``loc2vec score`` from five dense
   blocks of the old centre (positives) and five places unlike them, river, green and open ground
   (negatives): ``score_histogram.png``.

The pictures carry the OpenStreetMap attribution (the commands draw it). A few CPU minutes.
"""

from __future__ import annotations

import argparse
import contextlib
import math
import shutil
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

PBF = REPO / "resources" / "data" / "porto_center_2020-07-20.osm.pbf"
BBOX = (-8.6160, 41.1405, -8.6050, 41.1490)  # about 920 x 945 m of central Porto around the block
BLOCK = (-8.6128, 41.1448, 75.0)  # centre lon, lat and half side in metres: a dense block of the Baixa
# Dense blocks of the old centre (Baixa, Bolhão, Aliados) like the ones to find, and places unlike them: the
# Douro at Ribeira, Miragaia and Fontainhas, the green of São João, the open ground of Campo 24 de Agosto.
POSITIVES = ("-8.6110,41.1458", "-8.6135,41.1440", "-8.6095,41.1470", "-8.6065,41.1490", "-8.6110,41.1490")
NEGATIVES = ("-8.6110,41.1395", "-8.6180,41.1405", "-8.6020,41.1410", "-8.6010,41.1450", "-8.6010,41.1490")
PIXEL_M = "3.90625"  # half the default resolution: the shipped model reads 7.8 m pixels anyway


def block_rect():
    lon, lat, half = BLOCK
    dlon, dlat = half / (111_320 * math.cos(math.radians(lat))), half / 110_540
    return lon - dlon, lat - dlat, lon + dlon, lat + dlat


def edited_copy(source: Path, edited: Path) -> int:
    """``edited``: ``source`` with the block's buildings (wholly inside it) deleted and a park in their place."""
    from osgeo import gdal, ogr

    shutil.copyfile(source, edited)
    x0, y0, x1, y1 = block_rect()
    ds = gdal.OpenEx(str(edited), gdal.OF_VECTOR | gdal.OF_UPDATE)
    inside = (f"building IS NOT NULL AND ST_MinX(geom) > {x0} AND ST_MaxX(geom) < {x1} "
              f"AND ST_MinY(geom) > {y0} AND ST_MaxY(geom) < {y1}")
    count = ds.ExecuteSQL(f"SELECT COUNT(*) FROM multipolygons WHERE {inside}")
    removed = count.GetNextFeature().GetField(0)
    ds.ReleaseResultSet(count)
    ds.ExecuteSQL(f"DELETE FROM multipolygons WHERE {inside}")
    layer = ds.GetLayerByName("multipolygons")
    park = ogr.Feature(layer.GetLayerDefn())
    park.SetField("leisure", "park")
    park.SetGeometry(ogr.CreateGeometryFromWkt(
        f"MULTIPOLYGON((({x0} {y0},{x1} {y0},{x1} {y1},{x0} {y1},{x0} {y0})))"))
    layer.CreateFeature(park)
    layer = ds = None
    return int(removed)


def run(args: list[str]) -> None:
    from loc2vec_engine.cli import main

    print("$ loc2vec " + " ".join(args), flush=True)
    with contextlib.redirect_stdout(sys.stderr):
        rc = main(args)
    if rc:
        sys.exit(f"loc2vec {args[0]} failed (exit {rc})")


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=REPO / "docs", help="folder for the two PNGs (default docs)")
    parser.add_argument("--keep", type=Path, help="keep the work files in this folder")
    args = parser.parse_args(argv)
    from osgeo import gdal

    gdal.UseExceptions()
    work = Path(args.keep) if args.keep else Path(tempfile.mkdtemp(prefix="loc2vec_docs_"))
    work.mkdir(parents=True, exist_ok=True)
    try:
        w, s, e, n = BBOX
        source, edited = work / "porto.gpkg", work / "porto_park.gpkg"
        gdal.VectorTranslate(str(source), str(PBF), format="GPKG",
                             spatFilter=(w - 0.0005, s - 0.0005, e + 0.0005, n + 0.0005))
        print(f"edited copy: {edited_copy(source, edited)} buildings removed, a park drawn", flush=True)
        bbox = ",".join(f"{v:g}" for v in BBOX)
        for src, tif in ((source, "before.tif"), (edited, "after.tif")):
            run(["rasterize", str(src), "--out", str(work / tif), "--bbox", bbox, "--pixel-size", PIXEL_M])
        run(["compare", str(work / "before.tif"), str(work / "after.tif"), "--out", str(work / "change.gpkg"),
             "--map", str(work / "change_map.png"), "--stride", "50", "--device", "cpu"])
        run(["rasterize", str(PBF), "--out", str(work / "porto_centre.tif"), "--pixel-size", PIXEL_M])
        run(["embed", "default", str(work / "porto_centre.tif"), "--out", str(work / "embeddings.gpkg"),
             "--stride", "50", "--device", "cpu"])
        score = ["score", str(work / "embeddings.gpkg"), "--out", str(work / "score.gpkg"),
                 "--histogram", str(work / "score_histogram.png")]
        for p in POSITIVES:
            score += ["--positive", p]
        for q in NEGATIVES:
            score += ["--negative", q]
        run(score)
        args.out.mkdir(parents=True, exist_ok=True)
        for name in ("change_map.png", "score_histogram.png"):
            shutil.copyfile(work / name, args.out / name)
            print(f"wrote {args.out / name}")
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
