"""Tile sampler: palette round trip, tile geometry, CPU == torch, windowed torch, bad input."""

import subprocess
import sys

import numpy as np
import pytest

from loc2vec_engine.errors import Loc2VecError
from loc2vec_engine.tiles import PalettedArea, TileSampler

from . import synthetic

PX = synthetic.PIXEL


@pytest.fixture(scope="module")
def arrays():
    return synthetic.make_area(h=320, w=400, seed=1)


@pytest.fixture(scope="module")
def area(arrays):
    data, valid = arrays
    return PalettedArea.from_arrays(data, valid, synthetic.transform(), [f"c{i}" for i in range(12)], synthetic.CRS)


@pytest.fixture(scope="module")
def cpu(area):
    # tile_size_m = 64 px at scale 1 for size 64: step 1, so small tiles stay cheap to test
    return TileSampler(area, tile_size_m=64 * PX)


@pytest.fixture(scope="module")
def torch_sampler(area):
    pytest.importorskip("torch")
    return TileSampler(area, backend="torch", device="cpu", tile_size_m=64 * PX)


def random_batch(rng, n, area, margin=60):
    """Centres (pixels) across and beyond the area, random angles and scales."""
    centres = np.stack([rng.uniform(-margin, area.width + margin, n), rng.uniform(-margin, area.height + margin, n)], 1)
    return centres, rng.uniform(-360, 360, n), rng.uniform(0.4, 2.5, n)


# ---- the palette ---------------------------------------------------------------------------

def test_palette_round_trip_is_exact(arrays, area):
    data, valid = arrays
    assert area.ids.dtype == np.uint16 and area.palette.shape[1] == 12
    assert not area.palette[0].any()  # id 0 = invalid, a zero row
    assert (area.ids[~valid] == 0).all() and (area.ids[valid] != 0).all()  # valid all-zero pixels too
    assert (~data.any(axis=0) & valid).any()
    got, got_valid = area.decode()
    np.testing.assert_array_equal(got, data)
    np.testing.assert_array_equal(got_valid, valid)
    assert len(np.unique(area.palette[1:], axis=0)) == area.n_values - 1  # no duplicate entries


def test_palette_from_raster_in_chunks(tmp_path, arrays, area):
    from loc2vec_engine.channels import get_spec

    data, valid = arrays
    names = get_spec().names
    tif = synthetic.write_geotiff(tmp_path / "a.tif", data, valid, names)
    pa = PalettedArea.from_raster(tif, spec=get_spec(), chunk_rows=37)
    np.testing.assert_array_equal(pa.decode()[0], data)
    np.testing.assert_array_equal(pa.decode()[1], valid)
    assert pa.channel_names == names and pa.transform == synthetic.transform()
    assert "29N" in pa.crs_wkt or "32629" in pa.crs_wkt
    # the sampler takes the path directly and gives the in-memory area's tiles
    s = TileSampler(tif, tile_size_m=64 * PX)
    c = np.array([[200.0, 150.0], [0.0, 0.0]])
    for a, b in zip(s.sample_pixels(c, 30, 1.2, 64), TileSampler(area, tile_size_m=64 * PX).sample_pixels(c, 30, 1.2, 64)):
        np.testing.assert_array_equal(a, b)


def test_palette_check_catches_a_wrong_id(monkeypatch, arrays):
    from loc2vec_engine.tiles import paletted

    real = paletted._index_pixels

    def corrupt(data, valid, start, table, words, count, out_ids):
        count, stop = real(data, valid, start, table, words, count, out_ids)
        out_ids[100, 100] = 1 if out_ids[100, 100] != 1 else 2
        return count, stop

    monkeypatch.setattr(paletted, "_index_pixels", corrupt)
    with pytest.raises(Loc2VecError, match="palette does not reproduce"):
        PalettedArea.from_arrays(*arrays)


def test_uint32_ids_beyond_65535_values():
    rng = np.random.default_rng(5)
    data = rng.integers(0, 256, (12, 270, 260), dtype=np.uint8)  # ~70k distinct pixels
    pa = PalettedArea.from_arrays(data, transform=synthetic.transform())
    assert pa.ids.dtype == np.uint32 and pa.n_values == 270 * 260 + 1
    np.testing.assert_array_equal(pa.decode()[0], data)
    centres, angles, scales = random_batch(rng, 24, pa)
    t_cpu, v_cpu = TileSampler(pa, tile_size_m=48 * PX).sample_pixels(centres, angles, scales, 48)
    pytest.importorskip("torch")
    t_gpu, v_gpu = TileSampler(pa, backend="torch", device="cpu", tile_size_m=48 * PX).sample_pixels(
        centres, angles, scales, 48)
    np.testing.assert_array_equal(t_cpu, t_gpu.numpy())
    np.testing.assert_array_equal(v_cpu, v_gpu.numpy())


