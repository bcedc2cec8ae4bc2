"""The Processing models shipped with the plugin (resources/processing/*.model3), as loc2vec algorithms.

Each file becomes ``loc2vec:<file stem>``, e.g. ``loc2vec:osm_to_suitability``; its display name, group, inputs
and help are the file's own (written by scripts/make_model3.py). A model's steps are looked up in the Processing
registry by id (``loc2vec:rasterize``, ...), which holds the provider only once it has loaded: see
``Loc2VecProvider.load``.
"""

from __future__ import annotations

from pathlib import Path

from qgis.core import Qgis, QgsMessageLog, QgsProcessingModelAlgorithm

# resources/ sits next to loc2vec_qgis/ both in the repository and in the plugin folder.
MODELS_DIR = Path(__file__).resolve().parent.parent / "resources" / "processing"


class ShippedModel(QgsProcessingModelAlgorithm):
    """A .model3 file under a stable algorithm name: the file stem, not the model's display name."""

    def __init__(self, path):
        super().__init__()
        self._path = str(path)
        self.loaded = self.fromFile(self._path)

    def name(self):
        return Path(self._path).stem

    def createInstance(self):  # noqa: N802
        return ShippedModel(self._path)


def shipped_models(folder: Path = MODELS_DIR) -> list[ShippedModel]:
    """Every readable .model3 of ``folder``, sorted by name; one that QGIS cannot read is logged and left out."""
    models = []
    for path in sorted(folder.glob("*.model3")):
        model = ShippedModel(path)
        if model.loaded:
            models.append(model)
        else:
            QgsMessageLog.logMessage(f"loc2vec: could not read the Processing model {path}; it is left out of the "
                                     "toolbox. Reinstall the plugin.", "Processing", Qgis.Warning)
    return models
