"""Export a trained run (its best or last checkpoint) to an ONNX file with loc2vec metadata."""

from __future__ import annotations

from pathlib import Path

from ..errors import Loc2VecError
from .checkpoint import load_checkpoint


def export_run(run_or_checkpoint, out, which: str = "best") -> Path:
    from ..encoders import load_encoder
    from ..export.onnx import export_onnx

    src = Path(run_or_checkpoint)
    if src.is_dir():
        src = src / f"{which}.pt" if (src / f"{which}.pt").is_file() else src / "last.pt"
    ck = load_checkpoint(src)
    meta = ck["meta"]
    missing = [k for k in ("tile_size_px", "tile_size_m", "channel_names") if k not in meta]
    if missing:
        raise Loc2VecError(f"checkpoint {src} lacks {', '.join(missing)}", "export a checkpoint written by loc2vec train")
    model = load_encoder(src)
    return export_onnx(model, out, tile_size_px=int(meta["tile_size_px"]),
                       metres_per_px=float(meta["tile_size_m"]) / int(meta["tile_size_px"]),
                       channel_names=list(meta["channel_names"]), training_areas=list(meta.get("training_areas", [])),
                       extra_meta={"checkpoint_step": str(ck.get("step", "")), "checkpoint": src.name})
