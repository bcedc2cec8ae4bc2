"""Drives the loc2vec plugin inside a real QGIS desktop: run as ``qgis --code scripts/desktop_driver.py PROJECT``.

QGIS executes this file after its window is up (with the project given on its command line). It waits
for the project and the plugin, then acts as a user would, through the real widgets: it presses the
toolbar's "find similar places" button, clicks the map at a place, presses Esc (once with the
keyboard focus on the canvas, once after pressing a button of the panel), Ctrl-clicks a negative
example and moves the score panel's threshold slider with the keyboard, ticks the demo's
"embeddings as colours" layer, and saves grabs of the screen (the X server's pixels, not a
re-rendering) and ``result.json`` into ``$LOC2VEC_DESKTOP_OUT``.
Then it closes QGIS.

    LOC2VEC_DESKTOP_OUT    folder for the PNGs and result.json (required)
    LOC2VEC_DESKTOP_MODE   "test" (default): the click/Esc rounds, the score, the RGB layer; "screenshot":
                           grabs of the whole window: one click (window.png), a Ctrl-click and the slider
                           moved (window_score.png), the RGB layer (window_rgb.png)
    LOC2VEC_DESKTOP_CLICK  "lon,lat" of the click (default: Ribeira, Porto, the demo's landmark)

Used by tests/qgis/test_desktop.py and scripts/desktop_screenshots.py; it never imports anything of
the checkout itself (the plugin comes from the profile it was installed into).
"""

import builtins
import json
import os
import time
import traceback
from pathlib import Path

from qgis.core import QgsApplication, QgsCoordinateReferenceSystem, QgsCoordinateTransform, QgsPointXY, QgsProject
from qgis.PyQt.QtCore import QPoint, QSize, Qt, QTimer
from qgis.PyQt.QtGui import QGuiApplication
from qgis.PyQt.QtTest import QTest
from qgis.PyQt.QtWidgets import QAbstractButton, QApplication, QToolBar
from qgis.utils import iface

RIBEIRA = (-8.6125, 41.1418)
SIMILAR_TITLE = "loc2vec: find similar places"
TIMEOUT_S = 110.0
WINDOW = QSize(1440, 900)  # the Xvfb screen of scripts/desktop_screenshots.py


