"""The Processing model shipped with the plugin (resources/processing/osm_to_suitability.model3), in-process:
listed by the provider under a stable id, its inputs and outputs, and the file as scripts/make_model3.py writes it.
(tests/qgis/test_qgis_process.py runs it through qgis_process.)"""

import importlib.util

from qgis.core import QgsApplication

from ..conftest import REPO

MODEL_ID = "loc2vec:osm_to_suitability"


def _make_model3():
    spec = importlib.util.spec_from_file_location("make_model3", REPO / "scripts" / "make_model3.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_provider_lists_the_model_with_its_inputs_and_outputs(loc2vec_plugin):
    model = QgsApplication.processingRegistry().algorithmById(MODEL_ID)
    assert model is not None and model.provider().id() == "loc2vec"
    assert model.displayName() == "From OSM to a suitability map" and model.group() == "Models"
    inputs = [p.parameterName() for p in model.orderedParameters()]
    assert inputs == ["OSM", "EXTENT", "POSITIVES", "NEGATIVES", "STRIDE", "K", "MODEL", "METHOD"]
    optional = {p.name() for p in model.parameterDefinitions() if p.flags() & p.FlagOptional}
    assert optional == {"EXTENT", "NEGATIVES", "MODEL", "score:SCORE_RASTER"}
    outputs = {p.name(): p.type() for p in model.destinationParameterDefinitions()}
    assert outputs == {"rasterize:AREA": "rasterDestination", "embed:EMBEDDINGS": "vectorDestination",
                       "score:SCORES": "vectorDestination", "score:SCORE_RASTER": "rasterDestination"}
    assert [model.childAlgorithm(c).algorithmId() for c in ("rasterize", "embed", "cluster", "score")] == [
        "loc2vec:rasterize", "loc2vec:embed", "loc2vec:cluster", "loc2vec:score"]
    assert model.canExecute()[0] and "Score places from examples" in model.shortHelpString()
    # what a run creates: a fresh instance, the same model under the same id
    fresh = QgsApplication.processingRegistry().createAlgorithmById(MODEL_ID)
    assert fresh.id() == MODEL_ID and fresh.parameterDefinitions()[0].name() == "OSM"


def test_the_shipped_file_is_what_the_script_writes(loc2vec_plugin, tmp_path):
    """Edit scripts/make_model3.py, then run it (its docstring says how): the model file follows."""
    from loc2vec_qgis.models import MODELS_DIR, ShippedModel

    make = _make_model3()
    model = make.build_model()
    assert make.check(model) == []
    assert model.toFile(str(tmp_path / "osm_to_suitability.model3"))
    built, shipped = ShippedModel(tmp_path / "osm_to_suitability.model3"), ShippedModel(make.MODEL_FILE)
    assert make.MODEL_FILE.parent == MODELS_DIR and built.loaded and shipped.loaded
    assert built.toVariant() == shipped.toVariant(), (  # both read back from a file: the same round trip
        "resources/processing/osm_to_suitability.model3 is stale: run "
        "QT_QPA_PLATFORM=offscreen .venv/bin/python scripts/make_model3.py")
