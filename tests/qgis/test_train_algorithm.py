"""processing.run("loc2vec:train") on real Andorra tiles: a run folder, an embeddable ONNX model, cancel
with a checkpoint, and the training dock following the run's metrics."""

import csv
import json

import pytest
from qgis.core import QgsProcessingException, QgsProcessingFeedback

from loc2vec_engine.embeddings.onnx_encoder import OnnxEncoder
from loc2vec_qgis.algorithms import train as train_alg
from loc2vec_qgis.gui.training_dock import TrainingDock

import processing  # noqa: E402

ALG = "loc2vec:train"
TINY = {"ENCODER": "loc2vec", "MINUTES": 5, "STEPS": 40, "TILE_SIZE": 32, "BATCH_SIZE": 8, "EMBEDDING_SIZE": 16,
        "VAL_EVERY": 20, "DEVICE": "cpu"}


@pytest.fixture(scope="module")
def trained(loc2vec_plugin, andorra_area, tmp_path_factory):
    root = tmp_path_factory.mktemp("train_alg")
    started = []
    train_alg.RUN_STARTED_LISTENERS.append(started.append)
    try:
        result = processing.run(ALG, {"AREAS": [str(andorra_area)], **TINY, "RUN_DIR": str(root / "run"),
                                      "MODEL": str(root / "model.onnx")}, feedback=QgsProcessingFeedback())
    finally:
        train_alg.RUN_STARTED_LISTENERS.remove(started.append)
    return result, root, started


def test_training_writes_a_run_and_an_onnx_model(trained, andorra_area):
    result, root, started = trained
    assert started == [str(root / "run")]
    assert result["STOPPED"] == "steps" and result["STEPS_DONE"] == 40
    assert 0.5 < result["BEST_VAL_ACC"] <= 1 and 0 < result["BASELINE_VAL_ACC"] <= 1
    assert result["CHECKPOINT"].endswith("best.pt")
    enc = OnnxEncoder(result["MODEL"], "cpu")
    assert enc.tile_size_px == 32 and enc.meta["training_areas"] == [andorra_area.name]
    # the default recipe and export are the shipped model's: contrastive, exported as the sqrt hybrid (0.5)
    assert enc.embedding_size == 16 + 36 and enc.meta["hybrid"]["share"] == 0.5
    assert enc.meta["hybrid"]["composition"]["transform"] == "sqrt"
    config = json.loads((root / "run" / "config.json").read_text())
    assert config["loss"] == "infonce" and config["composition_weight"] == 1.0


def test_triplet_recipe_exported_alone(loc2vec_plugin, andorra_area, tmp_path):
    result = processing.run(ALG, {"AREAS": [str(andorra_area)], **TINY, "STEPS": 10, "RECIPE": "triplet",
                                  "HYBRID_SHARE": 0.0, "RUN_DIR": str(tmp_path / "run"),
                                  "MODEL": str(tmp_path / "m.onnx")}, feedback=QgsProcessingFeedback())
    enc = OnnxEncoder(result["MODEL"], "cpu")
    assert enc.embedding_size == 16 and "hybrid" not in enc.meta
    config = json.loads((tmp_path / "run" / "config.json").read_text())
    assert config["loss"] == "triplet" and config["pos_range_m"] == [100.0, 200.0]


def test_training_dock_plots_the_runs_metrics(qgis_app, trained):
    _, root, _ = trained
    dock = TrainingDock()
    dock.listener(str(root / "run"))  # as the algorithm calls it (a queued signal in the GUI thread)
    qgis_app.processEvents()
    with open(root / "run" / "metrics.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    losses = [float(r["train_loss"]) for r in rows if r["train_loss"]]
    accs = [float(r["val_acc"]) for r in rows if r["val_acc"]]
    x, y = dock.loss_curve.getData()
    assert list(y) == pytest.approx(losses) and len(losses) >= 4
    assert list(dock.acc_curve.getData()[1]) == pytest.approx(accs)
    assert "best validation accuracy" in dock.status.text()
    assert not dock.timer.isActive()  # summary.json exists: the run is over


def test_cancel_returns_a_checkpoint(loc2vec_plugin, andorra_area, tmp_path):
    feedback = QgsProcessingFeedback()
    feedback.progressChanged.connect(lambda p: feedback.cancel() if p >= 1 else None)
    result = processing.run(ALG, {"AREAS": [str(andorra_area)], **TINY, "STEPS": 1000, "RUN_DIR": str(tmp_path / "run"),
                                  "MODEL": str(tmp_path / "m.onnx")}, feedback=feedback)
    assert result["STOPPED"] == "cancelled" and 0 < result["STEPS_DONE"] < 1000
    assert result["CHECKPOINT"] == str(tmp_path / "run" / "last.pt")
    assert (tmp_path / "run" / "last.pt").is_file()


def test_bad_area_is_a_message(loc2vec_plugin, tmp_path):
    bad = tmp_path / "not_an_area.tif"
    from osgeo import gdal

    gdal.GetDriverByName("GTiff").Create(str(bad), 64, 64, 3)
    with pytest.raises(QgsProcessingException, match="Fix:"):
        processing.run(ALG, {"AREAS": [str(bad)], **TINY, "RUN_DIR": str(tmp_path / "run"),
                             "MODEL": str(tmp_path / "m.onnx")}, feedback=QgsProcessingFeedback())
    assert not (tmp_path / "m.onnx").exists()
