"""Spatially disjoint blocks: split counts, seeding, the guard band (exact on synthetic areas, and on real
sampled triplets: no tile of one split covers ground of another split's blocks)."""

import math

import numpy as np
import pytest

from loc2vec_engine.errors import Loc2VecError
from loc2vec_engine.tiles import PalettedArea, TileSampler
from loc2vec_engine.training import SPLITS, auto_block_m, guard_margin_m, split_blocks
from loc2vec_engine.training.blocks import cell_stats, window_mean

from . import synthetic
from .test_triplets import andorra_paletted

PX = synthetic.PIXEL


@pytest.fixture(scope="module")
def andorra(tmp_path_factory):
    return andorra_paletted(tmp_path_factory)


@pytest.fixture(scope="module")
def synth():
    data, valid = synthetic.make_area(h=700, w=900, seed=4)
    return PalettedArea.from_arrays(data, valid, synthetic.transform(), [f"c{i}" for i in range(12)], synthetic.CRS)


def test_guard_margin_and_auto_block_size():
    # half the diagonal of a 500 m tile at scale 1.1, plus the diagonal of a 50 px (97.7 m) per-axis shift
    m = guard_margin_m(500.0, 1.1, 50 * PX)
    assert m == pytest.approx(500 * 1.1 / math.sqrt(2) + 50 * PX * math.sqrt(2))
    assert auto_block_m(m) == 3000.0  # 5 margins, rounded up to 500 m
    assert auto_block_m(10.0) == 1000.0


def test_split_counts_seeding_and_each_split_gets_ground(andorra, synth):
    b = split_blocks(andorra, block_m=1000.0)
    counts = b.counts()
    n = sum(counts.values())
    assert n == b.labels.size == 49  # 6.7 km: 7 x 7 blocks, all with ground
    assert counts == {"train": 34, "val": 7, "test": 8} or counts == {"train": 34, "val": 8, "test": 7}
    assert np.array_equal(split_blocks(andorra, block_m=1000.0).labels, b.labels)  # seeded
    assert not np.array_equal(split_blocks(andorra, block_m=1000.0, seed=1).labels, b.labels)
    big = split_blocks(andorra, block_m=3000.0)  # 3 x 3 blocks: still one of each
    assert min(big.counts().values()) >= 1
    tiny = split_blocks(synth, block_m=700.0)  # 900 x 700 px = 1.76 x 1.37 km: 3 x 2 blocks, ground in all
    assert tiny.counts()["val"] >= 1 and tiny.counts()["test"] >= 1
    one = split_blocks(synth, block_m=5000.0)
    assert one.counts() == {"train": 1, "val": 0, "test": 0}
    only_train = split_blocks(andorra, block_m=1000.0, fractions=(1, 0, 0))
    assert only_train.counts()["train"] == 49
    assert only_train.allowed("train", 600.0).all()  # no other split: no guard band at all


def test_blocks_without_ground_belong_to_no_split(synth):
    ids = synth.ids.copy()
    ids[:, 450:] = 0  # the east half is outside the area
    half = PalettedArea(ids, synth.palette, synth.transform, synth.channel_names, synth.crs_wkt)
    b = split_blocks(half, block_m=256 * PX)  # 256 px blocks: the last two block columns are empty
    assert (b.labels[:, 2:] == -1).all() and (b.labels[:, :2] >= 0).all()


def test_allowed_cells_are_exactly_conservative(synth):
    """Every centre in an allowed cell keeps its margin square free of other splits' pixels; cells well
    clear of other splits are allowed (the mask is not needlessly strict)."""
    b = split_blocks(synth, block_m=200 * PX, seed=3)  # 5 x 4 blocks of 200 px
    margin_m = 40 * PX
    rng = np.random.default_rng(0)
    for s, name in enumerate(SPLITS):
        ok = b.allowed(name, margin_m, cell_px=8)
        assert ok.shape == (math.ceil(700 / 8), math.ceil(900 / 8))
        if b.counts()[name]:
            assert ok.any()
        for r, c in zip(*np.nonzero(ok)):
            x, y = (c + rng.random()) * 8, (r + rng.random()) * 8
            win = b.pixel_labels(math.floor(x - 40), math.floor(y - 40), math.floor(x + 40), math.floor(y + 40))
            assert not ((win != s) & (win >= 0)).any()
        # not needlessly strict: a cell whose L-inf gap to every foreign block exceeds margin + 2 px is allowed
        y0, x0 = np.arange(ok.shape[0])[:, None] * 8, np.arange(ok.shape[1])[None, :] * 8
        clear = np.ones(ok.shape, bool)
        for br, bc in zip(*np.nonzero((b.labels != s) & (b.labels >= 0))):
            gap_y = np.maximum(br * 200 - (y0 + 8), y0 - (br * 200 + 200))
            gap_x = np.maximum(bc * 200 - (x0 + 8), x0 - (bc * 200 + 200))
            clear &= np.maximum(gap_y, gap_x) > 40 + 2
        assert ok[clear].all() and clear.sum() > 0.2 * (b.labels == s).sum() * 25 ** 2 * (name == "train")


