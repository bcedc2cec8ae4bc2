"""The triplet loss of the report (eq. 2) with online negative mining over the whole batch.

L = mean_i max(0, |f(a_i) - f(p_i)|^2 - |f(a_i) - f(n_i)|^2 + margin) on L2-normalised embeddings, so
squared distances lie in [0, 4] and the margin 0.2 has a fixed meaning whatever the encoder's scale.

Mining (§3.6.3) picks each anchor's negative among *all* 3B embeddings of the batch, but only among
valid negatives: tiles of another area, or of the same area at least ``neg_min_m`` from the anchor's
location. A nearby tile (the anchor's own positive, another triplet's anchor next door) shows the same
place and must never be pushed away.
"""

from __future__ import annotations

from ..errors import Loc2VecError

MINING = ("none", "batch_hard", "semi_hard")


def _sq_dist_unit(x, y):
    """Squared Euclidean distances of unit rows x (N, D) to unit rows y (M, D): 2 - 2 cos, >= 0."""
    return (2.0 - 2.0 * x @ y.T).clamp_min(0.0)


def _check_embeddings(a, p, n):
    import torch

    if not all(isinstance(t, torch.Tensor) for t in (a, p, n)):
        raise Loc2VecError("embeddings must be torch tensors", "pass the encoder's outputs (B, D)")
    if a.dim() != 2 or a.shape != p.shape or a.shape != n.shape or a.shape[0] == 0:
        raise Loc2VecError(f"anchor, positive and negative embeddings must all be (B, D), not "
                           f"{tuple(a.shape)}, {tuple(p.shape)}, {tuple(n.shape)}",
                           "split the encoder's output for [anchors; positives; negatives] into three")


def triplet_accuracy(a, p, n, normalize: bool = True) -> float:
    """Share of triplets with d(a, p) < d(a, n) (squared Euclidean, on L2-normalised rows by default)."""
    import torch.nn.functional as F

    _check_embeddings(a, p, n)
    if normalize:
        a, p, n = (F.normalize(t.float(), dim=1) for t in (a, p, n))
    return float(((a - p).pow(2).sum(1) < (a - n).pow(2).sum(1)).float().mean())


def negative_mask(centres, area_index, neg_min_m: float, device=None):
    """(B, 3B) bool: which of the pooled [anchors; positives; negatives] are valid negatives per anchor.

    centres: (B, 3, 2) location centres in metres (their area's CRS); area_index: (B, 3) or (B,).
    """
    import torch

    c = torch.as_tensor(centres, dtype=torch.float64).cpu()
    if c.dim() != 3 or c.shape[1:] != (3, 2):
        raise Loc2VecError(f"centres must be (B, 3, 2) metres, not {tuple(c.shape)}", "pass Triplets.centres_m")
    b = c.shape[0]
    ai = torch.zeros((b, 3), dtype=torch.int64) if area_index is None else torch.as_tensor(area_index).cpu().long()
    if ai.dim() == 1:
        ai = ai[:, None].expand(b, 3)
    if ai.shape != (b, 3):
        raise Loc2VecError(f"area_index must be (B, 3) or (B,), not {tuple(ai.shape)}", "pass Triplets.area_index")
    pool_c = c.transpose(0, 1).reshape(3 * b, 2)   # view-major: all anchors, then positives, then negatives
    pool_a = ai.transpose(0, 1).reshape(3 * b)
    far = torch.cdist(c[:, 0], pool_c) >= neg_min_m
    valid = (ai[:, :1] != pool_a[None, :]) | far
    return valid.to(device) if device is not None else valid


def triplet_loss(a, p, n, margin: float = 0.2, mining: str = "none", centres=None, area_index=None,
                 neg_min_m: float = 2000.0):
    """(loss, stats) for embeddings a, p, n (B, D).

    mining: "none" uses the given negatives; "batch_hard" the closest valid negative in the batch;
    "semi_hard" the closest valid negative farther than the positive (d_an > d_ap), else the hardest.
    Mining needs ``centres`` (B, 3, 2) and ``area_index`` (B, 3) or (B,) (from Triplets). Anchors with no
    valid negative in the pool keep their given one.
    stats (floats): accuracy (given triplets: d_ap < d_an), active (share of mined triplets with loss > 0),
    d_ap, d_an (means; d_an of the negatives used), mined_hardness (mean d_an used / mean d_an given).
    """
    import torch
    import torch.nn.functional as F

    _check_embeddings(a, p, n)
    if mining not in MINING:
        raise Loc2VecError(f"unknown mining {mining!r}", f"use one of: {', '.join(MINING)}")
    if not (isinstance(margin, (int, float)) and margin >= 0):
        raise Loc2VecError(f"margin={margin!r} is out of range", "use e.g. margin=0.2")
    b = a.shape[0]
    a, p, n = (F.normalize(t.float(), dim=1) for t in (a, p, n))
    d_ap = (a - p).pow(2).sum(1)
    d_an_given = (a - n).pow(2).sum(1)
    if mining == "none":
        d_an = d_an_given
    else:
        if centres is None:
            raise Loc2VecError(f"{mining} mining needs the triplets' locations",
                               "pass centres=triplets.centres_m and area_index=triplets.area_index")
        if len(centres) != b:
            raise Loc2VecError(f"{len(centres)} centres for {b} triplets", "pass the centres of this batch")
        valid = negative_mask(centres, area_index, neg_min_m, a.device)
        d = _sq_dist_unit(a, torch.cat([a, p, n]))                     # (B, 3B)
        inf = torch.tensor(float("inf"), device=a.device)
        hardest = torch.where(valid, d, inf).min(1).values
        if mining == "semi_hard":
            semi = torch.where(valid & (d > d_ap[:, None]), d, inf).min(1).values
            hardest = torch.where(torch.isfinite(semi), semi, hardest)
        d_an = torch.where(torch.isfinite(hardest), hardest, d_an_given)
    per = F.relu(d_ap - d_an + margin)
    with torch.no_grad():  # one device -> host copy for all statistics
        vals = torch.stack([(d_ap < d_an_given).float().mean(), (per > 0).float().mean(), d_ap.mean(), d_an.mean(),
                            d_an.mean() / d_an_given.mean().clamp_min(1e-12)]).tolist()
    stats = dict(zip(("accuracy", "active", "d_ap", "d_an", "mined_hardness"), vals))
    return per.mean(), stats
