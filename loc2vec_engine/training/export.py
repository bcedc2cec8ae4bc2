"""Export a trained run (its best or last checkpoint) to an ONNX file with loc2vec metadata.

``hybrid_share`` > 0 exports the hybrid encoder (``encoders.hybrid``): the learned embedding joined
with the tile's standardised multi-scale composition, in the graph itself. The composition statistics
come from ``composition_areas`` (default: the run's training areas, which must still exist), never from
the areas the model will embed.
"""

from __future__ import annotations

from pathlib import Path

from ..errors import Loc2VecError
from .checkpoint import load_checkpoint


def export_run(run_or_checkpoint, out, which: str = "best", hybrid_share: float | None = None,
               composition_areas=None, composition_transform: str | None = None) -> Path:
    """``hybrid_share`` / ``composition_transform`` None: those the run trained through (``TrainConfig``),
    so a run trained as a hybrid exports as that hybrid; 0: the learned embedding alone."""
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
    trained = ck.get("config") or {}
    if hybrid_share is None:
        hybrid_share = float(trained.get("hybrid_share") or 0.0)
    if composition_transform is None:
        composition_transform = trained.get("composition_transform") or "linear"
    model = load_encoder(src)
    extra = {"checkpoint_step": str(ck.get("step", "")), "checkpoint": src.name}
    if hybrid_share:
        model = _hybrid(model, meta, ck, float(hybrid_share), composition_areas, composition_transform)
        extra["hybrid"] = model.meta["hybrid"]
    return export_onnx(model, out, tile_size_px=int(meta["tile_size_px"]),
                       metres_per_px=float(meta["tile_size_m"]) / int(meta["tile_size_px"]),
                       channel_names=list(meta["channel_names"]), training_areas=list(meta.get("training_areas", [])),
                       extra_meta=extra)


def _hybrid(model, meta, ck, share, composition_areas, transform):
    from ..encoders.hybrid import HybridEncoder
    from ..raster.area import AreaRaster
    from .hybrid import composition_statistics

    from ..encoders.composition import TRANSFORMS

    if transform not in TRANSFORMS:
        raise Loc2VecError(f"unknown composition transform {transform!r}", f"use one of: {', '.join(TRANSFORMS)}")
    if not 0.0 < share < 1.0:
        raise Loc2VecError(f"--hybrid-share must be in (0, 1), not {share:g}",
                           "use e.g. --hybrid-share 0.5 (0 exports the learned embedding alone)")
    trained = meta.get("trained_hybrid") or {}
    comp = trained.get("composition") or {}
    if not composition_areas and comp.get("transform") == transform:
        # trained through the hybrid: the statistics it trained with (the areas need not exist any more)
        from ..encoders.composition import CompositionStats

        return HybridEncoder(model, CompositionStats.from_meta(comp), share)
    areas = composition_areas
    if not areas:
        areas = list((ck.get("config") or {}).get("areas") or [])
        gone = [a for a in areas if not Path(a).is_file()]
        if not areas or gone:
            raise Loc2VecError("the hybrid export needs the training areas for its composition statistics, and "
                               + (f"{gone[0]} is gone" if gone else "the checkpoint does not name them"),
                               "pass the areas with --composition-areas A.tif B.tif ...")
    for a in areas:
        raster = AreaRaster.open(a)
        if list(raster.channel_names) != list(meta["channel_names"]):
            raise Loc2VecError(f"composition area {Path(a).name} has channels {list(raster.channel_names)}, the "
                               f"model {list(meta['channel_names'])}",
                               "give areas rasterized with the model's channel spec")
    stats = composition_statistics(areas, float(meta["tile_size_m"]), int(meta["tile_size_px"]), transform=transform)
    return HybridEncoder(model, stats, share)
