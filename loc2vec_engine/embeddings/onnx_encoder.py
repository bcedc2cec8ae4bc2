"""An exported loc2vec model run by onnxruntime: uint8 tiles in, unit vectors out. No torch needed."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np

from ..errors import Loc2VecError
from ..export.runtime import INPUT_NAME, onnx_session, read_onnx_meta

SUPPORTED_NORMALISATION = "uint8/255"
# The model that ships with loc2vec (docs/default_model.md says how it was trained); "default" names it.
DEFAULT_MODEL = Path(__file__).resolve().parents[2] / "resources" / "models" / "loc2vec-default.onnx"


def resolve_model(model) -> Path:
    """``"default"`` -> the shipped model; anything else is a path."""
    if str(model) == "default":
        if not DEFAULT_MODEL.is_file():
            raise Loc2VecError(f"the shipped default model is missing ({DEFAULT_MODEL})",
                               "reinstall loc2vec, or give the path of a .onnx model")
        return DEFAULT_MODEL
    return Path(model)


def file_sha256(path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


class OnnxEncoder:
    """A loc2vec ONNX file with its metadata; ``embed(tiles)`` gives (N, D) float32 unit vectors.

    ``sha256`` of the file identifies the model: embeddings are comparable only when it matches.
    """

    def __init__(self, path, device: str = "auto"):
        self.path = resolve_model(path)
        self.meta = read_onnx_meta(self.path)  # a clear error for a file that is not loc2vec's
        if self.meta["input_normalisation"] != SUPPORTED_NORMALISATION:
            raise Loc2VecError(f"{self.path.name} wants input normalisation {self.meta['input_normalisation']!r}",
                               f"this loc2vec reads {SUPPORTED_NORMALISATION!r} models; upgrade loc2vec")
        self.session = onnx_session(self.path, device)
        self.input_name = self.meta.get("input_name", INPUT_NAME)
        self.sha256 = file_sha256(self.path)

    @property
    def provider(self) -> str:
        return self.session.get_providers()[0]

    @property
    def channel_names(self) -> list[str]:
        return list(self.meta["channel_names"])

    @property
    def tile_size_px(self) -> int:
        return int(self.meta["tile_size_px"])

    @property
    def tile_size_m(self) -> float:
        return float(self.meta.get("tile_size_m", self.tile_size_px * float(self.meta["metres_per_px"])))

    @property
    def embedding_size(self) -> int:
        return int(self.meta["embedding_size"])

    def check_channels(self, channel_names, what: str) -> None:
        """Refuse an area whose bands are not the model's channels, in the same order."""
        if list(channel_names) != self.channel_names:
            raise Loc2VecError(
                f"{what} has channels {list(channel_names)}, but model {self.path.name} was trained on "
                f"{self.channel_names}",
                "rasterize the area with the channel spec the model was trained with (loc2vec rasterize --spec)")

    def embed(self, tiles) -> np.ndarray:
        """(N, C, S, S) uint8 tiles (numpy, any memory layout) -> (N, D) float32 unit vectors."""
        x = np.ascontiguousarray(tiles, dtype=np.float32)
        x *= 1.0 / 255.0
        out = self.session.run(None, {self.input_name: x})[0]
        return np.asarray(out, np.float32)
