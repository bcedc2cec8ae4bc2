"""Similar-place search: nearest cells by cosine similarity of their embeddings, within or across files."""

from .index import EXACT_BELOW, VectorIndex, exact_search, recall_at_k
from .similar import (DEFAULT_TILE_M, PlaceSearch, SimilarResult, check_same_model, exclude_radius, one_tile_m,
                      query_cells, query_vector, similar, similar_across, similar_at, similarity_all, write_similar)

__all__ = ["DEFAULT_TILE_M", "EXACT_BELOW", "PlaceSearch", "SimilarResult", "VectorIndex", "check_same_model",
           "exact_search", "exclude_radius", "one_tile_m", "query_cells", "query_vector", "recall_at_k", "similar",
           "similar_across", "similar_at", "similarity_all", "write_similar"]
