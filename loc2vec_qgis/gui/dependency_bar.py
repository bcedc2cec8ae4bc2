"""One message-bar note when packages are missing, with an Install button that pip-installs them."""

from __future__ import annotations

from qgis.core import Qgis
from qgis.PyQt.QtWidgets import QApplication, QPushButton

from .. import dependencies


def show_missing(iface, missing: dependencies.Missing):
    """Push one warning naming the packages and the exact command; return the message-bar item."""
    bar = iface.messageBar()
    item = bar.createMessage("loc2vec", missing.message("Some loc2vec tools"))
    button = QPushButton("Install")
    button.setToolTip(missing.command_line())
    button.clicked.connect(lambda: _install(iface, missing, item))
    item.layout().addWidget(button)
    bar.pushWidget(item, Qgis.Warning)
    return item


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
