"""What a change would do: the same ground rasterized from two sources (two OSM dates, or a planner's edited
layer), embedded on one grid, and per cell how far its embedding moved and whether its cluster changed."""

from .compare import DEFAULT_K, Comparison, compare_areas, embedding_change, nearest_cluster

__all__ = ["DEFAULT_K", "Comparison", "compare_areas", "embedding_change", "nearest_cluster"]
