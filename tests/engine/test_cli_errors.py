"""Bad input: one clear error naming the problem and the fix, exit code 2, no partial output."""

import errno
import os
import shlex
import subprocess
import sys
from pathlib import Path

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


def test_binary_spec(capsys, tmp_path, out_dir, porto_pbf):
    spec = tmp_path / "spec.toml"
    spec.write_bytes(bytes(range(256)))
    rc, err = _run(capsys, "rasterize", porto_pbf, "--out", out_dir / "a.tif", f"--bbox={BBOX}", "--spec", spec)
    _assert_clean_failure(rc, err, out_dir, "is not a text file")


def test_unwritable_output(capsys, tmp_path, porto_pbf):
    blocker = tmp_path / "a_file"
    blocker.write_text("not a folder")
    rc, err = _run(capsys, "rasterize", porto_pbf, "--out", blocker / "a.tif", f"--bbox={BBOX}")
    assert rc == 2 and f"output folder {blocker} is a file, not a folder" in err and "fix:" in err


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


# ---- outputs that cannot be written (issue 9) ---------------------------------------------------------
# /proc is a folder that exists and refuses new files to everyone, root included: as root os.access(W_OK)
# says yes to it and to chmod-555 folders, which is how `embed ... --out /proc/nope.gpkg` embedded every
# cell and then died in mkstemp. The matrix in test_cli_matrix.py runs every command against it.

def test_check_writable_really_probes(tmp_path):
    from loc2vec_engine.atomic import check_writable
    from loc2vec_engine.errors import Loc2VecError

    assert os.access("/proc", os.W_OK) == (os.geteuid() == 0)  # the lie the probe is for (as root)
    with pytest.raises(Loc2VecError, match="output folder /proc is not writable"):
        check_writable("/proc/nope.gpkg")
    assert check_writable(tmp_path / "ok.gpkg") == tmp_path / "ok.gpkg"
    assert list(tmp_path.iterdir()) == []  # the probe file is gone


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into chmod-555 folders")
def test_check_writable_read_only_folder(tmp_path):
    from loc2vec_engine.atomic import check_writable
    from loc2vec_engine.errors import Loc2VecError

    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o555)
    try:
        with pytest.raises(Loc2VecError, match="is not writable"):
            check_writable(ro / "a.tif")
    finally:
        ro.chmod(0o755)


def test_write_time_failure_is_an_error_not_a_traceback(capsys, monkeypatch, porto_area):
    """When the folder refuses the file only at write time (the early check passed, as os.access did):
    one error naming the output, exit 2."""
    monkeypatch.setattr("loc2vec_engine.atomic.check_folder_writable", lambda folder: Path(folder))
    rc, err = _run(capsys, "embed", "default", porto_area, "--at", "-8.61,41.145", "--out", "/proc/nope.gpkg",
                   "--device", "cpu")
    assert rc == 2 and "Traceback" not in err and "mkstemp" not in err, err
    assert err.startswith("error: could not write /proc/nope.gpkg") and "\n  fix: " in err, err


def test_disk_full_inside_atomic_output(tmp_path):
    from loc2vec_engine.atomic import atomic_output
    from loc2vec_engine.errors import Loc2VecError

    out = tmp_path / "a.tif"
    out.write_bytes(b"previous result")
    with pytest.raises(Loc2VecError, match=r"could not write .*a.tif \(No space left on device\)") as e:
        with atomic_output(out) as tmp:
            tmp.write_bytes(b"half")
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(tmp))
    assert "disk has room" in e.value.fix
    assert out.read_bytes() == b"previous result" and [p.name for p in tmp_path.iterdir()] == ["a.tif"]


def test_oserror_about_another_file_keeps_its_name(tmp_path):
    """An input that fails to read inside the block is not reported as a failed write of the output."""
    from loc2vec_engine.atomic import atomic_output

    other = tmp_path / "elsewhere" / "input.osm.pbf"
    with pytest.raises(FileNotFoundError):
        with atomic_output(tmp_path / "a.tif"):
            raise FileNotFoundError(errno.ENOENT, "No such file or directory", str(other))
    assert list(tmp_path.iterdir()) == []


