"""Training: triplets from spatially disjoint blocks, augmentation, losses, the no-learning baseline.

The names below are loaded on first use (PEP 562), so that a light module of this package (``recipes``,
``config``) imports without numba, scipy or torch: the plugin reads the recipes while QGIS starts, before
it knows whether those packages are installed.
"""

from importlib import import_module

_EXPORTS = {
    "Augment": "augment",
    "FractionsBaseline": "baselines", "channel_fractions": "baselines", "triplet_accuracy_of_embeddings": "baselines",
    "SPLITS": "blocks", "BlockSplit": "blocks", "auto_block_m": "blocks", "guard_margin_m": "blocks",
    "split_blocks": "blocks",
    "triplet_accuracy": "losses", "triplet_loss": "losses",
    "Triplets": "triplets", "TripletSampler": "triplets",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name):
    if name in _EXPORTS:
        value = getattr(import_module(f".{_EXPORTS[name]}", __name__), name)
        globals()[name] = value  # later lookups skip this hook
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
