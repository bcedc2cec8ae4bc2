"""The channel-fractions baseline: exact fractions, standardisation, and better than chance on real triplets."""

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from loc2vec_engine.errors import Loc2VecError  # noqa: E402
from loc2vec_engine.training import (FractionsBaseline, TripletSampler, channel_fractions,  # noqa: E402
                                     triplet_accuracy, triplet_accuracy_of_embeddings)

from .test_triplets import andorra_paletted, porto_paletted  # noqa: E402


def test_channel_fractions_exact_for_uint8_float_and_torch():
    t = np.zeros((2, 3, 4, 4), np.uint8)
    t[0, 0, :2] = 255          # half of channel 0
    t[0, 1, 0, 0] = 255        # 1/16 of channel 1
    t[1, 2] = 51               # a whole channel at intensity 0.2
    want = np.array([[0.5, 1 / 16, 0], [0, 0, 0.2]])
    np.testing.assert_allclose(channel_fractions(t), want)
    np.testing.assert_allclose(channel_fractions(t.astype(np.float32) / 255), want, rtol=1e-6)
    got = channel_fractions(torch.from_numpy(t))
    assert got.dtype == torch.float32
    np.testing.assert_allclose(got.numpy(), want, rtol=1e-6)
    np.testing.assert_allclose(channel_fractions(torch.from_numpy(t).float() / 255).numpy(), want, rtol=1e-6)


def test_standardised_with_training_statistics():
    rng = np.random.default_rng(0)
    f = rng.uniform(0, 1, (50, 4))
    f[:, 3] = 0.25  # a constant channel: std 1, so it neither explodes nor matters
    b = FractionsBaseline.fit(f)
    e = b.embed(f)
    np.testing.assert_allclose(e[:, :3].mean(0), 0, atol=1e-12)
    np.testing.assert_allclose(e[:, :3].std(0), 1, atol=1e-12)
    assert np.all(e[:, 3] == 0)
    et = b.embed(torch.from_numpy(f).float())
    assert isinstance(et, torch.Tensor)
    np.testing.assert_allclose(et.numpy(), e, atol=1e-5)
    tiles = rng.integers(0, 256, (5, 4, 8, 8)).astype(np.uint8)
    np.testing.assert_allclose(b.embed_tiles(tiles), b.embed(channel_fractions(tiles)))
    tb = FractionsBaseline.fit(torch.from_numpy(f))
    np.testing.assert_allclose(tb.mean, b.mean)


def test_accuracy_helpers_agree():
    rng = np.random.default_rng(1)
    a, p, n = (rng.normal(size=(40, 6)) for _ in range(3))
    acc = triplet_accuracy_of_embeddings(a, p, n)
    want = np.mean(np.linalg.norm(a - p, axis=1) < np.linalg.norm(a - n, axis=1))
    assert acc == pytest.approx(want)
    tt = [torch.from_numpy(x).float() for x in (a, p, n)]
    assert triplet_accuracy_of_embeddings(*tt) == pytest.approx(want)
    # the model's measure (normalised embeddings) and the baseline helper agree when asked to normalise
    assert triplet_accuracy_of_embeddings(a, p, n, normalize=True) == pytest.approx(triplet_accuracy(*tt))


def baseline_accuracy(train_s, val_s):
    base = FractionsBaseline.fit(channel_fractions(train_s.fixed(96, seed=1).anchor))
    v = val_s.fixed(96, seed=2)
    views = (v.anchor, v.positive, v.negative)
    return triplet_accuracy_of_embeddings(*(base.embed(channel_fractions(x)) for x in views))


def test_beats_chance_on_andorra_validation_triplets(tmp_path_factory):
    """Fitted on training blocks, measured on held-out validation blocks of real Andorra map tiles."""
    andorra = andorra_paletted(tmp_path_factory)
    kw = dict(tile_size_px=32)
    acc = baseline_accuracy(TripletSampler([andorra], "train", **kw), TripletSampler([andorra], "val", **kw))
    assert acc > 0.6


def test_beats_chance_on_porto_triplets(porto_area):
    """The 1.2 km Porto piece (one split, 250 m tiles, negatives >= 600 m): old town vs river vs blocks."""
    porto = porto_paletted(porto_area)
    kw = dict(tile_size_px=32, tile_size_m=250.0, neg_min_m=600.0, block_fractions=(1, 0, 0))
    s = TripletSampler([porto], "train", **kw)
    assert baseline_accuracy(s, s) > 0.6


def test_bad_input():
    with pytest.raises(Loc2VecError, match=r"\(N, C, S, S\)"):
        channel_fractions(np.zeros((3, 4, 4)))
    with pytest.raises(Loc2VecError, match="uint8 or float"):
        channel_fractions(np.zeros((1, 3, 4, 4), np.int32))
    with pytest.raises(Loc2VecError, match="N >= 2"):
        FractionsBaseline.fit(np.zeros((1, 12)))
    b = FractionsBaseline.fit(np.random.default_rng(0).uniform(size=(4, 12)))
    with pytest.raises(Loc2VecError, match="channels"):
        b.embed(np.zeros((2, 5)))
    with pytest.raises(Loc2VecError, match=r"\(B, D\)"):
        triplet_accuracy_of_embeddings(np.zeros((3, 2)), np.zeros((3, 2)), np.zeros((2, 2)))
