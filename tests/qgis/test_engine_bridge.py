"""The plugin's bridge to the engine: progress stages, and shapely's GEOS inside a process linked to the system GEOS."""

import ctypes.util
import subprocess
import sys
import textwrap

import pytest
from qgis.core import QgsProcessingFeedback

from loc2vec_qgis.algorithms.engine import FeedbackProgress

from ..conftest import REPO
from .conftest import sandbox_env


def test_progress_moves_forward_through_stages():
    feedback = QgsProcessingFeedback()
    progress = FeedbackProgress(feedback, stages=2)
    # The engine's rasterize: reading (0, 1/3, 2/3), then burning chunks (1/4 .. 1).
    seen = []
    for fraction, message in [(0, "reading"), (1 / 3, "8522 features"), (2 / 3, "burning"),
                              (0.25, "chunk"), (0.5, "chunk"), (1.0, "chunk")]:
        assert progress(fraction, message) is False
        seen.append(feedback.progress())
    assert seen == sorted(seen) and seen[2] < 50 <= seen[3] and seen[-1] == 100
    feedback.cancel()
    assert progress(1.0, "chunk") is True


SIMULATE_QGIS = """
    import ctypes, sys
    # What /usr/bin/qgis and qgis_process.bin do: the system GEOS is linked in, its symbols global.
    ctypes.CDLL({geos!r}, mode=ctypes.RTLD_GLOBAL)
    {before}
    from qgis.core import QgsProcessingException
    from loc2vec_qgis.algorithms.engine import import_shapely
    try:
        shapely = import_shapely()
        shapely.to_wkb(shapely.Point(1, 2))
        print("isolated")
    except QgsProcessingException as e:
        print("refused:", e)
"""


@pytest.mark.parametrize("before, expected", [("", "isolated"), ("import shapely", "refused:")])
def test_shapely_wheel_keeps_its_own_geos(tmp_path, before, expected):
    geos = ctypes.util.find_library("geos_c")
    if geos is None:
        pytest.skip("no system GEOS")
    code = textwrap.dedent(SIMULATE_QGIS).format(geos=geos, before=before)
    env = sandbox_env(tmp_path)
    env["PYTHONPATH"] = str(REPO)
    proc = subprocess.run([sys.executable, "-c", code], env=env, cwd=tmp_path, capture_output=True, text=True,
                          timeout=60)
    assert proc.returncode == 0, proc.stderr[-3000:]
    if expected == "refused:" and "isolated" in proc.stdout:
        pytest.skip("this shapely is built against the system GEOS: nothing to isolate")
    assert proc.stdout.startswith(expected), proc.stdout
    if expected == "refused:":
        assert "Fix:" in proc.stdout and "--no-binary shapely" in proc.stdout
