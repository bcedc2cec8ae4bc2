"""Encoders by name: ``register_encoder`` adds a builder, ``create_encoder`` is the one factory.

Like timm's ``_registry``/``_factory``: a builder is a function
``builder(*, in_channels, embedding_dim, imagenet, **kwargs) -> Encoder`` registered under a name.
Built in: ``loc2vec`` (the baseline CNN) and the first-class timm models ``resnet18``, ``resnet34``,
``efficientnet_b0``, ``mobilenetv3_small_100``; any other timm model name works too (``timm.list_models()``).

This module does not import torch at import time; the built-in builders load on first use.
"""

from __future__ import annotations

import importlib
from typing import Callable

from ..errors import Loc2VecError

EMBEDDING_DIM_RANGE = (16, 512)

_BUILDERS: dict[str, Callable] = {}
_BUILTIN_MODULES = ("loc2vec_cnn", "timm_backbones")  # each registers its encoders on import
_builtins_loaded = False


def register_encoder(name: str):
    """Decorator: register ``builder`` under ``name`` (a name registered twice is a programming error)."""

    def decorate(builder: Callable) -> Callable:
        if name in _BUILDERS and _BUILDERS[name] is not builder:
            raise ValueError(f"encoder {name!r} is already registered")
        _BUILDERS[name] = builder
        return builder

    return decorate


def _load_builtins() -> None:
    global _builtins_loaded
    if _builtins_loaded:
        return
    try:
        for module in _BUILTIN_MODULES:
            importlib.import_module(f".{module}", __package__)
    except ModuleNotFoundError as e:
        if e.name in ("torch", "timm"):
            raise Loc2VecError(f"{e.name} is not installed; encoders need it",
                               "install the training extras: pip install 'loc2vec[train]' "
                               "(or pip install -r requirements.txt)") from None
        raise
    _builtins_loaded = True


def list_encoders() -> list[str]:
    """The registered encoder names (any timm model name is accepted as well)."""
    _load_builtins()
    return list(_BUILDERS)


def _builder_for(name: str) -> Callable:
    _load_builtins()
    if name in _BUILDERS:
        return _BUILDERS[name]
    import timm

    from .timm_backbones import build_timm_encoder

    if timm.is_model(name):
        return lambda **kw: build_timm_encoder(name, **kw)
    raise Loc2VecError(f"unknown encoder {name!r}",
                       f"use one of {', '.join(_BUILDERS)}, or any timm model name "
                       "(see python -c \"import timm; print(timm.list_models())\")")


def _check_int(value, what: str, low: int, high: int | None = None) -> int:
    ok = isinstance(value, int) and not isinstance(value, bool) and value >= low and (high is None or value <= high)
    if not ok:
        span = f"{low}..{high}" if high is not None else f">= {low}"
        raise Loc2VecError(f"{what} must be an integer {span}, not {value!r}",
                           f"pass e.g. {what}={128 if what == 'embedding_dim' else 12}")
    return value


def create_encoder(name: str, in_channels: int = 12, embedding_dim: int = 128, pretrained=None, **kwargs):
    """Build encoder ``name`` for ``in_channels``-channel tiles and ``embedding_dim``-long unit embeddings.

    ``pretrained`` (see ``pretrained.parse_pretrained``):
      * ``None`` / ``"none"``: random initialisation;
      * ``"imagenet"``: timm's ImageNet weights (hub when online, else the local timm/Hugging Face cache),
        first conv adapted from RGB to ``in_channels`` the timm way;
      * ``"imagenet:FILE"``: the same weights from a ``.pth``/``.safetensors`` file (for offline machines);
      * a run folder (its ``best.pt``, else ``last.pt``) or a ``.pt`` checkpoint: continue from an earlier
        loc2vec model, which must have the same encoder name, channel count and embedding size.
    ``kwargs`` go to the builder (for timm: e.g. ``drop_rate``, ``drop_path_rate``, ``img_size``).
    Weights that were asked for but cannot be loaded raise ``Loc2VecError``, never a silent random start.
    """
    from .pretrained import load_encoder_checkpoint, parse_pretrained

    if not isinstance(name, str) or not name:
        raise Loc2VecError(f"encoder name must be a non-empty string, not {name!r}", "e.g. --encoder resnet18")
    _check_int(in_channels, "in_channels", 1)
    _check_int(embedding_dim, "embedding_dim", *EMBEDDING_DIM_RANGE)
    source = parse_pretrained(pretrained)
    builder = _builder_for(name)
    encoder = builder(in_channels=in_channels, embedding_dim=embedding_dim,
                      imagenet=source if source and source.kind == "imagenet" else None, **kwargs)
    encoder.meta["name"] = name
    if source is not None and source.kind == "checkpoint":
        load_encoder_checkpoint(encoder, source.path)
    if source is not None:
        encoder.meta["pretrained"] = source.describe()
    return encoder

