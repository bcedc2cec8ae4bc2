"""Progressive unfreezing: train only the head first, then the last backbone stage, then everything.

Fine-tuning ImageNet backbones on map tiles: a freshly initialised head sends large, random gradients
into pretrained layers; training the head alone for a while first protects them.
"""

from __future__ import annotations

STAGES = ("head", "last", "all")


def _last_stage_names(backbone) -> set[str]:
    """Parameter names of the backbone's last stage and everything after it (final norm, pre-logits).

    The last stage is what follows the second-to-last entry of ``feature_info`` (timm models and
    Loc2VecCNN both have one: one entry per resolution level). Without it: the last top-level child
    that has parameters.
    """
    names = [n for n, _ in backbone.named_parameters()]
    info = getattr(backbone, "feature_info", None)
    modules = [f["module"] for f in info] if isinstance(info, list) and info and isinstance(info[0], dict) else []
    if len(modules) >= 2:
        before = modules[-2]
        owned = [i for i, n in enumerate(names) if n == before or n.startswith(before + ".")]
        if owned:
            return set(names[owned[-1] + 1:])
    children = [c for c, m in backbone.named_children() if any(True for _ in m.parameters())]
    return {n for n in names if children and n.startswith(children[-1] + ".")}


def set_trainable(encoder, stage: str) -> int:
    """Set ``requires_grad``: "head" -> only ``encoder.head``; "last" -> head + last backbone stage;
    "all" -> every parameter. Returns the number of trainable parameters.

    BatchNorm layers in frozen parts still update their running statistics in train mode; that is
    usually wanted (map tiles are not ImageNet) and costs nothing.
    """
    from ..errors import Loc2VecError

    if stage not in STAGES:
        raise Loc2VecError(f"unknown training stage {stage!r}", f"use one of: {', '.join(STAGES)}")
    last = _last_stage_names(encoder.backbone) if stage == "last" else set()
    for name, p in encoder.backbone.named_parameters():
        p.requires_grad_(stage == "all" or name in last)
    for p in encoder.head.parameters():
        p.requires_grad_(True)
    return sum(p.numel() for p in encoder.parameters() if p.requires_grad)