# ---- geometry ------------------------------------------------------------------------------

def test_axis_aligned_tile_on_a_pixel_corner_is_an_exact_crop(cpu, area, arrays):
    data, valid = arrays
    for col, row in ((200, 160), (20, 10), (390, 300), (-10, 5)):  # the last ones hang off the edges
        # map coordinates of the pixel corner (col, row)
        x, y = area.pixel_to_xy(col, row)
        tiles, tvalid = cpu.sample([[x, y]], size=64)
        want, want_valid = area.decode((col - 32, row - 32, 64, 64))
        np.testing.assert_array_equal(tiles[0], want)
        np.testing.assert_array_equal(tvalid[0], want_valid)
        # channels-last memory, but contiguous copies are right
        np.testing.assert_array_equal(np.ascontiguousarray(tiles)[0], want)


def test_tile_centre_holds_the_centre_pixel_at_any_angle_and_scale(cpu, arrays):
    data, valid = arrays
    rng = np.random.default_rng(2)
    for _ in range(50):
        col, row = int(rng.integers(0, 400)), int(rng.integers(0, 320))
        tiles, tvalid = cpu.sample_pixels([[col + 0.5, row + 0.5]], rng.uniform(0, 360), rng.uniform(0.3, 3), size=33)
        np.testing.assert_array_equal(tiles[0, :, 16, 16], data[:, row, col])
        assert tvalid[0, 16, 16] == valid[row, col]


def test_rotation_by_90_degrees_is_rot90(cpu, area):
    rng = np.random.default_rng(3)
    centres, _, scales = random_batch(rng, 16, area)
    scales[:4] = 1.0
    for size in (64, 33):
        base, base_valid = cpu.sample_pixels(centres, 0.0, scales, size)
        for k in (1, 2, 3, -1):
            t, v = cpu.sample_pixels(centres, 90.0 * k, scales, size)
            np.testing.assert_array_equal(t, np.rot90(base, k, axes=(-2, -1)))
            np.testing.assert_array_equal(v, np.rot90(base_valid, k, axes=(-2, -1)))


def test_scale_zooms_out_around_the_centre(cpu, area, arrays):
    data, _ = arrays
    x, y = area.pixel_to_xy(200, 160)
    # scale 2 at size 64: a 128 px window; each output pixel's centre falls on the corner between
    # source pixels 2u and 2u+1 of the window, and nearest sampling (floor) takes the second
    t, _ = cpu.sample([[x, y]], scales=2.0, size=64)
    np.testing.assert_array_equal(t[0], data[:, 97:225:2, 137:265:2])
    # size 128 at scale 1 covers the same 64 px of ground at 2 output px per source px
    t, _ = cpu.sample([[x, y]], size=128)
    np.testing.assert_array_equal(t[0], data[:, 128:192, 168:232].repeat(2, 1).repeat(2, 2))


def test_outside_the_area_and_the_mask_is_zero_and_invalid(cpu, area, arrays):
    data, valid = arrays
    t, v = cpu.sample_pixels([[-500.0, -500.0], [1000.0, 100.0]], [10, 45], [1.0, 2.0], 64)
    assert not t.any() and not v.any()
    # half off the top-left corner, rotated: no garbage where invalid, everything valid is real data
    t, v = cpu.sample_pixels([[5.0, 5.0], [395.0, 315.0]], 33.0, 1.7, 64)
    assert v.any() and not v.all()
    assert not t.transpose(1, 0, 2, 3)[:, ~v].any()
    # the clip polygon's invalid corner (top-left) reads as invalid
    assert not valid[0, 0]
    t, v = cpu.sample_pixels([[0.5, 0.5]], 0.0, 1.0, 1)
    assert not v[0, 0, 0] and not t.any()


def test_map_and_lonlat_centres_agree(cpu, area):
    from loc2vec_engine.geo.crs import transformer_to_wgs84

    col, row = np.array([123.3, 250.7]), np.array([77.2, 201.9])
    x, y = area.pixel_to_xy(col, row)
    lon, lat = transformer_to_wgs84(synthetic.CRS).transform(x, y)
    a = cpu.sample(np.stack([x, y], 1), [0, 20], 1.1, 33)
    b = cpu.sample_pixels(np.stack([col, row], 1), [0, 20], 1.1, 33)
    c = cpu.sample_lonlat(np.stack([lon, lat], 1), [0, 20], 1.1, 33)
    for u, w, z in zip(a, b, c):
        np.testing.assert_array_equal(u, w)
        np.testing.assert_array_equal(u, z)


