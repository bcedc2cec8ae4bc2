"""The loc2vec Processing provider: one id, one icon, the algorithms listed plainly."""

from pathlib import Path

from qgis.core import QgsApplication, QgsProcessingProvider
from qgis.PyQt.QtGui import QIcon

from .algorithms.cluster import ClusterAlgorithm
from .algorithms.compare import CompareAlgorithm
from .algorithms.embed import EmbedAlgorithm
from .algorithms.evaluate import EvaluateAlgorithm
from .algorithms.rasterize import RasterizeAlgorithm
from .algorithms.render import RenderAlgorithm
from .algorithms.score import ScoreAlgorithm
from .algorithms.similar import SimilarAlgorithm
from .algorithms.train import TrainAlgorithm
from .models import shipped_models

# resources/ sits next to loc2vec_qgis/ both in the repository and in the plugin folder.
ICON = Path(__file__).resolve().parent.parent / "resources" / "icon.svg"


class Loc2VecProvider(QgsProcessingProvider):
    """Processing provider ``loc2vec``."""

    def id(self):
        return "loc2vec"

    def name(self):
        return "loc2vec"

    def longName(self):  # noqa: N802
        from loc2vec_engine import __version__

        return f"loc2vec {__version__}"

    def icon(self):
        return QIcon(str(ICON))

    def svgIconPath(self):  # noqa: N802
        return str(ICON)

    def load(self):
        """The models' steps are found in the registry by id, and the registry holds this provider only after
        load() returns: load the algorithms now, and the shipped models once the provider is registered."""
        QgsApplication.processingRegistry().providerAdded.connect(self._registered)
        return super().load()

    def _registered(self, provider_id):
        registry = QgsApplication.processingRegistry()
        if provider_id == self.id() and registry.providerById(provider_id) is self:
            registry.providerAdded.disconnect(self._registered)
            self.refreshAlgorithms()  # now with the models (emits algorithmsLoaded: the toolbox follows)

    def unload(self):
        try:
            QgsApplication.processingRegistry().providerAdded.disconnect(self._registered)
        except TypeError:  # already disconnected once registered
            pass
        super().unload()

    def loadAlgorithms(self):  # noqa: N802
        for algorithm in (RasterizeAlgorithm(), TrainAlgorithm(), EmbedAlgorithm(), ClusterAlgorithm(),
                          SimilarAlgorithm(), ScoreAlgorithm(), RenderAlgorithm(), CompareAlgorithm(),
                          EvaluateAlgorithm()):
            self.addAlgorithm(algorithm)
        if QgsApplication.processingRegistry().providerById(self.id()) is self:
            for model in shipped_models():  # e.g. loc2vec:osm_to_suitability
                self.addAlgorithm(model)

    def supportedOutputRasterLayerExtensions(self):  # noqa: N802
        return ["tif"]

    def defaultRasterFileExtension(self):  # noqa: N802
        return "tif"

    def supportedOutputVectorLayerExtensions(self):  # noqa: N802
        return ["gpkg"]

    def defaultVectorFileExtension(self, hasGeometry=True):  # noqa: N802
        return "gpkg"

    def supportsNonFileBasedOutput(self):  # noqa: N802
        return False  # the engine writes files (GeoPackage, GeoTIFF), never memory layers
