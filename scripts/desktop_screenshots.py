#!/usr/bin/env python3
"""The README's desktop screenshot: the real QGIS desktop under Xvfb, the plugin from the zip, the demo project.

    .venv/bin/python scripts/desktop_screenshots.py [--demo out/demo] [--out docs/desktop_similar_places.png]
        [--project-out docs/desktop_project.png] [--score-out docs/desktop_score.png] [--rgb-out docs/desktop_rgb.png]

Builds dist/loc2vec.zip, installs it into a fresh QGIS profile (``--profiles-path`` a temp folder),
runs ``loc2vec demo`` when the demo folder has no porto.qgz yet, opens porto.qgz in ``qgis`` under
``xvfb-run``, and lets scripts/desktop_driver.py press the toolbar's "find similar places" button and
click Ribeira; the grabs of the whole window are the screenshots: that click, then a Ctrl-click (a
negative example) with the score panel's slider moved, then the "embeddings as colours" layer. The functions here also start the
desktop for tests/qgis/test_desktop.py.
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import subprocess
import sys
import sysconfig
import tempfile
import zipfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DRIVER = REPO / "scripts" / "desktop_driver.py"
SCREEN = "1440x900x24"


def ensure_xvfb() -> str | None:
    """xvfb-run's path, installing Debian's xvfb when missing and this is root with apt; None when impossible."""
    found = shutil.which("xvfb-run")
    if found or os.geteuid() != 0 or not shutil.which("apt-get"):
        return found
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    install = ["apt-get", "install", "-y", "-qq", "xvfb"]
    if subprocess.run(install, env=env, capture_output=True, timeout=600).returncode != 0:
        subprocess.run(["apt-get", "update", "-qq"], env=env, capture_output=True, timeout=600)
        subprocess.run(install, env=env, capture_output=True, timeout=600)
    return shutil.which("xvfb-run")


def qgis_exe() -> str | None:
    for exe in (os.environ.get("LOC2VEC_QGIS"), "/usr/bin/qgis", shutil.which("qgis"), "/usr/bin/qgis.bin"):
        if exe and os.access(exe, os.X_OK):
            return exe
    return None


def build_zip(out: Path) -> Path:
    subprocess.run([sys.executable, str(REPO / "scripts" / "build_plugin.py"), "--out", str(out)], check=True,
                   capture_output=True, text=True, timeout=300)
    return out


def clean_profile(root: Path, plugin_zip: Path) -> Path:
    """A profiles folder whose "default" profile has only the plugin from ``plugin_zip``, enabled."""
    profile = root / "profiles" / "default"
    plugins = profile / "python" / "plugins"
    plugins.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(plugin_zip) as z:
        z.extractall(plugins)
    (profile / "QGIS").mkdir(exist_ok=True)
    # What Plugins > Manage and Install Plugins writes when the box is ticked (QGIS loads only enabled ones).
    # askToSaveMemoryLayers: QGIS counts every layer under /tmp as temporary and would ask on exit.
    (profile / "QGIS" / "QGIS3.ini").write_text("[PythonPlugins]\nloc2vec=true\n\n[qgis]\ncheckVersion=false\n\n"
                                               "[app]\naskToSaveMemoryLayers=false\n")
    return root


def desktop_env(root: Path, out: Path, mode: str) -> dict[str, str]:
    """A desktop session that writes only under ``root``, finds the venv's packages, and is driven to ``out``."""
    env = {k: v for k, v in os.environ.items()
           if k not in ("QT_QPA_PLATFORM", "QGIS_CUSTOM_CONFIG_PATH", "QGIS_OPTIONS_PATH", "QGIS_PLUGINPATH",
                        "DISPLAY", "PYTHONPATH")}
    for var, sub in (("HOME", "home"), ("XDG_CONFIG_HOME", "config"), ("XDG_CACHE_HOME", "cache"),
                     ("XDG_DATA_HOME", "data"), ("XDG_RUNTIME_DIR", "runtime"), ("NUMBA_CACHE_DIR", "numba")):
        (root / sub).mkdir(parents=True, exist_ok=True)
        env[var] = str(root / sub)
    os.chmod(root / "runtime", 0o700)
    # QGIS runs the system Python: the venv's packages (onnxruntime, faiss, ...) as the Install button would add.
    env["PYTHONPATH"] = sysconfig.get_paths()["purelib"]
    env.update(LOC2VEC_DESKTOP_OUT=str(out), LOC2VEC_DESKTOP_MODE=mode)
    return env


