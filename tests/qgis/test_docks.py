"""The plugin's docks in real QGIS (issue 11, items 6 and 7): the UMAP dock follows its layer when *Cluster
embeddings* rewrites it and opens on the project's embeddings layer; cells it selects are drawn in a visible
colour; the training dock picks a run folder; the similar-places panel keeps its controls readable."""

import csv

import numpy as np
import pytest
from qgis.core import (
    QgsMapRendererSequentialJob,
    QgsMapSettings,
    QgsProcessingFeedback,
    QgsProject,
    QgsVectorLayer,
)
from qgis.gui import QgsDockWidget, QgsMapCanvas
from qgis.PyQt.QtCore import QSize, Qt
from qgis.PyQt.QtGui import QColor
from qgis.PyQt.QtWidgets import QFileDialog, QLabel, QMainWindow

import processing  # noqa: E402


@pytest.fixture(scope="module")
def clustered_path(porto_area, tmp_path_factory):
    """Real embeddings of central Porto (shipped model, every 100 m), clustered into 3 with a UMAP projection."""
    from loc2vec_engine.clusters.cluster import cluster_file
    from loc2vec_engine.embeddings.embed import embed_area

    out = tmp_path_factory.mktemp("docks") / "porto_emb.gpkg"
    embed_area("default", porto_area, out, stride_m=100, device="cpu", progress=lambda f, m: None)
    cluster_file(out, k=3, seed=0)
    return out


@pytest.fixture()
def layer(clustered_path, tmp_path):
    import shutil

    path = shutil.copy(clustered_path, tmp_path / "porto_emb.gpkg")  # clustering rewrites the file
    lyr = QgsVectorLayer(f"{path}|layername=embeddings", "kinds of place (clusters)", "ogr")
    assert lyr.isValid()
    QgsProject.instance().addMapLayer(lyr)
    yield lyr
    QgsProject.instance().removeAllMapLayers()


def clusters_shown(dock) -> set:
    return set(dock.labels.tolist()) - {-1}


def test_umap_dock_follows_cluster_embeddings_rewriting_its_layer(loc2vec_plugin, layer, qgis_app):
    from loc2vec_qgis.gui.umap_dock import UmapDock

    dock = UmapDock()
    assert dock.set_layer(layer) and clusters_shown(dock) == {0, 1, 2}
    assert "3 clusters" in dock.status.text()
    result = processing.runAndLoadResults("loc2vec:cluster", {"INPUT": layer.id(), "K": 5},
                                          feedback=QgsProcessingFeedback())
    assert result["CLUSTERS"] == 5
    qgis_app.processEvents()  # the dock reads the layer again once the reload and the restyle are done
    assert dock.layer is layer and clusters_shown(dock) == {0, 1, 2, 3, 4}
    assert "5 clusters" in dock.status.text()
    colours = {b.color().name() for b in dock.scatter.data["brush"]}
    assert len(colours) == 5  # the scatter was redrawn in the new clusters' colours


def test_umap_dock_opens_on_the_projects_embeddings_layer(qgis_iface, layer):
    """The demo project's active layer is the query star: the dock picks the embeddings layer all the same."""
    from loc2vec_qgis.plugin import Loc2VecPlugin

    star = QgsVectorLayer("Point?crs=EPSG:4326&field=name:string", "query: Ribeira", "memory")
    QgsProject.instance().addMapLayer(star)
    qgis_iface.setActiveLayer(star)
    plugin = Loc2VecPlugin(qgis_iface)
    plugin.initGui()
    try:
        plugin.umap_action.trigger()
        dock = plugin.umap_dock
        assert dock.layer is layer, dock.status.text()
        assert "not a loc2vec embeddings layer" not in dock.status.text() and len(dock.fids) == layer.featureCount()
    finally:
        plugin.unload()


