"""A Python package that cannot be imported is named as such, with the install route, by every algorithm and tool:
never blamed on the input file (issue 11, item 2).

The imports fail for real: ``sys.modules[name] = None`` makes ``import name`` raise ModuleNotFoundError
(with ``e.name`` set) and ``importlib.util.find_spec(name)`` report the package missing, as in a QGIS
whose Python lacks it. Each test puts the packages back.
"""

import subprocess
import sys
import textwrap

import pytest
from qgis.core import QgsProcessingException, QgsProcessingFeedback, QgsProject, QgsVectorLayer
from qgis.PyQt.QtWidgets import QPushButton

from ..conftest import REPO
from .conftest import sandbox_env

import processing  # noqa: E402


def block(monkeypatch, *names):
    """Make ``import name`` (and of its submodules) fail as it does where the package is not installed."""
    for name in names:
        for key in [k for k in sys.modules if k == name or k.startswith(name + ".")]:
            monkeypatch.setitem(sys.modules, key, None)
        monkeypatch.setitem(sys.modules, name, None)


def refused(alg, params) -> str:
    with pytest.raises(QgsProcessingException) as e:
        processing.run(alg, params, feedback=QgsProcessingFeedback())
    return str(e.value)


def test_embed_without_onnxruntime_names_the_package_not_the_model(loc2vec_plugin, porto_area, tmp_path,
                                                                     monkeypatch):
    block(monkeypatch, "onnxruntime", "onnx")
    out = tmp_path / "e.gpkg"
    message = refused("loc2vec:embed", {"AREA": str(porto_area), "STRIDE": 150, "OUTPUT": str(out)})
    assert "Embed area needs the Python package 'onnxruntime'" in message
    assert "not a readable ONNX" not in message and "loc2vec export" not in message  # the shipped model is fine
    assert "pip install" in message and "onnxruntime" in message.split("Fix:")[1]
    assert not list(tmp_path.iterdir())  # no partial output


def test_cluster_without_sklearn_names_the_package(loc2vec_plugin, porto_area, tmp_path, monkeypatch):
    from loc2vec_engine.embeddings.embed import embed_area

    emb = tmp_path / "e.gpkg"
    embed_area("default", porto_area, emb, stride_m=200, device="cpu", progress=lambda f, m: None)
    before = emb.read_bytes()
    block(monkeypatch, "sklearn")
    message = refused("loc2vec:cluster", {"INPUT": str(emb), "K": 3})
    assert "Cluster embeddings needs the Python package 'sklearn'" in message
    assert "scikit-learn" in message.split("Fix:")[1]
    assert emb.read_bytes() == before


def test_the_engine_names_a_missing_onnxruntime_itself(porto_area, tmp_path, monkeypatch):
    """The root: reading a model without onnxruntime (and onnx) is a MissingPackage, not a bad-file error."""
    from loc2vec_engine.embeddings.onnx_encoder import OnnxEncoder
    from loc2vec_engine.errors import MissingPackage

    block(monkeypatch, "onnxruntime", "onnx")
    with pytest.raises(MissingPackage) as e:
        OnnxEncoder("default", device="cpu")
    assert e.value.package == "onnxruntime" and "onnxruntime" in e.value.problem
    assert "readable" not in e.value.problem and "loc2vec export" not in e.value.fix


def test_cli_without_onnxruntime_says_which_package(porto_area, tmp_path):
    out = tmp_path / "e.gpkg"
    code = textwrap.dedent(f"""
        import sys
        sys.modules["onnxruntime"] = sys.modules["onnx"] = None  # as if neither were installed
        from loc2vec_engine.cli import main
        sys.exit(main(["embed", "default", {str(porto_area)!r}, "--out", {str(out)!r}, "--stride", "150"]))
    """)
    env = sandbox_env(tmp_path / "sandbox")
    env["PYTHONPATH"] = str(REPO)
    proc = subprocess.run([sys.executable, "-c", code], env=env, cwd=tmp_path, capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 2, proc.stderr[-2000:]
    assert "needs the Python package 'onnxruntime'" in proc.stderr and "pip install onnxruntime" in proc.stderr
    assert "readable ONNX" not in proc.stderr and "Traceback" not in proc.stderr
    assert not out.exists()


def test_similar_tool_between_cells_says_onnxruntime_is_missing(porto_area, tmp_path, monkeypatch, qgis_iface):
    """A click between cells wants the model: without onnxruntime the nearest cell is used, and the note says why."""
    import numpy as np

    from loc2vec_engine.embeddings import read_embeddings
    from loc2vec_engine.embeddings.embed import embed_area
    from loc2vec_qgis.gui.similar_tool import SimilarPlacesTool

    emb = tmp_path / "e.gpkg"
    embed_area("default", porto_area, emb, stride_m=150, device="cpu", progress=lambda f, m: None)
    es = read_embeddings(emb)
    layer = QgsVectorLayer(f"{emb}|layername=embeddings", "embeddings", "ogr")
    QgsProject.instance().addMapLayer(layer)
    try:
        block(monkeypatch, "onnxruntime", "onnx")
        tool = SimilarPlacesTool(qgis_iface.mapCanvas(), qgis_iface.messageBar(), k=5)
        assert tool.set_layer(layer)
        ll = es.lonlat()
        between = tuple((ll[0] + ll[1]) / 2)  # half a stride from both cells
        assert tool.query_at(between)
        ref = tool.references[0]
        assert not ref.on_the_fly and "needs the Python package 'onnxruntime'" in ref.note
        assert "readable" not in ref.note
        assert "onnxruntime" in tool.last_message[0] and np.isfinite(tool.heat).all()
        tool.clear(quiet=True)
    finally:
        QgsProject.instance().removeAllMapLayers()


def test_umap_dock_without_pyqtgraph_offers_the_install(qgis_iface, monkeypatch):
    from loc2vec_qgis.plugin import Loc2VecPlugin

    plugin = Loc2VecPlugin(qgis_iface)
    plugin.initGui()
    try:
        block(monkeypatch, "pyqtgraph")
        qgis_iface.messageBar().clear_messages()
        plugin.show_umap_dock()  # no exception: a note with the package and an Install button
        assert plugin.umap_dock is None
        item = plugin.missing_item
        assert item is not None and qgis_iface.messageBar().currentItem() is item
        assert item.text() == "'UMAP of embeddings' needs the Python package pyqtgraph."
        assert [b.text() for b in item.findChildren(QPushButton)] == ["Details…", "Install"]
        assert "pyqtgraph" in item.findChildren(QPushButton)[1].toolTip()
        plugin.show_training_dock()
        assert plugin.training_dock is None and plugin.missing_item.text() == "'training' needs the Python package pyqtgraph."
    finally:
        monkeypatch.undo()
        plugin.unload()
