"""Export an encoder to ONNX with everything inference needs stored in the file itself.

``export_onnx`` traces the encoder with the TorchScript exporter (``dynamo=False``: the dynamo exporter
needs onnxscript, which loc2vec does not install), input ``tiles`` (N, C, S, S) float32 in [0, 1]
(uint8 tiles / 255) with a dynamic batch axis, output ``embedding`` (N, D) unit vectors; it writes the
loc2vec metadata (see ``runtime``) into ``metadata_props``, and checks with onnxruntime on CPU that the
file gives the torch embeddings (1e-4) for another batch size than the one traced, before the file
appears under its name (write-then-rename).
"""

from __future__ import annotations

import copy
import io
import json
import math
import warnings
from pathlib import Path

from .. import ATTRIBUTION, __version__
from ..atomic import atomic_output, check_writable
from ..errors import Loc2VecError
from .runtime import INPUT_NAME, OUTPUT_NAME, onnx_session, read_onnx_meta  # noqa: F401 (re-exported)

TOLERANCE = 1e-4
_TRACE_BATCH, _CHECK_BATCH = 2, 3  # different on purpose: proves the batch axis is really dynamic


def _jsonable(value) -> bool:
    try:
        json.dumps(value)
        return True
    except (TypeError, ValueError):
        return False


def _json(value, what: str) -> str:
    try:
        return json.dumps(value, ensure_ascii=False)
    except (TypeError, ValueError):
        raise Loc2VecError(f"{what} {value!r} cannot be stored as JSON in the ONNX metadata",
                           "use strings, numbers, lists and dicts only") from None


def _metadata(encoder, tile_size_px, metres_per_px, channel_names, training_areas, extra_meta) -> dict[str, str]:
    meta = {
        "loc2vec_version": __version__,
        "encoder": encoder.meta["name"],
        # How to rebuild the encoder (name, kwargs, pretrained source, ...); channel names are stored once, below.
        "encoder_meta": {k: v for k, v in encoder.meta.items() if k != "channel_names" and _jsonable(v)},
        "channel_names": list(channel_names),
        "in_channels": len(channel_names),
        "tile_size_px": tile_size_px,
        "metres_per_px": metres_per_px,
        "tile_size_m": tile_size_px * metres_per_px,
        "embedding_size": int(encoder.meta["embedding_dim"]),
        "input_normalisation": encoder.meta.get("input_normalisation", "uint8/255"),
        "input_name": INPUT_NAME,
        "output_name": OUTPUT_NAME,
        "training_areas": list(training_areas),
        "attribution": ATTRIBUTION,
    }
    for key, value in (extra_meta or {}).items():
        if not isinstance(key, str) or key in meta:
            raise Loc2VecError(f"extra metadata key {key!r} is reserved or not a string",
                               f"choose another name; reserved: {', '.join(meta)}")
        meta[key] = value
    return {key: _json(value, f"metadata {key}") for key, value in meta.items()}


def _check_args(encoder, tile_size_px, metres_per_px, channel_names, opset):
    meta = getattr(encoder, "meta", None)
    if not isinstance(meta, dict) or "name" not in meta or "embedding_dim" not in meta:
        raise Loc2VecError("this model has no loc2vec encoder meta", "build it with create_encoder or load_encoder")
    if not isinstance(tile_size_px, int) or isinstance(tile_size_px, bool) or tile_size_px < 32:
        raise Loc2VecError(f"tile size must be an integer >= 32 px, not {tile_size_px!r}",
                           "use the tile size the model was trained with")
    if not isinstance(metres_per_px, (int, float)) or not math.isfinite(metres_per_px) or metres_per_px <= 0:
        raise Loc2VecError(f"metres per pixel must be a positive number, not {metres_per_px!r}",
                           "use the pixel size of the areas the model was trained on")
    names = list(channel_names)
    if not names or not all(isinstance(n, str) and n for n in names):
        raise Loc2VecError("channel names must be a non-empty list of strings", "pass the area's channel names")
    if len(names) != int(meta["in_channels"]):
        raise Loc2VecError(f"{len(names)} channel names given for an encoder with {meta['in_channels']} input "
                           "channels", "pass the channel names of the areas the model was trained on, in band order")
    if not isinstance(opset, int) or opset < 14:
        raise Loc2VecError(f"ONNX opset {opset!r} is too old", "use opset 17 (the default) or newer")
    return names


