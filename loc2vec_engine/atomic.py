"""Write-then-rename, so an error or Ctrl-C never leaves a half-written output behind."""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path

from .errors import Loc2VecError


def check_writable(path: str | os.PathLike) -> Path:
    """Fail early, before any long work, when ``path`` cannot be created."""
    path = Path(path)
    parent = path.parent if str(path.parent) else Path(".")
    if path.is_dir():
        raise Loc2VecError(f"output path {path} is a directory", "give a file name, e.g. area.tif")
    if not parent.is_dir():
        raise Loc2VecError(f"output folder {parent} does not exist", f"create it first: mkdir -p {parent}")
    if not os.access(parent, os.W_OK):
        raise Loc2VecError(f"output folder {parent} is not writable", "choose a folder you can write to")
    return path


@contextlib.contextmanager
def atomic_output(path: str | os.PathLike, suffix: str = ".part"):
    """Yield a temporary path next to ``path``; rename it to ``path`` only if the block succeeds."""
    path = check_writable(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=suffix, dir=path.parent)
    os.close(fd)
    os.unlink(tmp)  # writers (GDAL, pyosmium) want to create the file themselves
    tmp = Path(tmp)
    try:
        yield tmp
        os.replace(tmp, path)
    finally:
        for leftover in (tmp, *(Path(str(tmp) + s) for s in (".aux.xml", ".msk", "-journal", "-wal", "-shm"))):
            leftover.unlink(missing_ok=True)