def run_desktop(project: Path, out: Path, root: Path, mode: str = "test", timeout: float = 110,
                xvfb: str | None = None) -> subprocess.CompletedProcess:
    """``qgis --code desktop_driver.py project`` under Xvfb with the clean profile in ``root``."""
    cmd = [xvfb or "xvfb-run", "-a", "-s", f"-screen 0 {SCREEN}", qgis_exe(), "--noversioncheck", "--nologo",
           "--profiles-path", str(root), "--code", str(DRIVER), str(project)]
    env = desktop_env(root, out, mode)
    # Its own process group: on a timeout, QGIS and Xvfb go too (xvfb-run alone would leave them running).
    proc = subprocess.Popen(cmd, env=env, cwd=root, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True)
    try:
        stdout, stderr = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        stdout, stderr = proc.communicate()
        stderr += f"\n[killed after {timeout:.0f} s]"
    return subprocess.CompletedProcess(cmd, proc.returncode, stdout, stderr)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--demo", type=Path, default=REPO / "out" / "demo", help="demo folder (made if missing)")
    ap.add_argument("--out", type=Path, default=REPO / "docs" / "desktop_similar_places.png")
    ap.add_argument("--project-out", type=Path, default=REPO / "docs" / "desktop_project.png",
                    help="the demo project as it opens (the clusters), before the tool is used")
    ap.add_argument("--score-out", type=Path, default=REPO / "docs" / "desktop_score.png",
                    help="after a Ctrl-click (a negative example) and the threshold slider moved")
    ap.add_argument("--rgb-out", type=Path, default=REPO / "docs" / "desktop_rgb.png",
                    help="the demo's 'embeddings as colours' layer ticked, the clusters unticked")
    args = ap.parse_args(argv)
    xvfb = ensure_xvfb()
    if xvfb is None or qgis_exe() is None:
        print("error: needs xvfb-run and qgis (apt-get install xvfb qgis)", file=sys.stderr)
        return 2
    project = args.demo / "porto.qgz"
    if not project.is_file():
        subprocess.run([str(Path(sys.executable).with_name("loc2vec")), "demo", "--out", str(args.demo)], check=True)
    with tempfile.TemporaryDirectory(prefix="loc2vec-desktop-") as tmp:
        root = Path(tmp)
        clean_profile(root / "qgis", build_zip(root / "loc2vec.zip"))
        grabs = root / "grabs"
        proc = run_desktop(project.resolve(), grabs, root / "qgis", mode="screenshot", xvfb=xvfb)
        window = grabs / "window.png"
        if not window.is_file():
            result = grabs / "result.json"
            print(result.read_text() if result.is_file() else proc.stderr[-3000:], file=sys.stderr)
            return 1
        written = []
        for grab, dest in (("window", args.out), ("project", args.project_out), ("window_score", args.score_out),
                           ("window_rgb", args.rgb_out)):
            if not (grabs / f"{grab}.png").is_file():
                print(f"error: the desktop saved no {grab}.png\n{(grabs / 'result.json').read_text()}", file=sys.stderr)
                return 1
            dest.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy(grabs / f"{grab}.png", dest)
            written.append(str(dest))
        print((grabs / "result.json").read_text())
    print("wrote " + ", ".join(written))
    return 0


if __name__ == "__main__":
    sys.exit(main())
