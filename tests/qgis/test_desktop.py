"""The plugin in the real QGIS desktop: ``qgis`` under Xvfb (an X server, not the offscreen platform).

The plugin comes from the zip ``scripts/build_plugin.py`` builds, unpacked into a clean profile
(``--profiles-path`` a temp folder); QGIS opens the demo's porto.qgz and runs
scripts/desktop_driver.py (``--code``), which presses the toolbar button, clicks Ribeira on the
canvas, presses Esc (with the focus on the canvas, then after pressing a panel button), Ctrl-clicks a
negative example and moves the score panel's slider with the keyboard, ticks the demo's RGB layer,
and saves grabs of the screen. The checks read those pixels.
"""

import importlib.util
import json

import numpy as np
import pytest
from qgis.PyQt.QtGui import QImage

from ..conftest import REPO
from .test_similar_picture import changed_share, pixels

TOOL_LAYERS = {"similar places", "similarity heatmap", "similar mask", "clicked place"}
SCORE_LAYERS = {"score heatmap", "score mask", "negative examples"}


def _desktop():
    spec = importlib.util.spec_from_file_location("desktop_screenshots", REPO / "scripts" / "desktop_screenshots.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def desktop_run(demo_project, tmp_path_factory):
    desktop = _desktop()
    if desktop.qgis_exe() is None:
        pytest.skip("the QGIS desktop (qgis) is not installed")
    xvfb = desktop.ensure_xvfb()
    if xvfb is None:
        pytest.skip("xvfb-run is missing and could not be installed (needs root and apt-get: apt-get install xvfb)")
    root = tmp_path_factory.mktemp("desktop")
    profiles = desktop.clean_profile(root / "qgis", desktop.build_zip(root / "loc2vec.zip"))
    out = root / "grabs"
    proc = desktop.run_desktop(demo_project, out, profiles, mode="test", timeout=140, xvfb=xvfb)
    result = out / "result.json"
    assert result.is_file(), f"the driver wrote no result (rc {proc.returncode}):\n{proc.stderr[-4000:]}"
    data = json.loads(result.read_text())
    assert data["ok"], f"{data.get('error')}\n{data.get('traceback')}\n{proc.stderr[-3000:]}"
    return data, proc, out, profiles


def _grab(data, name):
    image = QImage(data["grabs"][name])
    assert not image.isNull() and image.width() > 300 and image.height() > 300
    return pixels(image)[data.get("message_bar_bottom", 0):]  # the message bar's text changes from grab to grab


def test_the_desktop_loads_the_plugin_from_the_zip_in_the_clean_profile(desktop_run):
    data, proc, out, profiles = desktop_run
    assert data["platform"] == "xcb" and data["qgis_version"].startswith("3.")
    profile = str(profiles / "profiles" / "default")
    assert data["plugin_file"].startswith(profile) and data["engine_file"].startswith(profile)  # not the checkout
    assert data["tool_active"] and data["action_checked"]
    assert "kinds of place (clusters)" in data["layers"]
    assert proc.returncode == 0 and (out / "quit.txt").is_file(), proc.stderr[-3000:]  # QGIS closed cleanly


def test_a_click_draws_the_heat_map_and_esc_takes_it_away(desktop_run):
    data = desktop_run[0]
    first, second = data["clicks"][:2]  # the third is the score round's
    for c in (first, second):
        assert len(c["cells"]) == 10 and "10 most similar places" in c["message"]
        assert {"similar places", "similarity heatmap", "clicked place"} <= set(c["layers"])
    before, clicked = _grab(data, "before"), _grab(data, "clicked")
    assert changed_share(before, clicked) > 0.2, "the click drew no heat map on the canvas"
    on_canvas, in_panel = data["escapes"][:2]
    assert on_canvas["focus"] == "QgsMapCanvas" and on_canvas["cleared"]
    assert not TOOL_LAYERS & set(on_canvas["layers"]) and on_canvas["message"] == "Similar places cleared."
    assert changed_share(before, _grab(data, "escaped")) < 0.01, "Esc left the heat map on the canvas"


def test_esc_after_pressing_a_panel_button_clears_too(desktop_run):
    data = desktop_run[0]
    assert data["mask_made"]
    in_panel = data["escapes"][1]
    assert in_panel["focus_in_panel"] and in_panel["focus"] == "QPushButton"
    assert in_panel["cleared"] and not TOOL_LAYERS & set(in_panel["layers"])
    assert changed_share(_grab(data, "before"), _grab(data, "escaped_from_panel")) < 0.01


def test_ctrl_click_scores_every_cell_and_the_slider_moves_the_mask(desktop_run):
    data = desktop_run[0]
    score = data["score"]
    assert score["scored"] and score["negatives"] == 1 and score["method"] == "prototype"
    assert SCORE_LAYERS <= set(score["layers"]) and "Scored" in score["message"]
    assert score["slider_enabled"] and "Method: prototype" in score["method_label"]
    assert f"{score['mask_cells']:,} cells" in score["threshold_label"]
    assert 0 < score["mask_cells"] < score["cells"]
    assert score["histogram_threshold"] == pytest.approx(score["threshold"])
    # The score heat map replaced the similarity one on the screen.
    assert changed_share(_grab(data, "clicked"), _grab(data, "scored")) > 0.05
    # Page Down x 3 on the slider: a lower threshold, more cells, the histogram's line and the map follow.
    slider = data["slider"]
    assert slider["to"] < slider["from"] and slider["threshold"] < score["threshold"]
    assert slider["mask_cells"] == slider["above"] > score["mask_cells"]
    assert f"{slider['mask_cells']:,} cells" in slider["threshold_label"]
    assert slider["histogram_threshold"] == pytest.approx(slider["threshold"])
    assert changed_share(_grab(data, "scored"), _grab(data, "slider_moved")) > 0.005
    # The panel, as the screen shows it: the histogram is drawn (more than a few flat colours).
    panel = QImage(data["grabs"]["score_panel"])
    assert not panel.isNull() and panel.height() > 300
    colours = np.unique(pixels(panel).reshape(-1, 3) // 16, axis=0)
    assert len(colours) > 20
    # Esc takes the score away with the rest.
    escape = data["escapes"][2]
    assert escape["cleared"] and not (TOOL_LAYERS | SCORE_LAYERS) & set(escape["layers"])


def test_the_rgb_layer_draws_the_embedding_in_many_colours(desktop_run):
    data = desktop_run[0]
    rgb = data["rgb"]
    assert rgb["bands"] == 3 and rgb["renderer"] == "multibandcolor"
    assert rgb["name"] in rgb["drawn"] and not any(name.startswith("kinds of place") for name in rgb["drawn"])
    before, shown = _grab(data, "before"), _grab(data, "rgb")
    assert changed_share(before, shown) > 0.2
    flat = shown.reshape(-1, 3).astype(int)
    coloured = flat[flat.max(axis=1) - flat.min(axis=1) > 40]  # saturated pixels: not the grey roads
    assert len(coloured) > 0.2 * len(flat)
    values, counts = np.unique(coloured // 32, axis=0, return_counts=True)
    assert (counts > 0.002 * len(flat)).sum() >= 12, "the RGB layer shows only a few colours"


def test_the_readme_screenshot_of_the_desktop_is_committed():
    """Made by scripts/desktop_screenshots.py: the whole desktop window (1440 x 900) after a click at Ribeira."""
    path = REPO / "docs" / "desktop_similar_places.png"
    image = QImage(str(path))
    assert not image.isNull(), f"{path} missing: run scripts/desktop_screenshots.py"
    assert (image.width(), image.height()) == (1440, 900) and path.stat().st_size < 400_000
    assert "docs/desktop_similar_places.png" in (REPO / "README.md").read_text()
