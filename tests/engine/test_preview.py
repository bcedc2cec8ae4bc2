"""Tile preview on a small synthetic area raster made here with GDAL."""

import numpy as np
import pytest

from loc2vec_engine.channels import get_spec
from loc2vec_engine.errors import Loc2VecError
from loc2vec_engine.tiles.preview import render_preview

# Synthetic area: 400 x 300 px at 2 m in UTM 36N, lower-left corner near Kyiv centre.
X0, Y0, PX, W, H = 321_000.0, 5_590_000.0, 2.0, 400, 300
ROAD_ROW = 150  # a horizontal roads_major stripe, 8 px wide, centred on this row


def make_area(path, names=None, epsg=32636):
    from osgeo import gdal, osr

    gdal.UseExceptions()
    names = names or get_spec("default").names
    ds = gdal.GetDriverByName("GTiff").Create(str(path), W, H, len(names), gdal.GDT_Byte)
    ds.SetGeoTransform((X0, PX, 0.0, Y0 + H * PX, 0.0, -PX))
    srs = osr.SpatialReference()
    srs.ImportFromEPSG(epsg)
    ds.SetProjection(srs.ExportToWkt())
    ds.SetMetadata({"LOC2VEC_ATTRIBUTION": "Map data © OpenStreetMap contributors, ODbL 1.0"})
    for i, name in enumerate(names):
        band = ds.GetRasterBand(i + 1)
        band.SetDescription(name)
        arr = np.zeros((H, W), np.uint8)
        if i == 0:
            arr[ROAD_ROW - 4:ROAD_ROW + 4, :] = 255
        elif name == "green":
            arr[:50, :100] = 255  # a park away from the road
        band.WriteArray(arr)
    ds = None
    return path


@pytest.fixture
def area(tmp_path):
    return make_area(tmp_path / "area.tif")


def _centre_lonlat():
    from pyproj import Transformer

    t = Transformer.from_crs("EPSG:32636", "EPSG:4326", always_xy=True)
    return t.transform(X0 + W / 2 * PX, Y0 + (H - ROAD_ROW) * PX)  # on the road, mid-width


def test_composite_and_panels(area, tmp_path):
    from matplotlib.image import imread

    out, panels = render_preview(area, at_lonlat=_centre_lonlat(), out=tmp_path / "tile.png")
    assert out == tmp_path / "tile.png" and panels == tmp_path / "tile_channels.png"
    img, pan = imread(out)[..., :3], imread(panels)[..., :3]
    assert 500 <= img.shape[0] <= 800 and 900 <= img.shape[1] <= 1200  # 512 px map + legend
    assert pan.shape[0] > 600 and pan.shape[1] > 900
    road = np.array([0xd7, 0x19, 0x1c]) / 255
    is_road = np.abs(img - road).max(axis=-1) < 0.03
    rows = is_road.sum(axis=1)
    # The stripe: ~16 PNG rows (8 px at 2x) with road colour across most of the 512 px map; the legend
    # patch alone is far smaller.
    assert (rows > 400).sum() >= 12
    green = np.array([0x1a, 0x96, 0x41]) / 255
    assert (np.abs(img - green).max(axis=-1) < 0.03).sum() > 1000
    # the tile lies inside the raster: nothing is hatched, nothing else is left behind
    assert sorted(p.name for p in tmp_path.iterdir()) == ["area.tif", "tile.png", "tile_channels.png"]


def test_tile_past_the_edge_is_hatched(area, tmp_path):
    from matplotlib.image import imread

    out, _ = render_preview(area, at_xy=(X0 + 10, Y0 + 10), out=tmp_path / "corner.png",
                            panels_out=tmp_path / "panels.png", size_px=128)
    img = imread(out)[..., :3]
    neutral = (np.abs(img - 0.72).max(axis=-1) < 0.02) | (np.abs(img - 0.86).max(axis=-1) < 0.02)
    assert neutral.sum() > 50_000  # three quarters of the 512 x 512 map lie outside the raster
    assert (tmp_path / "panels.png").is_file()


def test_point_outside_the_area(area, tmp_path):
    with pytest.raises(Loc2VecError) as e:
        render_preview(area, at_lonlat=(30.0, 50.0), out=tmp_path / "tile.png")
    assert e.value.problem.startswith("point 30.00000,50.00000 is outside area raster area.tif (covers lon 30.")
    assert "pick a point inside" in e.value.fix
    assert not (tmp_path / "tile.png").exists()


def test_unknown_bands_use_a_grey_ramp(tmp_path):
    from matplotlib.image import imread

    path = make_area(tmp_path / "other.tif", names=[f"b{i}" for i in range(5)])
    out, panels = render_preview(path, out=tmp_path / "t.png")
    img = imread(out)[..., :3]
    assert (np.ptp(img, axis=-1) < 0.01).mean() > 0.95  # all grey
    assert panels.is_file()
    with pytest.raises(Loc2VecError):  # the 12-channel spec does not fit 5 bands
        render_preview(path, out=tmp_path / "t2.png", spec="default")


def test_real_porto_tile(porto_area, tmp_path):
    """On the rasterized Porto extract (conftest fixture): all three named layers show up in the composite."""
    from matplotlib.image import imread

    out, panels = render_preview(porto_area, at_lonlat=(-8.6109, 41.1459), out=tmp_path / "porto.png")
    img = imread(out)[..., :3]
    spec = get_spec("default")
    for name in ("roads_minor", "poi", "transit"):
        rgb = np.array([int(spec.channels[spec.index(name)].color[k:k + 2], 16) for k in (1, 3, 5)]) / 255
        assert (np.abs(img - rgb).max(axis=-1) < 0.03).sum() > 500, name
    assert panels.is_file()
