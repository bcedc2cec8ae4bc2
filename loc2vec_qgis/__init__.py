"""loc2vec QGIS plugin: Processing algorithms over the ``loc2vec_engine`` package.

This file is also the plugin folder's top ``__init__.py``: scripts/build_plugin.py copies it to
``loc2vec/__init__.py`` next to ``loc2vec_qgis/`` and ``loc2vec_engine/``. Imported from there,
it puts the plugin folder on ``sys.path`` so both packages import under their own names.
Nothing heavy is imported here: QGIS calls this at start-up.
"""

import os
import sys


def _bundle_dir():
    """The plugin folder when this file is its top ``__init__.py``, else None (a source checkout)."""
    here = os.path.dirname(os.path.abspath(__file__))
    bundled = all(os.path.isdir(os.path.join(here, pkg)) for pkg in ("loc2vec_qgis", "loc2vec_engine"))
    return here if bundled else None


def classFactory(iface):  # noqa: N802 (QGIS's name)
    """QGIS entry point: the plugin object."""
    bundle = _bundle_dir()
    if bundle and bundle not in sys.path:
        sys.path.insert(0, bundle)
    from loc2vec_qgis.plugin import Loc2VecPlugin

    return Loc2VecPlugin(iface)
