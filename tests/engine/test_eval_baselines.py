"""The stronger no-learning baselines: multi-scale channel fractions and random-convolution features."""

import numpy as np
import pytest

from loc2vec_engine.evaluation.baselines import (MultiscaleFeatures, RandomConvFeatures, block_average,
                                                 centred_window, multiscale_fractions)


def _target_tile(size=64):
    """Channel 0: a centred square of side 20 px (the 30 % window) full; channel 1: the outer ring only;
    channel 2: half intensity everywhere."""
    t = np.zeros((1, 3, size, size), np.uint8)
    w = centred_window(size, 0.3)
    t[0, 0, w, w] = 255
    t[0, 1] = 255
    t[0, 1, centred_window(size, 0.6), centred_window(size, 0.6)] = 0
    t[0, 2] = 128
    return t


def test_centred_windows_are_centred():
    for size in (64, 65, 256):
        for share in (0.3, 0.6, 1.0):
            w = centred_window(size, share)
            assert w.start == size - w.stop  # the same margin on both sides
            assert abs((w.stop - w.start) - share * size) <= 1
    assert centred_window(64, 0.3) == slice(22, 42) and centred_window(64, 1.0) == slice(0, 64)


def test_multiscale_fractions_of_a_known_tile():
    f = multiscale_fractions(_target_tile()).reshape(3, 3)  # rows: 30 %, 60 %, 100 % windows
    assert [centred_window(64, s).stop - centred_window(64, s).start for s in (0.3, 0.6, 1.0)] == [20, 38, 64]
    assert f[:, 0] == pytest.approx([1.0, 20 ** 2 / 38 ** 2, 20 ** 2 / 64 ** 2], abs=1e-12)
    assert f[:, 1] == pytest.approx([0.0, 0.0, 1 - 38 ** 2 / 64 ** 2], abs=1e-12)
    assert f[:, 2] == pytest.approx([128 / 255] * 3, abs=1e-12)
    # plain fractions could not tell the centre from the ring: the same totals, other windows
    moved = np.roll(_target_tile(), 22, axis=-1)
    g = multiscale_fractions(moved).reshape(3, 3)
    assert g[2, 0] == pytest.approx(f[2, 0], abs=1e-12) and g[0, 0] < 0.5


def test_multiscale_features_are_standardised_on_the_cells():
    rng = np.random.default_rng(0)
    tiles = (rng.random((40, 12, 32, 32)) < rng.random((40, 12, 1, 1))).astype(np.uint8) * 255
    e = MultiscaleFeatures(tiles).embed(tiles)
    assert e.shape == (40, 36)
    assert np.allclose(e.mean(0), 0, atol=1e-9) and np.allclose(e.std(0), 1, atol=1e-9)


def _tiles(n=20, size=64, seed=1):
    rng = np.random.default_rng(seed)
    return (rng.random((n, 12, size, size)) < 0.2).astype(np.uint8) * 255


def test_random_conv_is_deterministic_by_seed():
    tiles = _tiles()
    a, b = RandomConvFeatures(tiles, seed=5), RandomConvFeatures(tiles, seed=5)
    for k in a.filters:
        assert np.array_equal(a.filters[k], b.filters[k])
    assert np.array_equal(a.embed(tiles[:4]), b.embed(tiles[:4]))
    c = RandomConvFeatures(tiles, seed=6)
    assert not np.allclose(a.raw(tiles[:4]), c.raw(tiles[:4]))
    assert a.fitted.shape == (20, 256) and sum(w.shape[1] for w in a.filters.values()) == 256
    assert set(a.filters) == {3, 5, 7}
    assert np.allclose(a.fitted, a.embed(tiles), atol=1e-9)  # the cached cells' features are the same
    assert np.allclose(a.fitted.mean(0), 0, atol=1e-9)


def test_random_conv_features_see_layout_not_only_composition():
    """Two tiles with the same channel fractions (a block vs a checkerboard): the same fractions, other
    random-conv features."""
    block = np.zeros((1, 12, 64, 64), np.uint8)
    block[0, 3, :32] = 255
    checker = np.zeros_like(block)
    checker[0, 3] = (np.indices((64, 64)).sum(0) % 2 * 255).astype(np.uint8)
    assert block.mean() == checker.mean()
    rc = RandomConvFeatures(_tiles(), seed=0)
    a, b = rc.raw(block), rc.raw(checker)
    assert np.abs(a - b).max() > 0.05 * np.abs(a).max()
    assert (a >= 0).all() and (b >= 0).all()  # ReLU, then means


def test_block_average():
    t = np.arange(2 * 1 * 64 * 64).reshape(2, 1, 64, 64) % 256
    t = t.astype(np.uint8)
    x = block_average(t, 32)
    assert x.shape == (2, 1, 32, 32) and x.dtype == np.float32
    assert x[0, 0, 0, 0] == pytest.approx((t[0, 0, :2, :2].astype(float) / 255).mean(), abs=1e-6)
    assert block_average(t[:, :, :40, :40], 32).shape == (2, 1, 40, 40)  # factor 1: no averaging
