"""What the Install button offers and the exact pip command for it (no Qt: unit-tested without a window).

Two choices, both derived from ``dependencies.NEEDS``:

* **tools** (the default): every package of the parts a user runs on the shipped model (rasterize, embed,
  cluster, similar places, the docks);
* **training**: what only training and evaluation add (torch, torchvision, timm, onnx). A separate, explicit
  choice because it is large: CPU wheels from the PyTorch CPU index unless ``nvidia-smi`` finds a GPU,
  then PyPI's CUDA wheels (the ~3 GB download / 6 GB folder one click once produced).

QGIS's own numpy is kept: ``pip --target`` ignores what is installed (it resolves as if nothing were),
so without a pin it picks the newest numpy (2.x), which QGIS's numpy then shadows on ``sys.path``
(the plugin's folder comes after QGIS's) while the packages beside it were built for numpy 2: a mix that
breaks ``osgeo.gdal_array`` and compiled packages alike. A constraints file pins ``numpy==<the version
QGIS imports>``; a package that needs another numpy then makes pip fail with a conflict, which is
reported, instead of upgrading. The copy of that same numpy that ``--target`` still downloads is
dropped after the install (``pip_runner``), so the folder holds no second numpy.
"""

from __future__ import annotations

import importlib.metadata
import shlex
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

from . import dependencies

TRAINING_PARTS = ("train", "evaluate")  # the parts that need torch
TOOLS_PARTS = tuple(p for p in dependencies.NEEDS if p not in TRAINING_PARTS)
TOOLS = "tools"
TRAINING = "training"
TORCH_CPU_INDEX = "https://download.pytorch.org/whl/cpu"

# Approximate download (MB) of each package's Linux x86-64 wheel, with the dependencies it pulls that QGIS
# does not have (llvmlite for numba, scipy for scikit-learn: --target downloads scipy again). Shown in the
# confirmation dialog so that nobody starts a multi-gigabyte download unawares; other platforms are similar.
SIZES_MB = {
    "numpy": 16,        # only when QGIS has none
    "osmium": 2,
    "shapely": 3,
    "numba": 47,        # + llvmlite
    "tqdm": 0.1,
    "onnxruntime": 24,  # + protobuf, sympy, flatbuffers
    "sklearn": 51,      # + scipy, joblib, threadpoolctl
    "umap": 1,          # + pynndescent
    "faiss": 31,
    "pyqtgraph": 2,
    "torchvision": 7,
    "timm": 5,          # + huggingface_hub, safetensors, pyyaml
    "onnx": 16,
}
TORCH_MB = {"cpu": 200, "cuda": 3000}  # download; installed: ~0.7 GB (CPU) or ~6 GB (CUDA libraries)
TORCH_DISK_GB = {"cpu": 0.7, "cuda": 6.0}
NUMPY_COPY_MB = 16  # the pinned numpy that --target downloads again (then dropped)


def choice_packages(choice: str) -> tuple[str, ...]:
    """Import names of a choice, in the table's order; training lists only what tools lack."""
    parts = TOOLS_PARTS if choice == TOOLS else TRAINING_PARTS
    names = tuple(dict.fromkeys(p for part in parts for p in dependencies.NEEDS[part]))
    if choice == TRAINING:
        tools = set(choice_packages(TOOLS))
        names = tuple(n for n in names if n not in tools)
    return names


