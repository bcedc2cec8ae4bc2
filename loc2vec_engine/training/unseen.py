"""Triplet accuracy of a trained encoder on an area it never saw, beside the no-learning baseline.

Both are measured on the same triplets (anchor, positive 100–200 m away, negative ≥ 2 km away,
each view rotated, shifted and scaled as in training): the model by distances of its embeddings,
the baseline by Euclidean distances of standardised per-channel pixel fractions (12 numbers per
tile). On real maps the baseline is strong, so the model has to beat it, not chance.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class UnseenScore:
    area: str
    triplets: int
    model_acc: float
    baseline_acc: float
    hybrid_acc: float  # model and fractions distances added, each scaled to unit mean (the design question)

    @property
    def gain(self) -> float:
        return self.model_acc - self.baseline_acc


def score_on_area(encoder, meta: dict, area_path, n: int = 1000, seed: int = 0, device="cpu",
                  batch_size: int = 64, neg_min_m: float = 2000.0) -> UnseenScore:
    """Score ``encoder`` (with its training ``meta``) on triplets cut anywhere in ``area_path``."""
    from pathlib import Path

    import torch

    from ..tiles import PalettedArea
    from .baselines import FractionsBaseline, channel_fractions
    from .triplets import TripletSampler

    area = PalettedArea.from_raster(area_path)
    # The whole area is unseen ground: every block is a "test" block.
    sampler = TripletSampler([area], split="test", tile_size_px=int(meta["tile_size_px"]),
                             tile_size_m=float(meta["tile_size_m"]), block_fractions=(0.0, 0.0, 1.0), device=device,
                             seed=seed, neg_min_m=neg_min_m, backend="cpu" if str(device) == "cpu" else "torch")
    trip = sampler.fixed(n, seed=seed)
    # Standardise the baseline on other tiles of the same area (no labels involved).
    base = FractionsBaseline.fit(channel_fractions(sampler.fixed(min(n, 512), seed=seed + 1).anchor))
    fa, fp, fn = (base.embed(channel_fractions(t)) for t in (trip.anchor, trip.positive, trip.negative))
    baseline = float((((fa - fp) ** 2).sum(1) < ((fa - fn) ** 2).sum(1)).float().mean())
    encoder = encoder.to(device).eval()
    with torch.no_grad():
        a, p, q = (torch.cat([encoder(t[i:i + batch_size]) for i in range(0, n, batch_size)])
                   for t in (trip.anchor, trip.positive, trip.negative))
    m_ap, m_aq = ((a - p) ** 2).sum(1).cpu(), ((a - q) ** 2).sum(1).cpu()
    f_ap, f_aq = ((fa - fp) ** 2).sum(1).cpu().float(), ((fa - fn) ** 2).sum(1).cpu().float()
    # Scale each distance by its mean over all pairs (no labels used), then add.
    m_scale, f_scale = torch.cat([m_ap, m_aq]).mean(), torch.cat([f_ap, f_aq]).mean()
    hybrid = float(((m_ap / m_scale + f_ap / f_scale) < (m_aq / m_scale + f_aq / f_scale)).float().mean())
    return UnseenScore(Path(area_path).name, n, float((m_ap < m_aq).float().mean()), baseline, hybrid)
