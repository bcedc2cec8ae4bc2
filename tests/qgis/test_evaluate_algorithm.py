"""processing.run("loc2vec:evaluate") on the Porto area raster with the shipped model (a small, fast evaluation)."""

import json
import re

import pytest
from qgis.core import QgsProcessingException, QgsProcessingFeedback

import processing  # noqa: E402

from ..conftest import DATA

ALG = "loc2vec:evaluate"
FAST = {"STRIDE": 50, "MAX_CELLS": 200, "MAX_QUERIES": 100, "DEVICE": "cpu"}


@pytest.fixture(scope="module")
def report(loc2vec_plugin, porto_area, porto_pbf, tmp_path_factory):
    out = tmp_path_factory.mktemp("evaluate") / "report"
    feedback = QgsProcessingFeedback()
    progress = []
    feedback.progressChanged.connect(progress.append)
    result = processing.run(ALG, {"AREA": str(porto_area), "OSM": str(porto_pbf), **FAST, "OUTPUT": str(out)},
                            feedback=feedback)
    return out, result, progress


def test_the_report_folder_and_outputs(report):
    out, result, progress = report
    metrics = json.loads((out / "metrics.json").read_text())
    assert result["OUTPUT"] == str(out) and result["REPORT"] == str(out / "report.md")
    assert result["METRICS"] == str(out / "metrics.json") and result["REPORT_HTML"] == str(out / "report.html")
    assert result["HEADLINE"] == metrics["headline"] and "fractions baseline" in result["HEADLINE"]
    assert metrics["model"]["file"] == "loc2vec-default.onnx"  # no MODEL given: the shipped model
    assert metrics["settings"]["max_cells"] == 200 and metrics["settings"]["stride_m"] == 50
    assert 50 <= metrics["cells"]["evaluated"] <= 200
    assert {"recall@1", "mrr"} <= set(metrics["metrics"])
    assert sorted(p.name for p in (out / "plots").iterdir()) == ["ablation.png", "probe.png", "triplets.png"]
    assert not [p for p in out.parent.iterdir() if p.name != "report"]  # no temporary folder left
    assert progress == sorted(progress) and progress[-1] == 100 and len(set(progress)) > 5


def test_the_html_report_holds_the_markdown(report):
    out, _, _ = report
    md = (out / "report.md").read_text(encoding="utf-8")
    page = (out / "report.html").read_text(encoding="utf-8")
    assert page.startswith("<!DOCTYPE html>") and page.rstrip().endswith("</html>")
    table_rows = [ln for ln in md.splitlines() if ln.startswith("|") and not re.fullmatch(r"\|[-|]+", ln)]
    assert page.count("<tr>") == len(table_rows) > 10
    assert page.count("<h2>") == md.count("\n## ") and "<h1>loc2vec evaluation: loc2vec-default.onnx" in page
    assert page.count('<img alt="plots/') == 3 and '<pre><code>loc2vec evaluate' in page
    headline = md.split("## Headline\n\n")[1].split("\n")[0]
    assert f"<p>{headline}</p>" in page.replace("&#x27;", "'")
    assert "OpenStreetMap contributors" in page
    assert "|" not in re.sub(r"<pre>.*?</pre>", "", page, flags=re.S)  # every table converted


def _refused(porto_area, porto_pbf, tmp_path, match, **params):
    out = tmp_path / "out" / "report"
    out.parent.mkdir()
    with pytest.raises(QgsProcessingException, match=match) as e:
        processing.run(ALG, {"AREA": str(porto_area), "OSM": str(porto_pbf), **FAST, **params, "OUTPUT": str(out)},
                       feedback=QgsProcessingFeedback())
    assert list(out.parent.iterdir()) == []  # no report folder, no temporary one
    return str(e.value)


def test_a_file_that_is_not_an_onnx_model(loc2vec_plugin, porto_area, porto_pbf, tmp_path):
    bad = tmp_path / "models" / "garbage.onnx"
    bad.parent.mkdir()
    bad.write_bytes(b"\x08\x01garbage")
    message = _refused(porto_area, porto_pbf, tmp_path, "not a readable ONNX file",
                       MODEL=str(bad))
    assert "Fix:" in message


def test_an_onnx_model_that_is_not_loc2vecs(loc2vec_plugin, porto_area, porto_pbf, tmp_path):
    import onnx
    from onnx import TensorProto, helper

    graph = helper.make_graph([helper.make_node("Identity", ["x"], ["y"])], "plain",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4])])
    foreign = tmp_path / "models" / "plain.onnx"
    foreign.parent.mkdir()
    onnx.save(helper.make_model(graph), foreign)
    message = _refused(porto_area, porto_pbf, tmp_path, "not a loc2vec model",
                       MODEL=str(foreign))
    assert "Fix:" in message and "loc2vec export" in message


def test_an_osm_source_without_venues_in_the_area(loc2vec_plugin, porto_area, tmp_path):
    _refused(porto_area, DATA / "andorra_2020-05-01.osm.pbf", tmp_path, "has no venues")


def test_cancel_leaves_no_report(loc2vec_plugin, porto_area, porto_pbf, tmp_path):
    feedback = QgsProcessingFeedback()
    feedback.progressChanged.connect(lambda p: feedback.cancel() if p > 10 else None)
    out = tmp_path / "report"
    with pytest.raises(QgsProcessingException, match="Cancelled"):
        processing.run(ALG, {"AREA": str(porto_area), "OSM": str(porto_pbf), **FAST, "OUTPUT": str(out)},
                       feedback=feedback)
    assert list(tmp_path.iterdir()) == []
