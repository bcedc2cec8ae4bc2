"""One colour per cluster, the same in the PNG maps, the UMAP scatter, the QGIS project and the plugin."""

from __future__ import annotations

# A qualitative palette (Tableau 20 order, its two greys swapped for gold and orchid because grey means
# roads and noise here), so that neighbouring cluster numbers never get similar colours. Beyond 20
# clusters the palette repeats.
PALETTE = (
    "#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#e7ba52", "#bcbd22", "#17becf",
    "#aec7e8", "#ffbb78", "#98df8a", "#ff9896", "#c5b0d5", "#c49c94", "#f7b6d2", "#ce6dbd", "#dbdb8d", "#9edae5",
)
NOISE_COLOR = "#d9d9d9"  # HDBSCAN's label -1


def cluster_color(label: int) -> str:
    """Hex colour of a cluster label (-1 = noise)."""
    return NOISE_COLOR if label < 0 else PALETTE[int(label) % len(PALETTE)]


def cluster_colors(k: int) -> list[str]:
    """Hex colours of clusters 0..k-1."""
    return [cluster_color(i) for i in range(k)]
