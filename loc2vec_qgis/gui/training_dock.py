"""A dock that plots a training run's loss and validation accuracy live, from its ``metrics.csv``.

It reads the file the engine appends to (every run folder has one), so it follows a training started
by the *Train encoder* algorithm, by ``loc2vec train`` in a terminal, or one on another machine
writing to a shared folder. pyqtgraph is imported when the dock is built.
"""

from __future__ import annotations

import csv
from pathlib import Path

from qgis.gui import QgsDockWidget
from qgis.PyQt.QtCore import QObject, Qt, QTimer, pyqtSignal
from qgis.PyQt.QtWidgets import QFileDialog, QHBoxLayout, QLabel, QPushButton, QVBoxLayout, QWidget

POLL_MS = 1000


class _RunStarted(QObject):
    """Carries a run folder from the Processing worker thread to the GUI thread (queued signal)."""

    started = pyqtSignal(str)


class TrainingDock(QgsDockWidget):
    """Loss and validation accuracy of one run folder, refreshed every second while it grows."""

    def __init__(self, parent=None):
        super().__init__("loc2vec: training", parent)
        import pyqtgraph as pg

        self.setObjectName("loc2vec_training_dock")
        self.run_dir: Path | None = None
        self.rows: list[dict] = []
        self._size = -1
        body = QWidget()
        box = QVBoxLayout(body)
        self.status = QLabel("Run 'Train encoder', or pick a run folder, to see its curves here.")
        self.status.setWordWrap(True)
        self.pick_button = QPushButton("Pick run folder…")
        self.pick_button.setToolTip("A training run folder (it holds metrics.csv): from Train encoder, loc2vec train "
                                    "in a terminal, or a run on another machine writing to a shared folder")
        self.pick_button.clicked.connect(self.ask_run_folder)
        self._dialog = None
        self.loss_plot = pg.PlotWidget(background="w", title="training loss")
        self.acc_plot = pg.PlotWidget(background="w", title="validation triplet accuracy")
        self.acc_plot.setXLink(self.loss_plot)
        for plot in (self.loss_plot, self.acc_plot):
            plot.setLabel("bottom", "step")
            plot.showGrid(x=True, y=True, alpha=0.3)
        self.loss_curve = self.loss_plot.plot(pen=pg.mkPen("#1f77b4", width=2))
        self.acc_curve = self.acc_plot.plot(pen=pg.mkPen("#d62728", width=2), symbol="o", symbolSize=5,
                                            symbolBrush="#d62728")
        row = QHBoxLayout()
        row.addWidget(self.status, 1)
        row.addWidget(self.pick_button, 0, Qt.AlignTop)
        box.addLayout(row)
        box.addWidget(self.loss_plot)
        box.addWidget(self.acc_plot)
        self.setWidget(body)
        self.timer = QTimer(self)
        self.timer.setInterval(POLL_MS)
        self.timer.timeout.connect(self.refresh)
        self._relay = _RunStarted()
        self._relay.started.connect(self.watch)

    def listener(self, run_dir: str) -> None:
        """For ``train.RUN_STARTED_LISTENERS``: callable from any thread."""
        self._relay.started.emit(str(run_dir))

    def ask_run_folder(self) -> QFileDialog:
        """A folder dialog (not modal: the map stays usable); the chosen folder is watched."""
        start = str(self.run_dir.parent if self.run_dir is not None else Path.home())
        dialog = QFileDialog(self, "Pick a training run folder (it holds metrics.csv)", start)
        dialog.setFileMode(QFileDialog.Directory)
        dialog.setOption(QFileDialog.ShowDirsOnly, True)
        dialog.fileSelected.connect(self.open_run_folder)
        dialog.setAttribute(Qt.WA_DeleteOnClose)
        dialog.open()
        self._dialog = dialog
        return dialog

    def open_run_folder(self, folder) -> bool:
        """Watch ``folder`` when it is a run folder; else say what a run folder is (False)."""
        folder = Path(folder)
        if not (folder / "metrics.csv").is_file():
            self.status.setText(f"{folder} has no metrics.csv: pick the run folder a training writes "
                                "('Run folder' of Train encoder, --out of loc2vec train).")
            return False
        self.watch(folder)
        return True

    def watch(self, run_dir) -> None:
        self.run_dir = Path(run_dir)
        self.rows, self._size = [], -1
        self.status.setText(f"Watching {self.run_dir}")
        self.timer.start()
        self.refresh()  # stops the timer again when the run has already finished

    def refresh(self) -> None:
        """Re-read metrics.csv when it changed and redraw both curves."""
        if self.run_dir is None:
            return
        path = self.run_dir / "metrics.csv"
        size = path.stat().st_size if path.is_file() else -1
        if size == self._size:
            return
        self._size = size
        self.rows = _read_rows(path)
        loss = [(float(r["step"]), float(r["train_loss"])) for r in self.rows if r.get("train_loss")]
        acc = [(float(r["step"]), float(r["val_acc"])) for r in self.rows if r.get("val_acc")]
        self.loss_curve.setData(*_columns(loss))
        self.acc_curve.setData(*_columns(acc))
        if acc:
            best = max(a for _, a in acc)
            self.status.setText(f"{self.run_dir.name}: step {int(self.rows[-1]['step'])}, "
                                f"best validation accuracy {best:.3f}")
        if (self.run_dir / "summary.json").is_file():
            self.timer.stop()  # the run has finished


def _read_rows(path: Path) -> list[dict]:
    if not path.is_file():
        return []
    with open(path, newline="") as f:
        rows = list(csv.DictReader(f))
    return [r for r in rows if r.get("step")]  # a line being written may be incomplete


def _columns(pairs):
    return ([p[0] for p in pairs], [p[1] for p in pairs]) if pairs else ([], [])