def test_cells_selected_from_the_dock_are_drawn_in_a_visible_colour(loc2vec_plugin, layer):
    """A project read from a file without a selection colour has white: selected cells looked like holes."""
    from loc2vec_qgis.algorithms.styles import CLUSTER_OPACITY, apply_style, cluster_renderer
    from loc2vec_qgis.gui.umap_dock import UmapDock

    project = QgsProject.instance()
    project.setSelectionColor(QColor("white"))  # what QGIS 3.22 reads from a .qgz that does not set one
    sizes = {}
    for f in layer.getFeatures():
        sizes[f["cluster"]] = sizes.get(f["cluster"], 0) + 1
    apply_style(layer, cluster_renderer(sizes, 100.0), CLUSTER_OPACITY)
    dock = UmapDock()
    assert dock.set_layer(layer)
    chosen = np.flatnonzero(dock.labels == 1)
    dock.select_indices(chosen)
    assert len(layer.selectedFeatureIds()) == len(chosen) > 0
    selection = project.selectionColor()
    assert min(selection.red(), selection.green(), selection.blue()) < 200  # not white, not grey
    settings = QgsMapSettings()
    settings.setLayers([layer])
    settings.setDestinationCrs(layer.crs())
    settings.setOutputSize(QSize(300, 300))
    settings.setExtent(layer.extent().buffered(60))
    settings.setBackgroundColor(QColor("white"))
    settings.setSelectionColor(project.selectionColor())  # the desktop's canvas draws in the project's colour
    job = QgsMapRendererSequentialJob(settings)
    job.start()
    job.waitForFinished()
    image, m2p = job.renderedImage(), settings.mapToPixel()
    fid = int(dock.fids[chosen[0]])
    p = m2p.transform(layer.getFeature(fid).geometry().asPoint())
    drawn = QColor(image.pixel(int(p.x()), int(p.y())))
    assert min(drawn.red(), drawn.green(), drawn.blue()) < 150, drawn.name()  # a colour, not a white hole
    layer.removeSelection()


def _metrics(folder, rows):
    folder.mkdir(parents=True, exist_ok=True)
    with open(folder / "metrics.csv", "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=["step", "elapsed_s", "train_loss", "val_acc"])
        w.writeheader()
        for step, loss, acc in rows:
            w.writerow({"step": step, "elapsed_s": step / 10, "train_loss": loss, "val_acc": acc})


def test_training_dock_picks_a_run_folder(qgis_app, tmp_path):
    from loc2vec_qgis.gui.training_dock import TrainingDock

    run = tmp_path / "runs" / "porto"
    _metrics(run, [(0, "", 0.61), (50, 0.9, ""), (100, 0.7, 0.74), (150, 0.5, "")])
    dock = TrainingDock()
    dock.show()
    assert "pick a run folder" in dock.status.text()
    assert dock.pick_button.isVisible() and dock.pick_button.text() == "Pick run folder…"
    dock.pick_button.click()
    dialogs = [d for d in dock.findChildren(QFileDialog) if d.isVisible()]
    assert len(dialogs) == 1 and dialogs[0].fileMode() == QFileDialog.Directory
    dialogs[0].fileSelected.emit(str(run))  # what the dialog sends when the user chooses the folder
    assert dock.run_dir == run
    assert list(dock.loss_curve.getData()[0]) == [50, 100, 150] and list(dock.acc_curve.getData()[1]) == [0.61, 0.74]
    assert "best validation accuracy 0.740" in dock.status.text()
    assert not dock.open_run_folder(tmp_path)  # not a run folder: a note, the curves stay
    assert "no metrics.csv" in dock.status.text() and dock.run_dir == run
    dialogs[0].reject()
    dock.timer.stop()


def test_similar_panel_controls_are_not_squashed_by_stacked_docks(qgis_app):
    """Four docks stacked on the right of a 1280 x 800 window: the k box keeps its height and shows '1000'."""
    from loc2vec_qgis.gui.similar_panel import SimilarPanel
    from loc2vec_qgis.gui.similar_tool import SimilarPlacesTool
    from loc2vec_qgis.gui.training_dock import TrainingDock
    from loc2vec_qgis.gui.umap_dock import UmapDock

    window = QMainWindow()
    canvas = QgsMapCanvas()
    window.setCentralWidget(canvas)
    panel = SimilarPanel(SimilarPlacesTool(canvas, None), window)
    layers = QgsDockWidget("Layers", window)
    layers.setWidget(QLabel("layers"))
    for dock in (layers, panel, UmapDock(window), TrainingDock(window)):
        window.addDockWidget(Qt.RightDockWidgetArea, dock)
    window.resize(1280, 800)
    window.show()
    qgis_app.processEvents()
    for spin in (panel.k_spin, panel.radius_spin):
        assert spin.height() >= spin.sizeHint().height() and spin.width() >= spin.sizeHint().width()
    k = panel.k_spin
    assert k.lineEdit().width() >= k.lineEdit().fontMetrics().horizontalAdvance(str(k.maximum()))
    window.close()
