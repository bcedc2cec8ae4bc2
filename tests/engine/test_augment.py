"""Channel augmentation: seeded, switchable, per tile and channel, clamped, resumable."""

import io

import pytest

torch = pytest.importorskip("torch")

from loc2vec_engine.errors import Loc2VecError  # noqa: E402
from loc2vec_engine.training import Augment  # noqa: E402


def tiles(b=16, c=12, s=16, value=None, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.rand((b, c, s, s), generator=g)
    return torch.full_like(x, value) if value is not None else x


def test_seeded_and_does_not_touch_its_input():
    x = tiles()
    before = x.clone()
    a, b = Augment(seed=1), Augment(seed=1)
    ya, yb = a(x), b(x)
    assert torch.equal(ya, yb) and torch.equal(x, before)
    assert not torch.equal(ya, x)
    assert not torch.equal(Augment(seed=2)(x), ya)
    assert not torch.equal(a(x), ya)  # the stream moves on
    assert ya.dtype == x.dtype and ya.shape == x.shape and ya.min() >= 0 and ya.max() <= 1


def test_off_switches_give_the_input_back():
    x = tiles()
    assert torch.equal(Augment(noise_std=0, channel_dropout=0, intensity_jitter=0)(x), x)
    assert torch.equal(Augment(enabled=False)(x), x)


def test_intensity_jitter_is_one_factor_per_tile_and_channel():
    x = tiles(value=0.5)
    y = Augment(noise_std=0, channel_dropout=0, intensity_jitter=0.1, seed=3)(x)
    f = y / x
    per = f[:, :, :1, :1]
    assert torch.allclose(f, per.expand_as(f))  # constant over the tile's pixels
    assert per.min() >= 0.9 - 1e-6 and per.max() <= 1.1 + 1e-6
    assert per.std() > 0.03  # really varies between tiles / channels (U(0.9, 1.1): std 0.058)


def test_noise_has_the_asked_std():
    x = tiles(b=32, s=32, value=0.5)
    y = Augment(noise_std=0.02, channel_dropout=0, intensity_jitter=0, seed=4)(x)
    d = y - x
    assert abs(float(d.mean())) < 1e-3 and float(d.std()) == pytest.approx(0.02, rel=0.05)


def test_channel_dropout_zeroes_whole_channels_at_its_rate():
    x = tiles(b=64, value=0.5)
    y = Augment(noise_std=0, channel_dropout=0.25, intensity_jitter=0, seed=5)(x)
    per = y.amax(dim=(2, 3))
    assert set(per.unique().tolist()) == {0.0, 0.5}  # a channel is either kept whole or zeroed whole
    assert float((per == 0).float().mean()) == pytest.approx(0.25, abs=0.05)
    # dropped channels stay zero even with noise: dropout comes after noise
    y = Augment(noise_std=0.05, channel_dropout=0.5, intensity_jitter=0.1, seed=6)(x)
    peak = y.amax(dim=(2, 3))
    assert (peak == 0).any() and ((peak == 0) | (peak > 0.4)).all()


def test_clamps_to_unit_range():
    x = torch.cat([tiles(b=4, value=0.0), tiles(b=4, value=1.0)])
    y = Augment(noise_std=0.3, channel_dropout=0, intensity_jitter=0.5, seed=7)(x)
    assert y.min() == 0 and y.max() == 1


def test_state_resumes_the_same_draws():
    x = tiles()
    a = Augment(seed=8, device="cpu")
    a(x)
    buf = io.BytesIO()
    torch.save(a.state_dict(), buf)  # goes into a weights_only checkpoint
    buf.seek(0)
    state = torch.load(buf, weights_only=True)
    nxt = a(x)
    b = Augment(seed=8, device="cpu")
    b.load_state_dict(state)
    assert torch.equal(b(x), nxt)
    fresh = Augment(seed=8)  # a state taken before first use restarts from the seed
    unused = Augment(seed=8).state_dict()
    c = Augment(seed=99)
    c.load_state_dict(unused)
    assert torch.equal(c(x), fresh(x))


@pytest.mark.parametrize("kw", [dict(noise_std=-0.1), dict(channel_dropout=1.5), dict(intensity_jitter=float("nan")),
                                dict(noise_std="0.1")])
def test_bad_parameters(kw):
    with pytest.raises(Loc2VecError, match="out of range") as e:
        Augment(**kw)
    assert e.value.fix


def test_bad_input():
    a = Augment()
    with pytest.raises(Loc2VecError, match="float tiles"):
        a(torch.zeros((2, 12, 8, 8), dtype=torch.uint8))
    with pytest.raises(Loc2VecError, match="float tiles"):
        a(torch.zeros((12, 8, 8)))
    with pytest.raises(Loc2VecError, match="augment state"):
        a.load_state_dict({"x": 1})
