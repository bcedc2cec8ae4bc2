"""Triplet sampler on real OSM rasters: distances, validity, splits of areas, seeding, resume, bad input."""

import io

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from loc2vec_engine.errors import Loc2VecError  # noqa: E402
from loc2vec_engine.tiles import PalettedArea, TileSampler  # noqa: E402
from loc2vec_engine.training import Triplets, TripletSampler, channel_fractions, split_blocks  # noqa: E402

from . import synthetic  # noqa: E402

ANDORRA_BBOX = (1.50, 42.49, 1.58, 42.55)  # ~6.7 x 6.7 km: Andorra la Vella, Escaldes, mountainsides
_CACHE = {}
S = 64  # tile pixels: small tiles keep the tests fast; the ground covered (500 m) is the real one


def andorra_paletted(tmp_path_factory) -> PalettedArea:
    """The Andorra bbox rasterized once per test process (about 3 s), shared by the training tests."""
    if "andorra" not in _CACHE:
        from loc2vec_engine.raster.rasterize import rasterize

        from ..conftest import DATA

        out = tmp_path_factory.mktemp("andorra") / "andorra.tif"
        rasterize(DATA / "andorra_2020-05-01.osm.pbf", out, bbox=ANDORRA_BBOX, progress=lambda f, m: None)
        _CACHE["andorra"] = PalettedArea.from_raster(out)
    return _CACHE["andorra"]


def porto_paletted(porto_area) -> PalettedArea:
    if "porto" not in _CACHE:
        _CACHE["porto"] = PalettedArea.from_raster(porto_area)
    return _CACHE["porto"]


@pytest.fixture(scope="module")
def andorra(tmp_path_factory):
    return andorra_paletted(tmp_path_factory)


@pytest.fixture(scope="module")
def porto(porto_area):
    return porto_paletted(porto_area)


@pytest.fixture(scope="module")
def train(andorra):
    return TripletSampler([andorra], "train", tile_size_px=S, seed=3)


def dist(t: Triplets, i: int, j: int) -> np.ndarray:
    c = t.centres_m.numpy()
    return np.hypot(*(c[:, i] - c[:, j]).T)


def tiles_of(t: Triplets):
    return t.anchor, t.positive, t.negative


# ---- what a batch holds ---------------------------------------------------------------------

def test_positives_100_200_m_negatives_beyond_2_km(train):
    t = train.sample(48)
    assert isinstance(t, Triplets) and len(t) == 48
    d_ap, d_an = dist(t, 0, 1), dist(t, 0, 2)
    assert d_ap.min() >= 100 and d_ap.max() <= 200
    assert d_an.min() >= 2000
    assert (t.area_index == 0).all() and t.area_index.shape == (48, 3)
    shift = np.hypot(*(t.view_centres_m - t.centres_m).numpy().transpose(2, 0, 1))
    assert 0 < shift.max() <= 50 * np.sqrt(2) * 500 / 256 + 1e-6  # 50 px of 1.95 m per axis
    a, sc = t.angles_deg.numpy(), t.scales.numpy()
    assert a.min() >= 0 and a.max() < 360 and np.ptp(a) > 180
    assert sc.min() >= 0.9 and sc.max() <= 1.1


def test_tiles_are_the_sampler_cut_and_valid_enough(andorra, train):
    t = train.sample(24)
    cut = TileSampler(andorra, tile_size_m=500.0)
    for view, x in enumerate(tiles_of(t)):
        assert x.dtype == torch.float32 and x.shape == (24, 12, S, S) and x.device.type == "cpu"
        assert 0 <= float(x.min()) and float(x.max()) <= 1
        xy = t.view_centres_m[:, view].numpy()
        ref, valid = cut.sample(xy, t.angles_deg[:, view].numpy(), t.scales[:, view].numpy(), S)
        np.testing.assert_array_equal((x * 255).round().to(torch.uint8).numpy(), ref)
        assert valid.mean(axis=(1, 2)).min() >= 0.9  # min_valid
    f = channel_fractions(t.anchor)
    assert float(f.sum(1).min()) > 0  # real map content, not empty tiles


def test_cpu_and_torch_backends_give_the_same_triplets(andorra):
    kw = dict(tile_size_px=32, seed=11)
    a = TripletSampler([andorra], "train", backend="torch", **kw).sample(8)
    b = TripletSampler([andorra], "train", backend="cpu", **kw).sample(8)
    for x, y in zip(tiles_of(a), tiles_of(b)):
        assert torch.equal(x, y)
    assert torch.equal(a.centres_m, b.centres_m)


# ---- seeding and resume ---------------------------------------------------------------------

def same(a: Triplets, b: Triplets) -> bool:
    return all(torch.equal(x, y) for x, y in zip(tiles_of(a), tiles_of(b))) and torch.equal(a.centres_m, b.centres_m)


