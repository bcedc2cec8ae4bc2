"""The training objective of one batch: triplet or InfoNCE, plus the optional uniformity and composition terms.

``objective`` is what the loop minimises; ``composition_aux_head`` builds the head the composition term
trains beside the encoder (never exported). Kept apart from ``loop`` so that the loop reads as the loop.
"""

from __future__ import annotations


def objective(cfg, ea, ep, en, trip, aux=None):
    """The training objective: triplet or InfoNCE, plus the optional uniformity and composition terms."""
    from .contrastive import info_nce_loss, multiscale_composition, uniformity
    from .losses import triplet_loss

    if cfg.loss == "infonce":
        loss, stats = info_nce_loss(ea, ep, en, trip.centres_m, trip.area_index, temperature=cfg.temperature,
                                    mask_m=cfg.false_negative_m)
    else:
        loss, stats = triplet_loss(ea, ep, en, margin=cfg.margin, mining=cfg.mining, centres=trip.centres_m,
                                   area_index=trip.area_index, neg_min_m=cfg.neg_min_m)
    if cfg.uniformity_weight > 0:
        loss = loss + cfg.uniformity_weight * uniformity(ea)
    if aux is not None:
        import torch.nn.functional as F

        target = multiscale_composition(trip.anchor)  # of the tile before augmentation
        err = F.mse_loss(aux(F.normalize(ea, dim=1)), target) / target.var().clamp_min(1e-6)  # 1 = predicts the mean
        loss = loss + cfg.composition_weight * err
        stats["composition_err"] = float(err.detach())
    return loss, stats


def composition_aux_head(cfg, model, areas, device):
    """The composition head when ``composition_weight`` > 0, else None."""
    if cfg.composition_weight <= 0:
        return None
    import torch

    from .contrastive import composition_head

    with torch.random.fork_rng(devices=[]):  # the encoder's initialisation stays that of a run without the head
        torch.manual_seed(cfg.seed + 11)
        return composition_head(cfg.embedding_dim, areas[0].count).to(device)
