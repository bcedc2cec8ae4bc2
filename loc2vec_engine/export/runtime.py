"""Using an exported loc2vec ONNX model: its metadata and an onnxruntime session. No torch needed.

The metadata lives in the ONNX file's ``metadata_props`` (as Deepness does), every value JSON-encoded,
so one file carries all that inference needs: the channel names in band order, the tile size in pixels,
metres per pixel, the input normalisation ("uint8/255"), the embedding size, the encoder, the training
areas, the loc2vec version and the OpenStreetMap (ODbL) attribution.
"""

from __future__ import annotations

import json
from pathlib import Path

from ..errors import Loc2VecError, MissingPackage, third_party_missing

INPUT_NAME = "tiles"
OUTPUT_NAME = "embedding"
# The keys every loc2vec ONNX file has; a file without them was not made by loc2vec export.
REQUIRED_KEYS = ("loc2vec_version", "encoder", "channel_names", "tile_size_px", "metres_per_px",
                 "embedding_size", "input_normalisation")
DEVICES = ("auto", "cpu", "cuda")


def _metadata_props(path: Path) -> dict[str, str]:
    try:
        import onnx
    except ModuleNotFoundError:  # the plugin may have onnxruntime only
        onnx = None
    ort = None if onnx is not None else _import_onnxruntime()  # a missing package is not a bad file
    try:
        if onnx is not None:
            model = onnx.load(str(path), load_external_data=False)
            return {p.key: p.value for p in model.metadata_props}
        sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        return dict(sess.get_modelmeta().custom_metadata_map)
    except ModuleNotFoundError as e:  # a package onnx itself imports late: the package, not the file, is wrong
        raise MissingPackage(third_party_missing(e) or "onnx", "reading a loc2vec .onnx model") from None
    except Exception as e:  # protobuf DecodeError, onnxruntime Fail, ...
        raise Loc2VecError(f"{path} is not a readable ONNX file: {type(e).__name__}: {str(e)[:200]}",
                           "give a .onnx file written by loc2vec export") from None


def _import_onnxruntime():
    """onnxruntime, or a ``MissingPackage`` that names it (running a loc2vec model needs it)."""
    try:
        import onnxruntime
    except ModuleNotFoundError as e:
        if (e.name or "onnxruntime").split(".")[0] != "onnxruntime":
            raise  # one of onnxruntime's own dependencies: its own name is the news
        raise MissingPackage("onnxruntime", "running a loc2vec .onnx model") from None
    return onnxruntime


def read_onnx_meta(path) -> dict:
    """The loc2vec metadata of an ONNX file as Python values (JSON-decoded, never ``eval``-ed).

    Keys other tools added are kept, as decoded JSON where they parse and as strings otherwise.
    """
    path = Path(path)
    if not path.is_file():
        raise Loc2VecError(f"model file {path} not found", "give the .onnx file written by loc2vec export")
    meta = {}
    for key, raw in _metadata_props(path).items():
        try:
            meta[key] = json.loads(raw)
        except ValueError:
            meta[key] = raw
    missing = [k for k in REQUIRED_KEYS if k not in meta]
    if missing:
        raise Loc2VecError(f"not a loc2vec model: {path} has no loc2vec metadata ({', '.join(missing)} missing)",
                           "export it with loc2vec export (from a training run folder or checkpoint)")
    return meta


def _torch_says_cuda() -> bool | None:
    """True/False from torch when it is installed (it also loads the CUDA libraries onnxruntime needs)."""
    try:
        import torch
    except ImportError:
        return None
    return bool(torch.cuda.is_available())


def onnx_session(path, device: str = "auto"):
    """An ``onnxruntime.InferenceSession`` with explicitly chosen providers.

    ``device="auto"``: CUDA when torch reports a GPU (or, without torch, when onnxruntime really creates
    a CUDA session), else CPU, quietly. ``"cuda"``: CUDA or a ``Loc2VecError``. ``"cpu"``: CPU only.
    The providers are never left to onnxruntime's default, which lists CUDA (and TensorRT) whenever
    onnxruntime-gpu is installed, GPU or not.
    """
    ort = _import_onnxruntime()
    path = Path(path)
    if not path.is_file():
        raise Loc2VecError(f"model file {path} not found", "give the .onnx file written by loc2vec export")
    if device not in DEVICES:
        raise Loc2VecError(f"unknown device {device!r}", f"use one of: {', '.join(DEVICES)}")
    cpu = ["CPUExecutionProvider"]
    has_cuda_ep = "CUDAExecutionProvider" in ort.get_available_providers()
    want_cuda = device == "cuda" or (device == "auto" and has_cuda_ep and _torch_says_cuda() is not False)
    if want_cuda and has_cuda_ep:
        opts = ort.SessionOptions()
        opts.log_severity_level = 4  # a failed CUDA probe is expected on CPU machines: no warning spam
        try:
            sess = ort.InferenceSession(str(path), sess_options=opts,
                                        providers=["CUDAExecutionProvider"] + cpu)
            if sess.get_providers()[0] == "CUDAExecutionProvider":
                return sess
        except Exception:
            pass
    if device == "cuda":
        raise Loc2VecError("onnxruntime cannot use CUDA here (no GPU, no onnxruntime-gpu, or CUDA libraries "
                           "missing)", "use device cpu or auto, or install onnxruntime-gpu matching your CUDA")
    try:
        return ort.InferenceSession(str(path), providers=cpu)
    except Exception as e:
        raise Loc2VecError(f"onnxruntime cannot load {path}: {type(e).__name__}: {str(e)[:200]}",
                           "give a .onnx file written by loc2vec export") from None