def _trace(model, dummy, opset: int) -> bytes:
    import torch

    buf = io.BytesIO()
    with warnings.catch_warnings():
        # The legacy exporter announces its deprecation, and tracing warns about shapes turned into
        # constants: the tile size is fixed per model on purpose, only the batch axis is dynamic.
        warnings.simplefilter("ignore", category=torch.jit.TracerWarning)
        warnings.simplefilter("ignore", category=DeprecationWarning)
        warnings.simplefilter("ignore", category=FutureWarning)
        warnings.simplefilter("ignore", category=UserWarning)
        torch.onnx.export(model, (dummy,), buf, dynamo=False, opset_version=opset, do_constant_folding=True,
                          input_names=[INPUT_NAME], output_names=[OUTPUT_NAME],
                          dynamic_axes={INPUT_NAME: {0: "batch"}, OUTPUT_NAME: {0: "batch"}})
    return buf.getvalue()


def _check_against_torch(path: Path, model, channels: int, size: int) -> float:
    """Largest |onnxruntime - torch| on a fresh random batch; raise above ``TOLERANCE``."""
    import torch

    tiles = torch.rand(_CHECK_BATCH, channels, size, size, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        expected = model(tiles).numpy()
    got = onnx_session(path, device="cpu").run([OUTPUT_NAME], {INPUT_NAME: tiles.numpy()})[0]
    if got.shape != expected.shape:
        raise Loc2VecError(f"the exported model gives shape {got.shape} for a batch of {_CHECK_BATCH}, "
                           f"torch gives {expected.shape}", "report this: the batch axis did not export as dynamic")
    err = float(abs(got - expected).max())
    if not err <= TOLERANCE:
        raise Loc2VecError(f"the exported model differs from torch by {err:.2e} (> {TOLERANCE:g})",
                           "report this, naming the encoder; try another --opset meanwhile")
    return err


def export_onnx(encoder, path, *, tile_size_px: int, metres_per_px: float, channel_names, training_areas=(),
                extra_meta: dict | None = None, opset: int = 17) -> Path:
    """Write ``encoder`` as an ONNX file at ``path`` with loc2vec metadata; return the path.

    ``channel_names`` are the input bands in order; ``training_areas`` (names or dicts) and
    ``extra_meta`` (JSON-able values) are stored as given. The encoder itself is not changed (a CPU
    copy in eval mode is exported).
    """
    import onnx
    import torch

    names = _check_args(encoder, tile_size_px, metres_per_px, channel_names, opset)
    path = check_writable(path)
    props = _metadata(encoder, tile_size_px, float(metres_per_px), names, training_areas, extra_meta)
    # A CPU float32 copy: the user's model keeps its device and train mode, and the check below compares
    # like with like (a GPU's TF32 convolutions alone can differ from CPU by more than 1e-4).
    model = copy.deepcopy(encoder).to("cpu", torch.float32).eval()
    dummy = torch.rand(_TRACE_BATCH, len(names), tile_size_px, tile_size_px)
    try:
        proto = onnx.load_from_string(_trace(model, dummy, opset))
        onnx.checker.check_model(proto)
    except Loc2VecError:
        raise
    except Exception as e:
        raise Loc2VecError(f"encoder {encoder.meta['name']} could not be exported to ONNX (opset {opset}): "
                           f"{type(e).__name__}: {' '.join(str(e).split())[:300]}",
                           "try another --opset, or one of the encoders loc2vec tests: loc2vec, resnet18, "
                           "resnet34, efficientnet_b0, mobilenetv3_small_100") from None
    del proto.metadata_props[:]
    for key, value in props.items():
        entry = proto.metadata_props.add()
        entry.key, entry.value = key, value
    proto.doc_string = (f"loc2vec location encoder {encoder.meta['name']}: {INPUT_NAME} (N, {len(names)}, "
                        f"{tile_size_px}, {tile_size_px}) float32 = uint8 tiles / 255 -> {OUTPUT_NAME} "
                        f"(N, {encoder.meta['embedding_dim']}) unit vectors. {ATTRIBUTION}")
    proto.producer_name = "loc2vec"
    proto.producer_version = __version__
    with atomic_output(path) as tmp:
        onnx.save(proto, str(tmp))
        _check_against_torch(tmp, model, len(names), tile_size_px)
    return path
