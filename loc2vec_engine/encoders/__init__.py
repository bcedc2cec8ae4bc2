"""Encoders: map tiles (N, C, S, S) float32 in [0, 1] -> unit-length location embeddings (N, D).

One factory, models registered by name (the timm ``_registry``/``_factory`` pattern)::

    from loc2vec_engine.encoders import create_encoder, list_encoders
    enc = create_encoder("resnet18", in_channels=12, embedding_dim=128, pretrained="imagenet")

Importing this package does not import torch: the names below load on first use, so the QGIS
plugin (which may run without torch) can import the engine freely.
"""

from __future__ import annotations

import importlib

# public name -> submodule that defines it
_LAZY = {
    "Encoder": "encoder",
    "INPUT_NORMALISATION": "encoder",
    "create_encoder": "registry",
    "list_encoders": "registry",
    "register_encoder": "registry",
    "load_encoder": "pretrained",
    "load_encoder_checkpoint": "pretrained",
    "resolve_checkpoint": "pretrained",
    "set_trainable": "freeze",
    "STAGES": "freeze",
}

__all__ = sorted(_LAZY)


def __getattr__(name: str):
    if name in _LAZY:
        module = importlib.import_module(f".{_LAZY[name]}", __name__)
        return getattr(module, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
