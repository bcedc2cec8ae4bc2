"""Embeddings as a map: GeoTIFFs on the embedding grid, coloured by principal components or with every dimension."""

from .pca_rgb import ColourPCA, fit_colour_pca
from .render import BANDS, RenderResult, check_bands, output_paths, render_files

__all__ = ["BANDS", "ColourPCA", "RenderResult", "check_bands", "fit_colour_pca", "output_paths", "render_files"]
