"""InfoNCE with distance-masked false negatives, the uniformity term and the composition targets."""

import math

import numpy as np
import pytest
import torch

from loc2vec_engine.errors import Loc2VecError
from loc2vec_engine.training.contrastive import (composition_head, info_nce_loss, multiscale_composition,
                                                 uniformity)


def _places(b, spacing=5000.0):
    """Anchors far apart (one area); each positive 150 m from its anchor, each negative 3 km away."""
    c = np.zeros((b, 3, 2))
    c[:, 0, 0] = np.arange(b) * spacing
    c[:, 1] = c[:, 0] + [150.0, 0.0]
    c[:, 2] = c[:, 0] + [0.0, 3000.0]
    return torch.tensor(c), torch.zeros((b, 3), dtype=torch.int64)


def test_multiscale_composition_of_a_known_tile():
    t = torch.zeros(1, 2, 100, 100)
    t[0, 0, 35:65, 35:65] = 1.0  # channel 0: exactly the centred 30 % window
    t[0, 1] = 0.5
    comp = multiscale_composition(t)
    assert comp.shape == (1, 6)
    ch0 = comp[0, [0, 2, 4]].tolist()  # windows 30 %, 60 %, 100 % of channel 0
    assert ch0 == pytest.approx([1.0, 900 / 3600, 900 / 10000], abs=1e-6)
    assert comp[0, [1, 3, 5]].tolist() == pytest.approx([0.5] * 3, abs=1e-6)


def test_info_nce_is_low_when_each_anchor_matches_its_positive():
    b, d = 8, 16
    e = torch.eye(d)[:b]
    centres, areas = _places(b)
    good, st = info_nce_loss(e, e, torch.eye(d)[b:2 * b], centres, areas, temperature=0.1)
    assert st["accuracy"] == 1.0 and float(good) < 1e-3
    shuffled, st2 = info_nce_loss(e, e.roll(1, 0), torch.eye(d)[b:2 * b], centres, areas, temperature=0.1)
    assert st2["accuracy"] == 0.0 and float(shuffled) > 5.0
    assert float(good) == pytest.approx(math.log(1 + (2 * b - 1) * math.exp(-10)), rel=1e-3)
    with pytest.raises(Loc2VecError, match="temperature"):
        info_nce_loss(e, e, e, centres, areas, temperature=0)


def test_a_nearby_place_is_not_a_negative():
    """Anchor 1 stands 100 m from anchor 0 and looks exactly like it: without the mask its positive is a
    hard negative for anchor 0; masked, the loss is what it would be without that candidate."""
    b, d = 4, 8
    a = torch.eye(d)[:b].clone()
    a[1] = a[0]
    p, n = a.clone(), torch.eye(d)[b:2 * b]
    centres, areas = _places(b)
    centres[1, :, :] = centres[0] + torch.tensor([100.0, 0.0], dtype=torch.float64)
    masked, _ = info_nce_loss(a, p, n, centres, areas, temperature=0.1, mask_m=300.0)
    unmasked, _ = info_nce_loss(a, p, n, centres, areas, temperature=0.1, mask_m=0.0)
    assert float(unmasked) > float(masked) + 0.3
    # another area at the same coordinates is a real negative: the mask applies within an area only
    other = areas.clone()
    other[1] = 1
    cross, _ = info_nce_loss(a, p, n, centres, other, temperature=0.1, mask_m=300.0)
    assert float(cross) == pytest.approx(float(unmasked), rel=1e-6)


def test_uniformity_is_zero_for_a_collapsed_embedding_and_lower_when_spread():
    same = torch.ones(16, 8)
    assert float(uniformity(same)) == pytest.approx(0.0, abs=1e-6)
    spread = torch.eye(16)
    assert float(uniformity(spread)) == pytest.approx(-4.0, abs=1e-5)  # every pair at squared distance 2


def test_the_composition_head_learns_the_composition_in_a_few_steps():
    """A dense target: from random 32-D codes that carry it linearly, 200 Adam steps fit it almost exactly."""
    g = torch.Generator().manual_seed(0)
    tiles = torch.rand(64, 3, 32, 32, generator=g)
    target = multiscale_composition(tiles)
    codes = torch.cat([target, torch.randn(64, 32 - target.shape[1], generator=g)], 1)
    head = composition_head(32, 3)
    opt = torch.optim.Adam(head.parameters(), lr=0.05)
    first = None
    for _ in range(200):
        loss = torch.nn.functional.mse_loss(head(codes), target)
        first = float(loss.detach()) if first is None else first
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert float(loss.detach()) < first / 20
