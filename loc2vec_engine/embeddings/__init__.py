"""Embeddings: an ONNX encoder run over a grid of tiles of an area, stored in a GeoPackage."""

from .store import LAYER, META_TABLE, EmbeddingSet, read_embeddings, update_columns, write_embeddings

__all__ = ["LAYER", "META_TABLE", "EmbeddingSet", "read_embeddings", "update_columns", "write_embeddings"]
