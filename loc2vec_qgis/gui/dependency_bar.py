"""One message-bar note when packages are missing, with an Install button that pip-installs them."""

from __future__ import annotations

from qgis.core import Qgis
from qgis.PyQt.QtCore import Qt
from qgis.PyQt.QtWidgets import QApplication, QMessageBox, QPushButton

from .. import dependencies


def show_missing(iface, missing: dependencies.Missing, what: str = "Some loc2vec tools", verb: str = "need"):
    """Push one warning that names the packages in a line the bar shows whole; Details… has the pip command.

    The message bar shows one line of text (more only behind its scroll arrows), so the command and the
    full list are in the Details window and the buttons' tooltips. Returns the message-bar item.
    """
    bar = iface.messageBar()
    item = bar.createMessage("loc2vec", missing.message(what, verb))
    details = QPushButton("Details…")
    details.setToolTip(missing.command_line())
    details.clicked.connect(lambda: _details(iface, missing))
    button = QPushButton("Install")
    button.setToolTip(missing.command_line())
    button.clicked.connect(lambda: _install(iface, missing, item))
    item.layout().addWidget(details)
    item.layout().addWidget(button)
    bar.pushWidget(item, Qgis.Warning)
    return item


def _details(iface, missing: dependencies.Missing) -> QMessageBox:
    box = QMessageBox(QMessageBox.Information, "loc2vec: missing Python packages", missing.details(),
                      QMessageBox.Close, iface.mainWindow())
    box.setTextInteractionFlags(Qt.TextSelectableByMouse)  # the command can be copied
    box.setModal(False)
    box.setAttribute(Qt.WA_DeleteOnClose)
    box.show()
    return box


def _install(iface, missing: dependencies.Missing, item) -> None:
    bar = iface.messageBar()
    bar.popWidget(item)
    progress = bar.createMessage("loc2vec", f"Installing {', '.join(missing.requirements)} ...")
    bar.pushWidget(progress, Qgis.Info)
    QApplication.processEvents()

    def on_line(line):
        progress.setText(line[-160:])
        QApplication.processEvents()

    code, output = dependencies.install(missing, on_line=on_line)
    bar.popWidget(progress)
    if code == 0:
        bar.pushMessage("loc2vec", f"Installed {', '.join(missing.requirements)} into {missing.target}. "
                        "Restart QGIS if a loc2vec tool still reports them missing.", Qgis.Success, 15)
    else:
        tail = output.strip().splitlines()[-1:] or ["(no output)"]
        bar.pushMessage("loc2vec", f"pip failed (exit {code}): {tail[0][:300]}. Run it yourself: "
                        f"{missing.command_line()}", Qgis.Critical, 0)