@pytest.mark.parametrize("split", SPLITS)
def test_no_tile_covers_another_splits_ground(andorra, split):
    """The real thing: sample many triplets of a split at the default 500 m tiles, 50 px shift, 10 % scale
    jitter; the exact pixel footprint of every view stays within the split's own blocks (or no block)."""
    from loc2vec_engine.training import TripletSampler

    s = TripletSampler([andorra], split, tile_size_px=32, seed=9)
    blocks = s.blocks[0]
    assert np.array_equal(blocks.labels, split_blocks(andorra, block_m=3000.0).labels)  # every sampler agrees
    t = s.sample(128)
    cut = TileSampler(andorra, tile_size_m=500.0)
    own = SPLITS.index(split)
    for view in range(3):
        xy = t.view_centres_m[:, view].numpy()
        col, row = andorra.xy_to_pixel(xy[:, 0], xy[:, 1])
        geom = cut.geometry(np.stack([col, row], 1), t.angles_deg[:, view].numpy(), t.scales[:, view].numpy(), 32)
        for c0, r0, c1, r1 in zip(*geom.footprint()):
            labels = blocks.pixel_labels(c0, r0, c1, r1)
            assert (labels == own).any()
            assert not ((labels != own) & (labels >= 0)).any()


def test_one_km_blocks_leave_validation_no_room(andorra):
    """Why blocks default to ~5 guard margins: a 1 km block is narrower than the ~1.05 km guard square,
    so val / test keep almost none of their ground for tile centres."""
    from loc2vec_engine.training import TripletSampler

    margin = guard_margin_m(500.0, 1.1, 50 * PX)

    def usable_share(b, split):  # allowed centre area / area of the split's blocks
        block_px2 = (b.block_m / andorra.pixel_size) ** 2
        return b.allowed(split, margin).sum() * 64 / ((b.labels == SPLITS.index(split)).sum() * block_px2)

    one_km, auto = split_blocks(andorra, block_m=1000.0), split_blocks(andorra, block_m=auto_block_m(margin))
    assert usable_share(one_km, "val") < 0.05 and usable_share(one_km, "test") < 0.1
    assert usable_share(auto, "val") > 0.25 and usable_share(auto, "test") > 0.25
    with pytest.raises(Loc2VecError, match="guard band") as e:  # with this seed val keeps nothing at all
        TripletSampler([andorra], "val", tile_size_px=32, block_size_m=1000.0, block_seed=2)
    assert "block_size_m >= 3000" in e.value.fix


def test_cell_stats_and_window_mean(synth):
    st = cell_stats(synth, 8, built_up_channels=[3, 4], means=True)
    data, valid = synth.decode()
    np.testing.assert_allclose(st.valid[:10, :10], valid[:80, :80].reshape(10, 8, 10, 8).mean(axis=(1, 3)), atol=1e-6)
    np.testing.assert_allclose(st.means[:, 5:9, 7:12],
                               data[:, 40:72, 56:96].reshape(12, 4, 8, 5, 8).mean(axis=(2, 4)) / 255, atol=1e-5)
    bu = (data[3] > 0) | (data[4] > 0)
    np.testing.assert_allclose(st.built_up[20:30, 3:9], bu[160:240, 24:72].reshape(10, 8, 6, 8).mean(axis=(1, 3)),
                               atol=1e-6)
    assert st.valid.shape == (88, 113)  # partial edge cells
    m = np.arange(20.0).reshape(4, 5)
    w = window_mean(m, 3)
    assert w[1, 1] == pytest.approx(m[:3, :3].mean()) and w[0, 0] == pytest.approx(m[:2, :2].sum() / 9)


def test_bad_block_parameters(andorra):
    with pytest.raises(Loc2VecError, match="block size"):
        split_blocks(andorra, block_m=0)
    with pytest.raises(Loc2VecError, match="fractions"):
        split_blocks(andorra, fractions=(0.7, 0.3))
    with pytest.raises(Loc2VecError, match="fractions"):
        split_blocks(andorra, fractions=(1.0, -0.5, 0.5))
    with pytest.raises(Loc2VecError, match="unknown split"):
        split_blocks(andorra).allowed("dev", 100.0)