def test_unforeseen_oserror(capsys, monkeypatch):
    """Any other file-system failure: its message and the file, exit 2, no traceback."""
    def fails(args):
        raise PermissionError(errno.EACCES, "Permission denied", "/some/where/area.tif")

    monkeypatch.setattr("loc2vec_engine.cli.cmd_info", fails)
    rc, err = _run(capsys, "info", "area.tif")
    assert rc == 2 and "Traceback" not in err
    assert err.startswith("error: Permission denied (/some/where/area.tif)\n  fix: "), err


# ---- a reader that goes away (| head) ----------------------------------------------------------------

def _cli(*argv):
    return [sys.executable, "-m", "loc2vec_engine.cli", *(str(a) for a in argv)]


def test_broken_pipe_exits_quietly(porto_area):
    """stdout is a pipe whose reader is already gone: every write fails (EPIPE), deterministically."""
    read_end, write_end = os.pipe()
    os.close(read_end)
    try:
        proc = subprocess.run(_cli("info", porto_area), stdout=write_end, stderr=subprocess.PIPE, text=True,
                              timeout=120)
    finally:
        os.close(write_end)
    assert "Traceback" not in proc.stderr and "BrokenPipe" not in proc.stderr, proc.stderr
    assert "Exception ignored" not in proc.stderr, proc.stderr
    assert proc.returncode == 1


def test_piped_into_head(porto_area):
    """The way it is met: `loc2vec info AREA.tif | head -1`."""
    proc = subprocess.run(["bash", "-c", f"{shlex.join(_cli('info', porto_area))} | head -1"],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0
    assert proc.stdout.startswith(f"{porto_area}: ") and proc.stdout.count("\n") == 1, proc.stdout
    assert "Traceback" not in proc.stderr and "BrokenPipe" not in proc.stderr, proc.stderr


def test_broken_pipe_in_process(capsys, monkeypatch, porto_area):
    class GoneReader:
        def write(self, text):
            raise BrokenPipeError(errno.EPIPE, "Broken pipe")

        def flush(self):
            raise BrokenPipeError(errno.EPIPE, "Broken pipe")

    monkeypatch.setattr(sys, "stdout", GoneReader())
    rc = main(["info", str(porto_area)])
    monkeypatch.undo()
    assert rc == 1 and capsys.readouterr().err == ""


@pytest.mark.parametrize("flags, expected", [
    (["--loss", "infonce", "--temperature", "0"], "temperature must be > 0"),
    (["--composition-weight", "-1"], "loss weights must be >= 0"),
    (["--semantic-positives", "1.5"], "semantic positives share 1.5 is out of range"),
    (["--hybrid-share", "1"], "hybrid training share 1.0"),
    (["--hybrid-share", "0.5", "--composition-weight", "1"], "exclude each other"),
])
def test_bad_training_objective(capsys, tmp_path, porto_area, flags, expected):
    run = tmp_path / "run"
    rc, err = _run(capsys, "train", porto_area, "--out", run, *flags)
    assert rc == 2 and err.startswith("error: ") and "\n  fix: " in err and expected in err, err
    assert not run.exists()  # refused before the run folder is made


def test_report_folder_check_really_probes(tmp_path):
    """evaluate_model (the engine call the Processing algorithm makes) refuses an unwritable parent before
    any work: its check creates a file, as check_writable does, instead of asking os.access."""
    from loc2vec_engine.errors import Loc2VecError
    from loc2vec_engine.evaluation.report import check_report_dir

    with pytest.raises(Loc2VecError, match="output folder /proc is not writable"):
        check_report_dir("/proc/report")
    assert check_report_dir(tmp_path / "report") == tmp_path / "report"
    assert list(tmp_path.iterdir()) == []
