"""`loc2vec demo` runs end to end on bundled data: every output exists and is what it claims to be."""

import json
import zipfile

import numpy as np

from loc2vec_engine.demo import K_CLUSTERS, K_SIMILAR
from loc2vec_engine.embeddings import read_embeddings
from loc2vec_engine.raster.area import AreaRaster


def test_demo_writes_everything(demo_run):
    outputs, printed = demo_run
    for label, path in outputs.items():
        assert path.is_file() and path.stat().st_size > 1000, (label, path)
    area = AreaRaster.open(outputs["area raster"])
    assert area.count == 12 and area.width > 1000

    es = read_embeddings(outputs["embeddings"])
    assert len(es) > 1000 and es.cluster is not None and es.umap is not None
    assert sorted(set(es.cluster.tolist())) == list(range(K_CLUSTERS))

    from osgeo import ogr

    ds = ogr.Open(str(outputs["similar places"]))  # kept: its layers die with it
    scores = [f.GetField("score") for f in ds.GetLayerByName("similar")]
    assert len(scores) == K_SIMILAR and scores == sorted(scores, reverse=True)

    report = outputs["evaluation report"].parent
    metrics = json.loads((report / "metrics.json").read_text())
    assert {v["baseline"] for v in metrics["verdicts"]} >= {"fractions", "random_init", "coordinates"}
    assert "fractions baseline" in metrics["headline"]
    assert "OpenStreetMap" in outputs["evaluation report"].read_text()

    from osgeo import gdal

    rgb = gdal.Open(str(outputs["embeddings RGB"]))  # the embeddings as PCA colours, on the embedding grid
    assert outputs["embeddings RGB"].name == "porto_embeddings_rgb.tif" and rgb.RasterCount == 3
    assert rgb.GetGeoTransform()[1] == 50 and rgb.GetRasterBand(1).DataType == gdal.GDT_Byte
    assert int((rgb.GetRasterBand(1).ReadAsArray() > 0).sum()) == len(es)  # a coloured pixel per cell, 0 elsewhere

    with zipfile.ZipFile(outputs["QGIS project"]) as z:
        qgs = z.read(z.namelist()[0]).decode()
    assert "porto_embeddings.gpkg" in qgs and "categorizedSymbol" in qgs
    assert "./porto_embeddings_rgb.tif" in qgs and 'type="multibandcolor"' in qgs

    assert "OpenStreetMap contributors" in printed and str(outputs["QGIS project"]) in printed
    assert "qgis " in printed and np.isfinite(es.umap).all()


def test_the_similar_step_leaves_out_one_tile_around_the_landmark(porto_area, tmp_path, capsys):
    """The demo's places like Ribeira are elsewhere: none within one tile (500 m), and it says so."""
    from loc2vec_engine.demo import LANDMARK, _similar
    from loc2vec_engine.embeddings.embed import embed_area
    from loc2vec_engine.geo.crs import transformer_from_wgs84

    emb = tmp_path / "porto.gpkg"
    embed_area("default", porto_area, emb, stride_m=60, device="cpu", progress=lambda f, m: None)
    es = read_embeddings(emb)
    name, lon, lat = LANDMARK
    query = np.asarray(transformer_from_wgs84(es.crs_wkt).transform(lon, lat), float)
    near = np.linalg.norm(es.xy - query, axis=1) <= 500
    assert es.meta["tile_size_m"] == 500 and near.any() and (~near).sum() > K_SIMILAR
    similar_gpkg, _ = _similar(lambda text: print(text), tmp_path, emb)
    printed = capsys.readouterr().out
    assert f"left out the {int(near.sum())} cells within 500 m of {name}" in printed
    assert "--exclude-radius 0 keeps them" in printed

    from osgeo import ogr

    ds = ogr.Open(str(similar_gpkg))  # kept: its layers die with it
    feats = list(ds.GetLayerByName("similar"))
    assert len(feats) == K_SIMILAR
    rows = {c: i for i, c in enumerate(es.cell)}
    assert not near[[rows[f["cell"]] for f in feats]].any()
