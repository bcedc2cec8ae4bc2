"""Training recipes by name: the objective settings of a ``TrainConfig``, one definition for every caller.

The Processing algorithm offers them as a choice, ``benchmarks/loco.py`` measures them city by city,
and ``docs/default_model.md`` names the one the shipped model was trained with. A recipe says *how* to
learn (loss, positives, negatives, extra terms); tile size, batch, budget and areas stay the caller's.
"""

from __future__ import annotations

from ..errors import Loc2VecError

RECIPES = {
    # the shipped default's: InfoNCE over two views <= 100 m apart, places < 300 m masked as negatives,
    # a uniformity term and a head regressing the 30/60/100 % window composition
    "contrastive": dict(loss="infonce", temperature=0.1, false_negative_m=300.0, pos_range_m=(0.0, 100.0),
                        uniformity_weight=0.05, composition_weight=1.0, built_up_weight=0.5, balance_areas=True,
                        lr=5e-4),
    # the report's: triplets with a positive 100-200 m away, semi-hard mining
    "triplet": dict(loss="triplet", mining="semi_hard", pos_range_m=(100.0, 200.0), built_up_weight=0.5,
                    balance_areas=True, lr=5e-4),
}
DEFAULT_RECIPE = "contrastive"
# How the shipped model is exported: the learned part joined with the square-rooted composition, share 0.5.
DEFAULT_EXPORT = dict(hybrid_share=0.5, composition_transform="sqrt")


def recipe(name: str) -> dict:
    """The ``TrainConfig`` fields of recipe ``name`` (a fresh dict)."""
    if name not in RECIPES:
        raise Loc2VecError(f"unknown training recipe {name!r}", f"use one of: {', '.join(RECIPES)}")
    return dict(RECIPES[name])
