"""Similar-place search: nearest cells by cosine similarity of their embeddings, within or across files."""

from .index import EXACT_BELOW, VectorIndex, exact_search, recall_at_k
from .similar import (PlaceSearch, SimilarResult, check_same_model, query_cells, query_vector, similar,
                      similar_across, similar_at, similarity_all, write_similar)

__all__ = ["EXACT_BELOW", "PlaceSearch", "SimilarResult", "VectorIndex", "check_same_model", "exact_search",
           "query_cells", "query_vector", "recall_at_k", "similar", "similar_across", "similar_at",
           "similarity_all", "write_similar"]
