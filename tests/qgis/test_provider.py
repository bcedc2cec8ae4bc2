"""The plugin registers its Processing provider and loads without importing the engine's heavy packages."""

import subprocess
import sys
import textwrap

from qgis.core import QgsApplication

from ..conftest import REPO
from .conftest import sandbox_env


ALGORITHMS = ["loc2vec:cluster", "loc2vec:compare", "loc2vec:embed", "loc2vec:evaluate", "loc2vec:osm_to_suitability",
              "loc2vec:rasterize", "loc2vec:render", "loc2vec:score", "loc2vec:similar", "loc2vec:train"]


def test_provider_lists_its_algorithms(loc2vec_plugin):
    registry = QgsApplication.processingRegistry()
    provider = registry.providerById("loc2vec")
    assert provider is not None and provider.name() == "loc2vec"
    assert sorted(a.id() for a in provider.algorithms()) == ALGORITHMS
    alg = registry.algorithmById("loc2vec:rasterize")
    assert alg.displayName() == "Rasterize OpenStreetMap to an area raster"
    assert "OpenStreetMap contributors" in alg.shortHelpString() and "ODbL" in alg.shortHelpString()
    assert not provider.icon().isNull()
    assert provider.supportedOutputRasterLayerExtensions() == ["tif"]


def test_rasterize_parameters(loc2vec_plugin):
    alg = QgsApplication.processingRegistry().algorithmById("loc2vec:rasterize")
    names = [p.name() for p in alg.parameterDefinitions()]
    assert names == ["INPUT", "LAYERS", "MAPPING", "EXTENT", "CLIP", "PRESET", "CRS", "PIXEL_SIZE", "SPEC", "OUTPUT"]
    mandatory = [p.name() for p in alg.parameterDefinitions()
                 if not p.flags() & p.FlagOptional]
    assert mandatory == ["PIXEL_SIZE", "OUTPUT"]  # INPUT (a file) or LAYERS (map layers): checked when run
    preset = alg.parameterDefinition("PRESET")
    assert preset.options()[0] == "none" and "kyiv" in preset.options()  # from loc2vec_engine.geo.presets
    assert alg.parameterDefinition("PIXEL_SIZE").defaultValue() == 1.953125


def test_plugin_load_is_light_and_unloads(tmp_path):
    """classFactory + initGui import no heavy package; unload removes the provider (fresh interpreter)."""
    code = textwrap.dedent("""
        import sys
        from qgis.core import QgsApplication
        app = QgsApplication([], False)
        app.initQgis()
        import loc2vec_qgis
        plugin = loc2vec_qgis.classFactory(None)
        plugin.initGui()
        registry = QgsApplication.processingRegistry()
        assert registry.algorithmById("loc2vec:rasterize") is not None
        heavy = sorted(m for m in ("torch", "osmium", "numba", "shapely", "pyproj", "tqdm", "onnxruntime", "sklearn",
                                   "umap", "faiss", "pyqtgraph", "matplotlib") if m in sys.modules)
        assert not heavy, f"imported at plugin load: {heavy}"
        plugin.unload()
        assert registry.providerById("loc2vec") is None
        print("ok")
    """)
    env = sandbox_env(tmp_path)
    env["PYTHONPATH"] = str(REPO)
    proc = subprocess.run([sys.executable, "-c", code], env=env, cwd=tmp_path, capture_output=True, text=True,
                          timeout=60)
    assert proc.returncode == 0 and "ok" in proc.stdout, proc.stderr[-3000:]
