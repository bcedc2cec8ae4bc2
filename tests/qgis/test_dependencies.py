"""Missing packages inside QGIS: found without importing, named with the exact pip command, installable
into the plugin's own folder (tested offline with a real pip and a wheel built here)."""

import importlib.util
import sys
import zipfile

import pytest
from qgis.core import Qgis
from qgis.gui import QgsMessageBar
from qgis.PyQt.QtWidgets import QMainWindow, QMessageBox, QPushButton, QTextBrowser

from loc2vec_qgis import dependencies
from loc2vec_qgis.gui.dependency_bar import show_missing

FAKE = "loc2vec_fake_dependency"


@pytest.fixture()
def wheel_dir(tmp_path, monkeypatch):
    """A real (tiny) wheel, and pip told to install from this folder only: no network."""
    folder = tmp_path / "wheels"
    folder.mkdir()
    info = f"{FAKE}-1.0.dist-info"
    with zipfile.ZipFile(folder / f"{FAKE}-1.0-py3-none-any.whl", "w") as zf:
        zf.writestr(f"{FAKE}/__init__.py", "ANSWER = 42\n")
        zf.writestr(f"{info}/METADATA", f"Metadata-Version: 2.1\nName: {FAKE}\nVersion: 1.0\n")
        zf.writestr(f"{info}/WHEEL", "Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: true\nTag: py3-none-any\n")
        zf.writestr(f"{info}/RECORD", f"{FAKE}/__init__.py,,\n{info}/METADATA,,\n{info}/WHEEL,,\n{info}/RECORD,,\n")
    monkeypatch.setenv("PIP_NO_INDEX", "1")
    monkeypatch.setenv("PIP_FIND_LINKS", str(folder))
    yield folder
    sys.modules.pop(FAKE, None)


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


def test_install_button_installs_into_the_plugin_folder(qgis_iface, wheel_dir, tmp_path):
    target = tmp_path / "profile" / "python" / dependencies.PACKAGES_DIR_NAME
    m = dependencies.missing((FAKE,), target=target)
    assert m.packages == [FAKE]
    bar = qgis_iface.messageBar()
    item = show_missing(qgis_iface, m)
    assert bar.currentItem() is item and FAKE in item.text()
    buttons = item.findChildren(QPushButton)
    assert [b.text() for b in buttons] == ["Details…", "Install"] and buttons[1].toolTip() == m.command_line()
    buttons[1].click()  # runs pip for real
    assert (target / FAKE / "__init__.py").is_file()
    assert str(target) in sys.path and importlib.util.find_spec(FAKE) is not None
    assert any("Installed" in msg for msg in bar.get_messages(Qgis.Success))
    assert not dependencies.missing((FAKE,))
    sys.path.remove(str(target))


def test_failed_install_says_so(qgis_iface, wheel_dir, tmp_path):
    m = dependencies.Missing(["no_such_package_anywhere"], tmp_path / "pkgs")
    item = show_missing(qgis_iface, m)
    item.findChildren(QPushButton)[1].click()  # Install
    errors = qgis_iface.messageBar().get_messages(Qgis.Critical)
    assert errors and "pip failed" in errors[-1] and m.command_line() in errors[-1]
