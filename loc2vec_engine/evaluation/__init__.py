"""``loc2vec evaluate``: how good is a model on an area, and does it beat the no-learning baselines?

cells (grid + tiles) -> reid (triplets by distance band, recall@k / MRR) -> structure (silhouette,
Spearman, trustworthiness) -> venues + probe (POI categories, blocked-CV logistic regression) ->
baselines, ablation -> scoring (paired verdicts) -> report (metrics.json, report.md, plots).
"""
