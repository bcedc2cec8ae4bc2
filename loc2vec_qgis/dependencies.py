"""Which Python packages the plugin's parts need, which are missing, and how to install them.

Checked with ``importlib.util.find_spec``, which finds a package without importing it, so the check
costs nothing at QGIS start-up. Missing packages can be pip-installed into a folder the plugin owns
(``<QGIS profile>/python/loc2vec_packages``, put on ``sys.path`` at load), as Deepness does: no admin
rights, nothing written into QGIS's own Python.
"""

from __future__ import annotations

import importlib.util
import os
import shlex
import sys
from dataclasses import dataclass
from pathlib import Path

# import name -> pip requirement (numpy stays < 2 for the GDAL bindings that QGIS ships).
PACKAGES = {
    "numpy": "numpy<2",
    "osmium": "osmium",
    "shapely": "shapely>=2",
    "numba": "numba",
    "tqdm": "tqdm",
    "onnxruntime": "onnxruntime",
    "sklearn": "scikit-learn",
    "umap": "umap-learn",
    "faiss": "faiss-cpu",
    "torch": "torch",
    "torchvision": "torchvision",
    "timm": "timm",
    "onnx": "onnx",
    "pyqtgraph": "pyqtgraph",
}

# What each part of the plugin needs; checked when that part runs.
NEEDS = {
    "rasterize": ("numpy", "osmium", "shapely", "numba", "tqdm"),
    "embed": ("numpy", "numba", "tqdm", "onnxruntime"),
    "cluster": ("numpy", "sklearn", "umap"),
    "similar": ("numpy", "faiss"),
    "evaluate": ("numpy", "numba", "onnxruntime", "sklearn", "osmium", "torch"),
    # torchvision: timm imports it, and it must come from the same (CPU) index as torch; onnx: the export.
    "train": ("numpy", "numba", "torch", "torchvision", "timm", "onnx"),
    "docks": ("pyqtgraph",),
}
ALL = tuple(dict.fromkeys(p for names in NEEDS.values() for p in names))
PACKAGES_DIR_NAME = "loc2vec_packages"


@dataclass
class Missing:
    packages: list[str]  # import names
    target: Path | None

    def __bool__(self) -> bool:
        return bool(self.packages)

    @property
    def requirements(self) -> list[str]:
        return [PACKAGES.get(p, p) for p in self.packages]

    def command(self) -> list[str]:
        """The pip command that installs them by hand (into ``target`` when given), QGIS's numpy pinned.

        ``--target`` ignores what QGIS has installed, so numpy is named with QGIS's version: pip then keeps
        to it instead of fetching numpy 2 (the Install button passes the same pin as a constraint)."""
        from .install_plan import qgis_numpy_version

        cmd = [python_executable(), "-m", "pip", "install"]
        if self.target is not None:
            cmd += ["--target", str(self.target)]
        version = qgis_numpy_version()
        pin = [f"numpy=={version}"] if version else []
        return cmd + pin + [r for r in self.requirements if not (pin and r.startswith("numpy"))]

    def command_line(self) -> str:
        return " ".join(shlex.quote(c) for c in self.command())

    def message(self, what: str = "Some loc2vec tools", verb: str = "need", width: int = 66) -> str:
        """One short line, readable whole in the message bar (one line high); ``details()`` has the rest.

        The packages are named while the line stays within ``width`` characters, the others counted.
        """
        names = self.requirements
        if len(names) == 1:
            return f"{what} {verb} the Python package {names[0]}."
        head = f"{what} {verb} {len(names)} Python packages"
        for shown in range(len(names), 0, -1):
            rest = len(names) - shown
            line = f"{head}: {', '.join(names[:shown])}" + (f" and {rest} more." if rest else ".")
            if len(line) <= width:
                return line
        return f"{head} that QGIS lacks."

    def details(self) -> str:
        """Which packages, the exact pip command, and what to do after it (the Details window)."""
        return (f"The Python of this QGIS cannot import: {', '.join(self.requirements)}.\n\n"
                "Install asks first (the tools by default; training, with torch, only if ticked: it is large), "
                "then runs pip in the background with QGIS's numpy pinned. By hand:\n"
                f"  {self.command_line()}\n\nthen restart QGIS.")


def missing(names=ALL, target: Path | None = None) -> Missing:
    """The packages among ``names`` that cannot be found (``target``: where an install would go)."""
    return Missing([n for n in names if importlib.util.find_spec(n) is None], target)


def missing_package_text(package: str, what: str = "", target: Path | None = None,
                         needed_for: str = "") -> tuple[str, str]:
    """(problem, fix) for a package whose import failed: the package is named, with the pip command that
    installs it (and whatever else the tools lack, torch only when it is the training part that fails) into
    ``target``."""
    from .install_plan import TOOLS, choice_packages

    top = package.split(".")[0]
    need = missing(tuple(dict.fromkeys((top, *choice_packages(TOOLS)))), target)
    if top not in need.packages:  # found, yet its import failed (a broken install): reinstall it as well
        need.packages.insert(0, top)
    why = f" (for {needed_for})" if needed_for else ""
    problem = (f"{what or 'this loc2vec tool'} needs the Python package {top!r}{why}, which QGIS's Python "
               "cannot import")
    return problem, f"install it with: {need.command_line()} and restart QGIS"


def missing_for(part: str, target: Path | None = None) -> Missing:
    return missing(NEEDS[part], target)


def packages_dir(settings_dir: str | os.PathLike) -> Path:
    """The plugin's package folder inside a QGIS profile folder (``QgsApplication.qgisSettingsDirPath()``)."""
    return Path(settings_dir) / "python" / PACKAGES_DIR_NAME


def add_to_path(folder: Path) -> bool:
    """Put ``folder`` on ``sys.path`` (after the existing entries, so QGIS's own packages win)."""
    folder = Path(folder)
    if folder.is_dir() and str(folder) not in sys.path:
        sys.path.append(str(folder))
        importlib.invalidate_caches()
        return True
    return False


def python_executable() -> str:
    """The Python interpreter of this QGIS (``sys.executable`` is the QGIS binary on Windows and macOS)."""
    exe = Path(sys.executable)
    if exe.name.lower().startswith("python"):
        return str(exe)
    for folder in (Path(sys.exec_prefix) / "bin", Path(sys.exec_prefix)):
        for name in (f"python{sys.version_info.major}.{sys.version_info.minor}", "python3", "python.exe", "python3.exe"):
            if (folder / name).is_file():
                return str(folder / name)
    return "python3"

