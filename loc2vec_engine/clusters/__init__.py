"""Clusters: label embedding vectors (k-means / HDBSCAN), project them to 2-D (UMAP), draw both as PNGs.

``cluster_file`` does all three for an embeddings GeoPackage; ``colors`` gives every picture and the
QGIS plugin the same colour per cluster. scikit-learn, umap-learn and matplotlib load only when used.
"""

from .cluster import ClusterResult, cluster_file, cluster_labels, cluster_sizes, relabel_by_size, silhouette
from .colors import cluster_color, cluster_colors
from .projection import projection_method, umap_2d

__all__ = ["ClusterResult", "cluster_color", "cluster_colors", "cluster_file", "cluster_labels", "cluster_sizes",
           "projection_method", "relabel_by_size", "silhouette", "umap_2d"]
