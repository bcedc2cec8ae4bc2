#!/usr/bin/env python3
"""Write the Processing model the plugin ships: resources/processing/osm_to_suitability.model3.

"From OSM to a suitability map" chains the provider's own algorithms: rasterize -> embed -> cluster -> score.
The .model3 file is QGIS's own format (a QVariant map as XML); this script builds it with QGIS's API rather than
by hand, so that QGIS 3.22 reads it exactly as written. The provider loads every .model3 of
resources/processing/ as ``loc2vec:<file stem>`` (see loc2vec_qgis/models.py).

Usage (from the repository root; the loc2vec provider is registered from this checkout):

    QT_QPA_PLATFORM=offscreen .venv/bin/python scripts/make_model3.py            # rewrite the shipped file
    QT_QPA_PLATFORM=offscreen .venv/bin/python scripts/make_model3.py --out X.model3
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
MODEL_FILE = REPO / "resources" / "processing" / "osm_to_suitability.model3"
NAME = "From OSM to a suitability map"
GROUP = "Models"
OSM_FILTER = "OpenStreetMap (*.osm.pbf *.pbf *.osm *.osm.bz2 *.osm.gz);;All files (*)"  # rasterize's, less vectors
# (child id, algorithm, x, y): a column in the modeler, each step under the one it feeds.
CHILDREN = [("rasterize", "loc2vec:rasterize", 420, 120), ("embed", "loc2vec:embed", 420, 270),
            ("cluster", "loc2vec:cluster", 420, 420), ("score", "loc2vec:score", 420, 570)]

HELP = {
    "ALG_DESC": (
        "Finds the places that look like your examples on the map, from an OpenStreetMap file alone, with the "
        "loc2vec steps one after the other: <i>Rasterize OpenStreetMap to an area raster</i> (the extent), "
        "<i>Embed area</i> (a tile around every grid point through the model), <i>Cluster embeddings</i> (kinds of "
        "place, written into the embeddings) and <i>Score places from examples</i> (every cell scored by its "
        "likeness to the positive examples and its unlikeness to the negative ones, and the mask of the cells at or "
        "above the threshold)."),
    "OSM": "An OpenStreetMap extract (.osm.pbf or .osm).",
    "EXTENT": "The area to map (empty: all of the file). Keep it to a city: a tile is cut around every cell.",
    "POSITIVES": "Points or polygons of places like the ones to find (the nearest cell of each point; every cell "
                 "inside a polygon). One is enough.",
    "NEGATIVES": "Optional points or polygons of places unlike them. With 5 positive and 5 negative cells or more, "
                 "a logistic regression replaces the prototype (method auto).",
    "STRIDE": "Metres between cell centres (100 m: 100 cells per km²).",
    "K": "How many kinds of place k-means makes.",
    "MODEL": "A loc2vec .onnx model (empty: the model shipped with the plugin).",
    "METHOD": "auto, prototype (cosine to the mean example) or logistic (at least 5 + 5 example cells).",
    "rasterize:AREA": "The area raster (GeoTIFF, one band per map channel).",
    "embed:EMBEDDINGS": "The embeddings GeoPackage, with each cell's cluster and UMAP position filled in.",
    "score:SCORES": "GeoPackage with the layers 'score' (a point per cell: score, rank, example) and 'mask' (the "
                    "cells at or above the threshold, dissolved).",
    "score:SCORE_RASTER": "The scores as a float32 GeoTIFF on the embedding grid.",
    "ALG_CREATOR": "loc2vec",
    "ALG_HELP_CREATOR": "loc2vec",
}


def build_model():
    """The model, built against the registered loc2vec algorithms (QGIS and the provider must be running)."""
    from qgis.core import (
        QgsProcessing,
        QgsProcessingModelAlgorithm,
        QgsProcessingModelChildAlgorithm,
        QgsProcessingModelChildParameterSource,
        QgsProcessingModelOutput,
        QgsProcessingModelParameter,
        QgsProcessingParameterDefinition,
        QgsProcessingParameterEnum,
        QgsProcessingParameterExtent,
        QgsProcessingParameterFeatureSource,
        QgsProcessingParameterFile,
        QgsProcessingParameterNumber,
    )
    from qgis.PyQt.QtCore import QPointF

    examples = [QgsProcessing.TypeVectorPoint, QgsProcessing.TypeVectorPolygon]
    advanced = QgsProcessingParameterDefinition.FlagAdvanced
    inputs = [
        QgsProcessingParameterFile("OSM", "OpenStreetMap file (.osm.pbf, .osm)",
                                   behavior=QgsProcessingParameterFile.File, fileFilter=OSM_FILTER),
        QgsProcessingParameterExtent("EXTENT", "Extent (empty = the whole file)", optional=True),
        QgsProcessingParameterFeatureSource("POSITIVES", "Positive examples (points or polygons: places like the "
                                            "ones to find)", types=examples),
        QgsProcessingParameterFeatureSource("NEGATIVES", "Negative examples (points or polygons: places unlike "
                                            "them)", types=examples, optional=True),
        QgsProcessingParameterNumber("STRIDE", "Stride between cell centres (metres)",
                                     type=QgsProcessingParameterNumber.Double, defaultValue=100.0, minValue=1.0,
                                     maxValue=100000.0),
        QgsProcessingParameterNumber("K", "Number of kinds of place (k-means clusters)",
                                     type=QgsProcessingParameterNumber.Integer, defaultValue=8, minValue=2,
                                     maxValue=1000),
        QgsProcessingParameterFile("MODEL", "Model (.onnx; empty = the shipped default model)",
                                   behavior=QgsProcessingParameterFile.File, extension="onnx", optional=True),
        QgsProcessingParameterEnum("METHOD", "Scoring method", options=["auto", "prototype", "logistic"],
                                   defaultValue="auto", usesStaticStrings=True),
    ]
    model = QgsProcessingModelAlgorithm(NAME, GROUP)
    for row, param in enumerate(inputs):
        if param.name() in ("MODEL", "METHOD"):
            param.setFlags(param.flags() | advanced)
        component = QgsProcessingModelParameter(param.name())
        component.setPosition(QPointF(120, 80 + 75 * row))
        model.addModelParameter(param, component)

    def given(name):
        return [QgsProcessingModelChildParameterSource.fromModelParameter(name)]

    def output_of(child, name):
        return [QgsProcessingModelChildParameterSource.fromChildOutput(child, name)]

    def value(v):
        return [QgsProcessingModelChildParameterSource.fromStaticValue(v)]

    sources = {
        "rasterize": {"INPUT": given("OSM"), "EXTENT": given("EXTENT")},
        "embed": {"AREA": output_of("rasterize", "OUTPUT"), "MODEL": given("MODEL"), "STRIDE": given("STRIDE")},
        # the cluster map's road background: the area raster of this run
        "cluster": {"INPUT": output_of("embed", "OUTPUT"), "K": given("K"), "METHOD": value("kmeans"),
                    "AREA": output_of("rasterize", "OUTPUT")},
        # the clustered embeddings (cluster rewrites the GeoPackage in place): scored after the clustering
        "score": {"INPUT": output_of("cluster", "OUTPUT"), "POSITIVES": given("POSITIVES"),
                  "NEGATIVES": given("NEGATIVES"), "METHOD": given("METHOD")},
    }
    outputs = {  # child -> (model output name, the child's destination parameter, description)
        "rasterize": [("AREA", "OUTPUT", "Area raster")],
        "embed": [("EMBEDDINGS", "OUTPUT", "Embeddings, clustered")],
        "score": [("SCORES", "OUTPUT", "Scores (GeoPackage: layers score and mask)"),
                  ("SCORE_RASTER", "RASTER", "Score raster")],
    }
    for child_id, algorithm_id, x, y in CHILDREN:
        child = QgsProcessingModelChildAlgorithm(algorithm_id)
        if child.algorithm() is None:
            raise RuntimeError(f"{algorithm_id} is not registered: start QGIS with the loc2vec provider first")
        child.setChildId(child_id)
        child.setDescription(child.algorithm().displayName())
        child.setPosition(QPointF(x, y))
        for name, value_sources in sources[child_id].items():
            child.addParameterSources(name, value_sources)
        for param in child.algorithm().parameterDefinitions():  # the rest at their defaults, as the modeler sets them
            if (param.name() not in sources[child_id] and not param.isDestination()
                    and param.defaultValue() is not None):
                child.addParameterSources(param.name(), value(param.defaultValue()))
        model_outputs = {}
        for row, (name, child_output, description) in enumerate(outputs.get(child_id, [])):
            out = QgsProcessingModelOutput(name, description)
            out.setChildId(child_id)
            out.setChildOutputName(child_output)
            out.setMandatory(child_output == "OUTPUT")  # the score raster may be skipped
            if child_output == "RASTER":
                out.setDefaultValue("TEMPORARY_OUTPUT")  # the score parameter's own default is "skip"
            out.setPosition(QPointF(x + 300, y + 40 * row))
            model_outputs[name] = out
        child.setModelOutputs(model_outputs)
        model.addChildAlgorithm(child)
    model.setHelpContent(HELP)
    model.updateDestinationParameters()
    model.setParameterOrder([p.name() for p in inputs] + [f"{child}:{name}" for child, rows in outputs.items()
                                                          for name, _, _ in rows])
    return model


def check(model) -> list[str]:
    """What QGIS finds wrong with the model's children (an empty list: nothing)."""
    problems = []
    for child_id in model.childAlgorithms():
        ok, issues = model.validateChildAlgorithm(child_id)
        problems += [] if ok else [f"{child_id}: {issue}" for issue in issues]
    return problems


def start_qgis():
    """A headless QGIS with this checkout's loc2vec provider; returns the objects to keep alive."""
    from qgis.core import QgsApplication

    app = QgsApplication([], False)
    app.initQgis()
    sys.path.insert(0, str(REPO))
    import loc2vec_qgis

    plugin = loc2vec_qgis.classFactory(None)
    plugin.initProcessing()
    return app, plugin


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", type=Path, default=MODEL_FILE, help=f"file to write (default {MODEL_FILE})")
    args = ap.parse_args(argv)
    os.environ.setdefault("QT_HASH_SEED", "0")  # Qt writes XML attributes in hash order: the same bytes each time
    app, plugin = start_qgis()  # noqa: F841 (kept alive until the file is written)
    model = build_model()
    problems = check(model)
    if problems:
        print("error: the model does not validate:\n  " + "\n  ".join(problems), file=sys.stderr)
        return 1
    args.out.parent.mkdir(parents=True, exist_ok=True)
    if not model.toFile(str(args.out)):
        print(f"error: could not write {args.out}", file=sys.stderr)
        return 1
    names = [p.name() for p in model.parameterDefinitions()]
    print(f"wrote {args.out}: {NAME!r}, parameters {', '.join(names)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
