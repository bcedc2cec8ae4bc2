"""Where an encoder's starting weights come from: nothing, timm's ImageNet weights, or a loc2vec checkpoint.

The rule throughout: weights that were asked for either load completely or raise ``Loc2VecError``
naming the model and how to provide them. timm itself only logs a warning in some paths (no weights
for this model, missing keys under ``strict=False``, a first conv it cannot adapt) and carries on from
random weights; ``create_timm_backbone`` checks the result instead of trusting it.

Checkpoint format (written by the training loop as ``RUN_DIR/best.pt`` and ``RUN_DIR/last.pt``)::

    {"model": encoder.state_dict(), "meta": encoder.meta (+ tile_size_px, channel_names, ...), ...}

Everything in it is tensors and plain Python values, so it is always read with
``torch.load(..., weights_only=True)``: a checkpoint can never run code.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import torch

from ..errors import Loc2VecError

IMAGENET = "imagenet"
_NO_WEIGHTS = (None, False, "", "none", "random")
# What must agree between a checkpoint and the encoder it is loaded into.
_MUST_MATCH = ("name", "in_channels", "embedding_dim")
_PRETRAINED_HELP = ("give 'imagenet', 'imagenet:FILE' (a .pth/.safetensors file of timm's weights), "
                    "a run folder (with best.pt or last.pt) or a .pt checkpoint")


@dataclass(frozen=True)
class PretrainedSource:
    """A parsed ``pretrained=`` value: ``kind`` is "imagenet" (``path`` = weights file or None for the hub)
    or "checkpoint" (``path`` = the resolved .pt file)."""

    kind: str
    path: Path | None = None

    def describe(self) -> str:
        """The value stored in ``encoder.meta["pretrained"]``: what this model started from."""
        if self.kind == IMAGENET:
            return f"imagenet:{self.path}" if self.path else IMAGENET
        return f"checkpoint:{self.path}"


def parse_pretrained(value) -> PretrainedSource | None:
    """``None``/"none" -> None; ``True``/"imagenet" -> the hub/cache; "imagenet:FILE" -> a weights file;
    anything else is a run folder or checkpoint path (checked to exist here, before any model is built)."""
    if isinstance(value, PretrainedSource):
        return value
    if value in _NO_WEIGHTS or (isinstance(value, str) and value.strip().lower() in _NO_WEIGHTS):
        return None
    if value is True:
        return PretrainedSource(IMAGENET)
    if not isinstance(value, (str, os.PathLike)):
        raise Loc2VecError(f"pretrained must be a string or path, not {value!r}", _PRETRAINED_HELP)
    text = os.fspath(value).strip()
    if text.lower() == IMAGENET:
        return PretrainedSource(IMAGENET)
    if text.lower().startswith(IMAGENET + ":"):
        # Split on the first colon only, so Windows paths (imagenet:C:\w.pth) survive.
        file = Path(text[len(IMAGENET) + 1:]).expanduser()
        if not file.is_file():
            raise Loc2VecError(f"ImageNet weights file {file} not found",
                               "give the path of a .pth or .safetensors file saved from the timm model")
        return PretrainedSource(IMAGENET, file.resolve())
    return PretrainedSource("checkpoint", resolve_checkpoint(text))


def resolve_checkpoint(path) -> Path:
    """A run folder means its ``best.pt``, else its ``last.pt``; a file means itself."""
    path = Path(path).expanduser()
    if path.is_dir():
        for name in ("best.pt", "last.pt"):
            if (path / name).is_file():
                return (path / name).resolve()
        raise Loc2VecError(f"run folder {path} has no best.pt or last.pt",
                           "give the folder of a finished (or checkpointed) loc2vec train run")
    if not path.is_file():
        raise Loc2VecError(f"pretrained weights {path} not found: no such checkpoint file or run folder",
                           _PRETRAINED_HELP)
    return path.resolve()


# ---- ImageNet weights through timm ------------------------------------------------------------------

def _short(e: Exception, limit: int = 300) -> str:
    """An exception as one short line for an error message (torch's load errors run to pages)."""
    text = " ".join(str(e).split())
    return f"{type(e).__name__}: " + (text if len(text) <= limit else text[:limit] + " ...")


def _hub_help(name: str) -> str:
    return (f"download them on a machine with internet: python -c \"import timm, torch; "
            f"torch.save(timm.create_model('{name}', pretrained=True).state_dict(), '{name}.pth')\", "
            f"copy {name}.pth here and pass --pretrained imagenet:{name}.pth "
            f"(or copy that machine's Hugging Face cache, ~/.cache/huggingface/hub)")


def create_timm_backbone(name: str, in_channels: int, imagenet: PretrainedSource | None = None, **kwargs):
    """``timm.create_model`` without the classifier (``num_classes=0``, average pooling), optionally with
    ImageNet weights from the hub/cache or a file (``pretrained_cfg_overlay=dict(file=...)``).

    For ``in_channels != 3`` timm adapts the pretrained first conv (``timm.models.adapt_input_conv``:
    the RGB filters repeated over the channels and scaled by 3 / in_channels).
    """
    import timm

    common = dict(in_chans=in_channels, num_classes=0, global_pool="avg", **kwargs)
    if imagenet is None:
        return timm.create_model(name, pretrained=False, **common)
    overlay = {"file": str(imagenet.path)} if imagenet.path else None
    # The same seed twice: a layer timm left unloaded is then bit-identical to the fresh model's.
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        try:
            model = timm.create_model(name, pretrained=True, pretrained_cfg_overlay=overlay, **common)
        except Loc2VecError:
            raise
        except Exception as e:  # hub offline, file of another model, corrupt file, ...
            if imagenet.path:
                raise Loc2VecError(f"ImageNet weights file {imagenet.path} could not be loaded into {name}: "
                                   + _short(e),
                                   f"give the weights of the timm model {name!r} itself; "
                                   + _hub_help(name)) from e
            raise Loc2VecError(f"could not get the ImageNet weights of {name} (no internet, and not in the "
                               f"local timm/Hugging Face cache?): " + _short(e),
                               _hub_help(name)) from e
        torch.manual_seed(0)
        fresh = timm.create_model(name, pretrained=False, **common)
    _check_loaded(name, imagenet, model, fresh)
    return model


def _check_loaded(name: str, imagenet: PretrainedSource, model, fresh) -> None:
    """Refuse a model where a randomly initialised weight tensor came out unchanged by the load."""
    fresh_params = dict(fresh.named_parameters())
    untouched = [n for n, p in model.named_parameters()
                 if p.dim() >= 2 and n in fresh_params and fresh_params[n].std() > 0
                 and torch.equal(p, fresh_params[n])]
    if untouched:
        where = f"file {imagenet.path}" if imagenet.path else "timm's hub/cache"
        shown = ", ".join(untouched[:5]) + (f" and {len(untouched) - 5} more" if len(untouched) > 5 else "")
        raise Loc2VecError(f"the ImageNet weights from {where} did not cover {name}: {shown} would start "
                           "from random values",
                           f"give the complete weights of the timm model {name!r}; " + _hub_help(name))


# ---- loc2vec checkpoints ----------------------------------------------------------------------------

def read_checkpoint(path) -> dict:
    """Load a loc2vec checkpoint (tensors and plain values only) and check it has ``model`` and ``meta``."""
    path = resolve_checkpoint(path)
    try:
        ck = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # truncated, not a torch file, or pickled objects other than tensors/plain values
        raise Loc2VecError(f"cannot read checkpoint {path}: " + _short(e),
                           "give a checkpoint written by loc2vec train (RUN_DIR/best.pt or last.pt)") from None
    if not isinstance(ck, dict) or not isinstance(ck.get("model"), dict) or not isinstance(ck.get("meta"), dict):
        raise Loc2VecError(f"{path} is not a loc2vec checkpoint (no 'model' and 'meta' entries)",
                           "for timm's ImageNet weights pass imagenet:FILE instead; otherwise give "
                           "RUN_DIR/best.pt of a loc2vec train run")
    return ck


def _strip_wrappers(state_dict: dict) -> dict:
    """Keys as the bare encoder has them, also from a DDP (``module.``) or torch.compile (``_orig_mod.``) model."""
    out = {}
    for key, value in state_dict.items():
        for prefix in ("module.", "_orig_mod."):
            while key.startswith(prefix):
                key = key[len(prefix):]
        out[key] = value
    return out


def load_encoder_checkpoint(encoder, path) -> dict:
    """Load the weights of checkpoint ``path`` into ``encoder``; refuse one made for another model.

    Returns the checkpoint dict (its ``meta`` and anything else the training loop stored)."""
    ck = read_checkpoint(path)
    meta = ck["meta"]
    wrong = [f"{k} {meta.get(k)!r} (this encoder: {encoder.meta.get(k)!r})"
             for k in _MUST_MATCH if meta.get(k) != encoder.meta.get(k)]
    if wrong:
        raise Loc2VecError(f"checkpoint {resolve_checkpoint(path)} was made for another model: " + "; ".join(wrong),
                           f"use --encoder {meta.get('name')} --embedding-dim {meta.get('embedding_dim')} with "
                           f"{meta.get('in_channels')}-channel areas, or start from another checkpoint")
    try:
        encoder.load_state_dict(_strip_wrappers(ck["model"]), strict=True)
    except RuntimeError as e:
        raise Loc2VecError(f"checkpoint {resolve_checkpoint(path)} does not fit encoder {encoder.meta['name']}: "
                           + _short(e, 400),
                           "build the encoder with the options the checkpoint was trained with") from None
    return ck


def load_encoder(path, device="cpu"):
    """Rebuild the encoder a checkpoint (or run folder) describes, with its weights; ``meta`` kept as saved."""
    from .registry import create_encoder

    ck = read_checkpoint(path)
    meta = ck["meta"]
    missing = [k for k in _MUST_MATCH if k not in meta]
    if missing:
        raise Loc2VecError(f"checkpoint {resolve_checkpoint(path)} lacks meta {', '.join(missing)}",
                           "give a checkpoint written by loc2vec train")
    encoder = create_encoder(meta["name"], in_channels=meta["in_channels"], embedding_dim=meta["embedding_dim"],
                             **(meta.get("kwargs") or {}))
    load_encoder_checkpoint(encoder, path)
    encoder.meta.update(meta)
    return encoder.to(device)
