"""Contrastive training signals beside the triplet loss: InfoNCE, a uniformity term, a composition head.

- ``info_nce_loss``: each anchor must pick its own positive among every positive and negative view of
  the batch (2B candidates, cosine / temperature). Candidates of the same area nearer than
  ``mask_m`` to the anchor are masked out: a place 150 m away is not a negative, it is a neighbour.
- ``uniformity``: log E[exp(-t |x - y|^2)] over the anchors (Wang & Isola 2020); lower is more spread
  out, the cure for the collapsed embeddings that triplet training tends to give (mean cosine > 0.9).
- ``CompositionHead``: a linear map from the embedding to the tile's multi-scale channel composition
  (centred windows of 30, 60 and 100 % of the side): a dense target that trains fast and makes the
  embedding carry "what is in the middle of this place". It is trained with the encoder and not exported.
"""

from __future__ import annotations

from ..errors import Loc2VecError

from ..encoders.composition import WINDOWS, multiscale_fractions  # one definition of the windows


def multiscale_composition(tiles, windows=WINDOWS):
    """(B, C * len(windows)) mean intensity per channel over centred windows of ``tiles`` (B, C, S, S)."""
    return multiscale_fractions(tiles, windows)


def info_nce_loss(a, p, n, centres, area_index, temperature: float = 0.1, mask_m: float = 300.0):
    """(loss, stats) of InfoNCE for anchors ``a`` with positives ``p`` and extra negatives ``n`` (B, D).

    ``centres`` (B, 3, 2) and ``area_index`` (B, 3) are the triplets' locations (anchor, positive,
    negative). stats: accuracy (the own positive ranks first), active (share of anchors with at least
    one unmasked negative), mean_cos (mean anchor-candidate cosine).
    """
    import torch
    import torch.nn.functional as F

    if not temperature > 0:
        raise Loc2VecError(f"temperature={temperature!r} must be positive", "use e.g. --temperature 0.1")
    b = a.shape[0]
    a, p, n = (F.normalize(t.float(), dim=1) for t in (a, p, n))
    cand = torch.cat([p, n])                                        # (2B, D): own positive at column i
    sim = a @ cand.T                                                # (B, 2B)
    c = torch.as_tensor(centres, dtype=torch.float64)
    ai = torch.as_tensor(area_index)
    cand_c = torch.cat([c[:, 1], c[:, 2]])                          # (2B, 2)
    cand_a = torch.cat([ai[:, 1], ai[:, 2]])
    near = (torch.cdist(c[:, 0], cand_c) < mask_m) & (ai[:, :1] == cand_a[None, :])
    own = torch.zeros(b, 2 * b, dtype=torch.bool)
    own[torch.arange(b), torch.arange(b)] = True
    masked = (near & ~own).to(sim.device)
    logits = (sim / temperature).masked_fill(masked, float("-inf"))
    target = torch.arange(b, device=sim.device)
    loss = F.cross_entropy(logits, target)
    with torch.no_grad():
        acc = (logits.argmax(1) == target).float().mean()
        active = ((~masked) & ~own.to(sim.device)).any(1).float().mean()
        vals = torch.stack([acc, active, sim.mean()]).tolist()
    return loss, dict(zip(("accuracy", "active", "mean_cos"), vals))


def uniformity(x, t: float = 2.0):
    """log mean exp(-t * squared distance) over distinct pairs of the unit rows of ``x``."""
    import torch
    import torch.nn.functional as F

    x = F.normalize(x.float(), dim=1)
    d = torch.pdist(x).pow(2)
    return torch.log(torch.exp(-t * d).mean().clamp_min(1e-12))


def composition_head(embedding_dim: int, channels: int, windows=WINDOWS):
    """The linear head that reads the multi-scale composition off an embedding."""
    import torch

    return torch.nn.Linear(int(embedding_dim), int(channels) * len(windows))
