"""`loc2vec demo` runs end to end on bundled data and leaves its pictures and raster."""

from loc2vec_engine.demo import run_demo
from loc2vec_engine.raster.area import AreaRaster


def test_demo_writes_everything(tmp_path, capsys):
    outputs = run_demo(tmp_path / "demo")
    for path in outputs.values():
        assert path.is_file() and path.stat().st_size > 10_000, path
    area = AreaRaster.open(outputs["area raster"])
    assert area.count == 12 and area.width > 1000
    printed = capsys.readouterr().out
    assert "OpenStreetMap contributors" in printed and str(outputs["triplets"]) in printed
