"""The Install button in real QGIS with the real pip (issue 11, item 3), offline: wheels built here, served
from a folder or from a local HTTP server on 127.0.0.1; pip never sees an index on the internet.

QGIS's numpy is kept (a package needing numpy 2 is refused with a message), the dialog asks first and
can be declined, and Cancel kills pip and leaves the package folder without any part of the install.
"""

import subprocess
import sys

import numpy
import pytest
from qgis.core import Qgis, QgsTask
from qgis.PyQt.QtWidgets import QPushButton

from loc2vec_qgis import dependencies, install_plan
from loc2vec_qgis.gui.dependency_bar import InstallDialog, show_missing, start_install
from loc2vec_qgis.install_plan import TOOLS, Choice, Plan
from loc2vec_qgis.pip_runner import PipRun

from .fake_wheels import SlowServer, make_wheel, offline_env, wait_for

NUMPY = numpy.__version__  # the numpy "QGIS" imports here


@pytest.fixture()
def wheels(tmp_path):
    """A folder of wheels: two fake numpys (QGIS's version and a 2.x), packages needing each."""
    folder = tmp_path / "wheels"
    make_wheel(folder, "numpy", NUMPY, code="FAKE = True\n")
    make_wheel(folder, "numpy", "2.0.0", code="FAKE = True\n")
    make_wheel(folder, "l2v_uses_numpy", requires=["numpy"])
    make_wheel(folder, "l2v_needs_numpy2", requires=["numpy>=2"])
    return folder


def plan_for(target, *names):
    return Plan([Choice(TOOLS, list(names))], target, numpy_version=NUMPY, python=sys.executable)


def contents(folder):
    return sorted(p.name for p in folder.iterdir()) if folder.exists() else []


def wait_task(task, app):
    assert wait_for(lambda: hasattr(task, "finished_message"), 120, app), task.status()


