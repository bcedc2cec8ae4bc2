"""The one error type users see: a problem and the fix, without a traceback."""

# import name -> what pip installs it as (where the two differ, or where the name alone would be ambiguous)
PIP_NAMES = {"sklearn": "scikit-learn", "umap": "umap-learn", "faiss": "faiss-cpu", "osgeo": "GDAL",
             "yaml": "pyyaml", "PIL": "pillow"}


class Loc2VecError(Exception):
    """A user-facing failure: ``problem`` says what is wrong, ``fix`` what to do about it."""

    def __init__(self, problem: str, fix: str = ""):
        self.problem = problem
        self.fix = fix
        super().__init__(f"{problem}\n  fix: {fix}" if fix else problem)


class MissingPackage(Loc2VecError):
    """A Python package that a step needs cannot be imported: the package is named, never the input file.

    ``package`` is the import name (``sklearn``), ``requirement`` what pip installs (``scikit-learn``).
    Front ends with their own install route (the QGIS plugin) catch this type and give theirs.
    """

    def __init__(self, package: str, needed_for: str = ""):
        self.package = package.split(".")[0]
        self.requirement = PIP_NAMES.get(self.package, self.package)
        self.needed_for = needed_for
        what = f"{needed_for} needs" if needed_for else "loc2vec needs"
        super().__init__(f"{what} the Python package {self.package!r}, which this Python cannot import",
                         f"install it: python -m pip install {self.requirement} (or pip install -r requirements.txt)")


def third_party_missing(error: ImportError) -> str | None:
    """The top-level name of a third-party package whose import failed (None: loc2vec's own, or no name)."""
    name = getattr(error, "name", None)
    if not isinstance(error, ModuleNotFoundError) or not name:
        return None
    top = name.split(".")[0]
    return None if top in ("loc2vec_engine", "loc2vec_qgis", "qgis") else top