def test_seeded_and_resumes_exactly(andorra):
    kw = dict(tile_size_px=32, seed=5)
    s = TripletSampler([andorra], "train", **kw)
    s.sample(6)
    state = s.state_dict()
    b2, b3 = s.sample(6), s.sample(6)
    assert not same(b2, b3)
    # the state goes through a checkpoint loaded with weights_only=True
    buf = io.BytesIO()
    torch.save({"sampler": state}, buf)
    buf.seek(0)
    restored = torch.load(buf, weights_only=True)["sampler"]
    r = TripletSampler([andorra], "train", **kw)
    r.load_state_dict(restored)
    assert same(r.sample(6), b2) and same(r.sample(6), b3)
    fresh = TripletSampler([andorra], "train", **kw)
    assert not same(fresh.sample(6), b2)
    other_seed = TripletSampler([andorra], "train", tile_size_px=32, seed=6)
    assert not same(other_seed.sample(6), TripletSampler([andorra], "train", **kw).sample(6))


def test_fixed_is_deterministic_and_leaves_the_stream_alone(andorra):
    s = TripletSampler([andorra], "val", tile_size_px=32, seed=1)
    f1 = s.fixed(10, seed=7)
    s.sample(4)
    f2 = s.fixed(10, seed=7)
    assert same(f1, f2)
    assert not same(s.fixed(10, seed=8), f1)
    t = TripletSampler([andorra], "val", tile_size_px=32, seed=1)
    t.fixed(10, seed=7)
    u = TripletSampler([andorra], "val", tile_size_px=32, seed=1)
    assert same(t.sample(4), u.sample(4))  # fixed() did not advance the training stream
    assert [len(b) for b in f1.batches(4)] == [4, 4, 2]
    assert torch.equal(f1[2:4].anchor, f1.anchor[2:4])


# ---- several areas, negatives, weighting ------------------------------------------------------

def test_small_area_takes_negatives_from_another_area(andorra, porto):
    s = TripletSampler([andorra, porto], "train", tile_size_px=32, seed=2, balance_areas=True)
    t = s.sample(64)
    ai = t.area_index.numpy()
    porto_rows = ai[:, 0] == 1
    assert 15 < porto_rows.sum() < 49  # balanced: about half the anchors from the 1.2 km Porto piece
    assert (ai[porto_rows, 1] == 1).all() and (ai[porto_rows, 2] == 0).all()  # Porto is too small for 2 km
    assert (ai[~porto_rows, 2] == 0).all()  # Andorra's own far ground first
    d = dist(t, 0, 2)[~porto_rows]
    assert d.min() >= 2000
    lu = TripletSampler([andorra, porto], "train", tile_size_px=16, seed=2, balance_areas=True, neg_mode="landuse")
    ai = lu.sample(32).area_index.numpy()
    assert (ai[:, 0] == 1).any() and (ai[ai[:, 0] == 1, 2] == 0).all()
    proportional = TripletSampler([andorra, porto], "train", tile_size_px=32, seed=2).sample(64)
    assert (proportional.area_index[:, 0] == 1).sum() < 12  # by usable ground: Andorra dominates


def test_landuse_negatives_contrast_more_than_far_ones(andorra):
    def contrast(mode):
        t = TripletSampler([andorra], "train", tile_size_px=32, seed=4, neg_mode=mode).sample(96)
        assert dist(t, 0, 2).min() >= 2000  # still far
        return float((channel_fractions(t.anchor) - channel_fractions(t.negative)).abs().sum(1).mean())

    assert contrast("landuse") > 1.2 * contrast("far")
    assert contrast("similar") < 0.8 * contrast("far")  # hard negatives: far away, made of the same stuff


def test_semantic_positives_are_far_places_of_like_composition(andorra, porto):
    def comp_gap(t, rows):
        return float((channel_fractions(t.anchor[rows]) - channel_fractions(t.positive[rows])).abs().sum(1).mean())

    near = TripletSampler([andorra, porto], "train", tile_size_px=32, seed=5, balance_areas=True).sample(96)
    sem = TripletSampler([andorra, porto], "train", tile_size_px=32, seed=5, balance_areas=True,
                         semantic_share=0.5).sample(96)
    ai = sem.area_index.numpy()
    far = (ai[:, 1] != ai[:, 0]) | (dist(sem, 0, 1) >= 2000)  # semantic: another area, or >= 2 km in the own
    near_pos = (ai[:, 1] == ai[:, 0]) & (dist(sem, 0, 1) >= 100) & (dist(sem, 0, 1) <= 200)
    assert (far | near_pos).all()                   # every positive is one kind or the other
    assert 25 < far.sum() < 72                      # about half of them semantic
    assert (ai[far, 1] != ai[far, 0]).any()         # ... and some from the other city
    # a semantic positive is not a random far place: the closest composition of 16, so nearer in
    # composition than the far negatives are, although it lies just as far away
    everyone = np.arange(96)
    gap_neg = float((channel_fractions(sem.anchor) - channel_fractions(sem.negative)).abs().sum(1).mean())
    assert comp_gap(sem, everyone[far]) < 0.8 * gap_neg
    # the near positives are still the ones of a sampler without the option
    assert dist(near, 0, 1).max() <= 200 and np.isfinite(comp_gap(near, everyone))


