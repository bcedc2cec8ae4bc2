"""The bridge to ``loc2vec_engine``: progress and cancel through the feedback, errors as QgsProcessingException."""

from __future__ import annotations

import contextlib
import ctypes
import os
import sys

from qgis.core import QgsProcessingException

# The engine's pip dependencies and what to tell a user whose QGIS Python lacks them.
ENGINE_PACKAGES = "numpy<2 osmium shapely>=2 pyproj numba tqdm"
_INSTALL_FIX = (f"install the engine's packages ({ENGINE_PACKAGES}) for the Python that QGIS runs; on Linux, make a "
                f"venv with --system-site-packages, pip install them there, and start QGIS (or qgis_process) with "
                f"that venv's site-packages folder on PYTHONPATH")


class FeedbackProgress:
    """An engine progress callback that drives a QgsProcessingFeedback.

    The engine reports a fraction per stage (reading, then burning); each time the fraction falls
    back a new stage begins, so ``stages`` equal parts of the bar keep it moving forward.
    Returns True (= cancel) once the user pressed Cancel.
    """

    def __init__(self, feedback, stages: int = 1):
        self.feedback = feedback
        self.stages = max(int(stages), 1)
        self._stage = 0
        self._last = 0.0
        self._percent = 0.0
        self._text = ""

    def __call__(self, fraction: float, message: str = "") -> bool:
        fraction = min(max(float(fraction), 0.0), 1.0)
        if fraction < self._last:
            self._stage = min(self._stage + 1, self.stages - 1)
        self._last = fraction
        self._percent = max(self._percent, 100.0 * (self._stage + fraction) / self.stages)
        if message and message != self._text:
            self._text = message
            self.feedback.setProgressText(message)
        self.feedback.setProgress(self._percent)
        return self.feedback.isCanceled()


# The engine's devices (auto = CUDA when available), as a Processing enum wants them.
DEVICES = ["auto", "cpu", "cuda"]


def add_advanced(algorithm, params) -> None:
    """Add ``params`` to ``algorithm`` under the dialog's "Advanced parameters"."""
    from qgis.core import QgsProcessingParameterDefinition

    for param in params:
        param.setFlags(param.flags() | QgsProcessingParameterDefinition.FlagAdvanced)
        algorithm.addParameter(param)


def user_message(problem: str, fix: str = "") -> str:
    return f"{problem}\nFix: {fix}" if fix else problem


@contextlib.contextmanager
def engine_errors(what: str = ""):
    """Turn the engine's user-facing errors into QgsProcessingException (message, no traceback).

    ``what`` (the algorithm's name) is what a missing Python package is needed by: the package is named
    with the plugin's install route, never blamed on an input file.
    """
    from loc2vec_engine.errors import Loc2VecError, MissingPackage, third_party_missing
    from loc2vec_engine.progress import Cancelled

    try:
        yield
    except Cancelled:
        raise QgsProcessingException("Cancelled: no output was written.") from None
    except MissingPackage as e:
        raise missing_package_error(e.package, what, e.needed_for) from None
    except Loc2VecError as e:
        raise QgsProcessingException(user_message(e.problem, e.fix)) from None
    except ModuleNotFoundError as e:
        if third_party_missing(e) is None:
            raise
        raise missing_package_error(e.name, what) from None


def missing_package_error(package: str, what: str = "", needed_for: str = "") -> QgsProcessingException:
    """"<what> needs the Python package 'X'", with the pip command into the plugin's folder, or the venv route."""
    from qgis.core import QgsApplication

    from .. import dependencies

    target = dependencies.packages_dir(QgsApplication.qgisSettingsDirPath())
    problem, fix = dependencies.missing_package_text(package, what or "the loc2vec engine", target, needed_for)
    return QgsProcessingException(user_message(problem, f"{fix}; or {_INSTALL_FIX}"))


def import_shapely():
    """Import shapely so that it calls the GEOS library it was built with, also inside QGIS's programs.

    ``qgis`` and ``qgis_process`` are linked against the system GEOS, so its symbols are global in
    the process. A shapely wheel from PyPI ships its own, newer GEOS; loaded normally, its calls
    bind to the system library instead (Linux looks up the global scope first), and e.g. to_wkb
    fails with "WKB output dimension must be 2 or 3". RTLD_DEEPBIND makes shapely's extension
    modules resolve against their own libraries first. A shapely built against the system GEOS
    (pip install --no-binary shapely) works either way.
    """
    if "shapely" not in sys.modules and hasattr(os, "RTLD_DEEPBIND") and _global_geos_version():
        import numpy  # noqa: F401  (loaded normally: only shapely's own modules get DEEPBIND)

        flags = sys.getdlopenflags()
        sys.setdlopenflags(flags | os.RTLD_DEEPBIND)
        try:
            import shapely  # noqa: F401
        finally:
            sys.setdlopenflags(flags)
    import shapely

    if int(shapely.__version__.split(".")[0]) < 2:
        raise QgsProcessingException(user_message(
            f"the loc2vec engine needs shapely 2, but QGIS's Python has shapely {shapely.__version__} "
            f"({os.path.dirname(shapely.__file__)})", _INSTALL_FIX))
    try:
        shapely.to_wkb(shapely.Point(0.0, 0.0))
    except Exception as e:  # shapely.errors.GEOSException when it runs on the wrong GEOS
        raise QgsProcessingException(user_message(
            f"shapely {shapely.__version__} (built for GEOS {shapely.geos_version_string}) runs on the GEOS "
            f"library QGIS loaded ({_global_geos_version() or 'unknown'}): {e}",
            "another plugin imported shapely before loc2vec could isolate it: install a shapely built against "
            "the system GEOS (apt install libgeos-dev, then pip install --no-binary shapely 'shapely>=2'), or "
            "disable that plugin and restart QGIS")) from None
    return shapely


def _global_geos_version() -> str:
    """The GEOS version whose symbols are global in this process ('' if none: plain Python)."""
    try:
        fn = ctypes.CDLL(None).GEOSversion
    except (AttributeError, OSError):
        return ""
    fn.restype = ctypes.c_char_p
    return (fn() or b"").decode(errors="replace")
