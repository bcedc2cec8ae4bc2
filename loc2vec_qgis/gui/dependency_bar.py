"""One message-bar note when packages are missing; Install asks what to install, then pip runs as a QgsTask.

The choices, sizes and the pip command come from ``install_plan``, the cancellable all-or-nothing run from
``pip_runner``: this module only shows them (a dialog, a progress bar with Cancel in the message bar,
the task in QGIS's task manager) and reports the outcome.
"""

from __future__ import annotations

from qgis.core import Qgis, QgsApplication, QgsTask
from qgis.PyQt.QtCore import Qt, pyqtSignal
from qgis.PyQt.QtWidgets import (QCheckBox, QDialog, QDialogButtonBox, QHBoxLayout, QLabel, QMessageBox,
                                 QProgressBar, QPushButton, QVBoxLayout, QWidget)

from .. import dependencies, install_plan
from ..pip_runner import Outcome, PipRun


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
    button.setToolTip(f"Asks first (sizes, folder), then installs: {', '.join(missing.requirements)}")
    button.clicked.connect(lambda: ask_install(iface, missing, item))
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


WIDTH = 620  # px of the dialog's wrapped texts


class InstallDialog(QDialog):
    """The packages of each choice with its size, the folder, QGIS's numpy; Install starts nothing else."""

    def __init__(self, choices: list[install_plan.Choice], target, parent=None):
        super().__init__(parent)
        self.setWindowTitle("loc2vec: install Python packages")
        self.choices, self.target = choices, target
        layout = QVBoxLayout(self)
        layout.setSizeConstraint(QVBoxLayout.SetMinimumSize)  # wrapped labels get the height they need
        ticked = install_plan.default_choices(choices)
        self.boxes, self.notes = {}, {}
        for choice in choices:
            box = QCheckBox(choice.label())
            box.setChecked(choice.name in ticked)
            box.toggled.connect(self._update)
            note = QLabel(choice.note())  # the package list wraps here; a check box's text would not
            note.setWordWrap(True)
            note.setContentsMargins(24, 0, 0, 8)
            note.setFixedWidth(WIDTH)
            layout.addWidget(box)
            layout.addWidget(note)
            self.boxes[choice.name], self.notes[choice.name] = box, note
        self.summary = QLabel()
        self.summary.setWordWrap(True)
        self.summary.setFixedWidth(WIDTH)  # a fixed width: Qt then gives a wrapped label all the height it needs
        self.summary.setTextInteractionFlags(Qt.TextSelectableByMouse)
        layout.addWidget(self.summary)
        self.buttons = QDialogButtonBox(QDialogButtonBox.Cancel)
        self.install_button = self.buttons.addButton("Install", QDialogButtonBox.AcceptRole)
        self.buttons.accepted.connect(self.accept)
        self.buttons.rejected.connect(self.reject)
        layout.addWidget(self.buttons)
        self._update()

    def plan(self) -> install_plan.Plan:
        return install_plan.Plan([c for c in self.choices if self.boxes[c.name].isChecked()], self.target)

    def _update(self, *_):
        plan = self.plan()
        self.summary.setText(plan.summary(packages=False))
        self.install_button.setEnabled(bool(plan.requirements))


def ask_install(iface, missing: dependencies.Missing, item=None, start=None) -> InstallDialog:
    """Show the dialog (non-blocking); on Install the note goes and ``start(iface, plan)`` runs."""
    dialog = InstallDialog(install_plan.choices_for(missing.packages), missing.target, iface.mainWindow())
    dialog.setAttribute(Qt.WA_DeleteOnClose)

    def accepted():
        if item is not None:
            iface.messageBar().popWidget(item)
        (start or start_install)(iface, dialog.plan())

    dialog.accepted.connect(accepted)
    dialog.open()
    return dialog


class InstallTask(QgsTask):
    """pip in QGIS's task manager; its Cancel (and the message bar's) kills pip."""

    line = pyqtSignal(str)  # pip's latest output line, for the message bar (queued to the main thread)

    def __init__(self, plan: install_plan.Plan, env=None):
        super().__init__(f"loc2vec: installing {', '.join(plan.requirements)}", QgsTask.CanCancel)
        self.plan = plan
        self.runner = PipRun(plan, env)
        self.outcome = None
        self._collected = 0

    def run(self) -> bool:
        try:
            self.outcome = self.runner.run(self._on_line)
        except OSError as e:  # no Python to run pip with, an unwritable profile folder, ...
            self.outcome = Outcome(None, problem=f"pip could not be started: {e}",
                                   fix=f"check that the folder can be written and run by hand: {self.plan.command_line()}")
        return self.outcome.ok

    def _on_line(self, text: str) -> None:
        # No percentage from pip: each "Collecting" moves the bar towards 60 %, installing is 80 %.
        if text.startswith("Collecting"):
            self._collected += 1
            self.setProgress(min(60.0, 60.0 * self._collected / (2 * len(self.plan.requirements) + 1)))
        elif text.startswith("Installing collected packages"):
            self.setProgress(80.0)
        self.line.emit(text[:200])

    def cancel(self) -> None:
        self.runner.cancel()
        super().cancel()


def start_install(iface, plan: install_plan.Plan, env=None) -> InstallTask:
    """Run ``plan`` as a task, with a message-bar line showing pip's progress and a Cancel button."""
    bar = iface.messageBar()
    task = InstallTask(plan, env)
    widget = QWidget()
    row = QHBoxLayout(widget)
    row.setContentsMargins(0, 0, 0, 0)
    label = QLabel(f"Installing {len(plan.requirements)} packages into {plan.target.name} …")
    progress = QProgressBar()
    progress.setMaximumWidth(160)
    cancel = QPushButton("Cancel")
    row.addWidget(label, 1)
    row.addWidget(progress)
    row.addWidget(cancel)
    item = bar.createMessage("loc2vec", "")
    item.layout().addWidget(widget)
    bar.pushWidget(item, Qgis.Info)
    task.line.connect(label.setText)
    task.progressChanged.connect(lambda p: progress.setValue(int(p)))
    cancel.clicked.connect(task.cancel)
    task.taskCompleted.connect(lambda: _finished(iface, task, item))
    task.taskTerminated.connect(lambda: _finished(iface, task, item))
    task.progress_item, task.cancel_button = item, cancel  # for tests and for the finished note
    QgsApplication.taskManager().addTask(task)
    return task


def _finished(iface, task: InstallTask, item) -> None:
    bar = iface.messageBar()
    bar.popWidget(item)
    out, plan = task.outcome, task.plan
    if out is None or (out.cancelled and not out.problem):
        bar.pushMessage("loc2vec", f"Install cancelled: pip stopped, nothing was added to {plan.target}.",
                        Qgis.Info, 10)
    elif out.ok:
        dependencies.add_to_path(plan.target)
        shadowed = f" Kept QGIS's own: {'; '.join(out.shadowed)}." if out.shadowed else ""
        bar.pushMessage("loc2vec", f"Installed {len(out.installed)} packages into {plan.target}. Restart QGIS if "
                        f"a tool still reports one missing.{shadowed}", Qgis.Success, 15)
    else:
        bar.pushMessage("loc2vec", f"{out.problem}. Fix: {out.fix}.", Qgis.Critical, 0)
    task.finished_message = bar.currentItem()
