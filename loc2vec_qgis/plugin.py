"""The plugin object QGIS holds: the Processing provider, and in the desktop the missing-package note."""

from qgis.core import QgsApplication

from . import dependencies
from .provider import Loc2VecProvider


class Loc2VecPlugin:
    """Registers the loc2vec Processing provider (desktop and qgis_process alike)."""

    def __init__(self, iface):
        self.iface = iface
        self.provider = None
        self.missing_item = None
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
        if missing and self.iface is not None:
            from .gui.dependency_bar import show_missing

            self.missing_item = show_missing(self.iface, missing)

    def unload(self):
        if self.provider is not None:
            QgsApplication.processingRegistry().removeProvider(self.provider)
            self.provider = None
