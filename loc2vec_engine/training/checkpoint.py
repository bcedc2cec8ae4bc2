"""Checkpoints that survive a full disk and a ``kill -9``, and load with ``weights_only=True``.

A checkpoint is one dict of tensors and plain Python values::

    {"model": state_dict, "meta": encoder meta, "optimizer": ..., "scheduler": ..., "scaler": ...,
     "step": int, "best": float, "rng": {"torch": ByteTensor, "cuda": [...], "sampler": {...}},
     "config": dict}

It is written to a temporary file in the run folder and renamed over the old one only once
complete, so a failed write (disk full, killed process) leaves the previous checkpoint intact.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

from ..errors import Loc2VecError


def save_checkpoint(path, payload: dict) -> None:
    import torch

    path = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".part", dir=path.parent)
    os.close(fd)
    try:
        torch.save(payload, tmp)
        with open(tmp, "rb+") as f:
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except (OSError, RuntimeError) as e:
        # torch.save reports a failed write (disk full, file size limit) as OSError or as a RuntimeError
        # from its zip writer; either way the old checkpoint was never touched.
        Path(tmp).unlink(missing_ok=True)
        reason = os.strerror(e.errno) if isinstance(e, OSError) and e.errno else str(e).splitlines()[0][:200]
        free = shutil.disk_usage(path.parent).free / 2**30
        raise Loc2VecError(f"could not write checkpoint {path.name} ({reason}); the previous checkpoint is intact",
                           f"check the free disk space in {path.parent} ({free:.1f} GiB free now) "
                           "and continue with --resume") from None
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def load_checkpoint(path) -> dict:
    """Load a checkpoint file, or ``RUN_DIR/last.pt`` for a run folder (what ``--resume`` continues)."""
    from ..encoders.pretrained import read_checkpoint

    path = Path(path)
    if path.is_dir():
        path = path / "last.pt"
    if not path.is_file():
        raise Loc2VecError(f"checkpoint {path} not found", "give a run folder with last.pt, or a .pt file")
    return read_checkpoint(path)
