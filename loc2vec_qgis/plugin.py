"""The plugin object QGIS holds: the Processing provider and, in the desktop, the toolbar, menu and docks.

Docks and the map tool are built on first use, so loading the plugin imports neither pyqtgraph nor
onnxruntime nor faiss.
"""

from qgis.core import QgsApplication

from . import dependencies
from .provider import Loc2VecProvider

MENU = "&loc2vec"
SIMILAR_TITLE = "loc2vec: find similar places"
UMAP_TITLE = "loc2vec: UMAP of embeddings"
TRAINING_TITLE = "loc2vec: training"


class Loc2VecPlugin:
    """Registers the loc2vec Processing provider (desktop and qgis_process alike) and the desktop tools."""

    def __init__(self, iface):
        self.iface = iface
        self.provider = None
        self.missing_item = None
        self.toolbar = None
        self.actions = []
        self.similar_action = self.umap_action = self.training_action = None
        self.similar_tool = self.similar_panel = self.umap_dock = self.training_dock = None
        # Packages installed by the plugin's Install button live in the profile: make them importable.
        self.packages_dir = dependencies.packages_dir(QgsApplication.qgisSettingsDirPath())
        dependencies.add_to_path(self.packages_dir)

    def initProcessing(self):  # noqa: N802
        """Called by qgis_process, and by initGui in the desktop."""
        if self.provider is None:
            provider = Loc2VecProvider()
            # False when a provider with this id is already registered: then that one stays, untouched.
            if QgsApplication.processingRegistry().addProvider(provider):
                self.provider = provider

    def initGui(self):  # noqa: N802
        self.initProcessing()
        missing = dependencies.missing(target=self.packages_dir)
        if self.iface is None:
            return
        if missing:
            from .gui.dependency_bar import show_missing

            self.missing_item = show_missing(self.iface, missing)
        self._add_actions()
        self.iface.currentLayerChanged.connect(self.current_layer_changed)

    # ---- toolbar and menu ----------------------------------------------------------------------
    def _add_actions(self):
        from qgis.PyQt.QtGui import QIcon
        from qgis.PyQt.QtWidgets import QAction

        from .provider import ICON

        self.toolbar = self.iface.addToolBar("loc2vec")
        self.toolbar.setObjectName("loc2vec_toolbar")
        parent = self.iface.mainWindow()
        for attr, title, slot, checkable in (("similar_action", SIMILAR_TITLE, self.toggle_similar_tool, True),
                                             ("umap_action", UMAP_TITLE, self.show_umap_dock, False),
                                             ("training_action", TRAINING_TITLE, self.show_training_dock, False)):
            action = QAction(QIcon(str(ICON)), title, parent)
            action.setCheckable(checkable)
            action.triggered.connect(slot)
            self.toolbar.addAction(action)
            self.iface.addPluginToMenu(MENU, action)
            self.actions.append(action)
            setattr(self, attr, action)

    def _dock(self, dock):
        from qgis.PyQt.QtCore import Qt

        self.iface.addDockWidget(Qt.RightDockWidgetArea, dock)
        dock.show()
        dock.raise_()

    # ---- find similar places -------------------------------------------------------------------
    def toggle_similar_tool(self, checked=True):
        """Checked: the map tool is the canvas's tool (and its panel shows); unchecked: it is unset."""
        canvas = self.iface.mapCanvas()
        if not checked:
            if self.similar_tool is not None and canvas.mapTool() is self.similar_tool:
                canvas.unsetMapTool(self.similar_tool)
            return
        if self.similar_tool is None:
            def make():
                from .gui.similar_panel import SimilarPanel
                from .gui.similar_tool import SimilarPlacesTool

                tool = SimilarPlacesTool(canvas, self.iface.messageBar())
                return tool, SimilarPanel(tool, self.iface.mainWindow())

            built = self._build(SIMILAR_TITLE, make)
            if built is None:
                self.similar_action.setChecked(False)
                return
            self.similar_tool, self.similar_panel = built
            self.similar_tool.setAction(self.similar_action)  # QGIS unchecks it when another tool is chosen
        if not self.similar_tool.set_layer(self.iface.activeLayer()) and self.similar_tool.layer is None:
            from qgis.core import QgsProject

            # The active layer is not an embeddings layer: take the project's first one, if any.
            any(self.similar_tool.set_layer(lyr) for lyr in QgsProject.instance().mapLayers().values())
        canvas.setMapTool(self.similar_tool)
        self._dock(self.similar_panel)

    # ---- docks ---------------------------------------------------------------------------------
    def show_umap_dock(self, *_):
        if self.umap_dock is None:
            def make():
                from .gui.umap_dock import UmapDock

                return UmapDock(self.iface.mainWindow())

            self.umap_dock = self._build(UMAP_TITLE, make)
            if self.umap_dock is None:
                return
        self.umap_dock.show_project_layer(self.iface.activeLayer())
        self._dock(self.umap_dock)

    def show_training_dock(self, *_):
        if self.training_dock is None:
            def make():
                from .gui.training_dock import TrainingDock

                return TrainingDock(self.iface.mainWindow())

            self.training_dock = self._build(TRAINING_TITLE, make)
            if self.training_dock is None:
                return
            from .algorithms import train

            train.RUN_STARTED_LISTENERS.append(self.training_dock.listener)
        self._dock(self.training_dock)

    def _build(self, title: str, make):
        """``make()``, or None with a message-bar note (and its Install button) naming a package it lacks."""
        from loc2vec_engine.errors import MissingPackage, third_party_missing

        try:
            return make()
        except (ModuleNotFoundError, MissingPackage) as e:
            name = e.package if isinstance(e, MissingPackage) else third_party_missing(e)
            if name is None:
                raise
        from .gui.dependency_bar import show_missing

        need = dependencies.Missing([name.split(".")[0]], self.packages_dir)
        self.missing_item = show_missing(self.iface, need, what=f"'{title.removeprefix('loc2vec: ')}'",
                                         verb="needs")
        return None

    def current_layer_changed(self, layer):
        """The map tool and the UMAP dock follow the active layer when it is an embeddings layer.

        Other layers (the tool's own result layers, a basemap) leave them on the last embeddings layer.
        """
        if self.similar_tool is None and self.umap_dock is None:
            return
        from .gui.similar_tool import is_embeddings_layer

        if not is_embeddings_layer(layer):
            return
        if self.similar_tool is not None:
            self.similar_tool.set_layer(layer)
        if self.umap_dock is not None and self.umap_dock.layer is not layer:
            self.umap_dock.set_layer(layer)

    # ---- unload --------------------------------------------------------------------------------
    def unload(self):
        if self.iface is not None:
            self._remove_gui()
        if self.provider is not None:
            QgsApplication.processingRegistry().removeProvider(self.provider)
            self.provider = None

    def _remove_gui(self):
        if self.toolbar is None:
            return  # initGui never ran
        try:
            self.iface.currentLayerChanged.disconnect(self.current_layer_changed)
        except (TypeError, RuntimeError):
            pass
        if self.similar_tool is not None:
            canvas = self.iface.mapCanvas()
            if canvas.mapTool() is self.similar_tool:
                canvas.unsetMapTool(self.similar_tool)
            self.similar_tool.clear(quiet=True)  # its temporary layers leave the project
            self.similar_tool.deleteLater()
            self.similar_tool = None
        if self.training_dock is not None:
            from .algorithms import train

            if self.training_dock.listener in train.RUN_STARTED_LISTENERS:
                train.RUN_STARTED_LISTENERS.remove(self.training_dock.listener)
            self.training_dock.timer.stop()
        for attr in ("similar_panel", "umap_dock", "training_dock"):
            dock = getattr(self, attr)
            if dock is not None:
                self.iface.removeDockWidget(dock)
                dock.deleteLater()
                setattr(self, attr, None)
        for action in self.actions:
            self.iface.removePluginMenu(MENU, action)
            self.toolbar.removeAction(action)
            action.deleteLater()
        self.actions = []
        self.similar_action = self.umap_action = self.training_action = None
        self.toolbar.deleteLater()
        self.toolbar = None