class Driver:
    """One step at a time from the event loop, so QGIS keeps drawing between them."""

    def __init__(self):
        self.out = Path(os.environ["LOC2VEC_DESKTOP_OUT"])
        self.out.mkdir(parents=True, exist_ok=True)
        self.mode = os.environ.get("LOC2VEC_DESKTOP_MODE", "test")
        click = os.environ.get("LOC2VEC_DESKTOP_CLICK")
        self.lonlat = tuple(map(float, click.split(","))) if click else RIBEIRA
        self.t0 = time.monotonic()
        self.result = {"mode": self.mode, "steps": [], "grabs": {}}
        self.canvas = iface.mapCanvas()
        self.plugin = None
        self.timer = QTimer()
        self.timer.setSingleShot(True)
        self.timer.timeout.connect(self._next)
        self.steps = iter(self.plan())
        self.waiting = None  # (predicate, what, deadline)

    # ---- the plan ------------------------------------------------------------------------------
    def plan(self):
        yield self.wait_for(self.project_ready, "the project's layers and the plugin")
        yield self.wait_for(self.canvas_idle, "the canvas's first drawing")
        if self.mode == "screenshot":
            yield lambda: self.window_grab("project")  # the demo project as it opens: the clusters
        yield self.open_tool
        yield self.wait_for(lambda: getattr(self.tool(), "warmed", True) is not None, "the tool's warm-up")
        yield self.wait_for(self.canvas_idle, "the canvas after activation")
        yield lambda: self.grab("before")
        if self.mode == "screenshot":
            yield self.click
            yield self.wait_for(self.canvas_idle, "the heat map")
            yield lambda: self.window_grab("window")
            yield self.ctrl_click_negative
            yield self.wait_for(self.canvas_idle, "the score heat map and its mask")
            yield self.move_slider
            yield self.wait_for(self.canvas_idle, "the mask at the new threshold")
            yield lambda: self.window_grab("window_score")
            yield lambda: self.escape("scored")
            yield lambda: self.show_rgb(True)
            yield self.wait_for(self.canvas_idle, "the RGB layer")
            yield lambda: self.window_grab("window_rgb")
            return
        # Round 1: click, Esc with the focus on the canvas (where the click put it).
        yield self.click
        yield self.wait_for(self.canvas_idle, "the heat map")
        yield lambda: self.grab("clicked")
        yield lambda: self.escape("canvas")
        yield self.wait_for(self.canvas_idle, "the canvas after Esc")
        yield lambda: self.grab("escaped")
        # Round 2: click, press a panel button (the focus goes to the dock), Esc.
        yield self.click
        yield self.wait_for(self.canvas_idle, "the heat map again")
        yield self.press_panel_button
        yield lambda: self.escape("panel")
        yield self.wait_for(self.canvas_idle, "the canvas after Esc in the panel")
        yield lambda: self.grab("escaped_from_panel")
        # Round 3: click, Ctrl-click a negative (the place least like the click), the score panel and its slider.
        yield self.click
        yield self.wait_for(self.canvas_idle, "the heat map for the score")
        yield self.ctrl_click_negative
        yield self.wait_for(self.canvas_idle, "the score heat map and its mask")
        yield lambda: self.grab("scored")
        yield lambda: self.panel_grab("score_panel")
        yield self.move_slider
        yield self.wait_for(self.canvas_idle, "the mask at the new threshold")
        yield lambda: self.grab("slider_moved")
        yield lambda: self.escape("scored")
        yield self.wait_for(self.canvas_idle, "the canvas after Esc on the score")
        # The embedding as colours: the demo's RGB layer ticked, the clusters over it unticked.
        yield lambda: self.show_rgb(True)
        yield self.wait_for(self.canvas_idle, "the RGB layer")
        yield self.record_drawn_layers
        yield lambda: self.grab("rgb")
        yield lambda: self.show_rgb(False)

    # ---- steps ---------------------------------------------------------------------------------
    def project_ready(self) -> bool:
        import qgis.utils

        self.plugin = qgis.utils.plugins.get("loc2vec")
        window = iface.mainWindow()
        if window.size() != WINDOW:  # no window manager under Xvfb: place the window on the screen ourselves
            window.move(0, 0)
            window.resize(WINDOW)
        if QApplication.activeWindow() is not window:  # nor one that gives it the keyboard focus
            window.raise_()
            window.activateWindow()
            return False
        return bool(QgsProject.instance().mapLayers()) and self.plugin is not None and self.canvas.isVisible()

    def canvas_idle(self) -> bool:
        """No drawing for three polls in a row (a redraw starts on a timer after a change)."""
        idle = not self.canvas.isDrawing()
        self._idle = getattr(self, "_idle", 0) + 1 if idle else 0
        if self._idle >= 3:
            self._idle = 0
            return True
        return False

    def open_tool(self):
        import loc2vec_engine
        import loc2vec_qgis

        bar = iface.mainWindow().findChild(QToolBar, "loc2vec_toolbar")
        (action,) = [a for a in bar.actions() if a.text() == SIMILAR_TITLE]
        QTest.mouseClick(bar.widgetForAction(action), Qt.LeftButton)  # the toolbar button, as a user presses it
        self.result.update(
            qgis_version=__import__("qgis.core").core.Qgis.QGIS_VERSION, platform=QGuiApplication.platformName(),
            plugin_file=loc2vec_qgis.__file__, engine_file=loc2vec_engine.__file__,
            profile=QgsApplication.qgisSettingsDirPath(), layers=[lyr.name() for lyr in
                                                                  QgsProject.instance().mapLayers().values()],
            tool_active=self.canvas.mapTool() is self.tool(), action_checked=action.isChecked())

    def tool(self):
        return self.plugin.similar_tool

    def click_pixel(self) -> QPoint:
        return self.pixel_of(*self.lonlat)

    def pixel_of(self, lon: float, lat: float) -> QPoint:
        wgs84 = QgsCoordinateReferenceSystem("EPSG:4326")
        to_map = QgsCoordinateTransform(wgs84, self.canvas.mapSettings().destinationCrs(), QgsProject.instance())
        px = self.canvas.getCoordinateTransform().transform(to_map.transform(QgsPointXY(lon, lat)))
        return QPoint(round(px.x()), round(px.y()))

    def click(self):
        px = self.click_pixel()
        size = self.canvas.viewport().size()
        if not (0 <= px.x() < size.width() and 0 <= px.y() < size.height()):
            raise RuntimeError(f"the click {self.lonlat} lies outside the canvas ({px.x()}, {px.y()} of {size})")
        t = time.monotonic()
        QTest.mouseClick(self.canvas.viewport(), Qt.LeftButton, Qt.NoModifier, px)
        tool = self.tool()
        self.result.setdefault("clicks", []).append({
            "pixel": [px.x(), px.y()], "seconds": round(time.monotonic() - t, 3),
            "cells": tool.highlighted_cells(), "message": tool.last_message[0],
            "layers": sorted(lyr.name() for lyr in QgsProject.instance().mapLayers().values())})

    def ctrl_click_negative(self):
        """Ctrl-click, as a user adds a negative example, at the cell least like the clicked place."""
        tool = self.tool()
        lon, lat = tool.current_search().es.lonlat()[int(tool.heat.argmin())]  # heat: every cell's cosine
        px = self.pixel_of(lon, lat)
        QTest.mouseClick(self.canvas.viewport(), Qt.LeftButton, Qt.ControlModifier, px)
        result = tool.scoring.result
        view = self.plugin.similar_panel.score
        self.result["score"] = {
            "negative": [lon, lat], "pixel": [px.x(), px.y()], "negatives": len(tool.scoring.negatives),
            "scored": result is not None, "method": result.scores.method if result is not None else None,
            "cells": int(len(result.scores.values)) if result is not None else 0,
            "threshold": tool.scoring.threshold, "mask_cells": tool.scoring.mask.cells if result is not None else 0,
            "method_label": view.method_label.text(), "threshold_label": view.threshold_label.text(),
            "slider_enabled": view.slider.isEnabled(), "histogram": type(view.histogram).__name__,
            "histogram_threshold": getattr(view.histogram, "threshold", None), "message": tool.last_message[0],
            "layers": sorted(lyr.name() for lyr in QgsProject.instance().mapLayers().values())}

    def move_slider(self):
        """The threshold slider moved down with the keyboard (Page Down x 3), as a user would: a larger mask."""
        view = self.plugin.similar_panel.score
        view.slider.setFocus(Qt.TabFocusReason)
        before = view.slider.value()
        for _ in range(3):
            QTest.keyClick(view.slider, Qt.Key_PageDown)
        scoring = self.tool().scoring
        self.result["slider"] = {
            "from": before, "to": view.slider.value(), "threshold": scoring.threshold,
            "mask_cells": scoring.mask.cells, "threshold_label": view.threshold_label.text(),
            "histogram_threshold": getattr(view.histogram, "threshold", None),
            "above": int((scoring.result.scores.values >= scoring.threshold).sum())}

    def show_rgb(self, on: bool):
        """Tick the demo's "embeddings as colours" layer and untick the clusters drawn over it (or back)."""
        root = QgsProject.instance().layerTreeRoot()
        layers = QgsProject.instance().mapLayers().values()
        (rgb,) = [lyr for lyr in layers if lyr.name().startswith("embeddings as colours")]
        (clusters,) = [lyr for lyr in layers if lyr.name().startswith("kinds of place")]
        root.findLayer(rgb.id()).setItemVisibilityChecked(on)
        root.findLayer(clusters.id()).setItemVisibilityChecked(not on)
        if on:
            self.result["rgb"] = {"name": rgb.name(), "bands": rgb.bandCount(), "renderer": rgb.renderer().type()}

    def record_drawn_layers(self):
        """The layers the canvas draws now (the layer tree's ticks reach it through the bridge)."""
        self.result["rgb"]["drawn"] = [lyr.name() for lyr in self.canvas.layers()]

    def panel_grab(self, name: str):
        """The similar-places dock as the X server shows it (its score section included)."""
        self.widget_grab(self.plugin.similar_panel, name)

    def press_panel_button(self):
        panel = self.plugin.similar_panel
        QTest.mouseClick(panel.mask_button, Qt.LeftButton)
        panel.mask_button.setFocus(Qt.MouseFocusReason)  # what a click gives a button on a desktop
        self.result["mask_made"] = self.tool().layer_of("mask") is not None

    def escape(self, where: str):
        focus = QApplication.focusWidget()
        in_panel = focus is not None and self.plugin.similar_panel.isAncestorOf(focus)
        QTest.keyClick(focus or self.canvas, Qt.Key_Escape)  # the key goes where the keyboard focus is
        tool = self.tool()
        self.result.setdefault("escapes", []).append({
            "where": where, "focus": type(focus).__name__ if focus else None, "focus_in_panel": in_panel,
            "cleared": tool.heat is None and not tool.highlighted_cells(), "message": tool.last_message[0],
            "layers": sorted(lyr.name() for lyr in QgsProject.instance().mapLayers().values())})

    def grab(self, name: str):
        """The canvas as the X server shows it (the screen's pixels in the canvas's rectangle)."""
        view = self.canvas.viewport()
        bar = iface.messageBar()  # drawn over the canvas's top: its text differs from grab to grab
        if bar.isVisible():
            bottom = view.mapFromGlobal(bar.mapToGlobal(QPoint(0, bar.height()))).y()
            self.result["message_bar_bottom"] = max(self.result.get("message_bar_bottom", 0), bottom)
        corner = view.mapToGlobal(QPoint(0, 0))
        screen = QGuiApplication.primaryScreen()
        image = screen.grabWindow(0, corner.x(), corner.y(), view.width(), view.height())
        path = self.out / f"{name}.png"
        image.save(str(path))
        self.result["grabs"][name] = str(path)

    def window_grab(self, name: str):
        self.widget_grab(iface.mainWindow(), name)

    def widget_grab(self, widget, name: str):
        screen = QGuiApplication.primaryScreen()
        corner = widget.mapToGlobal(QPoint(0, 0))
        image = screen.grabWindow(0, corner.x(), corner.y(), widget.width(), widget.height())
        path = self.out / f"{name}.png"
        image.save(str(path))
        self.result["grabs"][name] = str(path)

    # ---- machinery -----------------------------------------------------------------------------
    def wait_for(self, predicate, what: str):
        def step():
            self.waiting = (predicate, what)
        step.__name__ = f"wait for {what}"
        return step

    def start(self):
        self.timer.start(200)

    def _next(self):
        try:
            if time.monotonic() - self.t0 > TIMEOUT_S:
                raise TimeoutError(f"gave up after {TIMEOUT_S:.0f} s" +
                                   (f" waiting for {self.waiting[1]}" if self.waiting else ""))
            if self.waiting is not None:
                if not self.waiting[0]():
                    self.timer.start(150)
                    return
                self.waiting = None
            step = next(self.steps, None)
            if step is None:
                self.finish(ok=True)
                return
            step()
            self.result["steps"].append([round(time.monotonic() - self.t0, 2), getattr(step, "__name__", "step")])
            self.timer.start(50)
        except Exception as e:  # noqa: BLE001  any failure goes to result.json, and QGIS closes
            self.result["error"] = f"{type(e).__name__}: {e}"
            self.result["traceback"] = traceback.format_exc()
            self.finish(ok=False)

    def finish(self, ok: bool):
        self.result["ok"] = ok
        self.result["seconds"] = round(time.monotonic() - self.t0, 2)
        messages = [w.text() for w in iface.messageBar().findChildren(QAbstractButton)]
        self.result["message_bar_buttons"] = messages
        tmp = self.out / "result.json.part"
        tmp.write_text(json.dumps(self.result, indent=1, default=str))
        tmp.replace(self.out / "result.json")
        QgsProject.instance().setDirty(False)  # no "save the project?" question on the way out
        QgsApplication.instance().aboutToQuit.connect(lambda: (self.out / "quit.txt").write_text("quit\n"))
        QTimer.singleShot(100, iface.actionExit().trigger)  # Project > Exit QGIS
        QTimer.singleShot(8000, self.stuck)  # still running: exit did not end the event loop

    def stuck(self):
        QGuiApplication.primaryScreen().grabWindow(0).save(str(self.out / "stuck.png"))
        os._exit(3)


builtins._loc2vec_desktop_driver = Driver()  # kept alive after QGIS's exec of this file returns
builtins._loc2vec_desktop_driver.start()
