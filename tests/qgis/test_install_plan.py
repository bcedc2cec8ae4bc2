"""What the Install button offers (issue 11, item 3): the choices from the package table, the pip command with
QGIS's numpy pinned, the sizes, the torch wheels by GPU. Plain Python: no window, no pip run."""

import os
import stat
import subprocess
from pathlib import Path

from loc2vec_qgis import dependencies, install_plan
from loc2vec_qgis.install_plan import TOOLS, TRAINING, Choice, Plan


def test_the_tools_choice_is_every_non_training_part_and_has_no_torch():
    tools = install_plan.choice_packages(TOOLS)
    for part in ("rasterize", "embed", "cluster", "similar", "docks"):
        assert set(dependencies.NEEDS[part]) <= set(tools), part
    assert {"onnxruntime", "faiss", "umap", "sklearn", "pyqtgraph"} <= set(tools)
    assert not {"torch", "torchvision", "timm"} & set(tools)


def test_the_training_choice_is_torch_and_what_only_training_adds():
    training = install_plan.choice_packages(TRAINING)
    assert {"torch", "torchvision", "timm", "onnx"} <= set(training)
    assert not set(training) & set(install_plan.choice_packages(TOOLS))  # numpy, numba: already with the tools
    assert set(training) | set(install_plan.choice_packages(TOOLS)) == set(dependencies.ALL)


def test_choices_split_what_is_missing_and_only_the_tools_are_ticked():
    choices = install_plan.choices_for(["onnxruntime", "torch", "timm", "faiss"], gpu=False)
    assert [(c.name, c.packages) for c in choices] == [(TOOLS, ["onnxruntime", "faiss"]), (TRAINING, ["torch", "timm"])]
    assert install_plan.default_choices(choices) == {TOOLS}
    only_training = install_plan.choices_for(["torch"], gpu=False)
    assert [c.name for c in only_training] == [TRAINING] and install_plan.default_choices(only_training) == set()


def test_the_command_pins_qgis_numpy_as_a_constraint(tmp_path):
    plan = Plan([Choice(TOOLS, ["onnxruntime", "sklearn"])], tmp_path / "pkgs", numpy_version="1.24.2",
                python="python3")
    cmd = plan.command(tmp_path / "staging", tmp_path / "c.txt")
    assert cmd[:6] == ["python3", "-m", "pip", "install", "--target", str(tmp_path / "staging")]
    assert cmd[cmd.index("--constraint") + 1] == str(tmp_path / "c.txt")
    assert "numpy==1.24.2" in plan.constraints().splitlines()
    assert cmd[-2:] == ["onnxruntime", "scikit-learn"] and not any("numpy" in c for c in cmd)  # never a requirement
    assert "--upgrade" not in cmd and "-U" not in cmd and "--extra-index-url" not in cmd and "torch" not in cmd
    assert "numpy==1.24.2" in plan.command_line() and str(tmp_path / "pkgs") in plan.command_line()
    # No numpy in QGIS at all (never seen, but then numpy 1 at least)
    assert "numpy<2" in Plan([Choice(TOOLS, ["onnxruntime"])], tmp_path, numpy_version=None).constraints()


def test_the_default_numpy_pin_is_the_one_this_python_imports():
    import numpy

    assert install_plan.qgis_numpy_version() == numpy.__version__
    assert Plan([], Path("x")).numpy_version == numpy.__version__


def test_training_takes_cpu_wheels_without_a_gpu_and_says_so(tmp_path):
    cpu = Plan(install_plan.choices_for(["faiss", "torch", "torchvision", "timm"], gpu=False), tmp_path,
               numpy_version="1.26.4")
    cmd = cpu.command(tmp_path / "s", tmp_path / "c")
    assert cmd[cmd.index("--extra-index-url") + 1] == install_plan.TORCH_CPU_INDEX
    assert {"torch", "torchvision", "timm", "faiss-cpu"} <= set(cmd)
    assert "CPU wheels" in cpu.choices[1].note() and "CPU wheels" in cpu.summary()
    gpu = Plan(install_plan.choices_for(["torch"], gpu=True), tmp_path, numpy_version="1.26.4")
    assert "--extra-index-url" not in gpu.command(tmp_path / "s", tmp_path / "c")
    assert "CUDA wheels" in gpu.choices[0].note() and "GB download" in gpu.choices[0].label()


def test_sizes_are_stated_and_training_is_the_big_one():
    tools = Choice(TOOLS, list(install_plan.choice_packages(TOOLS)))
    cpu = Choice(TRAINING, list(install_plan.choice_packages(TRAINING)), gpu=False)
    cuda = Choice(TRAINING, list(install_plan.choice_packages(TRAINING)), gpu=True)
    assert 50 < tools.size_mb < 400 and cpu.size_mb > 200 and cuda.size_mb > 2500
    assert "MB download" in tools.label() and "GB download" in cuda.label()
    assert all(p in install_plan.SIZES_MB or p == "torch" for p in dependencies.ALL)  # every package has a size


def fake_nvidia_smi(folder: Path, output: str, code: int = 0) -> None:
    exe = folder / "nvidia-smi"
    exe.write_text(f"#!/bin/sh\necho '{output}'\nexit {code}\n")
    exe.chmod(exe.stat().st_mode | stat.S_IEXEC)


def test_gpu_detection_runs_nvidia_smi(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path))
    assert install_plan.has_gpu() is False  # not found
    fake_nvidia_smi(tmp_path, "GPU 0: NVIDIA H200 (UUID: GPU-1234)")
    assert install_plan.has_gpu() is True
    fake_nvidia_smi(tmp_path, "NVIDIA-SMI has failed because it couldn't communicate with the NVIDIA driver", 9)
    assert install_plan.has_gpu() is False
    assert install_plan.has_gpu(which=lambda n: "/x/nvidia-smi",
                                run=lambda *a, **k: (_ for _ in ()).throw(subprocess.TimeoutExpired("x", 10))) is False
    assert os.environ["PATH"] == str(tmp_path)