def test_without_the_constraint_pip_would_take_numpy_2(wheels, tmp_path):
    """The control: pip --target picks the newest numpy though this Python has one (why the pin is needed)."""
    proc = subprocess.run([sys.executable, "-m", "pip", "install", "--target", str(tmp_path / "t"), "l2v_uses_numpy"],
                          env=offline_env(wheels), capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert (tmp_path / "t" / "numpy-2.0.0.dist-info").is_dir()


def test_the_install_keeps_qgis_numpy_and_adds_no_copy_of_it(wheels, tmp_path):
    target = tmp_path / "profile" / "python" / dependencies.PACKAGES_DIR_NAME
    runner = PipRun(plan_for(target, "l2v_uses_numpy"), offline_env(wheels))
    out = runner.run()
    assert out.ok, out.output
    assert runner.command[runner.command.index("--constraint") + 1].endswith("constraints.txt")
    assert (target / "l2v_uses_numpy" / "__init__.py").is_file()
    assert not (target / "numpy").exists() and not list(target.glob("numpy-*")), contents(target)
    assert out.dropped == [f"numpy {NUMPY}"] and out.installed == ["l2v_uses_numpy 1.0"]
    assert contents(target.parent) == [dependencies.PACKAGES_DIR_NAME]  # the staging folder is gone


def test_a_package_needing_numpy_2_is_refused_with_a_message(qgis_iface, qgis_app, wheels, tmp_path):
    target = tmp_path / "pkgs"
    qgis_iface.messageBar().clear_messages()
    task = start_install(qgis_iface, plan_for(target, "l2v_needs_numpy2"), offline_env(wheels))
    wait_task(task, qgis_app)
    assert task.outcome.code not in (0, None) and "ResolutionImpossible" in task.outcome.output
    (error,) = qgis_iface.messageBar().get_messages(Qgis.Critical)
    assert f"needs another numpy than QGIS's own {NUMPY}" in error and "numpy>=2" in error, error
    assert "Fix:" in error and "older release" in error
    assert contents(target) == [] and not list(tmp_path.glob(".pkgs-staging-*"))


def test_a_package_pip_cannot_find_is_named_with_the_fix(wheels, tmp_path):
    out = PipRun(plan_for(tmp_path / "pkgs", "no_such_package_anywhere"), offline_env(wheels)).run()
    assert not out.ok and out.problem.startswith("pip found no no_such_package_anywhere")
    assert "connect to the internet" in out.fix and "pip install --target" in out.fix
    assert not (tmp_path / "pkgs").exists() or contents(tmp_path / "pkgs") == []


def test_the_install_button_asks_first_and_can_be_declined(qgis_iface, qgis_app, tmp_path, monkeypatch):
    """Before: one click started pip. Now it opens the dialog (sizes, folder, numpy), and Cancel runs nothing."""
    monkeypatch.setattr(install_plan, "has_gpu", lambda: False)
    started = []
    monkeypatch.setattr("loc2vec_qgis.gui.dependency_bar.start_install", lambda iface, plan: started.append(plan))
    m = dependencies.Missing(["onnxruntime", "faiss", "torch", "timm"], tmp_path / "pkgs")
    item = show_missing(qgis_iface, m)
    item.findChildren(QPushButton)[1].click()  # Install
    qgis_app.processEvents()
    (dialog,) = [w for w in qgis_iface.mainWindow().findChildren(InstallDialog) if w.isVisible()]
    tools, training = dialog.boxes[TOOLS], dialog.boxes[install_plan.TRAINING]
    assert tools.isChecked() and not training.isChecked()  # training: an explicit choice
    notes = {name: label.text() for name, label in dialog.notes.items()}
    assert "MB download" in tools.text() and "onnxruntime" in notes[TOOLS] and "torch" not in notes[TOOLS]
    assert "MB download" in training.text() and "torch" in notes[install_plan.TRAINING]
    assert "CPU wheels" in notes[install_plan.TRAINING]
    text = dialog.summary.text()
    assert str(tmp_path / "pkgs") in text and f"numpy {NUMPY} stays" in text and "MB in all" in text
    for label in (dialog.summary, *dialog.notes.values()):  # wrapped, never cut off
        assert label.height() >= label.heightForWidth(label.width()), label.text()
    before = dialog.summary.text()
    training.setChecked(True)
    assert dialog.summary.text() != before and dialog.plan().torch_index == install_plan.TORCH_CPU_INDEX
    tools.setChecked(False)
    training.setChecked(False)
    assert not dialog.install_button.isEnabled()  # nothing chosen, nothing to start
    dialog.reject()
    qgis_app.processEvents()
    assert started == [] and not (tmp_path / "pkgs").exists()

    item = show_missing(qgis_iface, m)
    item.findChildren(QPushButton)[1].click()
    qgis_app.processEvents()
    (dialog,) = [w for w in qgis_iface.mainWindow().findChildren(InstallDialog) if w.isVisible()]
    dialog.install_button.click()  # the default: the tools only
    qgis_app.processEvents()
    (plan,) = started
    assert plan.requirements == ["onnxruntime", "faiss-cpu"] and plan.torch_index is None
    assert f"numpy=={NUMPY}" in plan.constraints()


def test_install_button_installs_into_the_plugin_folder(qgis_iface, qgis_app, wheels, tmp_path, monkeypatch):
    for key, value in offline_env(wheels).items():
        if key.startswith("PIP_"):
            monkeypatch.setenv(key, value)
    target = tmp_path / "profile" / "python" / dependencies.PACKAGES_DIR_NAME
    m = dependencies.missing(("l2v_uses_numpy",), target=target)
    item = show_missing(qgis_iface, m)
    item.findChildren(QPushButton)[1].click()
    qgis_app.processEvents()
    (dialog,) = [w for w in qgis_iface.mainWindow().findChildren(InstallDialog) if w.isVisible()]
    tasks = []
    monkeypatch.setattr("loc2vec_qgis.gui.dependency_bar.start_install",
                        lambda iface, plan: tasks.append(start_install(iface, plan)))
    qgis_iface.messageBar().clear_messages()
    dialog.install_button.click()
    (task,) = tasks
    wait_task(task, qgis_app)
    try:
        assert task.status() == QgsTask.Complete, task.outcome.output
        assert (target / "l2v_uses_numpy" / "__init__.py").is_file() and not (target / "numpy").exists()
        assert str(target) in sys.path and not dependencies.missing(("l2v_uses_numpy",))
        assert any("Installed 1 packages" in msg for msg in qgis_iface.messageBar().get_messages(Qgis.Success))
    finally:
        sys.path.remove(str(target))
        sys.modules.pop("l2v_uses_numpy", None)


def test_cancel_kills_pip_and_leaves_no_partial_install(qgis_iface, qgis_app, tmp_path):
    """pip is caught downloading the second wheel (the server stalls); Cancel in the message bar stops it."""
    folder = tmp_path / "wheels"
    make_wheel(folder, "l2v_fast")
    make_wheel(folder, "l2v_slow")
    server = SlowServer(folder, stall={"l2v_slow-1.0-py3-none-any.whl"})
    target = tmp_path / "pkgs"
    target.mkdir()
    (target / "kept.txt").write_text("from an earlier install")
    try:
        qgis_iface.messageBar().clear_messages()
        env = {**offline_env(server.url), "PIP_DEFAULT_TIMEOUT": "300"}  # pip alone would wait on the server
        task = start_install(qgis_iface, plan_for(target, "l2v_fast", "l2v_slow"), env)
        assert wait_for(lambda: "l2v_slow-1.0-py3-none-any.whl" in server.requested, 60, qgis_app), \
            task.runner.last_line
        proc = task.runner.proc
        assert proc.poll() is None  # pip is running, in the middle of its download
        assert server.requested[0] == "l2v_fast-1.0-py3-none-any.whl"  # one wheel is already fetched
        task.cancel_button.click()
        assert wait_for(lambda: proc.poll() is not None, 8), "pip still runs after Cancel"  # SIGINT, SIGKILL at 5 s
        wait_task(task, qgis_app)
        assert task.status() == QgsTask.Terminated
    finally:
        server.close()
    assert task.outcome.cancelled
    assert contents(target) == ["kept.txt"]  # nothing of l2v_slow or l2v_fast, the old content untouched
    assert not list(tmp_path.glob(".pkgs-staging-*"))
    assert any("Install cancelled" in m for m in qgis_iface.messageBar().get_messages(Qgis.Info))


def fake_pip(tmp_path, then: str):
    """A stand-in for ``python`` whose "pip" writes half a package into its --target folder, then ``then``."""
    exe = tmp_path / "fake-python"
    exe.write_text("#!/bin/sh\nwhile [ \"$1\" != --target ]; do shift; done\nmkdir -p \"$2/l2v_half\"\n"
                   f"echo 'x = 1' > \"$2/l2v_half/__init__.py\"\necho Collecting l2v_half\n{then}\n")
    exe.chmod(0o755)
    return str(exe)


@pytest.mark.parametrize("then", ["exit 1", "sleep 60"])
def test_what_pip_wrote_before_failing_or_cancel_never_reaches_the_folder(tmp_path, then):
    """The staging folder: pip's partial writes stay there and go with it, on failure as on Cancel."""
    import threading

    target = tmp_path / "pkgs"
    plan = Plan([Choice(TOOLS, ["l2v_half"])], target, numpy_version=NUMPY, python=fake_pip(tmp_path, then))
    runner = PipRun(plan, offline_env(tmp_path))
    if then.startswith("sleep"):
        threading.Thread(target=lambda: wait_for(lambda: runner.last_line.startswith("Collecting"), 30)
                         and runner.cancel(), daemon=True).start()
    out = runner.run()
    assert not out.ok and out.cancelled == then.startswith("sleep")
    assert contents(target) == [] and not list(tmp_path.glob(".pkgs-staging-*"))


def test_a_new_version_replaces_the_old_one_whole(wheels, tmp_path):
    target = tmp_path / "pkgs"
    make_wheel(wheels, "l2v_pkg", "1.0", code="V = 1\n")
    assert PipRun(plan_for(target, "l2v_pkg==1.0"), offline_env(wheels)).run().ok
    make_wheel(wheels, "l2v_pkg", "2.0", code="V = 2\n")
    out = PipRun(plan_for(target, "l2v_pkg==2.0"), offline_env(wheels)).run()
    assert out.ok and out.installed == ["l2v_pkg 2.0"]
    assert contents(target) == ["l2v_pkg", "l2v_pkg-2.0.dist-info"]
    assert (target / "l2v_pkg" / "__init__.py").read_text() == "V = 2\n"


def test_an_unwritable_profile_folder_is_one_message(qgis_iface, qgis_app, tmp_path):
    (tmp_path / "profile").write_text("a file where the profile folder should be")  # fails as root too
    qgis_iface.messageBar().clear_messages()
    task = start_install(qgis_iface, plan_for(tmp_path / "profile" / "python" / "pkgs", "l2v_any"),
                         offline_env(tmp_path))
    wait_task(task, qgis_app)
    (error,) = qgis_iface.messageBar().get_messages(Qgis.Critical)
    assert "pip could not be started: " in error and "Not a directory" in error and "Fix: check that the folder can be written" in error