# ---- back-ends -----------------------------------------------------------------------------

def test_torch_gives_the_cpu_pixels(cpu, torch_sampler, area):
    import torch

    rng = np.random.default_rng(4)
    for size in (64, 33, 8):
        centres, angles, scales = random_batch(rng, 60, area)
        t_cpu, v_cpu = cpu.sample_pixels(centres, angles, scales, size)
        t_gpu, v_gpu = torch_sampler.sample_pixels(centres, angles, scales, size)
        assert t_gpu.dtype == torch.uint8 and t_gpu.shape == (60, 12, size, size) and v_gpu.dtype == torch.bool
        np.testing.assert_array_equal(t_cpu, t_gpu.numpy())
        np.testing.assert_array_equal(v_cpu, v_gpu.numpy())


def test_windowed_torch_equals_whole_area(torch_sampler, area):
    rng = np.random.default_rng(6)
    # 400 x 320 uint16 = 256 kB; a 40 kB budget means ~100 px windows with 2 cached
    small = TileSampler(area, backend="torch", device="cpu", tile_size_m=32 * PX, max_device_bytes=40_000,
                        max_scale=1.0)
    assert small._torch.grid[0] * small._torch.grid[1] > 4
    whole = TileSampler(area, backend="torch", device="cpu", tile_size_m=32 * PX)
    centres, angles, scales = random_batch(rng, 80, area, margin=40)
    scales[:5] = 3.0  # larger than max_scale: windows of their own
    for batch in (slice(0, 40), slice(40, 80)):
        a = small.sample_pixels(centres[batch], angles[batch], scales[batch], 32)
        b = whole.sample_pixels(centres[batch], angles[batch], scales[batch], 32)
        np.testing.assert_array_equal(a[0].numpy(), b[0].numpy())
        np.testing.assert_array_equal(a[1].numpy(), b[1].numpy())
    assert small._torch.uploads > 2 and len(small._torch._cache) <= 2


def test_threads_and_out_buffers_give_the_same_tiles(cpu, area):
    rng = np.random.default_rng(7)
    centres, angles, scales = random_batch(rng, 20, area)
    want = cpu.sample_pixels(centres, angles, scales, 48)
    par = TileSampler(area, tile_size_m=64 * PX, threads=2).sample_pixels(centres, angles, scales, 48)
    out = cpu.empty(20, 48)
    got = cpu.sample_pixels(centres, angles, scales, 48, out=out)
    assert got[0] is out[0] and got[1] is out[1]
    for a, b, c in zip(want, par, got):
        np.testing.assert_array_equal(a, b)
        np.testing.assert_array_equal(a, c)
    with pytest.raises(Loc2VecError, match="out="):
        cpu.sample_pixels(centres, angles, scales, 48, out=(np.zeros((20, 12, 48, 48), np.uint8), out[1]))
    empty = cpu.sample_pixels(np.zeros((0, 2)), 0.0, 1.0, 48)
    assert empty[0].shape == (0, 12, 48, 48) and empty[1].shape == (0, 48, 48)


def test_torch_out_buffers(torch_sampler, cpu, area):
    rng = np.random.default_rng(8)
    centres, angles, scales = random_batch(rng, 12, area)
    out = torch_sampler.empty(12, 40)
    got = torch_sampler.sample_pixels(centres, angles, scales, 40, out=out)
    assert got[0] is out[0] and got[0].permute(0, 2, 3, 1).is_contiguous()  # channels_last
    want = cpu.sample_pixels(centres, angles, scales, 40)
    np.testing.assert_array_equal(got[0].numpy(), want[0])
    np.testing.assert_array_equal(got[1].numpy(), want[1])
    with pytest.raises(Loc2VecError, match="out="):
        torch_sampler.sample_pixels(centres, angles, scales, 40, out=(out[0].contiguous(), out[1]))


