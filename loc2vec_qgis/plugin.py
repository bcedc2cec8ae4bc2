"""The plugin object QGIS holds: registers the Processing provider, nothing else."""

from qgis.core import QgsApplication

from .provider import Loc2VecProvider


class Loc2VecPlugin:
    """Registers the loc2vec Processing provider (desktop and qgis_process alike)."""

    def __init__(self, iface):
        self.iface = iface
        self.provider = None

    def initProcessing(self):  # noqa: N802
        """Called by qgis_process, and by initGui in the desktop."""
        if self.provider is None:
            provider = Loc2VecProvider()
            # False when a provider with this id is already registered: then that one stays, untouched.
            if QgsApplication.processingRegistry().addProvider(provider):
                self.provider = provider

    def initGui(self):  # noqa: N802
        self.initProcessing()

    def unload(self):
        if self.provider is not None:
            QgsApplication.processingRegistry().removeProvider(self.provider)
            self.provider = None
