"""Bad input: one clear error naming the problem and the fix, exit code 2, no partial output."""

import subprocess
import sys

import pytest

from loc2vec_engine.cli import main

from ..conftest import PORTO_BBOX

BBOX = ",".join(str(v) for v in PORTO_BBOX)


def _run(capsys, *argv):
    rc = main([str(a) for a in argv])
    err = capsys.readouterr().err
    return rc, err


def _assert_clean_failure(rc, err, out_dir, expected):
    assert rc == 2
    assert err.startswith("error: ") and "\n  fix: " in err, err
    assert expected in err, err
    assert "Traceback" not in err
    leftovers = [p.name for p in out_dir.iterdir() if p.suffix in (".tif", ".part", ".png", ".pbf")]
    assert leftovers == [], leftovers


@pytest.fixture()
def out_dir(tmp_path):
    d = tmp_path / "out"
    d.mkdir()
    return d


def test_corrupt_pbf(capsys, tmp_path, out_dir):
    bad = tmp_path / "corrupt.osm.pbf"
    bad.write_bytes(bytes(range(256)) * 64)
    rc, err = _run(capsys, "rasterize", bad, "--out", out_dir / "a.tif")
    _assert_clean_failure(rc, err, out_dir, "cannot read")
    assert "download it again" in err


def test_truncated_pbf(capsys, tmp_path, out_dir, porto_pbf):
    cut = tmp_path / "truncated.osm.pbf"
    cut.write_bytes(porto_pbf.read_bytes()[: 600_000])
    rc, err = _run(capsys, "rasterize", cut, "--out", out_dir / "a.tif")
    _assert_clean_failure(rc, err, out_dir, "corrupt or truncated")


def test_bbox_with_no_data(capsys, out_dir, porto_pbf):
    rc, err = _run(capsys, "rasterize", porto_pbf, "--out", out_dir / "a.tif", "--bbox", "10,10,10.01,10.01")
    _assert_clean_failure(rc, err, out_dir, "no objects of channel spec")
    assert "covers -8.62124,41.12473" in err  # tells where the data is


def test_bbox_in_wrong_order(capsys, out_dir, porto_pbf):
    rc, err = _run(capsys, "rasterize", porto_pbf, "--out", out_dir / "a.tif", "--bbox", "41.14,-8.61,41.15,-8.60")
    _assert_clean_failure(rc, err, out_dir, "no objects of channel spec")
    assert "bbox order is lon_min,lat_min,lon_max,lat_max" in err


def test_bbox_that_is_not_a_box(capsys, out_dir, porto_pbf):
    rc, err = _run(capsys, "rasterize", porto_pbf, "--out", out_dir / "a.tif", "--bbox=-8.60,41.15,-8.61,41.14")
    _assert_clean_failure(rc, err, out_dir, "not a lon/lat box with min < max")


def test_clip_with_no_data(capsys, tmp_path, out_dir, porto_pbf):
    clip = tmp_path / "far.geojson"
    clip.write_text('{"type": "Polygon", "coordinates": [[[10,10],[10.01,10],[10.01,10.01],[10,10]]]}')
    rc, err = _run(capsys, "rasterize", porto_pbf, "--out", out_dir / "a.tif", "--clip", clip)
    _assert_clean_failure(rc, err, out_dir, "no objects of channel spec")


def test_geographic_output_crs(capsys, out_dir, porto_pbf):
    rc, err = _run(capsys, "rasterize", porto_pbf, "--out", out_dir / "a.tif", f"--bbox={BBOX}", "--crs", "EPSG:4326")
    _assert_clean_failure(rc, err, out_dir, "is geographic (degrees)")
    assert "EPSG:32629" in err  # suggests the local UTM zone


@pytest.mark.parametrize("body, expected", [
    ('[[channel]]\nname = "roads"\nrules = [ { match = { highway = "primary" }, draw = "line", widht_m = 5 } ]\n',
     "unknown rule field(s) ['widht_m']"),
    ('[[channel]]\nname = "roads"\nrules = [ { match = { highway = "primary" }, draw = "brush" } ]\n',
     "unknown draw 'brush'"),
    ('[[channel]]\nname = "roads"\ncolour = "red"\nrules = [ { match = { highway = "primary" }, draw = "fill" } ]\n',
     "unknown channel field(s) ['colour']"),
    ('[[channel]]\nname = "roads"\nrules = [ { match = { highway = 5 }, draw = "fill" } ]\n',
     "a tag condition must be"),
    ('[spec]\nname = "x"\n', "has no [[channel]] tables"),
    ('[[channel]\n', "not valid TOML"),
])
def test_bad_spec(capsys, tmp_path, out_dir, porto_pbf, body, expected):
    spec = tmp_path / "spec.toml"
    spec.write_text(body)
    rc, err = _run(capsys, "rasterize", porto_pbf, "--out", out_dir / "a.tif", f"--bbox={BBOX}", "--spec", spec)
    _assert_clean_failure(rc, err, out_dir, expected)


def test_unwritable_output(capsys, tmp_path, porto_pbf):
    blocker = tmp_path / "a_file"
    blocker.write_text("not a folder")
    rc, err = _run(capsys, "rasterize", porto_pbf, "--out", blocker / "a.tif", f"--bbox={BBOX}")
    assert rc == 2 and "output folder" in err and "does not exist" in err and "fix:" in err


def test_raster_whose_bands_are_not_the_spec(capsys, tmp_path, out_dir, porto_area):
    spec = tmp_path / "three.toml"
    spec.write_text("".join(f'[[channel]]\nname = "c{i}"\nrules = [ {{ match = {{ highway = "*" }}, draw = "fill" }} ]\n'
                            for i in range(3)))
    from loc2vec_engine.channels import get_spec
    from loc2vec_engine.errors import Loc2VecError
    from loc2vec_engine.raster.area import AreaRaster

    with pytest.raises(Loc2VecError, match="has 12 bands but channel spec 'three' has 3 channels"):
        AreaRaster.open(porto_area, spec=get_spec(spec))
    rc, err = _run(capsys, "preview", porto_area, "--at", "-8.61,41.145", "--out", out_dir / "t.png", "--spec", spec)
    _assert_clean_failure(rc, err, out_dir, "has 12 bands but channel spec")


def test_missing_source(capsys, tmp_path, out_dir):
    rc, err = _run(capsys, "rasterize", tmp_path / "nowhere.osm.pbf", "--out", out_dir / "a.tif")
    _assert_clean_failure(rc, err, out_dir, "not found")


def test_existing_output_survives_a_failed_run(capsys, tmp_path, porto_pbf):
    out = tmp_path / "area.tif"
    out.write_bytes(b"previous result")
    rc, _ = _run(capsys, "rasterize", porto_pbf, "--out", out, "--bbox", "10,10,10.01,10.01")
    assert rc == 2 and out.read_bytes() == b"previous result"


def test_console_script_exit_code(tmp_path, porto_pbf):
    """The real process exits non-zero with the message on stderr."""
    proc = subprocess.run([sys.executable, "-m", "loc2vec_engine.cli", "rasterize", str(porto_pbf), "--out",
                           str(tmp_path / "a.tif"), "--crs", "EPSG:4326"], capture_output=True, text=True)
    assert proc.returncode == 2
    assert "error: CRS EPSG:4326 is geographic" in proc.stderr
    assert not (tmp_path / "a.tif").exists()