@pytest.mark.parametrize("n_channels", [5, 8, 3])
def test_other_channel_counts(n_channels):
    data, valid = synthetic.make_area(200, 180, seed=n_channels, n_channels=n_channels)
    pa = PalettedArea.from_arrays(data, valid, synthetic.transform())
    s = TileSampler(pa, tile_size_m=32 * PX)
    x, y = pa.pixel_to_xy(90, 100)
    t, v = s.sample([[x, y]], size=32)
    np.testing.assert_array_equal(t[0], data[:, 84:116, 74:106])
    rng = np.random.default_rng(n_channels)
    centres, angles, scales = random_batch(rng, 10, pa)
    pytest.importorskip("torch")
    a = s.sample_pixels(centres, angles, scales, 32)
    b = TileSampler(pa, backend="torch", device="cpu", tile_size_m=32 * PX).sample_pixels(centres, angles, scales, 32)
    np.testing.assert_array_equal(a[0], b[0].numpy())
    np.testing.assert_array_equal(a[1], b[1].numpy())


def test_engine_imports_without_torch():
    code = "import sys, loc2vec_engine.tiles; assert 'torch' not in sys.modules, 'torch imported'"
    subprocess.run([sys.executable, "-c", code], check=True)


# ---- bad input -----------------------------------------------------------------------------

@pytest.mark.parametrize("kwargs, match", [
    (dict(size=0), "tile size"),
    (dict(size=12.5), "tile size"),
    (dict(centres=[[1.0, 2.0, 3.0]]), "shape"),
    (dict(centres=[[np.nan, 2.0]]), "NaN"),
    (dict(angles_deg=[0.0, 1.0, 2.0]), "angles_deg"),
    (dict(scales=0.0), "scales"),
    (dict(scales=[1.0, -1.0]), "scales"),
])
def test_bad_sample_arguments(cpu, kwargs, match):
    args = dict(centres=[[10.0, 10.0], [20.0, 20.0]], angles_deg=0.0, scales=1.0, size=16) | kwargs
    with pytest.raises(Loc2VecError, match=match) as e:
        cpu.sample_pixels(args["centres"], args["angles_deg"], args["scales"], args["size"])
    assert e.value.fix


def test_bad_areas_and_options(area, tmp_path):
    from loc2vec_engine.channels import get_spec

    with pytest.raises(Loc2VecError, match="bands but channel spec"):  # 5 bands vs the 12-channel spec
        TileSampler(PalettedArea.from_arrays(np.zeros((5, 4, 4), np.uint8)), spec=get_spec())
    data, valid = synthetic.make_area(40, 40, n_channels=5)
    with pytest.raises(Loc2VecError, match="bands but channel spec"):
        PalettedArea.from_raster(synthetic.write_geotiff(tmp_path / "five.tif", data, valid), spec=get_spec())
    with pytest.raises(Loc2VecError, match=r"\(C, H, W\) uint8"):
        PalettedArea.from_arrays(np.zeros((4, 4), np.uint8))
    with pytest.raises(Loc2VecError, match="valid mask"):
        PalettedArea.from_arrays(np.zeros((2, 4, 4), np.uint8), np.ones((3, 3), bool))
    with pytest.raises(Loc2VecError, match="north-up"):
        PalettedArea.from_arrays(np.zeros((2, 4, 4), np.uint8), transform=(0, 1.0, 0.1, 0, 0, -1.0))
    with pytest.raises(Loc2VecError, match="back-end"):
        TileSampler(area, backend="opencl")
    with pytest.raises(Loc2VecError, match="not found"):
        TileSampler(tmp_path / "missing.tif")
    with pytest.raises(Loc2VecError, match="tile_size_m"):
        TileSampler(area, tile_size_m=0)
    with pytest.raises(Loc2VecError, match="no CRS"):
        TileSampler(PalettedArea.from_arrays(np.zeros((2, 4, 4), np.uint8))).sample_lonlat([[10.0, 50.0]])
    pytest.importorskip("torch")
    with pytest.raises(Loc2VecError, match="max_device_bytes"):
        TileSampler(area, backend="torch", device="cpu", max_device_bytes=1000)


def test_palette_without_numba_is_the_same_area(monkeypatch):
    """A GPU machine without numba builds the palette with numpy: the decoded area is identical."""
    from loc2vec_engine.tiles import paletted

    data, valid = synthetic.make_area(260, 300, seed=3)
    with_numba = PalettedArea.from_arrays(data, valid)
    monkeypatch.setattr(paletted, "HAVE_NUMBA", False)
    without = PalettedArea.from_arrays(data, valid)
    assert without.n_values == with_numba.n_values
    for area in (with_numba, without):
        d, v = area.decode()
        assert np.array_equal(v, valid) and np.array_equal(d[:, valid], data[:, valid])
