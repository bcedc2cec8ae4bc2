"""Triplet loss (report eq. 2) and online mining on hand-made embeddings, against a brute-force reference."""

import math

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from loc2vec_engine.errors import Loc2VecError  # noqa: E402
from loc2vec_engine.training import triplet_accuracy, triplet_loss  # noqa: E402
from loc2vec_engine.training.losses import negative_mask  # noqa: E402


def unit(deg):
    return [math.cos(math.radians(deg)), math.sin(math.radians(deg))]


def emb(*degs):
    return torch.tensor([unit(d) for d in degs], dtype=torch.float32)


def sqd(u, v):  # squared distance of unit vectors at angles u, v
    return 2 - 2 * math.cos(math.radians(u - v))


def test_zero_when_every_triplet_clears_the_margin_positive_otherwise():
    a, p, n = emb(0, 90), emb(10, 100), emb(180, 270)  # d_ap = 0.03, d_an = 4 and 4
    loss, st = triplet_loss(a, p, n)
    assert float(loss) == 0 and st["accuracy"] == 1 and st["active"] == 0
    loss, st = triplet_loss(a, p, emb(5, 180))  # first negative closer than its positive
    expected = (sqd(0, 10) - sqd(0, 5) + 0.2) / 2
    assert float(loss) == pytest.approx(expected, abs=1e-6)
    assert st["accuracy"] == 0.5 and st["active"] == 0.5
    # satisfied, but not by the margin: still a loss
    loss, _ = triplet_loss(emb(0), emb(10), emb(20))
    assert float(loss) == pytest.approx(sqd(0, 10) - sqd(0, 20) + 0.2, abs=1e-6) and float(loss) > 0


def test_embeddings_are_normalised_and_squared():
    a, p, n = emb(0, 30), emb(20, 60), emb(25, 40)
    l1, _ = triplet_loss(a, p, n, margin=0.3)
    l2, _ = triplet_loss(3 * a, 0.5 * p, 7 * n, margin=0.3)
    assert float(l1) == pytest.approx(float(l2), abs=1e-6)
    ref = np.mean([max(0.0, sqd(0, 20) - sqd(0, 25) + 0.3), max(0.0, sqd(30, 60) - sqd(30, 40) + 0.3)])
    assert float(l1) == pytest.approx(ref, abs=1e-6)


def test_batch_hard_picks_the_hardest_valid_negative_never_a_near_tile():
    # triplet 0 at (0, 0); triplet 1's anchor 50 m away (same place: invalid as a negative) with the very
    # anchor's embedding; triplet 2 in another area (valid at any distance) at 60 deg.
    a = emb(0, 0, 120)
    p = emb(10, 10, 125)
    n = emb(180, 180, 300)
    centres = torch.tensor([[[0, 0], [150, 0], [5000, 0]],
                            [[50, 0], [180, 0], [5000, 100]],
                            [[0, 0], [100, 0], [9000, 0]]], dtype=torch.float64)
    area = torch.tensor([[0, 0, 0], [0, 0, 0], [1, 1, 0]])
    a[2] = torch.tensor(unit(60))
    loss, st = triplet_loss(a, p, n, mining="batch_hard", centres=centres, area_index=area, neg_min_m=2000)
    # anchor 0: pool candidates valid = area-1 tiles (a2 at 60, p2 at 125) and far area-0 tiles (n0, n1 at 180,
    # n2 at 300): hardest = a2 at 60 deg, not a1 / p0 / p1 at 0-10 deg (too close on the ground)
    l0 = max(0.0, sqd(0, 10) - sqd(0, 60) + 0.2)
    # (l0 = 0: were a1 or p1 taken, d_an = 0 or 0.03 and the loss 0.23 or 0.2.) Anchor 1 likewise.
    # anchor 2 (area 1): valid = every area-0 tile, hardest = p0 / p1 at 10 deg (50 deg away)
    l2 = max(0.0, sqd(60, 125) - sqd(60, 10) + 0.2)
    assert l0 == 0 and l2 > 0
    assert float(loss) == pytest.approx((2 * l0 + l2) / 3, abs=1e-5)
    assert st["d_an"] == pytest.approx((2 * sqd(0, 60) + sqd(60, 10)) / 3, abs=1e-5)
    assert st["accuracy"] == 1.0  # the given triplets are all right


