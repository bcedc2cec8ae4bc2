"""Score places from examples: how much every cell looks like the positive example places (and unlike
the negatives), a mask of the cells above a threshold, and how well the scoring held out."""

from .examples import Examples, Geometries, read_examples
from .examples_geojson import ExampleSet, read_examples_geojson, write_examples_geojson
from .output import write_mask_gpkg
from .places import ScoringResult, score_embeddings, score_places
from .score import METHODS, MIN_PER_CLASS, Scores, choose_method, score_cells

__all__ = ["METHODS", "MIN_PER_CLASS", "ExampleSet", "Examples", "Geometries", "Scores", "ScoringResult",
           "choose_method", "read_examples", "read_examples_geojson", "score_cells", "score_embeddings", "score_places",
           "write_examples_geojson", "write_mask_gpkg"]