def has_gpu(which=shutil.which, run=subprocess.run) -> bool:
    """An NVIDIA GPU that CUDA wheels could use: ``nvidia-smi -L`` found and listing a GPU."""
    exe = which("nvidia-smi")
    if not exe:
        return False
    try:
        proc = run([exe, "-L"], capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return False
    return proc.returncode == 0 and "GPU" in proc.stdout


def qgis_numpy_version() -> str | None:
    """The numpy version this Python imports (QGIS's own), without importing numpy when it is not loaded yet."""
    module = sys.modules.get("numpy")
    if module is not None and getattr(module, "__version__", None):
        return module.__version__
    try:
        return importlib.metadata.version("numpy")  # the first numpy on sys.path: the one `import numpy` gives
    except importlib.metadata.PackageNotFoundError:
        return None


def _wheels(gpu: bool) -> str:
    return "cuda" if gpu else "cpu"


@dataclass
class Choice:
    name: str  # TOOLS or TRAINING
    packages: list[str]  # import names, missing ones only
    gpu: bool = False

    @property
    def requirements(self) -> list[str]:
        return [dependencies.PACKAGES.get(p, p) for p in self.packages]

    @property
    def size_mb(self) -> float:
        torch = TORCH_MB[_wheels(self.gpu)] if "torch" in self.packages else 0
        return torch + sum(SIZES_MB.get(p, 5) for p in self.packages if p != "torch")

    def title(self) -> str:
        if self.name == TOOLS:
            return "Tools (embed, cluster, similar places, docks)"
        return "Training and evaluation"

    def wheels_note(self) -> str:
        """Which torch wheels, and why (empty when torch is not part of this choice)."""
        if "torch" not in self.packages:
            return ""
        if self.gpu:
            return (f"CUDA wheels from PyPI (nvidia-smi found a GPU): ≈ {TORCH_MB['cuda'] / 1000:g} GB download, "
                    f"≈ {TORCH_DISK_GB['cuda']:g} GB on disk")
        return (f"CPU wheels from {TORCH_CPU_INDEX} (no NVIDIA GPU: nvidia-smi not found or lists none), "
                f"≈ {TORCH_DISK_GB['cpu']:g} GB on disk")

    def size_text(self) -> str:
        return f"≈ {self.size_mb / 1000:.1f} GB" if self.size_mb >= 1000 else f"≈ {self.size_mb:.0f} MB"

    def label(self) -> str:
        """What and how big (the dialog's check box: one short line)."""
        return f"{self.title()} — {self.size_text()} download"

    def note(self) -> str:
        """Which packages, and which torch wheels (the wrapped line under the check box)."""
        wheels = self.wheels_note()
        return ", ".join(self.requirements) + (f". torch: {wheels}" if wheels else "")


@dataclass
class Plan:
    """The chosen packages and where they go; ``command`` is what the task runs."""

    choices: list[Choice]
    target: Path
    numpy_version: str | None = field(default_factory=qgis_numpy_version)
    python: str = field(default_factory=dependencies.python_executable)

    @property
    def packages(self) -> list[str]:
        return [p for c in self.choices for p in c.packages]

    @property
    def requirements(self) -> list[str]:
        return [r for c in self.choices for r in c.requirements]

    @property
    def size_mb(self) -> float:
        numpy_copy = NUMPY_COPY_MB if self.numpy_version and self.packages else 0
        return sum(c.size_mb for c in self.choices) + numpy_copy

    @property
    def torch_index(self) -> str | None:
        """The CPU index for torch/torchvision when training is chosen without a GPU (Linux's PyPI torch is
        the CUDA build; Windows' and macOS' are CPU builds already, and the CPU index has them too)."""
        training = [c for c in self.choices if "torch" in c.packages]
        return TORCH_CPU_INDEX if training and not training[0].gpu else None

    def constraints(self) -> str:
        """The constraints file: QGIS's numpy exactly, or ``numpy<2`` (for GDAL's bindings) when it has none."""
        pin = f"numpy=={self.numpy_version}" if self.numpy_version else "numpy<2"
        return f"# QGIS's own numpy: never upgraded (its GDAL bindings are built for it)\n{pin}\n"

    def command(self, pip_target: Path, constraints_file: Path) -> list[str]:
        """``python -m pip install`` into ``pip_target`` (a staging folder) with the numpy constraint."""
        cmd = [self.python, "-m", "pip", "install", "--target", str(pip_target), "--constraint", str(constraints_file),
               "--disable-pip-version-check", "--no-input", "--progress-bar", "off", "--no-warn-script-location"]
        if self.torch_index:
            # An extra index: torch and torchvision come from it (its "+cpu" builds sort above PyPI's of the
            # same version), timm and onnx from PyPI, which the CPU index lacks.
            cmd += ["--extra-index-url", self.torch_index]
        return cmd + self.requirements

    def command_line(self) -> str:
        """The command as a user would type it (the constraint as ``numpy==X``, which pins the same numpy)."""
        cmd = [self.python, "-m", "pip", "install", "--target", str(self.target)]
        if self.torch_index:
            cmd += ["--extra-index-url", self.torch_index]
        pin = f"numpy=={self.numpy_version}" if self.numpy_version else "numpy<2"
        return " ".join(shlex.quote(c) for c in cmd + [pin, *[r for r in self.requirements if r != "numpy<2"]])

    def summary(self, packages: bool = True) -> str:
        """Packages, folder, sizes, numpy, wheels (the dialog, which lists packages and wheels per choice,
        leaves those out: ``packages=False``)."""
        numpy = (f"QGIS's numpy {self.numpy_version} stays (pip gets the constraint numpy=={self.numpy_version}; "
                 "a package that needs another numpy is refused, not installed)" if self.numpy_version else
                 "numpy < 2 (for QGIS's GDAL bindings)")
        lines = [f"Packages: {', '.join(self.requirements) or '(none chosen)'}"] if packages else []
        lines += [f"Folder: {self.target}", f"Download: ≈ {self.size_mb:.0f} MB in all (approximate)", f"numpy: {numpy}"]
        if packages and any("torch" in c.packages for c in self.choices):
            lines.append(f"torch: {[c for c in self.choices if 'torch' in c.packages][0].wheels_note()}")
        return "\n".join(lines)


def choices_for(missing: list[str], gpu: bool | None = None) -> list[Choice]:
    """The choices that have something missing: tools first, then training (``gpu``: detected when None).

    A missing package in neither table (an unexpected import) goes with the tools."""
    training = [p for p in missing if p in choice_packages(TRAINING)]
    tools = [p for p in missing if p not in training]
    out = [Choice(TOOLS, tools)] if tools else []
    if training:
        out.append(Choice(TRAINING, training, has_gpu() if gpu is None else gpu))
    return out


def default_choices(choices: list[Choice]) -> set[str]:
    """What the dialog ticks: the tools only. Training is never ticked for the user, even when it is all
    that is missing: its size is the reason it is a choice of its own."""
    return {TOOLS} if any(c.name == TOOLS for c in choices) else set()

