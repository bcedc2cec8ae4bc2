"""Write-then-rename, so an error or Ctrl-C never leaves a half-written output behind.

Every command that writes calls ``check_writable`` (a file) or ``check_output_folder`` (a folder)
before its long work, so a bad ``--out`` fails in a second instead of after the embedding or the
training; ``atomic_output`` then turns a failure at write time (disk full, the folder gone or made
read-only meanwhile) into a ``Loc2VecError`` naming the output, not a traceback about a temp file.
"""

from __future__ import annotations

import contextlib
import errno
import os
import tempfile
from pathlib import Path

from .errors import Loc2VecError

_PROBE_PREFIX = ".loc2vec-probe."


def check_folder_writable(folder: str | os.PathLike) -> Path:
    """Really create and remove a file in ``folder``: the only test that tells the truth.

    ``os.access(W_OK)`` answers yes to root for every folder (chmod 555, /proc), and knows nothing of
    read-only mounts, so it passes outputs that then fail after all the work.
    """
    folder = Path(folder) if str(folder) else Path(".")
    try:
        fd, probe = tempfile.mkstemp(prefix=_PROBE_PREFIX, dir=folder)
    except OSError as e:
        # /proc answers "No such file or directory" for a folder that is there: only other reasons help.
        why = "" if e.errno == errno.ENOENT and folder.is_dir() else f" ({_reason(e)})"
        raise Loc2VecError(f"output folder {folder} is not writable{why}", "choose a folder you can write to") from None
    os.close(fd)
    os.unlink(probe)
    return folder


def check_writable(path: str | os.PathLike) -> Path:
    """Fail early, before any long work, when the file ``path`` cannot be created."""
    path = Path(path)
    parent = path.parent if str(path.parent) else Path(".")
    if path.is_dir():
        raise Loc2VecError(f"output path {path} is a folder", f"give a file path instead, e.g. {path / 'NAME'} "
                           "with the extension of the output type")
    if not parent.is_dir():
        if parent.exists():
            raise Loc2VecError(f"output folder {parent} is a file, not a folder", "choose an output path in a folder")
        raise Loc2VecError(f"output folder {parent} does not exist", f"create it first: mkdir -p {parent}")
    check_folder_writable(parent)
    return path


def check_output_folder(path: str | os.PathLike, parents: bool = False, create: bool = True) -> Path:
    """Fail early when the output *folder* ``path`` (a run folder, a report folder) cannot be made or written.

    parents: the command creates missing parent folders too (``mkdir -p``), so the nearest existing
    one is what must be writable; create=False: the command writes into ``path`` but never makes it.
    """
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise Loc2VecError(f"{path} is a file, not a folder",
                           "give the name of a folder (an existing one, or a new one to create)")
    if path.is_dir():
        check_folder_writable(path)  # the files go inside it
        return path
    if not create:
        raise Loc2VecError(f"output folder {path} does not exist", f"create it first: mkdir -p {path}")
    parent = path.parent if str(path.parent) else Path(".")
    if parents:
        while not parent.exists() and parent != parent.parent:
            parent = parent.parent
    if parent.exists() and not parent.is_dir():
        raise Loc2VecError(f"output folder {parent} is a file, not a folder", "choose an output path in a folder")
    if not parent.is_dir():
        raise Loc2VecError(f"output folder {parent} does not exist", f"create it first: mkdir -p {parent}")
    try:
        check_folder_writable(parent)
    except Loc2VecError as e:  # say which folder could not be made, not only where
        raise Loc2VecError(f"cannot create {path}: {e.problem}", e.fix) from None
    return path


@contextlib.contextmanager
def atomic_output(path: str | os.PathLike, suffix: str = ".part"):
    """Yield a temporary path next to ``path``; rename it to ``path`` only if the block succeeds."""
    path = check_writable(path)
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=suffix, dir=path.parent)
    except OSError as e:  # checked writable a moment ago, perhaps before hours of work: say so plainly
        raise _write_error(path, e) from None
    os.close(fd)
    os.unlink(tmp)  # writers (GDAL, pyosmium) want to create the file themselves
    tmp = Path(tmp)
    try:
        yield tmp
        os.replace(tmp, path)
    except OSError as e:
        # Only errors about the output folder become "could not write": an OSError about another file
        # (an input read inside the block) keeps its own message.
        if e.filename is None or Path(os.fsdecode(e.filename)).parent == path.parent:
            raise _write_error(path, e) from None
        raise
    finally:
        for leftover in (tmp, *(Path(str(tmp) + s) for s in (".aux.xml", ".msk", "-journal", "-wal", "-shm"))):
            leftover.unlink(missing_ok=True)


def _write_error(path: Path, e: OSError) -> Loc2VecError:
    return Loc2VecError(f"could not write {path} ({_reason(e)}); nothing was written there",
                        f"check that {path.parent} exists, that you can write to it and that the disk has room; "
                        "then run the command again")


def _reason(e: OSError) -> str:
    return e.strerror or str(e) or type(e).__name__