def test_semi_hard_takes_the_closest_negative_beyond_the_positive():
    a, p = emb(0, 200), emb(30, 210)
    n = emb(20, 90)  # for anchor 0: n0 (20 deg) is closer than p0 (30 deg): not semi-hard
    centres = torch.tensor([[[0, 0], [100, 0], [3000, 0]], [[0, 9000], [0, 9100], [9000, 9000]]], dtype=torch.float64)
    kw = dict(centres=centres, area_index=torch.zeros(2, dtype=torch.int64), neg_min_m=2000)
    # anchor 0 valid pool: a1 (200), p1 (210), n0 (20), n1 (90); d_ap = sqd(0, 30)
    # semi-hard: closest with d > d_ap -> n1 at 90 deg; batch-hard: n0 at 20 deg
    # anchor 1 valid pool: a0 (0), p0 (30), n0 (20), n1 (90); d_ap = sqd(200, 210): closest beyond it is p0 at 30
    semi, st = triplet_loss(a, p, n, mining="semi_hard", **kw)
    ref = (max(0.0, sqd(0, 30) - sqd(0, 90) + 0.2) + max(0.0, sqd(200, 210) - sqd(200, 30) + 0.2)) / 2
    assert float(semi) == pytest.approx(ref, abs=1e-6)
    hard, _ = triplet_loss(a, p, n, mining="batch_hard", **kw)
    ref_hard = (max(0.0, sqd(0, 30) - sqd(0, 20) + 0.2) + max(0.0, sqd(200, 210) - sqd(200, 30) + 0.2)) / 2
    assert float(hard) == pytest.approx(ref_hard, abs=1e-6)
    # no valid negative beyond the positive: semi-hard falls back to the hardest
    a, p, n = emb(0, 0), emb(170, 170), emb(20, 20)
    centres = torch.tensor([[[0, 0], [100, 0], [3000, 0]], [[0, 50], [100, 50], [3000, 50]]], dtype=torch.float64)
    semi, _ = triplet_loss(a, p, n, mining="semi_hard", centres=centres, neg_min_m=2000)
    assert float(semi) == pytest.approx(sqd(0, 170) - sqd(0, 20) + 0.2, abs=1e-6)


def reference(a, p, n, centres, areas, neg_min, mining, margin=0.2):
    a, p, n = (torch.nn.functional.normalize(t, dim=1).double().numpy() for t in (a, p, n))
    pool = np.concatenate([a, p, n])
    pc = np.concatenate([centres[:, 0], centres[:, 1], centres[:, 2]])
    pa = np.concatenate([areas[:, 0], areas[:, 1], areas[:, 2]])
    out = []
    for i in range(len(a)):
        d_ap = ((a[i] - p[i]) ** 2).sum()
        cands = [((a[i] - pool[j]) ** 2).sum() for j in range(len(pool))
                 if pa[j] != areas[i, 0] or np.hypot(*(pc[j] - centres[i, 0])) >= neg_min]
        semi = [d for d in cands if d > d_ap]
        d_an = min(semi) if mining == "semi_hard" and semi else min(cands)
        out.append(max(0.0, d_ap - d_an + margin))
    return float(np.mean(out))


@pytest.mark.parametrize("mining", ["batch_hard", "semi_hard"])
def test_mining_matches_a_brute_force_reference(mining):
    rng = np.random.default_rng(0)
    b = 24
    a, p, n = (torch.from_numpy(rng.normal(size=(b, 8)).astype(np.float32)) for _ in range(3))
    centres = rng.uniform(0, 6000, (b, 3, 2))
    centres[:, 1] = centres[:, 0] + 150 / np.sqrt(2)
    areas = rng.integers(0, 3, (b, 1)).repeat(3, 1)
    loss, _ = triplet_loss(a, p, n, mining=mining, centres=torch.from_numpy(centres),
                           area_index=torch.from_numpy(areas), neg_min_m=2000)
    assert float(loss) == pytest.approx(reference(a, p, n, centres, areas, 2000, mining), abs=1e-5)


def test_gradients_flow_and_accuracy_helper():
    a = torch.randn(6, 4, requires_grad=True)
    p, n = torch.randn(6, 4), torch.randn(6, 4)
    c = torch.zeros(6, 3, 2, dtype=torch.float64)
    c[:, 2, 0] = 5000
    loss, _ = triplet_loss(a, p, n, margin=1.0, mining="semi_hard", centres=c, neg_min_m=2000)
    loss.backward()
    assert torch.isfinite(a.grad).all() and a.grad.abs().sum() > 0
    assert triplet_accuracy(emb(0, 0), emb(10, 90), emb(90, 10)) == 0.5
    assert triplet_accuracy(emb(0), emb(10), emb(20)) == 1.0


def test_negative_mask_rules():
    c = torch.tensor([[[0, 0], [150, 0], [2500, 0]], [[1000, 0], [1100, 0], [3999, 0]]], dtype=torch.float64)
    m = negative_mask(c, torch.tensor([0, 0]), 2000)
    # pool: a0 a1 p0 p1 n0 n1 at x = 0, 1000, 150, 1100, 2500, 3999
    assert m[0].tolist() == [False, False, False, False, True, True]
    assert m[1].tolist() == [False, False, False, False, False, True]
    m = negative_mask(c, torch.tensor([[0, 0, 0], [1, 1, 1]]), 2000)
    assert m[0].tolist() == [False, True, False, True, True, True]  # another area: valid at any distance


def test_bad_input():
    a = emb(0, 10)
    with pytest.raises(Loc2VecError, match="mining"):
        triplet_loss(a, a, a, mining="hardest")
    with pytest.raises(Loc2VecError, match="locations"):
        triplet_loss(a, a, a, mining="batch_hard")
    with pytest.raises(Loc2VecError, match=r"\(B, D\)"):
        triplet_loss(a, a, emb(0))
    with pytest.raises(Loc2VecError, match="torch tensors"):
        triplet_loss(a.numpy(), a, a)
    with pytest.raises(Loc2VecError, match="margin"):
        triplet_loss(a, a, a, margin=-1)
    with pytest.raises(Loc2VecError, match="centres must be"):
        triplet_loss(a, a, a, mining="semi_hard", centres=torch.zeros(2, 2))
    with pytest.raises(Loc2VecError, match="area_index"):
        triplet_loss(a, a, a, mining="semi_hard", centres=torch.zeros(2, 3, 2), area_index=torch.zeros(2, 2))
