"""Missing packages inside QGIS: found without importing, named with the exact pip command, installable
into the plugin's own folder (the install itself: test_install.py)."""

import numpy
from qgis.gui import QgsMessageBar
from qgis.PyQt.QtWidgets import QMainWindow, QMessageBox, QPushButton, QTextBrowser

from loc2vec_qgis import dependencies
from loc2vec_qgis.gui.dependency_bar import show_missing

FAKE = "loc2vec_fake_dependency"


def test_everything_the_plugin_needs_is_found_in_this_venv():
    assert not dependencies.missing(), dependencies.missing().message()
    for part in dependencies.NEEDS:
        assert not dependencies.missing_for(part)


def test_a_missing_package_is_named_with_its_pip_command(tmp_path):
    m = dependencies.missing(("numpy", "umap", FAKE), target=tmp_path / "pkgs")
    assert m.packages == [FAKE]
    assert dependencies.Missing(["umap"], None).requirements == ["umap-learn"]
    cmd = m.command()
    assert cmd[1:4] == ["-m", "pip", "install"] and cmd[4:6] == ["--target", str(tmp_path / "pkgs")]
    # --target ignores QGIS's numpy: the by-hand command pins it, or pip would fetch numpy 2 beside it
    assert cmd[6:] == [f"numpy=={numpy.__version__}", FAKE]
    assert "restart QGIS" in m.details() and m.command_line() in m.details()
    assert m.message() == f"Some loc2vec tools need the Python package {FAKE}."
    two = dependencies.Missing(["umap", "faiss"], None)
    assert two.message() == "Some loc2vec tools need 2 Python packages: umap-learn, faiss-cpu."


def test_the_message_reads_whole_in_one_line_of_the_bar(qgis_app, tmp_path):
    """The message bar shows one line of text (more behind scroll arrows, next to which the Install button
    sat): with every package missing the text still fits, grammatical, and Details shows the rest."""
    window = QMainWindow()
    bar = QgsMessageBar()
    window.setCentralWidget(bar)
    window.resize(1000, 200)  # a small QGIS window: the bar gets less than this
    window.show()
    m = dependencies.Missing(list(dependencies.ALL), tmp_path / "pkgs")

    class Iface:  # what show_missing uses of QgisInterface: a real message bar and main window
        def messageBar(self):  # noqa: N802
            return bar

        def mainWindow(self):  # noqa: N802
            return window

    item = show_missing(Iface(), m)
    qgis_app.processEvents()
    (browser,) = item.findChildren(QTextBrowser)
    assert browser.isVisible() and browser.verticalScrollBar().maximum() == 0, item.text()
    assert item.text().startswith(f"Some loc2vec tools need {len(dependencies.ALL)} Python packages")
    assert "needs" not in item.text() and "\n" not in item.text()
    details, install = item.findChildren(QPushButton)
    assert (details.text(), install.text()) == ("Details…", "Install")
    details.click()
    (box,) = [w for w in window.findChildren(QMessageBox) if w.isVisible()]
    assert m.command_line() in box.text() and "restart QGIS" in box.text()
    assert all(r in box.text() for r in m.requirements)
    box.close()
    window.close()
