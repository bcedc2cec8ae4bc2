"""A built ``VectorIndex`` kept next to its embeddings GeoPackage (``EMB.gpkg.l2vindex``) for later queries.

Building the IVF index of a million cells takes half a minute and a query then costs under a
millisecond, so the index is worth keeping between commands. The file records what it was built
from — the GeoPackage's size and modification time, the model's SHA-256 and the cell count — and is
rebuilt whenever any of them changed (for example after ``loc2vec cluster`` rewrote the file).
"""

from __future__ import annotations

import json
import os
import struct
from pathlib import Path

import numpy as np

from .index import EXACT_BELOW, VectorIndex

SUFFIX = ".l2vindex"
_MAGIC = b"L2VIDX1\n"


def index_path(gpkg) -> Path:
    return Path(str(gpkg) + SUFFIX)


def fingerprint(es) -> dict:
    st = os.stat(es.path)
    return {"size": st.st_size, "mtime_ns": st.st_mtime_ns, "model_sha256": es.model_sha256, "cells": len(es)}


def index_for(es, exact_below: int = EXACT_BELOW, seed: int = 0) -> tuple[VectorIndex, str]:
    """The index for ``es`` (an EmbeddingSet read from a file) and how it was obtained.

    Below ``exact_below`` cells: exact search, nothing stored. Above: the stored index when it still
    matches the file, else a new one, stored when the folder is writable.
    """
    if len(es) < exact_below or es.path is None:
        return VectorIndex.build(es.vectors, exact_below=exact_below, seed=seed, cells=es.cell), "exact search"
    path, want = index_path(es.path), fingerprint(es)
    stored = _load(path, es.vectors, want, es.cell)
    if stored is not None:
        return stored, f"index reused from {path.name}"
    index = VectorIndex.build(es.vectors, exact_below=exact_below, seed=seed, cells=es.cell)
    saved = _save(path, index, want)
    how = f"{index.kind} index built in {index.build_seconds:.1f} s"
    return index, how + (f", kept in {path.name} for later queries" if saved else " (folder not writable: not kept)")


def _save(path: Path, index: VectorIndex, fp: dict) -> bool:
    from ..atomic import atomic_output
    from ..errors import Loc2VecError

    header = {"fingerprint": fp, "kind": index.kind, "note": index.note, "nprobe": index.nprobe,
              "calibrated_recall": index.calibrated_recall}
    body = b""
    if index.kind == "ivf":
        import faiss

        body = faiss.serialize_index(index._faiss).tobytes()
    head = json.dumps(header).encode()
    try:
        with atomic_output(path) as tmp:
            tmp.write_bytes(_MAGIC + struct.pack("<Q", len(head)) + head + body)
    except (Loc2VecError, OSError):
        return False
    return True


def _load(path: Path, vectors: np.ndarray, want: dict, cells=None) -> VectorIndex | None:
    """The stored index, or None when it is missing, unreadable or built from another state of the file."""
    try:
        data = path.read_bytes()
        if not data.startswith(_MAGIC):
            return None
        (n,) = struct.unpack_from("<Q", data, len(_MAGIC))
        start = len(_MAGIC) + 8
        header = json.loads(data[start:start + n])
        if header.get("fingerprint") != want:
            return None
        from .index import unit_rows

        vectors = unit_rows(vectors, "embedding vectors")
        if header["kind"] != "ivf":
            return VectorIndex(vectors, note=header.get("note", ""), cells=cells)
        import faiss

        ivf = faiss.deserialize_index(np.frombuffer(data[start + n:], np.uint8))
        ivf.nprobe = int(header["nprobe"])
        index = VectorIndex(vectors, "ivf", ivf, header.get("note", ""), cells=cells)
        index.calibrated_recall = float(header.get("calibrated_recall", 0.0))
        return index
    except (OSError, ValueError, KeyError, RuntimeError, ImportError):
        return None
