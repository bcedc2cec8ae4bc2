"""Join the shards of one ``loc2vec embed --shard I/N`` job into one GeoPackage.

Sharding lets any scheduler (a Slurm array, torchrun, Ray, plain shell loops) spread a country-sized
grid over machines: every part is an ordinary embeddings GeoPackage that knows which part it is.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..errors import Loc2VecError
from .store import read_embeddings, write_embeddings

# Meta values that must be identical in every part of one job.
_SAME = ("model_sha256", "area", "grid", "clip", "embedding_size")


def merge_parts(parts, out) -> Path:
    """Check that ``parts`` are all N shards of one job, exactly once each, and write them as one file."""
    from ..atomic import check_writable

    check_writable(out)
    sets = [read_embeddings(p) for p in parts]
    if not sets:
        raise Loc2VecError("no parts to merge", "give the GeoPackages written by loc2vec embed --shard I/N")
    first = sets[0]
    counts = set()
    for es in sets:
        if not es.meta.get("shard"):
            raise Loc2VecError(f"{es.path.name} is not a shard (it was embedded without --shard)",
                               "merge only the parts of one loc2vec embed --shard I/N job")
        counts.add(int(es.meta["shard"][1]))
        for key in _SAME:
            if es.meta.get(key) != first.meta.get(key):
                raise Loc2VecError(f"{es.path.name} and {first.path.name} differ in {key}: they are not parts of "
                                   "the same job", "merge the parts embedded with the same model, area, stride and clip")
    if len(counts) != 1:
        raise Loc2VecError(f"the parts were cut into different numbers of shards: {sorted(counts)}",
                           "merge the parts of one job (same N in --shard I/N)")
    n = counts.pop()
    _check_complete([int(es.meta["shard"][0]) for es in sets], n)
    cell = np.concatenate([es.cell for es in sets])
    order = np.argsort(cell, kind="stable")
    meta = {**first.meta, "shard": None, "merged_from": n}
    return write_embeddings(out, np.concatenate([es.xy for es in sets])[order],
                            np.concatenate([es.vectors for es in sets])[order], first.crs_wkt, meta, cell=cell[order])


def _check_complete(indices: list[int], n: int) -> None:
    dupes = sorted({i for i in indices if indices.count(i) > 1})
    if dupes:
        raise Loc2VecError(f"shard(s) {', '.join(f'{i}/{n}' for i in dupes)} given more than once",
                           "give each part once")
    missing = sorted(set(range(n)) - set(indices))
    if missing:
        raise Loc2VecError(f"shard(s) {', '.join(f'{i}/{n}' for i in missing)} missing",
                           "embed the missing parts with loc2vec embed --shard I/N, then merge all N")