def test_semantic_share_zero_draws_the_batches_of_a_plain_sampler(andorra):
    a = TripletSampler([andorra], "train", tile_size_px=16, seed=9).sample(16)
    b = TripletSampler([andorra], "train", tile_size_px=16, seed=9, semantic_share=0.0).sample(16)
    assert same(a, b)


def test_built_up_weight_favours_built_up_anchors(andorra):
    def built_up_share(w):
        t = TripletSampler([andorra], "train", tile_size_px=32, seed=4, built_up_weight=w).sample(96)
        names = andorra.channel_names
        idx = [i for i, n in enumerate(names) if n.startswith(("roads", "buildings"))]
        return float(channel_fractions(t.anchor)[:, idx].sum(1).mean())

    assert built_up_share(1.0) > 1.5 * built_up_share(0.0)


def test_synthetic_channel_names_need_explicit_built_up_channels():
    data, valid = synthetic.make_area(h=900, w=900, seed=2, clip=False)
    area = PalettedArea.from_arrays(data, valid, synthetic.transform(), [f"c{i}" for i in range(12)], synthetic.CRS)
    kw = dict(tile_size_px=16, tile_size_m=200.0, neg_min_m=800.0, block_fractions=(1, 0, 0))
    with pytest.raises(Loc2VecError, match="built_up_channels"):
        TripletSampler([area], built_up_weight=0.5, **kw)
    t = TripletSampler([area], built_up_weight=0.5, built_up_channels=["c3", 4], **kw).sample(8)
    assert dist(t, 0, 2).min() >= 800


def test_mining_never_treats_a_triplets_own_positive_as_negative(andorra, porto):
    from loc2vec_engine.training.losses import negative_mask

    t = TripletSampler([andorra, porto], "train", tile_size_px=16, seed=8, balance_areas=True).sample(32)
    m = negative_mask(t.centres_m, t.area_index, 2000.0)
    i = torch.arange(32)
    assert not m[i, i].any() and not m[i, 32 + i].any()  # itself and its own positive
    assert m[i, 64 + i].all()  # its given negative is always a valid one


# ---- bad input ----------------------------------------------------------------------------------

@pytest.mark.parametrize("kw, match", [
    (dict(split="dev"), "split"),
    (dict(tile_size_px=4), "tile_size_px"),
    (dict(tile_size_m=-1.0), "tile_size_m"),
    (dict(pos_range_m=(200, 100)), "pos_range_m"),
    (dict(neg_min_m=150.0), "neg_min_m"),
    (dict(max_shift_px=-1), "max_shift_px"),
    (dict(scale_jitter=1.5), "scale_jitter"),
    (dict(min_valid=1.5), "min_valid"),
    (dict(built_up_weight=2.0), "built_up_weight"),
    (dict(neg_mode="random"), "neg_mode"),
    (dict(semantic_share=1.5), "semantic_share"),
    (dict(backend="cuda"), "backend"),
])
def test_bad_parameters(andorra, kw, match):
    with pytest.raises(Loc2VecError, match=match) as e:
        TripletSampler([andorra], **kw)
    assert e.value.fix


def test_bad_areas_and_counts(andorra, porto, train):
    with pytest.raises(Loc2VecError, match="no areas"):
        TripletSampler([])
    with pytest.raises(Loc2VecError, match="ndarray"):
        TripletSampler([np.zeros((3, 4, 4), np.uint8)])
    renamed = PalettedArea(porto.ids, porto.palette, porto.transform, [f"x{i}" for i in range(12)], porto.crs_wkt)
    with pytest.raises(Loc2VecError, match="same channel spec"):
        TripletSampler([andorra, renamed])
    with pytest.raises(Loc2VecError, match="neg_min_m") as e:  # a lone 1.2 km area cannot give 2 km negatives
        TripletSampler([porto], block_fractions=(1, 0, 0))
    assert "larger area" in e.value.fix
    with pytest.raises(Loc2VecError, match="BlockSplit"):
        TripletSampler([andorra, porto], blocks=[split_blocks(andorra)])
    with pytest.raises(Loc2VecError, match="another area"):
        TripletSampler([porto], blocks=[split_blocks(andorra)])
    for n in (0, -3, 2.5, True):
        with pytest.raises(Loc2VecError, match="positive integer"):
            train.sample(n)
    with pytest.raises(Loc2VecError, match="sampler state"):
        train.load_state_dict({"nope": 1})


def test_area_without_ground_in_the_split(andorra):
    empty = PalettedArea(np.zeros_like(andorra.ids), andorra.palette, andorra.transform,
                         andorra.channel_names, andorra.crs_wkt)
    with pytest.raises(Loc2VecError, match="no valid pixels") as e:
        TripletSampler([andorra, empty])
    assert "rasterize" in e.value.fix
    with pytest.raises(Loc2VecError, match="no val block"):  # everything went to train
        TripletSampler([andorra], "val", block_fractions=(1, 0, 0))
