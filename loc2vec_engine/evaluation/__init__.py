"""``loc2vec evaluate``: how good is a model on an area, and does it beat the no-learning baselines?

cells (grid + tiles) -> reid (triplets by distance band, recall@k / MRR) -> structure (silhouette,
Spearman, trustworthiness) -> venues + probe (POI categories, blocked-CV logistic regression) ->
elsewhere (similar places >= 1 km away: venue / land-use precision@10; landuse labels the cells) ->
form_osm + form (building size, street intersections: blocked-CV ridge R²) -> baselines (fractions,
multi-scale fractions, random convolutions, random init, coordinates), ablation -> scoring (paired
verdicts) -> health (mean cosine, effective rank) -> tables (best no-learning baseline) -> report.

``measure_model(encoder, area, osm_source)`` (``measure``) returns the metrics dict without a report,
for any encoder with ``embed``; ``evaluate_model`` (``evaluate``) writes the report folder.
"""

__all__ = ["evaluate_model", "measure_model"]


def __getattr__(name):  # lazy: the CLI imports this package for its parser only
    if name == "measure_model":
        from .measure import measure_model

        return measure_model
    if name == "evaluate_model":
        from .evaluate import evaluate_model

        return evaluate_model
    raise AttributeError(name)
